//! The lookup: this worker's front tier, the in-process tier, then one coalesced load per key (Redis, then
//! the exchange under the fill lock), whose result is stored in both tiers.

use super::entry::Entry;
use super::fill_lock::Fill;
use super::redis::RedisTier;
use super::seal::CacheKey;
use super::{still_valid, Exchanged, GrantCache, Outcome, Tier};
use std::future::Future;
use std::sync::Arc;

/// The exchange behind a lookup failed: nothing was cached, and every caller that waited for the same
/// exchange gets the same error. `E` is the exchange's own error, which the cache passes on untouched (the
/// caller maps it to what it answers).
#[derive(Debug)]
pub struct ExchangeFailed<E>(pub Arc<E>);

impl<E: Clone> ExchangeFailed<E> {
    /// The exchange's error (cloned when other callers share it).
    pub fn into_inner(self) -> E {
        Arc::unwrap_or_clone(self.0)
    }
}

impl GrantCache {
    /// The outcome for `token`: from a tier, or from `exchange` (run once for all concurrent callers).
    /// `key` must be [`GrantCache::key`] of `token`.
    pub async fn get_or_exchange<F, Fut, E>(
        &self,
        token: &str,
        key: CacheKey,
        exchange: F,
    ) -> Result<(Outcome, Tier), ExchangeFailed<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Exchanged, E>>,
        E: Send + Sync + 'static,
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
        let entry =
            Box::pin(self.memory.try_get_with(key, self.load(token, key, exchange))).await.map_err(ExchangeFailed)?;
        Ok((entry.outcome, entry.tier))
    }

    /// The entry Redis holds for `key`, if any (and if it opens with `token`).
    pub(super) async fn shared_entry(
        &self,
        redis: &RedisTier,
        token: &str,
        key: &CacheKey,
    ) -> Result<Option<Entry>, String> {
        Ok(redis.get(&self.redis_key(key)).await?.and_then(|sealed| self.unseal(token, key, &sealed)))
    }

    /// The coalesced load: Redis first; then the exchange, under a short fill lock so that other instances
    /// wait for this one's result instead of introspecting the same token; the result is stored in Redis.
    async fn load<F, Fut, E>(&self, token: &str, key: CacheKey, exchange: F) -> Result<Entry, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Exchanged, E>>,
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
                log::log!(RedisTier::log_level(&e), "redis lookup failed ({e}); continuing without the shared tier");
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

    /// Runs the exchange; an active grant is listed in the subject and client index.
    async fn exchange_and_index<F, Fut, E>(&self, key: &CacheKey, exchange: F) -> Result<Entry, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Exchanged, E>>,
    {
        let entry = self.entry_for(exchange().await?);
        if let (Outcome::Active(grant), false) = (&entry.outcome, entry.ttl.is_zero()) {
            self.index_grant(key, grant, entry.ttl).await;
        }
        Ok(entry)
    }

    /// Writes an entry to Redis, sealed, with the same TTL as in process.
    async fn store(&self, redis: &RedisTier, token: &str, key: &CacheKey, entry: &Entry) {
        let Some(sealed) = self.seal(token, key, entry) else { return };
        if let Err(e) = redis.set(&self.redis_key(key), &sealed, entry.ttl).await {
            log::log!(RedisTier::log_level(&e), "redis store failed ({e}); the entry stays in-process only");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::seal::Sealer;
    use crate::cache::CacheObserver;
    use crate::config::CacheConfig;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    struct Unobserved;

    impl CacheObserver for Unobserved {
        fn lookup(&self, _tier: Tier, _hit: bool) {}
    }

    /// An exchange's own error: a type the cache knows nothing of.
    #[derive(Debug, Clone, PartialEq)]
    struct Down(&'static str);

    #[tokio::test]
    async fn a_failed_exchange_reaches_every_coalesced_caller_as_its_own_error_and_is_not_cached() {
        let cache = GrantCache::new(
            &CacheConfig::default(),
            Sealer::new([7; 32]),
            None,
            Duration::from_secs(1),
            Arc::new(Unobserved),
        );
        let key = cache.key("t");
        let calls = &AtomicUsize::new(0);
        let failing = move || async move {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err::<Exchanged, _>(Down("the AS is down"))
        };
        let (first, second) =
            tokio::join!(cache.get_or_exchange("t", key, failing), cache.get_or_exchange("t", key, failing));
        assert_eq!(first.unwrap_err().into_inner(), Down("the AS is down"));
        assert_eq!(second.unwrap_err().into_inner(), Down("the AS is down"));
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one exchange for both callers");
        let inactive = || async { Ok::<_, Down>(Exchanged { outcome: Outcome::Inactive, max_age: None }) };
        let again = cache.get_or_exchange("t", key, inactive).await;
        assert!(matches!(again, Ok((Outcome::Inactive, Tier::Miss))), "the error was not cached");
    }
}
