//! Token-handler sessions, remembered server-side so that a logout or a back-channel logout can end
//! them everywhere: which token keys (HMACs, never tokens) belong to which `sid` and `sub`, and a
//! denylist of ended tokens.
//!
//! The index is bounded: each `sid` or `sub` lists a token key once, with the time its token expires;
//! expired listings are dropped, and beyond [`MAX_KEYS_PER_INDEX`] the listings that expire first go. A
//! set of cookies replayed at `/refresh` (which answers from a shared grant) therefore costs the same
//! whatever the number of replays. An index entry itself expires with its last listing.
//!
//! With Redis the index and the denylist are shared (the index as a sorted set scored by expiry, updated
//! and trimmed in one atomic call), and an ended session is announced ([`crate::cache::invalidation`])
//! so that every instance drops the entries from its in-process tier at once. A missed message cannot
//! keep a token alive past the cache's TTL: every cache miss checks the shared denylist.

use crate::cache::invalidation::{self, Invalidation};
use crate::cache::redis::RedisTier;
use crate::cache::seal::{CacheKey, Sealer};
use crate::cache::GrantCache;
use crate::grant::now_secs;
use std::sync::Arc;
use std::time::Duration;

/// How long ended tokens stay denied, and the longest a token is listed in the index (refresh tokens,
/// whose lifetime the authorization server does not tell).
pub const SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The most token keys one `sid` or `sub` lists; beyond it, the listings that expire first are dropped
/// (a logout then no longer denies those tokens at once: they end with their cached grant).
pub const MAX_KEYS_PER_INDEX: usize = 64;

const MAX_ENTRIES: u64 = 1_000_000;

/// One token of a session, to be listed: its value and how long it may be used.
#[derive(Clone, Copy)]
pub struct Listed<'a> {
    /// The token (only its key is kept).
    pub token: &'a str,
    /// How long it lives; capped to [`SESSION_TTL`].
    pub lifetime: Duration,
}

/// A token key and when its token expires (unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Listing {
    key: CacheKey,
    until: u64,
}

/// The listings of one `sid` or `sub`, ordered by expiry (the first expires first).
type Listings = Arc<[Listing]>;

/// Merges `new` into `known`: live listings only, each key once (the first listing of a key stands), the
/// [`MAX_KEYS_PER_INDEX`] that expire last. `None` when nothing changed.
fn merge(known: &[Listing], new: &[Listing], now: u64) -> Option<Vec<Listing>> {
    let fresh: Vec<Listing> =
        new.iter().filter(|n| n.until >= now && !known.iter().any(|k| k.key == n.key)).copied().collect();
    let expired = known.iter().any(|k| k.until < now);
    if fresh.is_empty() && !expired {
        return None;
    }
    let mut merged: Vec<Listing> = known.iter().filter(|k| k.until >= now).copied().collect();
    for listing in fresh {
        if !merged.iter().any(|m| m.key == listing.key) {
            merged.push(listing);
        }
    }
    merged.sort_by_key(|l| l.until);
    let excess = merged.len().saturating_sub(MAX_KEYS_PER_INDEX);
    merged.drain(..excess);
    Some(merged)
}

/// Expires an index entry with its last listing.
struct UntilLastListing;

impl UntilLastListing {
    fn remaining(listings: &Listings) -> Duration {
        let last = listings.last().map_or(0, |l| l.until);
        Duration::from_secs(last.saturating_sub(now_secs()) + 1)
    }
}

impl moka::Expiry<String, Listings> for UntilLastListing {
    fn expire_after_create(&self, _: &String, value: &Listings, _: std::time::Instant) -> Option<Duration> {
        Some(UntilLastListing::remaining(value))
    }

    fn expire_after_update(
        &self,
        _: &String,
        value: &Listings,
        _: std::time::Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(UntilLastListing::remaining(value))
    }
}

/// Adds listings to a sorted set scored by expiry, drops the expired ones and those beyond the cap (the
/// lowest scores), and makes the set expire with its last listing: one atomic call. KEYS[1]: the index;
/// ARGV: now, the cap, then score/member pairs. Returns the number of listings.
const ADD_LISTINGS: &str = r"
local now = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
for i = 3, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], 'NX', ARGV[i], ARGV[i + 1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(cap + 1))
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then
  redis.call('EXPIREAT', KEYS[1], math.floor(tonumber(last[2])) + 1)
end
return redis.call('ZCARD', KEYS[1])
";

/// The session index and the denylist.
pub struct Sessions {
    denied: moka::sync::Cache<CacheKey, ()>,
    index: moka::sync::Cache<String, Listings>,
    redis: Option<Arc<RedisTier>>,
    add_listings: redis::Script,
    sealer: Sealer,
}

fn deny_key(key: &CacheKey) -> String {
    format!("shroud:v1:deny:{}", hex::encode(key))
}

impl Sessions {
    /// Sessions over `sealer`'s keys, shared through `redis` when configured.
    pub fn new(sealer: Sealer, redis: Option<Arc<RedisTier>>) -> Sessions {
        Sessions {
            denied: moka::sync::Cache::builder().max_capacity(MAX_ENTRIES).time_to_live(SESSION_TTL).build(),
            index: moka::sync::Cache::builder()
                .max_capacity(MAX_ENTRIES)
                .weigher(|_, listings: &Listings| u32::try_from(listings.len()).unwrap_or(u32::MAX).max(1))
                .expire_after(UntilLastListing)
                .build(),
            redis,
            add_listings: redis::Script::new(ADD_LISTINGS),
            sealer,
        }
    }

    fn index_names(&self, sid: Option<&str>, sub: Option<&str>) -> Vec<String> {
        let mut names = Vec::new();
        if let Some(sid) = sid {
            names.push(format!("shroud:v1:sessions:sid:{}", hex::encode(self.sealer.key(sid))));
        }
        if let Some(sub) = sub {
            names.push(format!("shroud:v1:sessions:sub:{}", hex::encode(self.sealer.key(sub))));
        }
        names
    }

    /// Remembers that `tokens` belong to the session `sid` of user `sub`. Tokens listed already change
    /// nothing (no I/O either): replaying a refresh costs the same however often it is done.
    pub async fn record(&self, sid: Option<&str>, sub: Option<&str>, tokens: &[Listed<'_>]) {
        let now = now_secs();
        let new: Vec<Listing> = tokens
            .iter()
            .map(|t| Listing { key: self.sealer.key(t.token), until: now + t.lifetime.min(SESSION_TTL).as_secs() })
            .collect();
        let mut updates = Vec::new();
        for name in self.index_names(sid, sub) {
            let mut changed = false;
            self.index.entry(name.clone()).and_compute_with(|entry| {
                let known = entry.map(|e| e.into_value());
                match merge(known.as_deref().unwrap_or_default(), &new, now) {
                    Some(merged) => {
                        changed = true;
                        moka::ops::compute::Op::Put(merged.into())
                    }
                    None => moka::ops::compute::Op::Nop,
                }
            });
            if changed {
                updates.push(name);
            }
        }
        let Some(redis) = &self.redis else { return };
        let mut args: Vec<String> = vec![now.to_string(), MAX_KEYS_PER_INDEX.to_string()];
        for listing in &new {
            args.push(listing.until.to_string());
            args.push(hex::encode(listing.key));
        }
        let calls = updates.iter().map(|name| redis.invoke::<_, u64>(&self.add_listings, name, &args));
        for result in futures_util::future::join_all(calls).await {
            if let Err(e) = result {
                log::log!(RedisTier::log_level(&e), "redis session index update failed ({e})");
            }
        }
    }

    /// The live token keys listed for `sid` (or all of `sub`'s), in process and in Redis.
    pub async fn listed(&self, sid: Option<&str>, sub: Option<&str>) -> Vec<CacheKey> {
        let now = now_secs();
        let mut keys: Vec<CacheKey> = Vec::new();
        for name in self.index_names(sid, sub) {
            if let Some(listings) = self.index.get(&name) {
                keys.extend(listings.iter().filter(|l| l.until >= now).map(|l| l.key));
            }
            if let Some(redis) = &self.redis {
                match redis.index_members(&name).await {
                    Ok(members) => keys.extend(
                        members.iter().filter_map(|h| hex::decode(h).ok()).filter_map(|b| CacheKey::try_from(b).ok()),
                    ),
                    Err(e) => log::warn!("redis session index read failed ({e})"),
                }
            }
        }
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// Ends the sessions of `sid` (or all of `sub`'s): denies their tokens and purges their cached grants
    /// on every instance. Returns how many token keys were ended.
    pub async fn end(&self, sid: Option<&str>, sub: Option<&str>, cache: &GrantCache) -> usize {
        let keys = self.listed(sid, sub).await;
        self.deny(&keys, cache).await;
        keys.len()
    }

    /// Denies token keys everywhere and purges their cached grants.
    pub async fn deny(&self, keys: &[CacheKey], cache: &GrantCache) {
        if keys.is_empty() {
            return;
        }
        self.note_denied(keys);
        if let Err(e) = cache.drop_shared(keys).await {
            log::warn!("redis purge failed ({}); entries expire with their TTL", e.reason);
        }
        if let Some(redis) = &self.redis {
            let flags = keys.iter().map(deny_key).collect::<Vec<_>>();
            let writes = flags.iter().map(|flag| redis.set_flag(flag, SESSION_TTL));
            if let Some(Err(e)) = futures_util::future::join_all(writes).await.into_iter().find(Result::is_err) {
                log::warn!("redis denylist update failed ({e})");
            }
            invalidation::publish(redis, &Invalidation::Deny(keys.to_vec())).await;
        }
    }

    /// Remembers in this instance that the token keys are ended (announced by another instance).
    pub fn note_denied(&self, keys: &[CacheKey]) {
        for key in keys {
            self.denied.insert(*key, ());
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(n: u8, until: u64) -> Listing {
        Listing { key: [n; 32], until }
    }

    #[test]
    fn merging_deduplicates_drops_the_expired_and_caps() {
        let known = [listing(1, 100), listing(2, 200)];
        assert_eq!(merge(&known, &[listing(1, 300)], 50), None, "a key listed already changes nothing");
        let merged = merge(&known, &[listing(3, 150)], 120).unwrap();
        assert_eq!(merged, vec![listing(3, 150), listing(2, 200)], "the expired listing is dropped, order kept");
        let many: Vec<Listing> = (0..=MAX_KEYS_PER_INDEX as u8).map(|n| listing(n + 10, 1000 + u64::from(n))).collect();
        let capped = merge(&[], &many, 0).unwrap();
        assert_eq!(capped.len(), MAX_KEYS_PER_INDEX);
        assert_eq!(capped[0], many[1], "the listing expiring first is dropped");
    }
}
