//! Token-handler sessions, remembered server-side so that a back-channel logout (or a logout) can end
//! them everywhere: which token keys (HMACs, never tokens) belong to which `sid` and `sub`, and a
//! denylist of ended tokens.
//!
//! With Redis the index and the denylist are shared, and a purge is announced on a pub/sub channel so
//! that every instance drops the entries from its in-process tier at once. A missed message cannot keep
//! a token alive past the cache's TTL: every cache miss checks the shared denylist.

use crate::cache::redis::RedisTier;
use crate::cache::seal::{CacheKey, Sealer};
use crate::cache::GrantCache;
use std::sync::Arc;
use std::time::Duration;

/// How long ended tokens stay denied and sessions stay indexed.
pub const SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The pub/sub channel that carries purges.
pub const PURGE_CHANNEL: &str = "shroud:v1:purge";

const MAX_ENTRIES: u64 = 1_000_000;

/// The session index and the denylist.
pub struct Sessions {
    denied: moka::sync::Cache<CacheKey, ()>,
    index: moka::sync::Cache<String, Vec<CacheKey>>,
    redis: Option<Arc<RedisTier>>,
    sealer: Sealer,
}

fn deny_key(key: &CacheKey) -> String {
    format!("shroud:v1:deny:{}", hex::encode(key))
}

fn parse_keys(text: &str) -> Vec<CacheKey> {
    text.split(',').filter_map(|h| hex::decode(h.trim()).ok()).filter_map(|b| b.try_into().ok()).collect()
}

impl Sessions {
    /// Sessions over `sealer`'s keys, shared through `redis` when configured.
    pub fn new(sealer: Sealer, redis: Option<Arc<RedisTier>>) -> Sessions {
        Sessions {
            denied: moka::sync::Cache::builder().max_capacity(MAX_ENTRIES).time_to_live(SESSION_TTL).build(),
            index: moka::sync::Cache::builder().max_capacity(MAX_ENTRIES).time_to_live(SESSION_TTL).build(),
            redis,
            sealer,
        }
    }

    fn index_names(&self, sid: Option<&str>, sub: Option<&str>) -> Vec<String> {
        let mut names = Vec::new();
        if let Some(sid) = sid {
            names.push(format!("shroud:v1:session:sid:{}", hex::encode(self.sealer.key(sid))));
        }
        if let Some(sub) = sub {
            names.push(format!("shroud:v1:session:sub:{}", hex::encode(self.sealer.key(sub))));
        }
        names
    }

    /// Remembers that `tokens` belong to the session `sid` of user `sub`.
    pub async fn record(&self, sid: Option<&str>, sub: Option<&str>, tokens: &[&str]) {
        let keys: Vec<CacheKey> = tokens.iter().map(|t| self.sealer.key(t)).collect();
        let members: Vec<String> = keys.iter().map(hex::encode).collect();
        for name in self.index_names(sid, sub) {
            let mut known = self.index.get(&name).unwrap_or_default();
            known.extend(keys.iter().copied());
            self.index.insert(name.clone(), known);
            if let Some(redis) = &self.redis {
                if let Err(e) = redis.add_to_set(&name, &members, SESSION_TTL).await {
                    log::warn!("redis session index update failed ({e})");
                }
            }
        }
    }

    /// Ends the sessions of `sid` (or all of `sub`'s): denies their tokens and purges their cached grants
    /// on every instance. Returns how many token keys were ended.
    pub async fn end(&self, sid: Option<&str>, sub: Option<&str>, cache: &GrantCache) -> usize {
        let mut keys: Vec<CacheKey> = Vec::new();
        for name in self.index_names(sid, sub) {
            keys.extend(self.index.get(&name).unwrap_or_default());
            if let Some(redis) = &self.redis {
                match redis.set_members(&name).await {
                    Ok(members) => keys.extend(parse_keys(&members.join(","))),
                    Err(e) => log::warn!("redis session index read failed ({e})"),
                }
            }
        }
        keys.sort_unstable();
        keys.dedup();
        self.deny(&keys, cache).await;
        keys.len()
    }

    /// Denies token keys everywhere and purges their cached grants.
    pub async fn deny(&self, keys: &[CacheKey], cache: &GrantCache) {
        if keys.is_empty() {
            return;
        }
        for key in keys {
            self.denied.insert(*key, ());
        }
        cache.purge(keys).await;
        if let Some(redis) = &self.redis {
            for key in keys {
                if let Err(e) = redis.set_flag(&deny_key(key), SESSION_TTL).await {
                    log::warn!("redis denylist update failed ({e})");
                }
            }
            let message: Vec<String> = keys.iter().map(hex::encode).collect();
            if let Err(e) = redis.publish(PURGE_CHANNEL, &message.join(",")).await {
                log::warn!("purge announcement failed ({e}); other instances catch up on their next miss");
            }
        }
    }

    /// Whether this instance knows the token key to be ended (no I/O: the hot path).
    pub fn is_denied(&self, key: &CacheKey) -> bool {
        self.denied.contains_key(key)
    }

    /// Whether the shared denylist holds the key (checked on cache misses); remembered locally when so.
    pub async fn is_denied_shared(&self, key: &CacheKey) -> bool {
        if self.is_denied(key) {
            return true;
        }
        let Some(redis) = &self.redis else { return false };
        let denied = redis.exists(&deny_key(key)).await.unwrap_or(false);
        if denied {
            self.denied.insert(*key, ());
        }
        denied
    }

    /// Applies a purge announced by another instance.
    pub async fn apply_purge_message(&self, message: &str, cache: &GrantCache) {
        let keys = parse_keys(message);
        for key in &keys {
            self.denied.insert(*key, ());
        }
        cache.forget_local(&keys).await;
    }

    /// Listens for purge announcements until the process ends, reconnecting as needed.
    pub async fn listen_for_purges(self: Arc<Self>, cache: Arc<GrantCache>) {
        use futures_util::StreamExt;
        let Some(redis) = self.redis.clone() else { return };
        let mut wait = Duration::from_millis(250);
        loop {
            match redis.subscribe(PURGE_CHANNEL).await {
                Ok(mut pubsub) => {
                    wait = Duration::from_millis(250);
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        if let Ok(text) = message.get_payload::<String>() {
                            self.apply_purge_message(&text, &cache).await;
                        }
                    }
                    log::warn!("purge subscription lost; reconnecting");
                }
                Err(e) => log::debug!("purge subscription failed ({e}); retrying"),
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }
}
