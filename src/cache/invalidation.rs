//! Coherent invalidation across instances. Whatever drops cached grants on one instance (an admin purge,
//! a logout, a back-channel logout) announces it on one Redis pub/sub channel, and every instance drops
//! the same entries from its in-process tier as the message arrives (well within a second).
//!
//! Pub/sub delivers at most once, so a message can be missed while an instance is disconnected. Two
//! things bound the damage: after a lost subscription an instance empties its in-process tier (what it
//! held is re-read from Redis or exchanged again), and no entry outlives `max_ttl_seconds` anyway. A
//! purge of everything is also recorded as a generation number in Redis, read at every (re)subscription.

use super::redis::RedisTier;
use super::seal::CacheKey;
use std::sync::Arc;
use std::time::Duration;

/// The pub/sub channel that carries invalidations.
pub const CHANNEL: &str = "shroud:v1:purge";

/// One announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// Drop these grants from the in-process tier (they are gone from Redis already).
    Forget(Vec<CacheKey>),
    /// These tokens are ended (logout): deny them, and drop their grants.
    Deny(Vec<CacheKey>),
    /// Everything cached so far is void: Redis keys of this generation start afresh.
    All {
        /// The new generation.
        generation: u64,
    },
}

fn encode_keys(keys: &[CacheKey]) -> String {
    keys.iter().map(hex::encode).collect::<Vec<_>>().join(",")
}

fn parse_keys(text: &str) -> Vec<CacheKey> {
    text.split(',').filter_map(|h| hex::decode(h.trim()).ok()).filter_map(|b| b.try_into().ok()).collect()
}

impl Invalidation {
    /// The wire form: `forget:<hex>,<hex>…`, `deny:<hex>,…` or `all:<generation>`.
    pub fn encode(&self) -> String {
        match self {
            Invalidation::Forget(keys) => format!("forget:{}", encode_keys(keys)),
            Invalidation::Deny(keys) => format!("deny:{}", encode_keys(keys)),
            Invalidation::All { generation } => format!("all:{generation}"),
        }
    }

    /// Reads the wire form; `None` for anything else (logged and ignored by the listener).
    pub fn parse(text: &str) -> Option<Invalidation> {
        let (kind, body) = text.split_once(':')?;
        match kind {
            "forget" => Some(Invalidation::Forget(parse_keys(body))),
            "deny" => Some(Invalidation::Deny(parse_keys(body))),
            "all" => body.parse().ok().map(|generation| Invalidation::All { generation }),
            _ => None,
        }
    }
}

/// Announces `message` to every instance (this one included). A failure is logged: the other
/// instances catch up when their entries expire.
pub async fn publish(redis: &RedisTier, message: &Invalidation) {
    if let Err(e) = redis.publish(CHANNEL, &message.encode()).await {
        log::warn!("invalidation announcement failed ({e}); other instances drop the entries when they expire");
    }
}

/// What an instance does with announcements.
pub trait Subscriber {
    /// The subscription is (re)established; `resumed` when an earlier one was lost (messages may have
    /// been missed meanwhile).
    fn subscribed(&self, resumed: bool) -> impl std::future::Future<Output = ()>;
    /// Applies one announcement.
    fn apply(&self, message: Invalidation) -> impl std::future::Future<Output = ()>;
}

/// Listens for announcements until the process ends, reconnecting with backoff.
pub async fn listen<S: Subscriber>(redis: Arc<RedisTier>, subscriber: S) {
    use futures_util::StreamExt;
    let mut wait = Duration::from_millis(250);
    let mut resumed = false;
    loop {
        match redis.subscribe(CHANNEL).await {
            Ok(mut pubsub) => {
                wait = Duration::from_millis(250);
                subscriber.subscribed(resumed).await;
                resumed = true;
                let mut messages = pubsub.on_message();
                while let Some(message) = messages.next().await {
                    match message.get_payload::<String>().ok().as_deref().and_then(Invalidation::parse) {
                        Some(invalidation) => subscriber.apply(invalidation).await,
                        None => log::warn!("ignored a malformed message on {CHANNEL}"),
                    }
                }
                log::warn!("invalidation subscription lost; reconnecting");
            }
            Err(e) => log::debug!("invalidation subscription failed ({e}); retrying"),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_message() {
        let keys = vec![[1u8; 32], [0xab; 32]];
        for message in [
            Invalidation::Forget(keys.clone()),
            Invalidation::Deny(keys),
            Invalidation::Forget(Vec::new()),
            Invalidation::All { generation: 42 },
        ] {
            assert_eq!(Invalidation::parse(&message.encode()), Some(message));
        }
        assert_eq!(Invalidation::parse("all:x"), None);
        assert_eq!(Invalidation::parse("nuke:1"), None);
        assert_eq!(Invalidation::parse("deadbeef"), None);
    }
}
