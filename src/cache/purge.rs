//! Purges: dropping grants from both tiers, on this instance only (what another instance's announcement
//! asks for) or on every instance sharing Redis (an admin purge by token, subject, client, or of all).

use super::generation::GENERATION_KEY;
use super::seal::CacheKey;
use super::subject_index::index_key;
use super::{invalidation, GrantCache};
use std::collections::HashSet;
use std::sync::atomic::Ordering;

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

impl GrantCache {
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

    /// Drops `keys` everywhere and announces it to the other instances.
    async fn purge_keys(&self, keys: &[CacheKey]) -> Result<usize, PurgeIncomplete> {
        let dropped = self.drop_shared(keys).await?;
        if let Some(redis) = &self.redis {
            invalidation::publish(redis, &invalidation::Invalidation::Forget(keys.to_vec())).await;
        }
        Ok(dropped)
    }

    /// Empties this instance and starts the next generation in Redis (which voids every shared entry), and
    /// announces it.
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
}
