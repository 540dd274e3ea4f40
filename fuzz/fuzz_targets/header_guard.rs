//! header-guard's request checks over arbitrary raw header maps, under an all-features policy
//! in enforce and report mode, and its policy parser: never panics, denials are well-formed,
//! report mode never edits the request. The byte-level checks are fuzzed directly too, and the
//! built-in deny scanners must agree with the regexes that specify them.
#![no_main]

use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use portcullis::control::{configure, Control, Env};
use portcullis::controls::header_guard::{self as hg, HeaderGuard};
use portcullis::store::MemoryStore;
use portcullis::{RequestView, Verdict};

const STRICT: &str = r#"{"default": {
  "limits": {"max_headers": 16, "max_name_bytes": 32, "max_value_bytes": 256, "max_total_bytes": 1024},
  "allow_obs_text": false, "hosts": ["api.example.com", "*.apps.example.com"],
  "unique_headers": ["@default", "x-tenant"], "reject_headers": ["x-original-url"],
  "internal_headers": ["@default", "x-acme-*"], "encoded_crlf_headers": ["*"],
  "deny_patterns": [{"name": "sqli", "headers": ["*"], "pattern": "(?i)union\\s+select"}]}}"#;

thread_local! {
    static BUILTIN_RES: Vec<regex_lite::Regex> =
        hg::BUILTINS.iter().map(|(_, _, p)| regex_lite::Regex::new(p).expect("builtin regex")).collect();
    static GUARDS: Vec<(bool, HeaderGuard)> = vec![
        (false, configure(STRICT.as_bytes()).expect("strict policy")),
        (true, configure(STRICT.replace(r#""limits""#, r#""mode": "report", "limits""#).as_bytes()).expect("report policy")),
        (false, configure(b"{}").expect("default policy")),
    ];
}

fuzz_target!(|data: &[u8]| {
    if data.first() == Some(&b'{') {
        let _ = configure::<HeaderGuard>(data);
        return;
    }
    let _ = hg::authority_host(&String::from_utf8_lossy(data));
    let _ = hg::HostPattern::parse(&String::from_utf8_lossy(data));
    let _ = hg::split_list(data);
    let _ = hg::authorization_joined(data);
    let _ = hg::has_encoded_line_break(data);
    let _ = hg::check_value(data, false);
    let _ = hg::content_length_ok(std::iter::once(data));
    let _ = hg::transfer_encoding_ok(std::iter::once(data));
    // The built-in deny scanners implement exactly their documented regexes.
    BUILTIN_RES.with(|res| {
        let text = String::from_utf8_lossy(data);
        for ((b, name, _), re) in hg::BUILTINS.iter().zip(res) {
            assert_eq!(b.matches(data), re.is_match(&text), "{name}");
        }
    });
    // Lines of `name: value` (any bytes); the first two give :path and :authority.
    let mut headers = vec![(":method".to_string(), b"GET".to_vec())];
    for (i, line) in data.split(|b| *b == b'\n').enumerate().take(40) {
        match i {
            0 => headers.push((":path".into(), line.to_vec())),
            1 => headers.push((":authority".into(), line.to_vec())),
            _ => {
                let (k, v) = match line.iter().position(|b| *b == b':') {
                    Some(p) => (&line[..p], &line[p + 1..]),
                    None => (line, &b""[..]),
                };
                headers.push((String::from_utf8_lossy(k).to_ascii_lowercase(), v.to_vec()));
            }
        }
    }
    let Ok(req) = RequestView::from_headers(headers) else { return };
    let store = MemoryStore::default();
    let env = Env { now: SystemTime::UNIX_EPOCH, store: &store };
    GUARDS.with(|guards| {
        for (report, g) in guards {
            match g.on_request(&req, &env) {
                Verdict::Deny(r) => {
                    assert!(!report, "report mode denied");
                    assert!(matches!(r.status, 400 | 421 | 431), "{r:?}");
                    assert!(r.code.starts_with("header_guard."), "{r:?}");
                    serde_json::from_str::<serde_json::Value>(&r.problem_body(None)).expect("problem+json");
                }
                Verdict::Pass { ops, .. } => assert!(*report && ops.is_empty(), "report mode edited"),
                Verdict::Mutate(_) => assert!(!report),
                v => panic!("unexpected verdict {v:?}"),
            }
        }
    });
});
