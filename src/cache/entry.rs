//! What a tier holds for a token: the outcome, how long it lives and where it came from; its TTL, and its
//! sealed form in Redis.

use super::seal::CacheKey;
use super::{still_valid, Exchanged, GrantCache, Outcome, Tier};
use crate::grant::Grant;
use moka::Expiry;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A cached outcome.
#[derive(Clone)]
pub(super) struct Entry {
    pub(super) outcome: Outcome,
    pub(super) ttl: Duration,
    /// When the in-process tier drops it (created + `ttl`): the front tier keeps copies no longer.
    pub(super) until: Instant,
    pub(super) tier: Tier,
}

impl Entry {
    fn new(outcome: Outcome, ttl: Duration, tier: Tier) -> Entry {
        Entry { outcome, ttl, until: Instant::now() + ttl, tier }
    }
}

/// Each entry lives its own TTL in the in-process tier.
pub(super) struct EntryExpiry;

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

impl GrantCache {
    /// A fresh exchange result as a cache entry.
    pub(super) fn entry_for(&self, exchanged: Exchanged) -> Entry {
        let ttl = self.ttl_for(&exchanged);
        Entry::new(exchanged.outcome, ttl, Tier::Miss)
    }

    /// An entry sealed for Redis with `token` (`None`: nothing worth storing, its TTL is zero).
    pub(super) fn seal(&self, token: &str, key: &CacheKey, entry: &Entry) -> Option<Vec<u8>> {
        if entry.ttl.is_zero() {
            return None;
        }
        let stored = Stored {
            jwt: match &entry.outcome {
                Outcome::Active(grant) => Some(grant.jwt().to_string()),
                Outcome::Inactive => None,
            },
            until_ms: now_ms() + entry.ttl.as_millis() as u64,
        };
        let plaintext = serde_json::to_vec(&stored).unwrap_or_default();
        Some(self.sealer.seal(token, key, &plaintext))
    }

    /// The entry sealed in Redis, if it opens with `token` and is still valid.
    pub(super) fn unseal(&self, token: &str, key: &CacheKey, sealed: &[u8]) -> Option<Entry> {
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
