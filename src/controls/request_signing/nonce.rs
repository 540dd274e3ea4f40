//! The replay cache: nonces remembered in Envoy shared data, bounded and expiring.
//!
//! Shared data never expires and has no delete, so the set is a ring of time slots: a nonce goes
//! into the slot of its signature's `created` time (`bucket = created / bucket_secs`,
//! `slot = bucket % slots`), each slot split into shards by the nonce's hash. Every value
//! records its bucket number; a slot holding an older bucket is dead and is overwritten when
//! reused. There are more slots than buckets a live signature can fall in (`created` within
//! `[now - window - skew, now + skew]`), so a slot is reused only once every nonce in it is
//! outside the window: a live nonce is never evicted. A full shard refuses new nonces (the
//! request is denied, fail closed) instead of forgetting old ones. Nonces are written with
//! compare-and-swap, so concurrent worker threads never lose each other's nonces. (The one
//! exception Envoy's API forces: a key's very first write, which only creates it empty, cannot
//! be conditional; two workers creating the same key in the same instant may drop one nonce,
//! once per key and Envoy process.)

use sha2::{Digest, Sha256};

use crate::store::{SharedStore, StoreError};

/// Bytes of SHA-256 kept per nonce (collisions between honest nonces: ~2^-64 per pair).
const ENTRY: usize = 16;
/// Entries per shard beyond which a bucket is split into more shards. Every insert reads and
/// rewrites its whole shard (shared data has no append), so shards stay small: 128 entries is
/// 2 KiB copied per signed request instead of 16 KiB at 1024.
const SHARD_TARGET: usize = 128;
const MAX_SHARDS: u64 = 64;
const CAS_RETRIES: usize = 9;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// First use: remembered.
    Fresh,
    Replayed,
    /// The slot is full: refused, nothing evicted.
    Full,
    /// The store refused the write or kept losing the race.
    Unavailable,
}

#[derive(Debug, Clone)]
pub struct NonceCache {
    bucket_secs: u64,
    slots: u64,
    shards: u64,
    per_shard: usize,
    prefix: String,
}

impl NonceCache {
    /// A cache for signatures accepted `window_secs` back and `skew_secs` either way, holding
    /// about `capacity` nonces spread over the slots.
    pub fn new(window_secs: u64, skew_secs: u64, capacity: usize) -> Self {
        let span = window_secs + 2 * skew_secs;
        // About 30 slots per span: fine-grained expiry, few keys.
        let bucket_secs = span.div_ceil(30).max(1);
        // Buckets a live `created` can fall in, plus one so that a reused slot is always dead.
        let live = span / bucket_secs + 2;
        let slots = live + 1;
        let per_bucket = capacity.div_ceil(usize::try_from(live).unwrap_or(usize::MAX));
        let shards = u64::try_from(per_bucket.div_ceil(SHARD_TARGET))
            .unwrap_or(MAX_SHARDS)
            .clamp(1, MAX_SHARDS);
        let mean = per_bucket
            .div_ceil(usize::try_from(shards).unwrap_or(1))
            .max(1);
        // Nonces hash unevenly over the shards: head room of three standard deviations, so a
        // shard fills only once the bucket is close to its share of `capacity`.
        let per_shard = if shards == 1 {
            mean
        } else {
            mean + 3 * mean.isqrt() + 1
        };
        NonceCache {
            bucket_secs,
            slots,
            shards,
            per_shard,
            // Different geometries must never share keys.
            prefix: format!("portcullis.request_signing.nonce.{bucket_secs}.{slots}.{shards}"),
        }
    }

    /// Nonces one slot shard holds.
    pub fn per_shard(&self) -> usize {
        self.per_shard
    }

    /// Remember the nonce of a verified signature (`keyid`, `nonce`, `created`).
    pub fn check_and_remember(
        &self,
        store: &dyn SharedStore,
        keyid: &str,
        nonce: &[u8],
        created: u64,
    ) -> Outcome {
        let mut h = Sha256::new();
        h.update((keyid.len() as u64).to_be_bytes());
        h.update(keyid.as_bytes());
        h.update(nonce);
        let digest = h.finalize();
        let Some(entry) = digest.get(..ENTRY) else {
            return Outcome::Unavailable;
        };
        let shard = u64::from(digest.get(ENTRY).copied().unwrap_or(0)) % self.shards;
        let bucket = created / self.bucket_secs;
        let key = format!("{}.{}.{shard}", self.prefix, bucket % self.slots);
        for _ in 0..CAS_RETRIES {
            let Some((current, cas)) = store.get(&key) else {
                // Envoy shared data has no create-if-absent: a write to an absent key is never
                // compare-and-swapped. So only an empty value is written that way (once per key
                // and Envoy process); every nonce goes in with compare-and-swap below.
                if store.set(&key, &bucket.to_be_bytes(), None).is_err() {
                    return Outcome::Unavailable;
                }
                continue;
            };
            // A value of an older bucket is dead (see the module docs): start afresh.
            let entries: &[u8] = match current.split_first_chunk::<8>() {
                Some((b, rest)) if u64::from_be_bytes(*b) == bucket => rest,
                _ => &[],
            };
            if entries.chunks_exact(ENTRY).any(|e| e == entry) {
                return Outcome::Replayed;
            }
            if entries.len() / ENTRY >= self.per_shard {
                return Outcome::Full;
            }
            let mut next = Vec::with_capacity(8 + entries.len() + ENTRY);
            next.extend_from_slice(&bucket.to_be_bytes());
            next.extend_from_slice(entries);
            next.extend_from_slice(entry);
            match store.set(&key, &next, Some(cas)) {
                Ok(()) => return Outcome::Fresh,
                Err(StoreError::CasMismatch) => continue,
                Err(StoreError::Unavailable) => return Outcome::Unavailable,
            }
        }
        Outcome::Unavailable
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[test]
    fn a_nonce_is_accepted_once() {
        let c = NonceCache::new(300, 30, 1000);
        let s = MemoryStore::default();
        assert_eq!(c.check_and_remember(&s, "k", b"n1", 1000), Outcome::Fresh);
        assert_eq!(
            c.check_and_remember(&s, "k", b"n1", 1000),
            Outcome::Replayed
        );
        // Same nonce, another key: another client.
        assert_eq!(c.check_and_remember(&s, "k2", b"n1", 1000), Outcome::Fresh);
        assert_eq!(c.check_and_remember(&s, "k", b"n2", 1000), Outcome::Fresh);
    }

    #[test]
    fn a_bucket_takes_its_share_of_the_capacity_in_small_shards() {
        // 100k nonces over 32 live buckets: ~3125 per bucket, in 25 shards of ~125.
        let c = NonceCache::new(300, 30, 100_000);
        assert_eq!(c.shards, 25);
        assert!(c.per_shard() < 170, "{}", c.per_shard());
        let s = MemoryStore::default();
        for i in 0..3125 {
            let nonce = format!("nonce-{i}");
            assert_eq!(
                c.check_and_remember(&s, "k", nonce.as_bytes(), 1000),
                Outcome::Fresh,
                "nonce {i}"
            );
        }
        assert_eq!(
            c.check_and_remember(&s, "k", b"nonce-7", 1000),
            Outcome::Replayed
        );
    }

    #[test]
    fn full_slot_refuses_and_never_evicts() {
        let c = NonceCache::new(300, 30, 1);
        assert_eq!(c.per_shard(), 1);
        let s = MemoryStore::default();
        assert_eq!(c.check_and_remember(&s, "k", b"a", 1000), Outcome::Fresh);
        assert_eq!(c.check_and_remember(&s, "k", b"b", 1000), Outcome::Full);
        // `a` is still remembered.
        assert_eq!(c.check_and_remember(&s, "k", b"a", 1000), Outcome::Replayed);
    }

    #[test]
    fn a_slot_is_reused_only_after_its_nonces_left_the_window() {
        let (window, skew) = (300, 30);
        let c = NonceCache::new(window, skew, 1);
        let s = MemoryStore::default();
        let t0 = 1_000_000u64;
        assert_eq!(c.check_and_remember(&s, "k", b"a", t0), Outcome::Fresh);
        // Every `created` a live signature can have while `a` is live maps elsewhere or to the
        // same bucket: `a` stays remembered.
        for created in t0..=t0 + window + 2 * skew {
            if created / c.bucket_secs == t0 / c.bucket_secs {
                continue;
            }
            let key_slot = (created / c.bucket_secs) % c.slots;
            assert_ne!(
                key_slot,
                (t0 / c.bucket_secs) % c.slots,
                "created {created}"
            );
        }
        // One ring later the slot is dead and reused.
        let later = t0 + c.slots * c.bucket_secs;
        assert_eq!(c.check_and_remember(&s, "k", b"b", later), Outcome::Fresh);
    }

    /// A store where another worker inserts just before our first compare-and-swap.
    struct Racing {
        inner: MemoryStore,
        raced: std::cell::Cell<bool>,
        cache: NonceCache,
    }

    impl SharedStore for Racing {
        fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
            // Race the first compare-and-swap (after the key was created).
            if cas.is_some() && !self.raced.replace(true) {
                let other = self
                    .cache
                    .check_and_remember(&self.inner, "k", b"other", 1000);
                assert_eq!(other, Outcome::Fresh);
            }
            self.inner.set(key, value, cas)
        }
    }

    #[test]
    fn a_lost_compare_and_swap_is_retried_and_keeps_both_nonces() {
        let cache = NonceCache::new(300, 30, 1000);
        let s = Racing {
            inner: MemoryStore::default(),
            raced: std::cell::Cell::new(false),
            cache: cache.clone(),
        };
        assert_eq!(
            cache.check_and_remember(&s, "k", b"mine", 1000),
            Outcome::Fresh
        );
        assert!(s.raced.get());
        assert_eq!(
            cache.check_and_remember(&s.inner, "k", b"other", 1000),
            Outcome::Replayed
        );
        assert_eq!(
            cache.check_and_remember(&s.inner, "k", b"mine", 1000),
            Outcome::Replayed
        );
    }

    #[test]
    fn capacity_is_spread_over_shards() {
        let c = NonceCache::new(300, 30, 1_000_000);
        assert!(c.shards > 1 && c.shards <= MAX_SHARDS);
        assert!(c.per_shard * c.shards as usize * (c.slots as usize - 1) >= 1_000_000);
    }
}
