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
  "fetch_metadata": false,
  "site_schemes": ["http", "https"]
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

/// RFC 6454 §5 (#17 class 6): the own origin has the scheme the request really arrived with.
/// The harness is plain http: `https://localhost` is not this site's origin, `http://localhost`
/// is; a spoofed `x-forwarded-proto: https` changes nothing by default.
#[test]
fn rfc6454_5_the_own_origin_has_the_connections_scheme() {
    let e = envoy().wasm("csrf", "{}").start();
    let r = e.post("/orders", &[("origin", "https://localhost")], b"");
    r.assert_problem(403, "csrf.origin");
    assert!(r.text().contains("not the site's scheme"), "{}", r.text());
    let r = e.post(
        "/orders",
        &[
            ("origin", "https://localhost"),
            ("x-forwarded-proto", "https"),
        ],
        b"",
    );
    r.assert_problem(403, "csrf.origin");
    assert_eq!(
        e.post("/orders", &[("origin", "http://localhost")], b"")
            .status,
        200
    );
    // Pinned to https (the site is https behind a load balancer that ends TLS).
    let e = envoy()
        .wasm("csrf", r#"{"default": {"site_schemes": ["https"]}}"#)
        .start();
    assert_eq!(
        e.post("/orders", &[("origin", "https://localhost")], b"")
            .status,
        200
    );
    e.post("/orders", &[("origin", "http://localhost")], b"")
        .assert_problem(403, "csrf.origin");
}

/// Inside guard, behind one trusted load balancer: header-guard's `forwarding` makes
/// `x-forwarded-proto` true, and csrf (`own_scheme: x_forwarded_proto`) takes the scheme from it.
/// With no trusted hop the client's `https` claim is rewritten to `http` first.
#[test]
fn guard_csrf_takes_the_scheme_from_x_forwarded_proto_made_true_by_header_guard() {
    for (hops, https_ok) in [(1, true), (0, false)] {
        let policy = json!({
            "chain": ["header_guard", "csrf"],
            "header_guard": {"default": {"forwarding": {"trusted_hops": hops}}},
            "csrf": {"default": {"own_scheme": "x_forwarded_proto"}}
        });
        let e = envoy()
            .hcm("use_remote_address", json!(true))
            .hcm("xff_num_trusted_hops", json!(1))
            .wasm("guard", policy)
            .start();
        let r = e.post(
            "/orders",
            &[
                ("origin", "https://localhost"),
                ("x-forwarded-proto", "https"),
            ],
            b"",
        );
        if https_ok {
            assert_eq!(r.status, 200, "hops {hops}: {}", r.text());
        } else {
            r.assert_problem(403, "csrf.origin");
        }
    }
}

#[test]
fn a_token_over_the_length_limit_is_refused_saying_so() {
    let e = envoy()
        .wasm("csrf", r#"{"default": {"token": {}}}"#)
        .start();
    let long = "a".repeat(300);
    let cookie = format!("__Host-csrf={long}");
    let r = e.post(
        "/orders",
        &[
            ("origin", "http://localhost"),
            ("x-csrf-token", long.as_str()),
            ("cookie", cookie.as_str()),
        ],
        b"",
    );
    r.assert_problem(403, "csrf.token");
    assert!(
        r.text()
            .contains("the CSRF token header is longer than 256 bytes"),
        "{}",
        r.text()
    );
}
