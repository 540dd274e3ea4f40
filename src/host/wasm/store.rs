//! [`SharedStore`] over Envoy's shared data (shared by every VM of the same `vm_id`).

use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;

use crate::store::{SharedStore, StoreError};

pub struct ProxyStore;

impl SharedStore for ProxyStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        match hostcalls::get_shared_data(key) {
            Ok((Some(v), Some(cas))) => Some((v, cas)),
            _ => None,
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        match hostcalls::set_shared_data(key, Some(value), cas) {
            Ok(()) => Ok(()),
            Err(Status::CasMismatch) => Err(StoreError::CasMismatch),
            Err(_) => Err(StoreError::Unavailable),
        }
    }
}
