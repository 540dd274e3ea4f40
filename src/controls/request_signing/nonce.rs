//! The replay cache: nonces remembered in Envoy shared data, bounded and expiring.
//!
//! A nonce is single-use per key id over the whole window, whatever else differs (another
//! `created`, label or set of components): the cache is keyed by (key id, nonce) alone. It is
//! a hash table in shared data: the nonce's hash picks one of `shards` keys, and each shard
//! holds entries of (16 bytes of the hash, expiry time). An entry expires
//! `window + 2·skew` after its signature's `created` or its first use, whichever is later, so
//! no signature carrying the nonce can be accepted again while it is remembered. Shared data
//! never expires and has no delete: expired entries are dropped when their shard is next
//! written. A shard full of live entries refuses new nonces (the request is denied, fail
//! closed) instead of forgetting live ones. Nonces are written with compare-and-swap, so
//! concurrent worker threads never lose each other's nonces. (The one exception Envoy's API
//! forces: a key's very first write, which only creates it empty, cannot be conditional; two
//! workers creating the same key in the same instant may drop one nonce, once per key and
//! Envoy process.)

use sha2::{Digest, Sha256};

use crate::store::{SharedStore, StoreError};

/// Bytes of SHA-256 kept per nonce (collisions between honest nonces: ~2^-64 per pair).
const HASH: usize = 16;
/// A stored entry: the hash, then the expiry (unix seconds, big-endian).
const ENTRY: usize = HASH + 8;
/// The layout version, the first byte of every value (another layout is read as empty).
const VERSION: u8 = 2;
/// Entries per shard the capacity is spread over. Every insert reads and rewrites its whole
/// shard (shared data has no append), so shards stay small: ~3 KiB copied per signed request.
const SHARD_TARGET: usize = 128;
/// Up to 16 M nonces (`nonce_capacity` is at most 10 M).
const MAX_SHARDS: u64 = 1 << 17;
const CAS_RETRIES: usize = 9;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// First use: remembered.
    Fresh,
    Replayed,
    /// The nonce's shard is full of live nonces: refused, nothing evicted.
    Full,
    /// The store refused the write or kept losing the race.
    Unavailable,
}

#[derive(Debug, Clone)]
pub struct NonceCache {
    /// How long a nonce is remembered after the later of its `created` and its first use.
    ttl_secs: u64,
    shards: u64,
    per_shard: usize,
    prefix: String,
}

impl NonceCache {
    /// A cache for signatures accepted `window_secs` back and `skew_secs` either way, holding
    /// about `capacity` live nonces.
    pub fn new(window_secs: u64, skew_secs: u64, capacity: usize) -> Self {
        let shards = u64::try_from(capacity.div_ceil(SHARD_TARGET))
            .unwrap_or(MAX_SHARDS)
            .clamp(1, MAX_SHARDS);
        let mean = capacity
            .div_ceil(usize::try_from(shards).unwrap_or(1))
            .max(1);
        // Nonces hash unevenly over the shards: head room of three standard deviations, so a
        // shard fills only once the cache is close to `capacity`.
        let per_shard = if shards == 1 {
            mean
        } else {
            mean + 3 * mean.isqrt() + 1
        };
        NonceCache {
            ttl_secs: window_secs.saturating_add(skew_secs.saturating_mul(2)),
            shards,
            per_shard,
            // Different geometries must never share keys.
            prefix: format!("portcullis.request_signing.nonce.v{VERSION}.{shards}"),
        }
    }

    /// Seconds a nonce is remembered after the later of its `created` and its first use.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    /// Nonces one shard holds.
    pub fn per_shard(&self) -> usize {
        self.per_shard
    }

    /// The shard key and entry hash of a nonce.
    fn locate(&self, keyid: &str, nonce: &[u8]) -> Option<(String, [u8; HASH])> {
        let mut h = Sha256::new();
        h.update((keyid.len() as u64).to_be_bytes());
        h.update(keyid.as_bytes());
        h.update(nonce);
        let digest = h.finalize();
        let hash: [u8; HASH] = digest.get(..HASH)?.try_into().ok()?;
        let pick = u64::from_be_bytes(digest.get(HASH..HASH + 8)?.try_into().ok()?);
        Some((format!("{}.{}", self.prefix, pick % self.shards), hash))
    }

    /// Whether a live entry for this nonce is remembered here at `now` (read only: the fleet
    /// store decides first, the nonce is remembered here after).
    pub fn seen(&self, store: &dyn SharedStore, keyid: &str, nonce: &[u8], now: u64) -> bool {
        let Some((key, hash)) = self.locate(keyid, nonce) else {
            return false;
        };
        let Some((current, _)) = store.get(&key) else {
            return false;
        };
        let entries: &[u8] = match current.split_first() {
            Some((&VERSION, rest)) => rest,
            _ => &[],
        };
        entries.chunks_exact(ENTRY).any(|e| {
            let (h, t) = e.split_at(HASH);
            h == hash && u64::from_be_bytes(t.try_into().unwrap_or([0; 8])) > now
        })
    }

    /// Remember the nonce of a verified signature by `keyid`, created at `created`, seen at
    /// `now` (unix seconds).
    pub fn check_and_remember(
        &self,
        store: &dyn SharedStore,
        keyid: &str,
        nonce: &[u8],
        created: u64,
        now: u64,
    ) -> Outcome {
        let Some((key, hash)) = self.locate(keyid, nonce) else {
            return Outcome::Unavailable;
        };
        let hash = hash.as_slice();
        let expires = created.max(now).saturating_add(self.ttl_secs);
        for _ in 0..CAS_RETRIES {
            let Some((current, cas)) = store.get(&key) else {
                // Envoy shared data has no create-if-absent: a write to an absent key is never
                // compare-and-swapped. So only an empty value is written that way (once per key
                // and Envoy process); every nonce goes in with compare-and-swap below.
                if store.set(&key, &[VERSION], None).is_err() {
                    return Outcome::Unavailable;
                }
                continue;
            };
            let entries: &[u8] = match current.split_first() {
                Some((&VERSION, rest)) => rest,
                _ => &[],
            };
            let mut next = Vec::with_capacity(1 + entries.len() + ENTRY);
            next.push(VERSION);
            let mut live = 0;
            for e in entries.chunks_exact(ENTRY) {
                let (h, t) = e.split_at(HASH);
                let until = u64::from_be_bytes(t.try_into().unwrap_or([0; 8]));
                if until <= now {
                    continue; // expired: dropped on this write
                }
                if h == hash {
                    return Outcome::Replayed;
                }
                live += 1;
                next.extend_from_slice(e);
            }
            if live >= self.per_shard {
                return Outcome::Full;
            }
            next.extend_from_slice(hash);
            next.extend_from_slice(&expires.to_be_bytes());
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

    const T: u64 = 1_000_000;

    #[test]
    fn a_nonce_is_accepted_once() {
        let c = NonceCache::new(300, 30, 1000);
        let s = MemoryStore::default();
        assert_eq!(c.check_and_remember(&s, "k", b"n1", T, T), Outcome::Fresh);
        assert_eq!(
            c.check_and_remember(&s, "k", b"n1", T, T),
            Outcome::Replayed
        );
        // Same nonce, another key: another client.
        assert_eq!(c.check_and_remember(&s, "k2", b"n1", T, T), Outcome::Fresh);
        assert_eq!(c.check_and_remember(&s, "k", b"n2", T, T), Outcome::Fresh);
    }

    #[test]
    fn a_nonce_is_single_use_over_the_window_whatever_its_created() {
        let (window, skew) = (300, 30);
        let c = NonceCache::new(window, skew, 1000);
        let s = MemoryStore::default();
        assert_eq!(c.check_and_remember(&s, "k", b"n", T, T), Outcome::Fresh);
        // Re-signed with every other `created` the window accepts, at every later moment a
        // signature created then could still be accepted: always a replay.
        for created in [T - window - skew, T - 1, T + 1, T + skew] {
            for now in [T, T + window, T + window + skew] {
                assert_eq!(
                    c.check_and_remember(&s, "k", b"n", created, now),
                    Outcome::Replayed,
                    "created {created}, now {now}"
                );
            }
        }
        // Once no signature with that nonce can be live any more, it is forgotten.
        let later = T + window + 2 * skew;
        assert_eq!(
            c.check_and_remember(&s, "k", b"n", later, later),
            Outcome::Fresh
        );
    }

    #[test]
    fn a_future_created_keeps_the_nonce_until_its_own_window_ends() {
        let (window, skew) = (300, 30);
        let c = NonceCache::new(window, skew, 1000);
        let s = MemoryStore::default();
        assert_eq!(
            c.check_and_remember(&s, "k", b"n", T + skew, T),
            Outcome::Fresh
        );
        // The original is accepted until T + skew + window + skew: still remembered then.
        let last = T + skew + window + skew - 1;
        assert_eq!(
            c.check_and_remember(&s, "k", b"n", T + skew, last),
            Outcome::Replayed
        );
    }

    #[test]
    fn the_cache_takes_its_capacity_in_small_shards() {
        let c = NonceCache::new(300, 30, 100_000);
        assert_eq!(c.shards, 782);
        assert!(c.per_shard() < 170, "{}", c.per_shard());
        let s = MemoryStore::default();
        for i in 0..20_000 {
            let nonce = format!("nonce-{i}");
            assert_eq!(
                c.check_and_remember(&s, "k", nonce.as_bytes(), T, T),
                Outcome::Fresh,
                "nonce {i}"
            );
        }
        assert_eq!(
            c.check_and_remember(&s, "k", b"nonce-7", T + 60, T + 60),
            Outcome::Replayed
        );
    }

    #[test]
    fn full_shard_refuses_and_never_evicts_a_live_nonce() {
        let c = NonceCache::new(300, 30, 1);
        assert_eq!(c.per_shard(), 1);
        let s = MemoryStore::default();
        assert_eq!(c.check_and_remember(&s, "k", b"a", T, T), Outcome::Fresh);
        assert_eq!(c.check_and_remember(&s, "k", b"b", T, T), Outcome::Full);
        // `a` is still remembered.
        assert_eq!(c.check_and_remember(&s, "k", b"a", T, T), Outcome::Replayed);
        // Once `a` expired, its place is taken.
        let later = T + 300 + 60;
        assert_eq!(
            c.check_and_remember(&s, "k", b"b", later, later),
            Outcome::Fresh
        );
    }

    #[test]
    fn a_value_of_another_layout_is_read_as_empty() {
        let c = NonceCache::new(300, 30, 1);
        let s = MemoryStore::default();
        s.set(&format!("{}.0", c.prefix), &[1, 2, 3], None).unwrap();
        assert_eq!(c.check_and_remember(&s, "k", b"a", T, T), Outcome::Fresh);
        assert_eq!(c.check_and_remember(&s, "k", b"a", T, T), Outcome::Replayed);
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
                    .check_and_remember(&self.inner, "k", b"other", T, T);
                assert_eq!(other, Outcome::Fresh);
            }
            self.inner.set(key, value, cas)
        }
    }

    #[test]
    fn a_lost_compare_and_swap_is_retried_and_keeps_both_nonces() {
        // One shard, so both nonces share it.
        let cache = NonceCache::new(300, 30, 100);
        let s = Racing {
            inner: MemoryStore::default(),
            raced: std::cell::Cell::new(false),
            cache: cache.clone(),
        };
        assert_eq!(
            cache.check_and_remember(&s, "k", b"mine", T, T),
            Outcome::Fresh
        );
        assert!(s.raced.get());
        assert_eq!(
            cache.check_and_remember(&s.inner, "k", b"other", T, T),
            Outcome::Replayed
        );
        assert_eq!(
            cache.check_and_remember(&s.inner, "k", b"mine", T, T),
            Outcome::Replayed
        );
    }

    #[test]
    fn seen_reads_without_remembering() {
        let c = NonceCache::new(300, 30, 1000);
        let s = MemoryStore::default();
        assert!(!c.seen(&s, "k", b"n", T));
        assert!(!c.seen(&s, "k", b"n", T), "reading remembered nothing");
        assert_eq!(c.check_and_remember(&s, "k", b"n", T, T), Outcome::Fresh);
        assert!(c.seen(&s, "k", b"n", T + 359));
        assert!(!c.seen(&s, "k2", b"n", T));
        assert!(!c.seen(&s, "k", b"n", T + 360), "expired");
    }

    #[test]
    fn capacity_is_spread_over_shards() {
        let c = NonceCache::new(300, 30, 10_000_000);
        assert!(c.shards > 1 && c.shards <= MAX_SHARDS);
        assert!(c.per_shard * c.shards as usize >= 10_000_000);
    }
}
