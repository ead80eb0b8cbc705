//! The exchange cache: an in-process tier (moka: bounded, per-entry TTL, request coalescing) in front of
//! an optional shared Redis tier, both keyed by HMAC of the token ([`seal`]).
//!
//! Lookup order: in-process → (one coalesced load per key:) Redis → the exchange itself. `exp` is checked
//! again on every hit; inactive answers are kept for `negative_ttl_seconds`; errors are never cached.

pub mod redis;
pub mod seal;

use crate::config::CacheConfig;
use crate::error::Rejection;
use crate::grant::Grant;
use moka::future::Cache;
use moka::Expiry;
use seal::{CacheKey, Sealer};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

#[derive(Clone)]
struct Entry {
    outcome: Outcome,
    ttl: Duration,
    tier: Tier,
}

struct EntryExpiry;

impl Expiry<CacheKey, Entry> for EntryExpiry {
    fn expire_after_create(&self, _key: &CacheKey, value: &Entry, _created_at: Instant) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// The sealed form of an entry in Redis.
#[derive(Serialize, Deserialize)]
struct Stored {
    /// The JWT of an active token; `None` for inactive.
    jwt: Option<String>,
    /// When the entry stops being valid, in milliseconds since the epoch.
    until_ms: u64,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Counts lookups by tier; implemented by the metrics registry.
pub trait CacheObserver: Send + Sync {
    /// A lookup in `tier` found (`hit`) or did not find an entry.
    fn lookup(&self, tier: Tier, hit: bool);
}

/// The two-tier exchange cache.
pub struct GrantCache {
    memory: Cache<CacheKey, Entry>,
    redis: Option<Arc<redis::RedisTier>>,
    sealer: Sealer,
    max_ttl: Duration,
    negative_ttl: Duration,
    fill_timeout: Duration,
    observer: Arc<dyn CacheObserver>,
}

/// How often an instance waiting for another instance's exchange looks for its result.
const FILL_POLL: Duration = Duration::from_millis(10);

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
            memory,
            redis,
            sealer,
            max_ttl: Duration::from_secs(config.max_ttl_seconds),
            negative_ttl: Duration::from_secs(config.negative_ttl_seconds),
            fill_timeout,
            observer,
        }
    }

    /// The Redis tier, if configured.
    pub fn redis(&self) -> Option<&redis::RedisTier> {
        self.redis.as_deref()
    }

    /// The cache key of `token`.
    pub fn key(&self, token: &str) -> CacheKey {
        self.sealer.key(token)
    }

    /// Drops entries from this instance's in-process tier only (what a purge message from another
    /// instance asks for).
    pub async fn forget_local(&self, keys: &[CacheKey]) {
        for key in keys {
            self.memory.invalidate(key).await;
        }
    }

    /// Drops entries from both tiers.
    pub async fn purge(&self, keys: &[CacheKey]) {
        self.forget_local(keys).await;
        if let Some(redis) = &self.redis {
            let names: Vec<String> = keys.iter().map(redis_key).collect();
            if let Err(e) = redis.delete(&names).await {
                log::warn!("redis purge failed ({e}); entries expire with their TTL");
            }
        }
    }

    /// The outcome for `token`: from a tier, or from `exchange` (run once for all concurrent callers).
    /// `key` must be [`GrantCache::key`] of `token`.
    pub async fn get_or_exchange<F, Fut>(
        &self,
        token: &str,
        key: CacheKey,
        exchange: F,
    ) -> Result<(Outcome, Tier), Rejection>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Exchanged, Rejection>>,
    {
        if let Some(entry) = self.memory.get(&key).await {
            if still_valid(&entry.outcome) {
                self.observer.lookup(Tier::Memory, true);
                return Ok((entry.outcome, Tier::Memory));
            }
            self.memory.invalidate(&key).await;
        }
        self.observer.lookup(Tier::Memory, false);
        let entry = self
            .memory
            .try_get_with(key, self.load(token, key, exchange))
            .await
            .map_err(|shared: Arc<Rejection>| (*shared).clone())?;
        Ok((entry.outcome, entry.tier))
    }

    /// The entry Redis holds for `key`, if any (and if it opens with `token`).
    async fn shared_entry(
        &self,
        redis: &redis::RedisTier,
        token: &str,
        key: &CacheKey,
    ) -> Result<Option<Entry>, String> {
        Ok(redis.get(&redis_key(key)).await?.and_then(|sealed| self.unseal(token, key, &sealed)))
    }

    /// The coalesced load: Redis first; then the exchange, under a short fill lock so that other instances
    /// wait for this one's result instead of introspecting the same token; the result is stored in Redis.
    async fn load<F, Fut>(&self, token: &str, key: CacheKey, exchange: F) -> Result<Entry, Rejection>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Exchanged, Rejection>>,
    {
        let Some(redis) = &self.redis else {
            return exchange().await.map(|e| self.entry_for(e));
        };
        match self.shared_entry(redis, token, &key).await {
            Ok(Some(entry)) => {
                self.observer.lookup(Tier::Redis, true);
                return Ok(entry);
            }
            Ok(None) => self.observer.lookup(Tier::Redis, false),
            Err(e) => {
                log::warn!("redis lookup failed ({e}); continuing without the shared tier");
                return exchange().await.map(|e| self.entry_for(e));
            }
        }
        let fence = match self.fill_or_wait(redis, token, &key).await {
            Fill::Found(entry) => return Ok(entry),
            Fill::Holding(fence) => Some(fence),
            Fill::OnOurOwn => None,
        };
        let result = exchange().await.map(|e| self.entry_for(e));
        if let Ok(entry) = &result {
            self.store(redis, token, &key, entry).await;
        }
        if let Some(fence) = fence {
            if let Err(e) = redis.unlock(&lock_key(&key), &fence).await {
                log::debug!("fill lock release failed ({e}); it expires by itself");
            }
        }
        result
    }

    /// Takes the fill lock for `key`, or waits (at most the introspection timeout) for the instance that
    /// holds it to store its result.
    async fn fill_or_wait(&self, redis: &redis::RedisTier, token: &str, key: &CacheKey) -> Fill {
        let lock = lock_key(key);
        let mut fence = [0u8; 16];
        openssl::rand::rand_bytes(&mut fence).expect("the system CSPRNG is available");
        let fence = hex::encode(fence);
        match redis.try_lock(&lock, &fence, self.fill_timeout).await {
            Ok(true) => return Fill::Holding(fence),
            Ok(false) => {}
            Err(_) => return Fill::OnOurOwn,
        }
        let deadline = Instant::now() + self.fill_timeout;
        while Instant::now() < deadline {
            tokio::time::sleep(FILL_POLL).await;
            match self.shared_entry(redis, token, key).await {
                Ok(Some(entry)) => {
                    self.observer.lookup(Tier::Redis, true);
                    return Fill::Found(entry);
                }
                Ok(None) => {}
                Err(_) => return Fill::OnOurOwn,
            }
            if !redis.exists(&lock).await.unwrap_or(false) {
                // The holder finished without a result to share (an error, or nothing cacheable).
                if let Ok(Some(entry)) = self.shared_entry(redis, token, key).await {
                    return Fill::Found(entry);
                }
                return match redis.try_lock(&lock, &fence, self.fill_timeout).await {
                    Ok(true) => Fill::Holding(fence),
                    _ => Fill::OnOurOwn,
                };
            }
        }
        Fill::OnOurOwn
    }

    /// A fresh exchange result as a cache entry.
    fn entry_for(&self, exchanged: Exchanged) -> Entry {
        let ttl = self.ttl_for(&exchanged);
        Entry { outcome: exchanged.outcome, ttl, tier: Tier::Miss }
    }

    /// Writes an entry to Redis, sealed, with the same TTL as in process.
    async fn store(&self, redis: &redis::RedisTier, token: &str, key: &CacheKey, entry: &Entry) {
        if entry.ttl.is_zero() {
            return;
        }
        let stored = Stored {
            jwt: match &entry.outcome {
                Outcome::Active(grant) => Some(grant.jwt().to_string()),
                Outcome::Inactive => None,
            },
            until_ms: now_ms() + entry.ttl.as_millis() as u64,
        };
        let plaintext = serde_json::to_vec(&stored).unwrap_or_default();
        let sealed = self.sealer.seal(token, key, &plaintext);
        if let Err(e) = redis.set(&redis_key(key), &sealed, entry.ttl).await {
            log::warn!("redis store failed ({e}); the entry stays in-process only");
        }
    }

    fn unseal(&self, token: &str, key: &CacheKey, sealed: &[u8]) -> Option<Entry> {
        let plaintext = self.sealer.open(token, key, sealed)?;
        let stored: Stored = serde_json::from_slice(&plaintext).ok()?;
        let remaining = stored.until_ms.checked_sub(now_ms()).filter(|ms| *ms > 0)?;
        let outcome = match stored.jwt {
            Some(jwt) => Outcome::Active(Arc::new(Grant::from_stored_jwt(&jwt).ok()?)),
            None => Outcome::Inactive,
        };
        still_valid(&outcome).then_some(Entry { outcome, ttl: Duration::from_millis(remaining), tier: Tier::Redis })
    }

    /// TTL = min(JWT `exp` − now, `max-age`, `max_ttl_seconds`) for active tokens, and
    /// min(`negative_ttl_seconds`, `max-age`) for inactive ones.
    fn ttl_for(&self, exchanged: &Exchanged) -> Duration {
        let ttl = match &exchanged.outcome {
            Outcome::Inactive => self.negative_ttl,
            Outcome::Active(grant) => {
                let until_exp = grant.expires_at().saturating_sub(crate::grant::now_secs());
                self.max_ttl.min(Duration::from_secs(until_exp))
            }
        };
        exchanged.max_age.map_or(ttl, |max_age| ttl.min(Duration::from_secs(max_age)))
    }
}

/// The Redis key of a grant.
fn redis_key(key: &CacheKey) -> String {
    format!("shroud:v1:grant:{}", hex::encode(key))
}

/// The Redis key of the fill lock for a grant.
fn lock_key(key: &CacheKey) -> String {
    format!("shroud:v1:lock:{}", hex::encode(key))
}

/// What an instance does about a token no tier holds.
enum Fill {
    /// Another instance stored the result meanwhile.
    Found(Entry),
    /// This instance holds the fill lock (with this fence) and exchanges the token.
    Holding(String),
    /// No coordination possible (Redis trouble, or the holder vanished): exchange without the lock.
    OnOurOwn,
}

fn still_valid(outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Active(grant) => grant.expires_at() > crate::grant::now_secs(),
        Outcome::Inactive => true,
    }
}
