//! api-key: the policy parser, RFC 3339 timestamps, durations and the query handling never
//! panic; a timestamp formats back to one that parses to the same instant.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::control::configure;
use portcullis::controls::api_key::ApiKey;
use portcullis::params::{path_without_param, percent_decode, query_values};
use portcullis::time::{format_rfc3339, parse_duration, parse_rfc3339};

fuzz_target!(|data: &[u8]| {
    let _ = configure::<ApiKey>(data);
    let _ = percent_decode(data);
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(t) = parse_rfc3339(s) {
        assert_eq!(parse_rfc3339(&format_rfc3339(t)), Ok(t));
    }
    let _ = parse_duration(s);
    let _ = query_values(s, "api_key");
    let stripped = path_without_param(s, "api_key");
    assert!(stripped.len() <= s.len());
});
