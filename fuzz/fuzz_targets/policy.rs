//! Every module's policy parser: never panics, whatever the JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::control::configure;
use portcullis::controls::{build_by_name, guard::Guard, NAMES};

fuzz_target!(|data: &[u8]| {
    let _ = configure::<Guard>(data);
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        for name in NAMES {
            let _ = build_by_name(name, &value);
        }
    }
});
