//! The front tier: a small per-worker (thread-local) map of recently used cache entries, in front of the
//! shared in-process tier. A hit touches nothing shared between workers: no lock, no atomic counter of
//! moka's, no SipHash (the keys are HMACs already, so their first bytes are the hash).
//!
//! Coherence with the shared tier rests on one epoch number. Every removal from the shared tier (purge,
//! logout, an invalidation from another instance, a new generation) is followed by
//! [`FrontTier::invalidate`], which moves the epoch on; a worker whose map is from an older epoch drops it
//! before its next lookup. A worker reads the epoch *before* it looks in the shared tier and tags what it
//! copies from there with that epoch, so an entry removed meanwhile is never kept. Entries also keep the
//! shared tier's deadline, and an active grant is checked against its `exp` on every hit.

use super::seal::CacheKey;
use super::Outcome;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Entries one worker keeps; a full map is emptied and refilled from the shared tier.
pub const CAPACITY: usize = 32_768;

/// The first eight bytes of a key: HMAC output, uniformly distributed and unknown to clients without the
/// key secret, so it needs no further hashing.
#[derive(Default)]
struct KeyBits(u64);

impl Hasher for KeyBits {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut first = [0u8; 8];
        let n = bytes.len().min(8);
        first[..n].copy_from_slice(&bytes[..n]);
        self.0 ^= u64::from_le_bytes(first);
    }

    /// The array's length prefix carries nothing.
    fn write_usize(&mut self, _: usize) {}
}

/// One worker's map, for one [`FrontTier`] at a time.
struct Local {
    owner: u64,
    epoch: u64,
    entries: HashMap<CacheKey, (Outcome, Instant), BuildHasherDefault<KeyBits>>,
}

thread_local! {
    static LOCAL: RefCell<Local> = RefCell::new(Local { owner: 0, epoch: 0, entries: HashMap::default() });
}

/// Distinguishes front tiers of several caches in one process (tests run several gateways).
static NEXT_OWNER: AtomicU64 = AtomicU64::new(1);

/// The front tier of one [`GrantCache`](super::GrantCache).
pub struct FrontTier {
    owner: u64,
    epoch: AtomicU64,
}

impl Default for FrontTier {
    fn default() -> Self {
        FrontTier { owner: NEXT_OWNER.fetch_add(1, Ordering::Relaxed), epoch: AtomicU64::new(1) }
    }
}

impl FrontTier {
    /// The current epoch: read it before looking in the shared tier, and pass it to [`FrontTier::put`].
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// This worker's entry for `key`, if it is still valid (`epoch` from [`FrontTier::epoch`]).
    pub fn get(&self, key: &CacheKey, epoch: u64, still_valid: impl Fn(&Outcome) -> bool) -> Option<Outcome> {
        LOCAL.with(|local| {
            let mut local = local.borrow_mut();
            if local.owner != self.owner || local.epoch != epoch {
                return None;
            }
            let (outcome, until) = local.entries.get(key)?;
            if *until > Instant::now() && still_valid(outcome) {
                return Some(outcome.clone());
            }
            local.entries.remove(key);
            None
        })
    }

    /// Keeps `outcome` for `key` until `until` in this worker, if nothing was removed from the shared tier
    /// since `epoch` was read.
    pub fn put(&self, key: CacheKey, outcome: &Outcome, until: Instant, epoch: u64) {
        LOCAL.with(|local| {
            let mut local = local.borrow_mut();
            if local.owner != self.owner || local.epoch < epoch {
                local.entries.clear();
                local.owner = self.owner;
                local.epoch = epoch;
            }
            if local.epoch != epoch || self.epoch() != epoch {
                return;
            }
            if local.entries.len() >= CAPACITY {
                local.entries.clear();
            }
            local.entries.insert(key, (outcome.clone(), until));
        })
    }

    /// Voids every worker's entries (call after each removal from the shared tier).
    pub fn invalidate(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests::key;
    use std::time::Duration;

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    fn valid(_: &Outcome) -> bool {
        true
    }

    #[test]
    fn an_entry_is_found_until_the_epoch_moves_on() {
        let front = FrontTier::default();
        let epoch = front.epoch();
        front.put(key(1), &Outcome::Inactive, later(), epoch);
        assert!(matches!(front.get(&key(1), front.epoch(), valid), Some(Outcome::Inactive)));
        assert!(front.get(&key(2), front.epoch(), valid).is_none());
        front.invalidate();
        assert!(front.get(&key(1), front.epoch(), valid).is_none(), "a removal voids every entry");
    }

    #[test]
    fn what_was_read_before_a_removal_is_not_kept() {
        let front = FrontTier::default();
        let epoch = front.epoch();
        front.invalidate(); // a purge between the worker's shared-tier lookup and its copy
        front.put(key(1), &Outcome::Inactive, later(), epoch);
        let now = front.epoch();
        assert!(front.get(&key(1), now, valid).is_none());
        front.put(key(1), &Outcome::Inactive, later(), now);
        assert!(front.get(&key(1), now, valid).is_some(), "a copy made after the removal is kept");
    }

    #[test]
    fn expired_or_no_longer_valid_entries_are_not_answered() {
        let front = FrontTier::default();
        let epoch = front.epoch();
        front.put(key(1), &Outcome::Inactive, Instant::now(), epoch);
        assert!(front.get(&key(1), epoch, valid).is_none(), "past the shared tier's deadline");
        front.put(key(2), &Outcome::Inactive, later(), epoch);
        assert!(front.get(&key(2), epoch, |_| false).is_none(), "past the grant's exp");
    }

    #[test]
    fn tiers_of_different_caches_do_not_see_each_others_entries() {
        let (a, b) = (FrontTier::default(), FrontTier::default());
        a.put(key(1), &Outcome::Inactive, later(), a.epoch());
        assert!(b.get(&key(1), b.epoch(), valid).is_none());
    }

    #[test]
    fn a_worker_keeps_at_most_capacity_entries() {
        let front = FrontTier::default();
        let epoch = front.epoch();
        for i in 0..(CAPACITY as u64 + 10) {
            front.put(key(i), &Outcome::Inactive, later(), epoch);
        }
        let held = LOCAL.with(|l| l.borrow().entries.len());
        assert!(held <= CAPACITY, "{held}");
        assert!(front.get(&key(CAPACITY as u64 + 9), epoch, valid).is_some(), "the newest is there");
    }
}
