//! The exchange cache: an in-process tier (moka: bounded, per-entry TTL, request coalescing) in front of
//! an optional shared Redis tier, both keyed by HMAC of the token ([`seal`]).
//!
//! Lookup order: this worker's [`front`] tier → in-process → (one coalesced load per key:) Redis → the
//! exchange itself. `exp` is checked again on every hit; inactive answers are kept for
//! `negative_ttl_seconds`; errors are never cached.
//!
//! One job per file: [`lookup`] walks the tiers and coalesces misses, [`fill_lock`] makes instances wait
//! for one another's exchange, [`entry`] is what a tier holds (and its sealed form in Redis),
//! [`subject_index`] lists grants by `sub` and `client_id`, [`purge`] drops them, [`generation`] voids
//! everything at once across instances, and [`retirement`] purges when the issuer withdraws signing keys.

mod entry;
mod fill_lock;
pub mod front;
mod generation;
pub mod invalidation;
mod lookup;
mod purge;
pub mod redis;
pub mod redis_topology;
mod retirement;
pub mod seal;
mod subject_index;

pub use lookup::ExchangeFailed;
pub use purge::{PurgeIncomplete, PurgeTarget};

use crate::config::CacheConfig;
use crate::grant::Grant;
use entry::{Entry, EntryExpiry};
use moka::future::Cache;
use seal::{CacheKey, Sealer};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use subject_index::KeySet;

/// What an exchange concluded about a token.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Active: forward this grant.
    Active(Arc<Grant>),
    /// Not active.
    Inactive,
}

/// Where a lookup found its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// The in-process tier.
    Memory,
    /// The Redis tier.
    Redis,
    /// Neither: the token was exchanged (introspected) now.
    Miss,
}

impl Tier {
    /// Label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Tier::Memory => "memory",
            Tier::Redis => "redis",
            Tier::Miss => "miss",
        }
    }
}

/// A fresh exchange result with the authorization server's caching hint.
#[derive(Debug)]
pub struct Exchanged {
    /// The outcome.
    pub outcome: Outcome,
    /// `Cache-Control: max-age` of the introspection response.
    pub max_age: Option<u64>,
}

/// Counts lookups by tier; implemented by the metrics registry.
pub trait CacheObserver: Send + Sync {
    /// A lookup in `tier` found (`hit`) or did not find an entry.
    fn lookup(&self, tier: Tier, hit: bool);
}

/// The two-tier exchange cache.
pub struct GrantCache {
    /// Per-worker copies of recent hits; voided after every removal from `memory`.
    front: front::FrontTier,
    memory: Cache<CacheKey, Entry>,
    redis: Option<Arc<redis::RedisTier>>,
    sealer: Sealer,
    max_ttl: Duration,
    negative_ttl: Duration,
    fill_timeout: Duration,
    observer: Arc<dyn CacheObserver>,
    /// Subject and client index: index key → token keys, so that purges by `sub` or `client_id` do not
    /// scan. Entries live `max_ttl` past their last addition, as long as any grant they list.
    index: moka::sync::Cache<CacheKey, KeySet>,
    /// Redis keys carry this number; a purge of everything starts the next one.
    generation: AtomicU64,
    /// Entries dropped by purges on this instance.
    purged: AtomicU64,
}

impl GrantCache {
    /// Builds the tiers from `[cache]`. `sealer` holds the key secret; `redis` is the shared tier, if any;
    /// `fill_timeout` bounds how long an instance waits for another one's exchange (the introspection
    /// timeout).
    pub fn new(
        config: &CacheConfig,
        sealer: Sealer,
        redis: Option<Arc<redis::RedisTier>>,
        fill_timeout: Duration,
        observer: Arc<dyn CacheObserver>,
    ) -> GrantCache {
        let memory = Cache::builder().max_capacity(config.max_entries).expire_after(EntryExpiry).build();
        GrantCache {
            front: front::FrontTier::default(),
            memory,
            redis,
            sealer,
            max_ttl: Duration::from_secs(config.max_ttl_seconds),
            negative_ttl: Duration::from_secs(config.negative_ttl_seconds),
            fill_timeout,
            observer,
            index: moka::sync::Cache::builder()
                .max_capacity(config.max_entries.max(1))
                .time_to_idle(Duration::from_secs(config.max_ttl_seconds.max(1)))
                .build(),
            generation: AtomicU64::new(0),
            purged: AtomicU64::new(0),
        }
    }

    /// The Redis tier, if configured.
    pub fn redis(&self) -> Option<&Arc<redis::RedisTier>> {
        self.redis.as_ref()
    }

    /// The cache key of `token`.
    pub fn key(&self, token: &str) -> CacheKey {
        self.sealer.key(token)
    }

    /// Entries in this instance's in-process tier (approximate, as moka counts).
    pub fn entries(&self) -> u64 {
        self.memory.entry_count()
    }

    /// Entries dropped by purges on this instance since start.
    pub fn purged(&self) -> u64 {
        self.purged.load(Ordering::Relaxed)
    }
}

/// Whether a cached outcome may still be served: an active grant until its `exp`, an inactive answer for
/// as long as it is cached.
fn still_valid(outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Active(grant) => grant.expires_at() > crate::grant::now_secs(),
        Outcome::Inactive => true,
    }
}

#[cfg(test)]
mod tests {
    use super::seal::CacheKey;

    /// A distinct key per `i` (shared with the tests of the front tier and the subject index).
    pub(super) fn key(i: u64) -> CacheKey {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&i.to_le_bytes());
        key
    }
}
