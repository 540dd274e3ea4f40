//! Native micro-benchmarks of each control's hot path (ns/op, median of 7 batches).

use std::hint::black_box;
use std::time::{Instant, SystemTime};

use portcullis::control::{configure, Control, Env};
use portcullis::controls::content_type::ContentType;
use portcullis::controls::header_guard::HeaderGuard;
use portcullis::store::MemoryStore;
use portcullis::RequestView;

fn ns_per_op(mut f: impl FnMut()) -> f64 {
    // Size a batch to ~20 ms, then take the median of 7 batches.
    let mut n = 1u64;
    loop {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        if t.elapsed().as_millis() >= 20 || n > 1 << 24 {
            break;
        }
        n *= 2;
    }
    let mut runs: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed().as_nanos() as f64 / n as f64
        })
        .collect();
    runs.sort_by(|a, b| a.total_cmp(b));
    runs[3]
}

pub fn run() -> Vec<(String, f64)> {
    let store = MemoryStore::default();
    let env = Env {
        now: SystemTime::now(),
        store: &store,
    };
    let mut out = Vec::new();

    let ct: ContentType =
        configure(br#"{"default": {"allow": ["application/json"], "max_body_bytes": 65536}}"#)
            .unwrap();
    let body = crate::variants::order_json(10 * 1024);
    let req = RequestView::new(
        "POST",
        "/api/orders",
        &[
            ("content-type", "application/json"),
            ("content-length", "10240"),
        ],
    )
    .unwrap();
    out.push((
        "content-type: validate a 10 KiB JSON body".to_string(),
        ns_per_op(|| {
            black_box(ct.on_request(black_box(&req), &env));
            black_box(ct.on_request_body(black_box(&req), black_box(body.as_bytes()), &env));
        }),
    ));

    let hg: HeaderGuard = configure(b"{}").unwrap();
    let names: Vec<String> = (0..26).map(|i| format!("x-custom-{i}")).collect();
    let mut fields: Vec<(&str, &str)> = vec![
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
        ),
        ("accept", "application/json"),
        (
            "authorization",
            "Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln",
        ),
        ("x-request-id", "5f1c9a4e-9a1b-4f7e-8c55-0a0b0c0d0e0f"),
    ];
    fields.extend(
        names
            .iter()
            .map(|n| (n.as_str(), "some ordinary header value")),
    );
    let req = RequestView::new("GET", "/api/orders?page=2", &fields).unwrap();
    out.push((
        "header-guard: check 30 headers (default policy)".to_string(),
        ns_per_op(|| {
            black_box(hg.on_request(black_box(&req), &env));
        }),
    ));
    out
}
