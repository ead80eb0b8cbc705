//! The subject and client index: which cached grants belong to a `sub` or a `client_id`, in process and
//! in Redis (sorted sets scored by expiry), so that purges by subject or client do not scan.

use super::seal::{CacheKey, Sealer};
use super::GrantCache;
use crate::grant::Grant;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The token keys of the grants of one subject or client (an index entry).
pub(super) type KeySet = Arc<Mutex<IndexEntry>>;

/// One index entry: the keys of a subject's or client's grants, grouped by the second in which they expire
/// (unix seconds). Every insertion drops the groups that have expired, so an entry holds exactly the live
/// grants (plus the keys of re-exchanged tokens until their older listing expires) and its memory follows
/// the live count up and down, even for a client whose tokens keep coming.
#[derive(Default)]
pub(super) struct IndexEntry {
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

impl GrantCache {
    /// Token keys listed under an index key, in process and in Redis.
    pub(super) async fn indexed(&self, index: &CacheKey) -> Vec<CacheKey> {
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
    pub(super) async fn index_grant(&self, key: &CacheKey, grant: &Grant, ttl: Duration) {
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
}

/// The index key of a subject or client: an HMAC, so Redis never holds the identifier itself.
pub(super) fn index_key(sealer: &Sealer, claim: &str, value: &str) -> CacheKey {
    sealer.key(&format!("{claim}\u{0}{value}"))
}

/// The Redis sorted set of an index key (members: token keys; scores: when their grants expire).
fn index_name(index: &CacheKey) -> String {
    format!("shroud:v1:zindex:{}", hex::encode(index))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests::key;

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
