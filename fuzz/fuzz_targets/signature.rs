//! Structured fields (RFC 8941), Signature-Input / Signature (RFC 9421) and the signature base
//! builder: never panic; a parsed dictionary or list re-serialised parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::signing::{self, sfv, Message};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(d) = sfv::parse_dictionary(s) {
        let out = sfv::serialize_dictionary(&d).expect("a parsed dictionary serialises");
        assert_eq!(sfv::parse_dictionary(&out).expect("canonical form parses"), d);
    }
    if let Ok(l) = sfv::parse_list(s) {
        let out = sfv::serialize_list(&l).expect("a parsed list serialises");
        assert_eq!(sfv::parse_list(&out).expect("canonical form parses"), l);
    }
    // Line 1: Signature-Input, line 2: Signature, then `name: value` header lines.
    let mut lines = s.split('\n');
    let input = lines.next().unwrap_or_default();
    let sig = lines.next().unwrap_or_default();
    let mut headers = vec![
        ("signature-input".to_string(), input.as_bytes().to_vec()),
        ("signature".to_string(), sig.as_bytes().to_vec()),
    ];
    for l in lines.take(32) {
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.as_bytes().to_vec()));
        }
    }
    let msg = Message {
        method: "POST",
        scheme: "https",
        authority: "example.com",
        target: "/foo?param=Value&Pet=dog",
        headers: &headers,
    };
    if let Ok(p) = signing::parse(&msg, None) {
        if let Ok(base) = p.base(&msg) {
            assert!(base.ends_with(&signing::base::signature_params(&p.components, &p.params).unwrap()));
        }
        let _ = signing::mac_matches(b"k", "", &p.signature);
    }
    let _ = signing::digest::verify(s, data);
});
