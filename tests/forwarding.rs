//! header-guard's `forwarding` in a real Envoy (#17 class 2): `x-forwarded-proto`,
//! `x-forwarded-for`, `x-forwarded-host` and `x-envoy-*` carry what the connection shows,
//! under a trust model like Envoy's `xff_num_trusted_hops`; and why a policy may not remove
//! `x-forwarded-proto` (Envoy's router finds no route without it).
//!
//! The harness's connection manager is Envoy's default (`use_remote_address: false`) over plain
//! HTTP from 127.0.0.1.

mod support;

use std::process::Command;

use serde_json::json;
use support::*;

fn lua(script: &str) -> serde_json::Value {
    json!({"name": "envoy.filters.http.lua", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
        "default_source_code": {"inline_string": format!("function envoy_on_request(h)\n {script}\nend")}
    }})
}

/// Why no policy may remove `x-forwarded-proto`: Envoy's connection manager sets it before any
/// filter runs, and its route table answers "no route" for a request without it
/// (`VirtualHostImpl::getRouteFromEntries` returns none when `ForwardedProto()` is missing).
/// The route is looked up again after a filter edits the request headers and clears the route
/// cache, as every proxy-wasm header edit does (and the Lua filter does by default): then every
/// request is 404 with the response flag `NR` (`route_not_found`).
#[test]
fn removing_x_forwarded_proto_makes_envoy_find_no_route_for_any_request() {
    let e = envoy()
        .native_filter(lua(r#"h:headers():remove("x-forwarded-proto")"#))
        .start();
    for path in ["/", "/orders", "/health"] {
        let r = e.get(path, &[("x-forwarded-proto", "https")]);
        assert_eq!(r.status, 404, "{path}: {}", r.text());
    }
    assert!(e.upstream_seen().is_empty());
    // Removing a neighbour changes nothing: it is this header the route table needs.
    let e = envoy()
        .native_filter(lua(r#"h:headers():remove("x-forwarded-host")"#))
        .start();
    assert_eq!(e.get("/orders", &[]).status, 200);
    // And rewriting it (what `forwarding` does) keeps every route.
    let e = envoy()
        .native_filter(lua(r#"h:headers():replace("x-forwarded-proto", "http")"#))
        .start();
    assert_eq!(
        e.get("/orders", &[("x-forwarded-proto", "https")]).status,
        200
    );
}

/// The policy that would do it is refused: Envoy refuses the plugin (on_configure false) with
/// the JSON path and the reason, and `portcullis check` says the same.
#[test]
fn a_policy_stripping_x_forwarded_proto_is_refused_by_on_configure_and_portcullis_check() {
    let policy = r#"{"default": {"strip_headers": ["@default", "x-forwarded-proto"]}}"#;
    let log = envoy().wasm("header-guard", policy).start_expect_exit();
    assert!(
        log.contains("portcullis header_guard: invalid policy: default.strip_headers[1]")
            && log.contains("route_not_found"),
        "{log}"
    );
    let guard = json!({"chain": ["header_guard"], "header_guard": {"default": {"reject_headers": ["x-forwarded-*"]}}});
    let log = envoy().wasm("guard", guard).start_expect_exit();
    assert!(
        log.contains("header_guard.default.reject_headers[0]"),
        "{log}"
    );

    let dir = std::env::temp_dir().join(format!("portcullis-fwd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("strip-xfp.json");
    std::fs::write(&f, policy).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["check", "header-guard", f.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("default.strip_headers[1]") && stderr.contains("x-forwarded-proto"),
        "{stderr}"
    );
}

#[test]
fn a_spoofed_x_forwarded_proto_https_over_plain_http_reaches_the_upstream_as_http() {
    let e = envoy().wasm("header-guard", "{}").start();
    for claimed in ["https", "HTTPS", "https, http", "wss"] {
        let r = e.get("/orders", &[("x-forwarded-proto", claimed)]);
        assert_eq!(r.status, 200, "{claimed}: {}", r.text());
    }
    let seen = e.upstream_seen();
    assert_eq!(seen.len(), 4);
    for s in &seen {
        assert_eq!(
            s.header("x-forwarded-proto"),
            Some("http"),
            "{:?}",
            s.headers
        );
    }
    // Without the claim the header Envoy set is already true: passed as it is.
    assert_eq!(e.get("/orders", &[]).status, 200);
    assert_eq!(
        e.upstream_seen()[4].header("x-forwarded-proto"),
        Some("http")
    );
}

/// At the edge (`use_remote_address: true`, no trusted hop) the client is the TCP peer: the
/// spoofed chain is replaced by it, `x-forwarded-host` and `x-envoy-*` are removed.
#[test]
fn forwarding_headers_from_an_untrusted_peer_are_replaced_by_the_peer_and_removed() {
    let e = envoy()
        .hcm("use_remote_address", json!(true))
        .wasm("header-guard", "{}")
        .start();
    let r = e.get(
        "/orders",
        &[
            ("x-forwarded-for", "10.0.0.1, 192.0.2.1"),
            ("x-forwarded-host", "admin.internal"),
            ("x-envoy-upstream-rq-timeout-ms", "1"),
            ("x-envoy-retry-on", "5xx"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = &e.upstream_seen()[0];
    assert_eq!(
        seen.header("x-forwarded-for"),
        Some("127.0.0.1"),
        "{:?}",
        seen.headers
    );
    assert_eq!(seen.header("x-forwarded-host"), None);
    assert_eq!(seen.header("x-envoy-retry-on"), None);
    assert_eq!(seen.header("x-envoy-upstream-rq-timeout-ms"), None);
}

/// Measured: with Envoy's default `use_remote_address: false`, Envoy itself takes the client
/// address (`source.address`, what its access log and proxy-wasm see) from the last
/// `x-forwarded-for` entry, so no filter can know the TCP peer. header-guard then keeps the
/// header consistent with Envoy (cut to that entry); the edge must set `use_remote_address`.
#[test]
fn without_use_remote_address_envoy_itself_takes_the_client_from_x_forwarded_for() {
    let e = envoy().wasm("header-guard", "{}").start();
    assert_eq!(
        e.get("/", &[("x-forwarded-for", "10.0.0.1, 192.0.2.1")])
            .status,
        200
    );
    assert_eq!(
        e.upstream_seen()[0].header("x-forwarded-for"),
        Some("192.0.2.1")
    );
}

#[test]
fn trusted_hops_are_honoured() {
    // One trusted load balancer in front (Envoy's xff_num_trusted_hops: 1, the same in
    // header-guard): its https and its chain from the client are believed, what the client put
    // before its own address is not.
    let e = envoy()
        .hcm("use_remote_address", json!(true))
        .hcm("xff_num_trusted_hops", json!(1))
        .wasm(
            "header-guard",
            r#"{"default": {"forwarding": {"trusted_hops": 1}}}"#,
        )
        .start();
    let r = e.get(
        "/orders",
        &[
            ("x-forwarded-proto", "https"),
            ("x-forwarded-for", "10.6.6.6, 198.51.100.4"),
            ("x-forwarded-host", "api.example.com"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = &e.upstream_seen()[0];
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
    // From the client on: the client, then what Envoy appended for its loopback peer (its own
    // local address).
    let xff = seen.header("x-forwarded-for").unwrap_or_default();
    assert!(
        xff.starts_with("198.51.100.4, ") && xff.split(',').count() == 2,
        "{:?}",
        seen.headers
    );
    // (`x-forwarded-host` is still on the default `strip_headers`: list it out to keep it.)
    assert_eq!(seen.header("x-forwarded-host"), None);
    // `mode: pass` leaves them to Envoy.
    let e = envoy()
        .wasm(
            "header-guard",
            r#"{"default": {"forwarding": {"mode": "pass"}}}"#,
        )
        .start();
    assert_eq!(e.get("/", &[("x-forwarded-proto", "https")]).status, 200);
    assert_eq!(
        e.upstream_seen()[0].header("x-forwarded-proto"),
        Some("https")
    );
}

#[test]
fn guard_rewrites_forwarding_headers_like_header_guard() {
    let policy = json!({"chain": ["header_guard"], "header_guard": {}});
    let e = envoy()
        .hcm("use_remote_address", json!(true))
        .hcm("xff_num_trusted_hops", json!(1))
        .wasm("guard", policy)
        .start();
    // Envoy trusts one hop and so keeps the client's https; header-guard (0 hops) does not.
    let r = e.get(
        "/orders",
        &[("x-forwarded-proto", "https"), ("x-forwarded-host", "x")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = &e.upstream_seen()[0];
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(seen.header("x-forwarded-host"), None);
}
