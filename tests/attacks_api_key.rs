//! API-key attack classes against a real Envoy: each gets its exact status and the upstream
//! sees nothing.

mod support;

use portcullis::controls::api_key::sha256_hex;
use serde_json::json;
use support::*;

fn start() -> Envoy {
    let policy = json!({"keys": [
        {"id": "k1", "client": "acme", "sha256": sha256_hex(b"pk_live")},
        {"id": "k2", "client": "beta", "sha256": sha256_hex(b"pk_beta")}
    ]});
    envoy().wasm("api-key", policy).start()
}

#[test]
fn a_key_in_the_query_is_ignored_when_the_policy_does_not_allow_it() {
    let e = start();
    e.get("/orders?api_key=pk_live", &[])
        .assert_problem(401, "api_key.missing");
    e.get("/orders?x-api-key=pk_live", &[])
        .assert_problem(401, "api_key.missing");
    assert!(e.upstream_seen().is_empty());
}

#[test]
fn duplicated_key_headers_are_refused() {
    let e = start();
    // A valid key next to another one (or itself): which one would the upstream trust?
    for second in ["pk_beta", "pk_live", "pk_unknown"] {
        let raw = format!("GET /orders HTTP/1.1\r\nhost: localhost\r\nx-api-key: pk_live\r\nx-api-key: {second}\r\nconnection: close\r\n\r\n");
        e.raw(raw.as_bytes())
            .assert_problem(401, "api_key.malformed");
    }
    assert!(e.upstream_seen().is_empty());
}

#[test]
fn an_empty_key_is_refused() {
    let e = start();
    let raw =
        b"GET /orders HTTP/1.1\r\nhost: localhost\r\nx-api-key: \r\nconnection: close\r\n\r\n";
    e.raw(raw).assert_problem(401, "api_key.malformed");
    e.get("/orders", &[("x-api-key", "   ")])
        .assert_problem(401, "api_key.malformed");
    assert!(e.upstream_seen().is_empty());
}

#[test]
fn an_overlong_key_is_refused_without_hashing_it() {
    let e = start();
    let long = format!("pk_{}", "A".repeat(8 * 1024));
    let r = e.get("/orders", &[("x-api-key", &long)]);
    r.assert_problem(401, "api_key.malformed");
    assert!(!r.text().contains("AAAA"));
    assert!(e.upstream_seen().is_empty());
}

#[test]
fn a_key_with_control_characters_or_a_scheme_confusion_is_refused() {
    let e = start();
    // Envoy's codec already refuses most control characters (400); a tab inside gets through.
    e.get("/orders", &[("x-api-key", "pk\tlive")])
        .assert_problem(401, "api_key.malformed");
    // Authorization is off by default: an ApiKey credential there is not a key.
    e.get("/orders", &[("authorization", "ApiKey pk_live")])
        .assert_problem(401, "api_key.missing");
    assert!(e.upstream_seen().is_empty());
}
