//! Generations: every Redis key of a grant carries the current generation number, so that a purge of
//! everything voids the whole shared tier at once, on every instance, by starting the next one.

use super::seal::CacheKey;
use super::GrantCache;
use std::sync::atomic::Ordering;

/// The Redis key holding the current generation.
pub(super) const GENERATION_KEY: &str = "shroud:v1:generation";

impl GrantCache {
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

    /// The Redis key of a grant (in the current generation).
    pub(super) fn redis_key(&self, key: &CacheKey) -> String {
        format!("shroud:v1:grant:{}:{}", self.generation.load(Ordering::Relaxed), hex::encode(key))
    }
}
