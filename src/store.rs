//! Data shared by every worker thread's VM (Envoy shared data), behind a trait so controls stay
//! pure and tests use the in-memory store.

use std::cell::RefCell;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// Someone else wrote the key since we read it (compare-and-swap lost): read and retry.
    CasMismatch,
    /// The host refused the write (for instance, out of memory).
    Unavailable,
}

/// A key-value store with compare-and-swap, shaped like proxy-wasm shared data.
pub trait SharedStore {
    /// Value and its version (the CAS token).
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)>;
    /// Write if the version still is `cas` (`None`: unconditionally).
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError>;
}

/// In-process store for tests and the CLI.
#[derive(Default)]
pub struct MemoryStore {
    map: RefCell<HashMap<String, (Vec<u8>, u32)>>,
}

impl SharedStore for MemoryStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.map.borrow().get(key).cloned()
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        cas_insert(&mut self.map.borrow_mut(), key, value, cas)
    }
}

/// [`SharedStore::set`] on a map of values and their versions: every in-memory store's write.
pub fn cas_insert(
    map: &mut HashMap<String, (Vec<u8>, u32)>,
    key: &str,
    value: &[u8],
    cas: Option<u32>,
) -> Result<(), StoreError> {
    let current = map.get(key).map(|(_, v)| *v);
    if let (Some(want), Some(have)) = (cas, current) {
        if want != have {
            return Err(StoreError::CasMismatch);
        }
    }
    let next = current.unwrap_or(0).wrapping_add(1);
    map.insert(key.to_string(), (value.to_vec(), next));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_and_swap_rejects_a_stale_version() {
        let s = MemoryStore::default();
        s.set("k", b"1", None).unwrap();
        let (_, v) = s.get("k").unwrap();
        s.set("k", b"2", Some(v)).unwrap();
        assert_eq!(s.set("k", b"3", Some(v)), Err(StoreError::CasMismatch));
        assert_eq!(s.get("k").unwrap().0, b"2");
    }
}
