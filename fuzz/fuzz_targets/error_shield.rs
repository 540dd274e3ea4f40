//! The error-shield scanner over arbitrary response bodies, header values, statuses, content
//! encodings (the inflater sees arbitrary gzip/deflate streams) and scan limits: never panics,
//! a replaced body is always valid problem+json, and a body that passes is never changed.
#![no_main]

use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use portcullis::control::{configure, Control, Env};
use portcullis::controls::error_shield::ErrorShield;
use portcullis::store::MemoryStore;
use portcullis::{RequestView, ResponseView, Verdict};

thread_local! {
    /// Every class on scrub, a small scan limit so that the prefix path is fuzzed too.
    static SHIELD: ErrorShield = configure(br#"{"default": {"max_scan_bytes": 4096, "undecodable": "report",
        "leaks": {"internal_ip": "scrub", "internal_host": "scrub", "file_path": "scrub", "version_banner": "scrub"}}}"#)
        .expect("fuzz policy");
}

const ENCODINGS: [&str; 5] = ["identity", "gzip", "deflate", "br", "gzip, deflate"];

fuzz_target!(|data: &[u8]| {
    // status, encoding, header-value length, then the header value and the body.
    let [s, enc, hlen, rest @ ..] = data else { return };
    let (value, body) = rest.split_at(usize::from(*hlen).min(rest.len()));
    let store = MemoryStore::default();
    let env = Env { now: SystemTime::UNIX_EPOCH, store: &store };
    let req = RequestView::new("GET", "/", &[]).expect("constant request");
    let resp = ResponseView {
        status: 200 + u16::from(*s) * 2,
        headers: vec![
            ("content-type".into(), b"text/plain".to_vec()),
            ("content-encoding".into(), ENCODINGS[usize::from(*enc) % ENCODINGS.len()].as_bytes().to_vec()),
            ("x-detail".into(), value.to_vec()),
        ],
    };
    let verdict = SHIELD.with(|shield| match shield.on_response(&req, &resp, &env) {
        Verdict::NeedBody { max_bytes } if body.len() > max_bytes => {
            shield.on_response_body_prefix(&req, &resp, &body[..max_bytes], &env)
        }
        Verdict::NeedBody { .. } => shield.on_response_body(&req, &resp, Some(body), &env),
        v => v,
    });
    if let Verdict::ReplaceBody { body, .. } = verdict {
        serde_json::from_slice::<serde_json::Value>(&body).expect("problem+json");
    }
});
