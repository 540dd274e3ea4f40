//! Arbitrary header maps through RequestView and every control's default policy: never panics.
#![no_main]

use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use portcullis::chain::DynControl;
use portcullis::control::Env;
use portcullis::controls::{build_by_name, NAMES};
use portcullis::store::MemoryStore;
use portcullis::RequestView;

thread_local! {
    static CONTROLS: Vec<Box<dyn DynControl>> = NAMES
        .iter()
        .filter_map(|n| build_by_name(n, &serde_json::json!({})))
        .filter_map(Result::ok)
        .collect();
}

fuzz_target!(|data: &[u8]| {
    // Lines of `name: value`; the first three give method, path and authority.
    let mut headers = Vec::new();
    for (i, line) in data.split(|b| *b == b'\n').enumerate().take(64) {
        let (k, v) = match line.iter().position(|b| *b == b':') {
            Some(p) => (&line[..p], &line[p + 1..]),
            None => (line, &b""[..]),
        };
        let name = match i {
            0 => ":method".to_string(),
            1 => ":path".to_string(),
            2 => ":authority".to_string(),
            _ => String::from_utf8_lossy(k).to_ascii_lowercase(),
        };
        headers.push((name, if i < 3 { line.to_vec() } else { v.to_vec() }));
    }
    let Ok(req) = RequestView::from_headers(headers) else { return };
    let store = MemoryStore::default();
    let env = Env { now: SystemTime::UNIX_EPOCH, store: &store };
    CONTROLS.with(|controls| {
        for c in controls {
            let _ = c.on_request(&req, &env);
            let _ = c.on_request_body(&req, data, &env);
        }
    });
});
