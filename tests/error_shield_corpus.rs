//! The leak corpus (tests/data/leaks/<class>/{leak,benign}/): realistic bodies written from
//! each framework's documented error formats. Every `leak` body is found by its class, every
//! `benign` body by no class; natively (the detectors) and in a real Envoy (error-shield).

mod support;

use std::fs;
use std::path::PathBuf;

use portcullis::controls::error_shield::{
    unescape_for_scan, Detector, LeakClass, DEFAULT_INTERNAL_SUFFIXES,
};
use support::*;

struct Case {
    class: LeakClass,
    leak: bool,
    name: String,
    content_type: &'static str,
    body: Vec<u8>,
}

fn corpus() -> Vec<Case> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/leaks");
    let mut cases = Vec::new();
    for class in LeakClass::ALL {
        for (kind, leak) in [("leak", true), ("benign", false)] {
            let Ok(dir) = fs::read_dir(root.join(class.name()).join(kind)) else {
                continue;
            };
            for entry in dir {
                let path = entry.unwrap().path();
                let content_type = match path.extension().and_then(|e| e.to_str()) {
                    Some("json") => "application/json",
                    Some("html") => "text/html; charset=utf-8",
                    _ => "text/plain",
                };
                cases.push(Case {
                    class,
                    leak,
                    name: format!(
                        "{}/{kind}/{}",
                        class.name(),
                        path.file_name().unwrap().to_string_lossy()
                    ),
                    content_type,
                    body: fs::read(&path).unwrap(),
                });
            }
        }
    }
    cases
}

fn detectors() -> Vec<(LeakClass, Detector)> {
    let suffixes: Vec<String> = DEFAULT_INTERNAL_SUFFIXES.map(String::from).to_vec();
    LeakClass::ALL
        .into_iter()
        .filter(|c| *c != LeakClass::CompressionBomb)
        .map(|c| (c, Detector::compile(c, &suffixes).unwrap()))
        .collect()
}

#[test]
fn the_corpus_has_leaks_and_benign_bodies_for_every_pattern_class() {
    let cases = corpus();
    for (class, _) in detectors() {
        for leak in [true, false] {
            assert!(
                cases.iter().any(|c| c.class == class && c.leak == leak),
                "{class:?} has no {} bodies",
                if leak { "leak" } else { "benign" }
            );
        }
    }
}

#[test]
fn every_leak_is_found_by_its_class_and_every_benign_body_by_none() {
    let detectors = detectors();
    for case in corpus() {
        let text = unescape_for_scan(&String::from_utf8_lossy(&case.body));
        if case.leak {
            let (_, d) = detectors.iter().find(|(c, _)| *c == case.class).unwrap();
            assert!(d.is_match(&text), "{} was not found", case.name);
        } else {
            for (class, d) in &detectors {
                assert!(!d.is_match(&text), "{} matched {class:?}", case.name);
            }
        }
    }
}

/// Filler no detector has a needle in: the scan looks for matches only near needles, and this
/// puts each body far from the start and the end of a large text, with needle-free bytes
/// around it, so that the windowed path (not the whole-text one) decides.
fn buried(body: &str, at: usize, size: usize) -> String {
    let filler = "{\"sku\": \"A-1\", \"qty\": 2, \"price\": \"9.90\", \"state\": \"placed\"}, ";
    let mut out: String = filler.chars().cycle().take(at).collect();
    out.push('\n');
    out.push_str(body);
    out.push('\n');
    out.extend(filler.chars().cycle().take(size.saturating_sub(out.len())));
    out
}

#[test]
fn a_leak_is_found_wherever_it_sits_in_a_large_body_and_a_benign_body_nowhere() {
    let detectors = detectors();
    for (_, d) in &detectors {
        assert!(!d.is_match(&buried("", 0, 64 * 1024)), "the filler matched");
    }
    for case in corpus() {
        let text = unescape_for_scan(&String::from_utf8_lossy(&case.body));
        for at in [0, 7, 40 * 1024 + 3] {
            let big = buried(&text, at, 128 * 1024);
            if case.leak {
                let (_, d) = detectors.iter().find(|(c, _)| *c == case.class).unwrap();
                assert!(d.is_match(&big), "{} at {at} was not found", case.name);
            } else {
                for (class, d) in &detectors {
                    assert!(!d.is_match(&big), "{} at {at} matched {class:?}", case.name);
                }
            }
        }
    }
}

/// One route per class, `/<class>`, on which only that class is on (scrub).
fn one_class_per_route() -> String {
    let classes: Vec<&str> = LeakClass::ALL.iter().map(|c| c.name()).collect();
    let routes: Vec<serde_json::Value> = classes
        .iter()
        .map(|on| {
            let leaks: serde_json::Map<String, serde_json::Value> = classes
                .iter()
                .map(|c| {
                    (
                        c.to_string(),
                        (if c == on { "scrub" } else { "off" }).into(),
                    )
                })
                .collect();
            serde_json::json!({"match": {"prefix": format!("/{on}")}, "leaks": leaks})
        })
        .collect();
    serde_json::json!({"routes": routes}).to_string()
}

#[test]
fn the_corpus_through_error_shield_in_envoy_scrubs_each_leak_and_passes_each_benign_body() {
    let e = envoy().wasm("error-shield", one_class_per_route()).start();
    for case in corpus() {
        let path = format!("/{}", case.class.name());
        let h = [
            ("x-echo-status", "200"),
            ("x-echo-content-type", case.content_type),
        ];
        let r = e.post(&path, &h, &case.body);
        if case.leak {
            assert_eq!(r.status, 500, "{} passed: {}", case.name, r.text());
            assert_eq!(r.json()["code"], case.class.code(), "{}", case.name);
        } else {
            assert_eq!(r.status, 200, "{} was replaced: {}", case.name, r.text());
            assert_eq!(r.body, case.body, "{} was changed", case.name);
        }
    }
}

/// Not a pass/fail test: how long the default policy takes over a 256 KiB body (the default
/// `max_scan_bytes`) of every corpus body repeated. `cargo test --release --test
/// error_shield_corpus scan_time -- --ignored --nocapture`
#[test]
#[ignore]
fn scan_time_of_a_256_kib_body() {
    use portcullis::control::{configure, Control, Env};
    use portcullis::controls::error_shield::ErrorShield;
    use portcullis::store::MemoryStore;
    use portcullis::{RequestView, ResponseView};
    let shield: ErrorShield = configure(b"{}").unwrap();
    let benign: Vec<u8> = corpus()
        .into_iter()
        .filter(|c| !c.leak)
        .flat_map(|c| c.body)
        .collect();
    let body: Vec<u8> = benign.iter().copied().cycle().take(256 * 1024).collect();
    let store = MemoryStore::default();
    let env = Env {
        now: std::time::SystemTime::UNIX_EPOCH,
        store: &store,
    };
    let req = RequestView::new("GET", "/", &[]).unwrap();
    let resp = ResponseView {
        status: 200,
        headers: vec![("content-type".into(), b"text/plain".to_vec())],
    };
    // An ordinary JSON API page, and the benign corpus (prose full of near-misses) repeated.
    let order = br#"{"id": 4242, "status": "placed", "at": "2024-05-01T10:00:00Z", "lines": [{"sku": "A-1", "qty": 2, "price": "9.90"}], "self": "https://shop.example.com/orders/4242"},"#;
    let json: Vec<u8> = order.iter().copied().cycle().take(256 * 1024).collect();
    // A large page that says `error` and `key` now and then (every 8 KiB).
    let mut sparse = Vec::new();
    while sparse.len() < 256 * 1024 {
        sparse.extend(order.iter().copied().cycle().take(8 * 1024));
        sparse.extend_from_slice(br#"{"key": "error rate", "value": 0.1},"#);
    }
    let runs = 10;
    for (name, body) in [
        ("ordinary JSON", &json),
        ("JSON with sparse near-misses", &sparse),
        ("benign corpus", &body),
    ] {
        let start = std::time::Instant::now();
        for _ in 0..runs {
            std::hint::black_box(shield.on_response_body(&req, &resp, Some(body), &env));
        }
        println!("256 KiB of {name}: {:?} per scan", start.elapsed() / runs);
    }
}

#[test]
#[ignore]
fn scan_time_per_class() {
    let benign: Vec<u8> = corpus()
        .into_iter()
        .filter(|c| !c.leak)
        .flat_map(|c| c.body)
        .collect();
    let body: Vec<u8> = benign.iter().copied().cycle().take(256 * 1024).collect();
    let text = unescape_for_scan(&String::from_utf8_lossy(&body));
    for (class, d) in detectors() {
        let start = std::time::Instant::now();
        std::hint::black_box(d.is_match(&text));
        println!("{class:?}: {:?}", start.elapsed());
    }
}
