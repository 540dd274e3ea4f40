//! Content-Type parsing (RFC 9110 §8.3) and policy media ranges: never panic; a parsed type
//! re-rendered as essence parses again to the same essence.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::controls::content_type::{MediaRange, MediaType};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(m) = MediaType::parse(s) {
        let again = MediaType::parse(&m.essence()).expect("an essence parses");
        assert_eq!(again.essence(), m.essence());
    }
    let _ = MediaRange::parse(s);
});
