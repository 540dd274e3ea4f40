//! [`SharedStore`] in process memory: every worker thread of every configuration sees it, as
//! every wasm VM with one `vm_id` sees Envoy's shared data.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::store::{cas_insert, SharedStore, StoreError};

#[derive(Default)]
pub struct ProcessStore {
    map: Mutex<HashMap<String, (Vec<u8>, u32)>>,
}

pub static STORE: std::sync::LazyLock<ProcessStore> = std::sync::LazyLock::new(Default::default);

impl SharedStore for ProcessStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        // A panic while the lock was held cannot leave a half-written entry (insert is one
        // step): go on with the map.
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(key).cloned()
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        cas_insert(&mut map, key, value, cas)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_and_swap_holds_across_threads() {
        let s = std::sync::Arc::new(ProcessStore::default());
        s.set("k", b"0", None).unwrap();
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        loop {
                            let (v, cas) = s.get("k").unwrap();
                            let n: u32 = String::from_utf8(v).unwrap().parse().unwrap();
                            if s.set("k", (n + 1).to_string().as_bytes(), Some(cas))
                                .is_ok()
                            {
                                break;
                            }
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(s.get("k").unwrap().0, b"400");
    }
}
