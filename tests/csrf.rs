//! csrf in a real Envoy: what the client gets and what the upstream saw. The harness sends
//! `host: localhost`, so the request's own origin is `http://localhost`.

mod support;

use serde_json::json;
use support::*;

const POLICY: &str = r#"{
  "routes": [
    {"match": {"prefix": "/beta"}, "mode": "report"},
    {"match": {"prefix": "/forms"}, "token": {}}
  ],
  "default": {"allowed_origins": ["https://app.example.com"]}
}"#;

fn start() -> Envoy {
    envoy().wasm("csrf", POLICY).start()
}

#[test]
fn cross_origin_post_is_403_and_the_upstream_sees_nothing() {
    let e = start();
    let r = e.post("/orders", &[("origin", "https://evil.example")], b"{}");
    r.assert_problem(403, "csrf.origin");
    assert!(!r.text().contains("evil"), "{}", r.text());
    assert!(e.upstream_seen().is_empty());
    assert_eq!(e.counter("csrf", "denied", "csrf.origin"), 1);
}

#[test]
fn same_origin_and_allowed_origins_pass() {
    let e = start();
    for origin in ["http://localhost", "https://app.example.com"] {
        let r = e.post("/orders", &[("origin", origin)], b"{}");
        assert_eq!(r.status, 200, "{origin}: {}", r.text());
    }
    let r = e.post("/orders", &[("referer", "http://localhost/page")], b"{}");
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = e.upstream_seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0].header("origin"), Some("http://localhost"));
    assert_eq!(e.counter("csrf", "allowed", "ok"), 3);
}

#[test]
fn a_get_is_never_refused() {
    let e = start();
    let r = e.get("/orders", &[("origin", "https://evil.example")]);
    assert_eq!(r.status, 200);
}

#[test]
fn report_mode_passes_and_counts() {
    let e = start();
    let r = e.post("/beta/orders", &[("origin", "https://evil.example")], b"{}");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(e.upstream_seen().len(), 1);
    assert_eq!(e.counter("csrf", "reported", "csrf.origin"), 1);
    assert_eq!(e.counter("csrf", "denied", "csrf.origin"), 0);
    let log = e.log();
    assert!(
        log.contains(r#""event":"report","module":"csrf","code":"csrf.origin""#),
        "{log}"
    );
}

#[test]
fn fetch_metadata_cross_site_is_refused() {
    let e = start();
    let r = e.post(
        "/orders",
        &[
            ("origin", "http://localhost"),
            ("sec-fetch-site", "cross-site"),
        ],
        b"{}",
    );
    r.assert_problem(403, "csrf.origin");
    assert!(e.upstream_seen().is_empty());
}

/// The token cookie comes from WASI `random_get` inside Envoy's V8: issued on a GET without
/// one, fresh each time, then accepted on a POST that repeats it in the header.
#[test]
fn the_token_is_issued_on_a_safe_request_and_then_required() {
    let e = start();
    let r = e.get("/forms/page", &[]);
    assert_eq!(r.status, 200);
    let cookie = r.header("set-cookie").expect("set-cookie").to_string();
    let token = r.header("x-csrf-token").expect("token header").to_string();
    assert_eq!(token.len(), 64, "{token}");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        cookie,
        format!("__Host-csrf={token}; Secure; HttpOnly; SameSite=Strict; Path=/")
    );
    let again = e.get("/forms/page", &[]);
    assert_ne!(
        again.header("x-csrf-token"),
        Some(token.as_str()),
        "tokens are fresh"
    );
    // A GET that already has the cookie gets no new one.
    let has = e.get(
        "/forms/page",
        &[("cookie", &format!("__Host-csrf={token}"))],
    );
    assert_eq!(has.header("set-cookie"), None);

    let c = format!("__Host-csrf={token}");
    let o = ("origin", "http://localhost");
    let ok = e.post(
        "/forms/submit",
        &[o, ("cookie", &c), ("x-csrf-token", &token)],
        b"a=1",
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    let mut wrong = token.clone();
    wrong.replace_range(..1, if token.starts_with('0') { "1" } else { "0" });
    let bad = e.post(
        "/forms/submit",
        &[o, ("cookie", &c), ("x-csrf-token", &wrong)],
        b"a=1",
    );
    bad.assert_problem(403, "csrf.token");
    let none = e.post("/forms/submit", &[o, ("cookie", &c)], b"a=1");
    none.assert_problem(403, "csrf.token");
    let seen = e.upstream_seen();
    assert_eq!(seen.iter().filter(|s| s.method == "POST").count(), 1);
    assert_eq!(e.counter("csrf", "denied", "csrf.token"), 2);
}

/// The portcullis policy equivalent to a native Envoy csrf filter config, checked request by
/// request against the native filter itself (the bench compares the two).
pub const NATIVE_EQUIVALENT_POLICY: &str = r#"{"default": {
  "allowed_origins": ["https://app.example.com", "http://app.example.com"],
  "fetch_metadata": false
}}"#;

fn native_csrf() -> serde_json::Value {
    json!({
        "name": "envoy.filters.http.csrf",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.csrf.v3.CsrfPolicy",
            "filter_enabled": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
            "additional_origins": [{"exact": "app.example.com"}]
        }
    })
}

#[test]
fn the_equivalent_policy_decides_like_envoys_native_csrf_filter() {
    let native = envoy().native_filter(native_csrf()).start();
    let module = envoy().wasm("csrf", NATIVE_EQUIVALENT_POLICY).start();
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("POST", vec![("origin", "http://localhost")]),
        ("POST", vec![("origin", "https://localhost")]),
        ("POST", vec![("origin", "https://app.example.com")]),
        ("PUT", vec![("origin", "https://evil.example")]),
        ("DELETE", vec![("origin", "https://localhost.evil.example")]),
        ("PATCH", vec![("referer", "http://localhost/a/page")]),
        ("POST", vec![("referer", "https://evil.example/")]),
        ("POST", vec![]),
        ("POST", vec![("origin", "null")]),
        ("GET", vec![("origin", "https://evil.example")]),
        (
            "POST",
            vec![
                ("origin", "https://evil.example"),
                ("referer", "http://localhost/"),
            ],
        ),
    ];
    for (method, headers) in &cases {
        let n = native.request(method, "/x", headers, b"");
        let m = module.request(method, "/x", headers, b"");
        assert_eq!(
            n.status,
            m.status,
            "{method} {headers:?}: native {} vs module {}",
            n.text(),
            m.text()
        );
        assert!([200, 403].contains(&m.status));
    }
    assert_eq!(module.upstream_seen().len(), native.upstream_seen().len());
}
