//! Request-target normalisation: never panics, and is idempotent (a normalised path normalises
//! to itself), so a rule never sees a path the upstream would resolve differently.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::path::{normalize, split_and_normalize};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok((p, _)) = split_and_normalize(s) {
        if p != "*" {
            assert_eq!(normalize(&p).as_deref(), Ok(p.as_str()), "not idempotent: {s:?}");
            assert!(!p.contains("//") && !p.contains("/./") && !p.contains("/../"), "{s:?} -> {p:?}");
        }
    }
});
