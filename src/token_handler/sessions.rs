//! Token-handler sessions, remembered server-side so that a back-channel logout (or a logout) can end
//! them everywhere: which token keys (HMACs, never tokens) belong to which `sid` and `sub`, and a
//! denylist of ended tokens.
//!
//! With Redis the index and the denylist are shared, and an ended session is announced
//! ([`crate::cache::invalidation`]) so that every instance drops the entries from its in-process tier at
//! once. A missed message cannot keep a token alive past the cache's TTL: every cache miss checks the
//! shared denylist.

use crate::cache::invalidation::{self, Invalidation};
use crate::cache::redis::RedisTier;
use crate::cache::seal::{CacheKey, Sealer};
use crate::cache::GrantCache;
use std::sync::Arc;
use std::time::Duration;

/// How long ended tokens stay denied and sessions stay indexed.
pub const SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

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
                    Ok(members) => keys.extend(
                        members.iter().filter_map(|h| hex::decode(h).ok()).filter_map(|b| CacheKey::try_from(b).ok()),
                    ),
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
        self.note_denied(keys);
        if let Err(e) = cache.drop_shared(keys).await {
            log::warn!("redis purge failed ({}); entries expire with their TTL", e.reason);
        }
        if let Some(redis) = &self.redis {
            for key in keys {
                if let Err(e) = redis.set_flag(&deny_key(key), SESSION_TTL).await {
                    log::warn!("redis denylist update failed ({e})");
                }
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
