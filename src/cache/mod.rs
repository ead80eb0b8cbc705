//! The exchange cache: an in-process tier (moka: bounded, per-entry TTL, request coalescing) in front of
//! an optional shared Redis tier, both keyed by HMAC of the token ([`seal`]).
//!
//! Lookup order: this worker's [`front`] tier → in-process → (one coalesced load per key:) Redis → the
//! exchange itself. `exp` is checked again on every hit; inactive answers are kept for
//! `negative_ttl_seconds`; errors are never cached.

pub mod front;
pub mod invalidation;
pub mod redis;
pub mod redis_topology;
pub mod seal;

use crate::config::CacheConfig;
use crate::error::Rejection;
use crate::grant::Grant;
use moka::future::Cache;
use moka::Expiry;
use seal::{CacheKey, Sealer};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
    /// When the in-process tier drops it (created + `ttl`): the front tier keeps copies no longer.
    until: Instant,
    tier: Tier,
}

impl Entry {
    fn new(outcome: Outcome, ttl: Duration, tier: Tier) -> Entry {
        Entry { outcome, ttl, until: Instant::now() + ttl, tier }
    }
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

/// The token keys of the grants of one subject or client (an index entry).
type KeySet = Arc<Mutex<IndexEntry>>;

/// One index entry: the keys of a subject's or client's grants, grouped by the second in which they expire
/// (unix seconds). Every insertion drops the groups that have expired, so an entry holds exactly the live
/// grants (plus the keys of re-exchanged tokens until their older listing expires) and its memory follows
/// the live count up and down, even for a client whose tokens keep coming.
#[derive(Default)]
struct IndexEntry {
    by_expiry: BTreeMap<u64, Vec<CacheKey>>,
}

impl IndexEntry {
    fn insert(&mut self, key: CacheKey, until: u64, now: u64) {
        while let Some(entry) = self.by_expiry.first_entry() {
            if *entry.key() >= now {
                break;
            }
            entry.remove();
        }
        self.by_expiry.entry(until).or_default().push(key);
    }

    fn live(&self, now: u64) -> impl Iterator<Item = CacheKey> + '_ {
        self.by_expiry.range(now..).flat_map(|(_, keys)| keys.iter().copied())
    }

    /// Listings held, live or not yet dropped.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_expiry.values().map(Vec::len).sum()
    }
}

/// What an admin purge drops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurgeTarget {
    /// The grant of one token.
    Token(String),
    /// Every grant whose `sub` is this.
    Subject(String),
    /// Every grant whose `client_id` is this.
    Client(String),
    /// Everything.
    All,
}

/// A purge could not reach Redis: it took effect on this instance only.
#[derive(Debug)]
pub struct PurgeIncomplete {
    /// Entries dropped from this instance.
    pub purged: usize,
    /// What failed.
    pub reason: String,
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

    /// Drops entries from this instance's in-process tier only (what an announcement from another
    /// instance asks for).
    pub async fn forget_local(&self, keys: &[CacheKey]) {
        for key in keys {
            self.memory.invalidate(key).await;
        }
        self.front.invalidate();
    }

    /// Empties this instance's in-process tier.
    pub fn forget_all_local(&self) {
        self.memory.invalidate_all();
        self.front.invalidate();
    }

    /// Drops entries from this instance's in-process tier and from Redis (announcing it is the caller's
    /// part). Returns how many of `keys` were cached in either tier.
    pub async fn drop_shared(&self, keys: &[CacheKey]) -> Result<usize, PurgeIncomplete> {
        let mut dropped: HashSet<CacheKey> = HashSet::new();
        for key in keys {
            if self.memory.remove(key).await.is_some() {
                dropped.insert(*key);
            }
        }
        self.front.invalidate();
        let Some(redis) = &self.redis else { return Ok(dropped.len()) };
        let names: Vec<String> = keys.iter().map(|k| self.redis_key(k)).collect();
        match redis.delete(&names).await {
            Ok(deleted) => {
                dropped.extend(keys.iter().zip(deleted).filter(|(_, gone)| *gone).map(|(k, _)| *k));
                Ok(dropped.len())
            }
            Err(reason) => Err(PurgeIncomplete { purged: dropped.len(), reason }),
        }
    }

    /// An admin purge: drops what `target` names from both tiers on every instance sharing Redis.
    /// Returns how many cached grants were dropped (for `All`: from this instance's in-process tier).
    pub async fn purge(&self, target: &PurgeTarget) -> Result<usize, PurgeIncomplete> {
        let result = match target {
            PurgeTarget::All => self.purge_all().await,
            PurgeTarget::Token(token) => self.purge_keys(&[self.key(token)]).await,
            PurgeTarget::Subject(sub) => {
                self.purge_keys(&self.indexed(&index_key(&self.sealer, "sub", sub)).await).await
            }
            PurgeTarget::Client(id) => {
                self.purge_keys(&self.indexed(&index_key(&self.sealer, "client_id", id)).await).await
            }
        };
        let purged = match &result {
            Ok(n) => *n,
            Err(incomplete) => incomplete.purged,
        };
        self.purged.fetch_add(purged as u64, Ordering::Relaxed);
        result
    }

    async fn purge_keys(&self, keys: &[CacheKey]) -> Result<usize, PurgeIncomplete> {
        let dropped = self.drop_shared(keys).await?;
        if let Some(redis) = &self.redis {
            invalidation::publish(redis, &invalidation::Invalidation::Forget(keys.to_vec())).await;
        }
        Ok(dropped)
    }

    async fn purge_all(&self) -> Result<usize, PurgeIncomplete> {
        self.memory.run_pending_tasks().await;
        let purged = self.memory.entry_count() as usize;
        self.forget_all_local();
        self.index.invalidate_all();
        let Some(redis) = &self.redis else { return Ok(purged) };
        match redis.increment(GENERATION_KEY).await {
            Ok(generation) => {
                self.generation.store(generation, Ordering::Relaxed);
                invalidation::publish(redis, &invalidation::Invalidation::All { generation }).await;
                Ok(purged)
            }
            Err(reason) => Err(PurgeIncomplete { purged, reason }),
        }
    }

    /// The issuer withdrew the signing keys `kids`: every grant cached so far may rest on them, so all are
    /// purged, once for the whole fleet (the first instance to claim the retirement in Redis purges; the
    /// others learn of it from its announcement).
    pub async fn retire_keys(&self, kids: &[String]) {
        if let Some(redis) = &self.redis {
            let claim = format!("shroud:v1:retired:{}", hex::encode(sha2::Sha256::digest(kids.join(" ").as_bytes())));
            match redis.try_lock(&claim, "1", Duration::from_secs(24 * 3600)).await {
                Ok(false) => return,
                Ok(true) => {}
                Err(e) => log::warn!("cannot coordinate the key retirement through redis ({e}); purging here"),
            }
        }
        if let Err(e) = self.purge(&PurgeTarget::All).await {
            log::warn!("key retirement purge reached this instance only ({})", e.reason);
        }
    }

    /// Moves to `generation` (announced by another instance): everything cached before is void.
    pub fn enter_generation(&self, generation: u64) {
        if self.generation.swap(generation, Ordering::Relaxed) != generation {
            self.forget_all_local();
            self.index.invalidate_all();
        }
    }

    /// Reads the current generation from Redis (at every (re)subscription).
    pub async fn sync_generation(&self) {
        if let Some(redis) = &self.redis {
            match redis.get_number(GENERATION_KEY).await {
                Ok(generation) => self.enter_generation(generation),
                Err(e) => log::warn!("cannot read the cache generation from redis ({e})"),
            }
        }
    }

    /// Token keys listed under an index key, in process and in Redis.
    async fn indexed(&self, index: &CacheKey) -> Vec<CacheKey> {
        let now = crate::grant::now_secs();
        let mut keys: HashSet<CacheKey> = self
            .index
            .get(index)
            .map(|entry| entry.lock().map(|e| e.live(now).collect()).unwrap_or_default())
            .unwrap_or_default();
        if let Some(redis) = &self.redis {
            match redis.index_members(&index_name(index)).await {
                Ok(members) => keys.extend(
                    members.iter().filter_map(|h| hex::decode(h).ok()).filter_map(|b| CacheKey::try_from(b).ok()),
                ),
                Err(e) => log::warn!("redis index read failed ({e}); purging what this instance knows"),
            }
        }
        keys.into_iter().collect()
    }

    /// Lists a fresh active grant, cached for `ttl`, under its subject and client.
    async fn index_grant(&self, key: &CacheKey, grant: &Grant, ttl: Duration) {
        let claims = grant.claims();
        let now = crate::grant::now_secs();
        // Whole seconds, rounded up: an entry is listed at least as long as it is cached.
        let until = now + ttl.as_millis().div_ceil(1000) as u64;
        // A token without a resource owner is the client's own (RFC 9068 §2.2): listed under its client id
        // as `sub` too, as phantom JWTs say (a forwarded JWT in `jwt` mode may lack `sub`).
        let subject = claims.get("sub").filter(|s| s.is_string()).or_else(|| claims.get("client_id"));
        for (claim, value) in [("sub", subject), ("client_id", claims.get("client_id"))] {
            let Some(value) = value.and_then(serde_json::Value::as_str) else { continue };
            let index = index_key(&self.sealer, claim, value);
            let entry = self.index.get_with(index, KeySet::default);
            if let Ok(mut entry) = entry.lock() {
                entry.insert(*key, until, now);
            }
            if let Some(redis) = &self.redis {
                if let Err(e) = redis.add_to_index(&index_name(&index), &hex::encode(key), until, self.max_ttl).await {
                    log::debug!("redis index update failed ({e})");
                }
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
        // Read before the in-process tier is: see the front module.
        let epoch = self.front.epoch();
        if let Some(outcome) = self.front.get(&key, epoch, still_valid) {
            self.observer.lookup(Tier::Memory, true);
            return Ok((outcome, Tier::Memory));
        }
        if let Some(entry) = self.memory.get(&key).await {
            if still_valid(&entry.outcome) {
                self.front.put(key, &entry.outcome, entry.until, epoch);
                self.observer.lookup(Tier::Memory, true);
                return Ok((entry.outcome, Tier::Memory));
            }
            self.memory.invalidate(&key).await;
        }
        self.observer.lookup(Tier::Memory, false);
        // Boxed: the miss path's state (Redis, the exchange) is ~10 KB, which would otherwise be part of every
        // request's future, and be copied with it, hits included.
        let entry = Box::pin(self.memory.try_get_with(key, self.load(token, key, exchange)))
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
        Ok(redis.get(&self.redis_key(key)).await?.and_then(|sealed| self.unseal(token, key, &sealed)))
    }

    /// The coalesced load: Redis first; then the exchange, under a short fill lock so that other instances
    /// wait for this one's result instead of introspecting the same token; the result is stored in Redis.
    async fn load<F, Fut>(&self, token: &str, key: CacheKey, exchange: F) -> Result<Entry, Rejection>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Exchanged, Rejection>>,
    {
        let Some(redis) = &self.redis else {
            return self.exchange_and_index(&key, exchange).await;
        };
        match self.shared_entry(redis, token, &key).await {
            Ok(Some(entry)) => {
                self.observer.lookup(Tier::Redis, true);
                return Ok(entry);
            }
            Ok(None) => self.observer.lookup(Tier::Redis, false),
            Err(e) => {
                log::log!(
                    redis::RedisTier::log_level(&e),
                    "redis lookup failed ({e}); continuing without the shared tier"
                );
                return self.exchange_and_index(&key, exchange).await;
            }
        }
        let fence = match self.fill_or_wait(redis, token, &key).await {
            Fill::Found(entry) => return Ok(entry),
            Fill::Holding(fence) => Some(fence),
            Fill::OnOurOwn => None,
        };
        let result = self.exchange_and_index(&key, exchange).await;
        if let Ok(entry) = &result {
            self.store(redis, token, &key, entry).await;
        }
        if let Some(fence) = fence {
            if let Err(e) = redis.unlock(&self.lock_key(&key), &fence).await {
                log::debug!("fill lock release failed ({e}); it expires by itself");
            }
        }
        result
    }

    /// Takes the fill lock for `key`, or waits (at most the introspection timeout) for the instance that
    /// holds it to store its result.
    async fn fill_or_wait(&self, redis: &redis::RedisTier, token: &str, key: &CacheKey) -> Fill {
        let lock = self.lock_key(key);
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

    /// Runs the exchange; an active grant is listed in the subject and client index.
    async fn exchange_and_index<F, Fut>(&self, key: &CacheKey, exchange: F) -> Result<Entry, Rejection>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Exchanged, Rejection>>,
    {
        let entry = self.entry_for(exchange().await?);
        if let (Outcome::Active(grant), false) = (&entry.outcome, entry.ttl.is_zero()) {
            self.index_grant(key, grant, entry.ttl).await;
        }
        Ok(entry)
    }

    /// A fresh exchange result as a cache entry.
    fn entry_for(&self, exchanged: Exchanged) -> Entry {
        let ttl = self.ttl_for(&exchanged);
        Entry::new(exchanged.outcome, ttl, Tier::Miss)
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
        if let Err(e) = redis.set(&self.redis_key(key), &sealed, entry.ttl).await {
            log::log!(redis::RedisTier::log_level(&e), "redis store failed ({e}); the entry stays in-process only");
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
        still_valid(&outcome).then(|| Entry::new(outcome, Duration::from_millis(remaining), Tier::Redis))
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

/// The Redis key holding the current generation.
const GENERATION_KEY: &str = "shroud:v1:generation";

impl GrantCache {
    /// The Redis key of a grant (in the current generation).
    fn redis_key(&self, key: &CacheKey) -> String {
        format!("shroud:v1:grant:{}:{}", self.generation.load(Ordering::Relaxed), hex::encode(key))
    }

    /// The Redis key of the fill lock for a grant.
    fn lock_key(&self, key: &CacheKey) -> String {
        format!("shroud:v1:lock:{}:{}", self.generation.load(Ordering::Relaxed), hex::encode(key))
    }
}

/// The index key of a subject or client: an HMAC, so Redis never holds the identifier itself.
fn index_key(sealer: &Sealer, claim: &str, value: &str) -> CacheKey {
    sealer.key(&format!("{claim}\u{0}{value}"))
}

/// The Redis sorted set of an index key (members: token keys; scores: when their grants expire).
fn index_name(index: &CacheKey) -> String {
    format!("shroud:v1:zindex:{}", hex::encode(index))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A distinct key per `i` (shared with the front tier's tests).
    pub(super) fn key(i: u64) -> CacheKey {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&i.to_le_bytes());
        key
    }

    #[test]
    fn index_entries_stay_bounded_by_live_grants() {
        // 100,000 grants of one client, 100 a second, each cached for 10 s: about 1,100 live at any time.
        let mut entry = IndexEntry::default();
        for i in 0..100_000u64 {
            let now = 1_000 + i / 100;
            entry.insert(key(i), now + 10, now);
            assert!(entry.len() <= 1_100, "{} keys after {i}", entry.len());
        }
        let now = 1_000 + 99_999 / 100;
        assert!(entry.live(now).count() <= 1_100);
        assert!(entry.live(now).any(|k| k == key(99_999)), "the newest grant is listed");
        assert_eq!(entry.live(now + 11).count(), 0, "all expired");
    }
}
