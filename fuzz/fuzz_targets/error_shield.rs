//! The error-shield scanner over arbitrary response bodies and statuses: never panics, and a
//! replaced body is always valid problem+json.
#![no_main]

use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use portcullis::control::{configure, Control, Env};
use portcullis::controls::error_shield::ErrorShield;
use portcullis::store::MemoryStore;
use portcullis::{RequestView, ResponseView, Verdict};

thread_local! {
    static SHIELD: ErrorShield = configure(b"{}").expect("default policy");
}

fuzz_target!(|data: &[u8]| {
    let Some((&s, body)) = data.split_first() else { return };
    let store = MemoryStore::default();
    let env = Env { now: SystemTime::UNIX_EPOCH, store: &store };
    let req = RequestView::new("GET", "/", &[]).expect("constant request");
    let resp = ResponseView { status: 200 + u16::from(s) * 2, headers: vec![("content-type".into(), b"text/plain".to_vec())] };
    let verdict = SHIELD.with(|s| s.on_response_body(&req, &resp, Some(body), &env));
    if let Verdict::ReplaceBody { body, .. } = verdict {
        serde_json::from_slice::<serde_json::Value>(&body).expect("problem+json");
    }
});
