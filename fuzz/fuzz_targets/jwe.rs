//! payload-crypto's request-facing parsers: the JWE compact parser, the decrypt-request and
//! field-level paths over arbitrary bodies, and its policy parser. Never panics; a decrypted
//! body is only ever produced by a valid tag.
#![no_main]

use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use portcullis::control::{configure, Control, Env};
use portcullis::controls::payload_crypto::{fields::JsonPath, jwe, PayloadCrypto};
use portcullis::store::MemoryStore;
use portcullis::{RequestView, Verdict};

const POLICY: &[u8] = br#"{
  "keys": [
    {"kid": "kw", "alg": "A256KW", "k": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"},
    {"kid": "dir", "alg": "dir", "k": "GZy6sIZ6wl9NJOKB-jnmVQ"},
    {"kid": "ec", "alg": "ECDH-ES+A256KW", "crv": "P-256",
     "x": "Ze2loSV3wrroKUN_4zhwGhCqo3Xhu1td4QjeQ5wIVR0", "y": "HlLtdXARY_f55A3fnzQbPcm6hgr34Mp8p-nuzQCE0Zw",
     "d": "r_kHyZ-a06rmxM3yESK84r1otSg-aQcVStkRhA-iCM8"}
  ],
  "routes": [
    {"match": {"prefix": "/jwe"}, "decrypt_request": true},
    {"match": {"prefix": "/fields"}, "request_fields": {"decrypt": ["$.a", "$.b[*].c"]}}
  ]
}"#;

thread_local! {
    static PC: PayloadCrypto = configure(POLICY).expect("fuzz policy");
}

fuzz_target!(|data: &[u8]| {
    let _ = configure::<PayloadCrypto>(data);
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = jwe::parse(text);
    let _ = JsonPath::parse(text);
    let store = MemoryStore::default();
    let env = Env { now: SystemTime::UNIX_EPOCH, store: &store };
    for (path, ct) in [("/jwe", "application/jose"), ("/fields", "application/json")] {
        let mut req = RequestView::new("POST", path, &[("content-type", ct)]).expect("constant request");
        req.has_body = true;
        let v = PC.with(|c| match c.on_request(&req, &env) {
            Verdict::NeedBody { .. } => c.on_request_body(&req, data, &env),
            v => v,
        });
        assert!(matches!(v, Verdict::Deny(_) | Verdict::ReplaceBody { .. } | Verdict::Mutate(_)));
    }
});
