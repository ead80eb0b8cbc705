//! The fill lock: when no tier holds a token, one instance exchanges it under a short Redis lock and the
//! others wait for its result (at most the introspection timeout) instead of introspecting it too.

use super::entry::Entry;
use super::redis::RedisTier;
use super::seal::CacheKey;
use super::{GrantCache, Tier};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How often an instance waiting for another instance's exchange looks for its result.
const FILL_POLL: Duration = Duration::from_millis(10);

/// What an instance does about a token no tier holds.
pub(super) enum Fill {
    /// Another instance stored the result meanwhile.
    Found(Entry),
    /// This instance holds the fill lock (with this fence) and exchanges the token.
    Holding(String),
    /// No coordination possible (Redis trouble, or the holder vanished): exchange without the lock.
    OnOurOwn,
}

impl GrantCache {
    /// Takes the fill lock for `key`, or waits (at most the introspection timeout) for the instance that
    /// holds it to store its result.
    pub(super) async fn fill_or_wait(&self, redis: &RedisTier, token: &str, key: &CacheKey) -> Fill {
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

    /// The Redis key of the fill lock for a grant (in the current generation).
    pub(super) fn lock_key(&self, key: &CacheKey) -> String {
        format!("shroud:v1:lock:{}:{}", self.generation.load(Ordering::Relaxed), hex::encode(key))
    }
}
