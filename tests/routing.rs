//! Routing decisions that cannot be bypassed (#17 class 6), in a real Envoy: every module decides
//! on the path and method the upstream will act on, also alone, without header-guard in front,
//! and with Envoy's own path normalisation off.

mod support;

use portcullis::controls::api_key::sha256_hex;
use serde_json::json;
use support::*;

/// A key scoped for `/health` only; `/reports` needs the `reports` scope.
fn api_key_policy() -> serde_json::Value {
    json!({
        "keys": [{"id": "probe", "client": "monitor", "sha256": sha256_hex(b"pk_health")}],
        "routes": [
            {"match": {"prefix": "/health"}},
            {"match": {"prefix": "/reports"}, "scopes_all": ["reports"]}
        ]
    })
}

fn raw_paths() -> Envoy {
    envoy()
        .wasm("api-key", api_key_policy())
        .hcm("normalize_path", json!(false))
        .hcm("merge_slashes", json!(false))
        .start()
}

const KEY: (&str, &str) = ("x-api-key", "pk_health");

#[test]
fn a_backslash_in_the_path_is_400_bad_path_raw_encoded_or_mixed_with_dot_segments() {
    let e = raw_paths();
    // The key works where it is scoped, and not on /reports.
    assert_eq!(e.get("/health", &[KEY]).status, 200);
    e.get("/reports", &[KEY])
        .assert_problem(403, "api_key.scope");
    for path in [
        "/health\\..\\reports",
        "/health\\../reports",
        "/health/..\\reports",
        "/health%5C..%5Creports",
        "/health%5c..%5creports",
        "/health/.%2e%5Creports",
        "/health\\reports",
    ] {
        e.get(path, &[KEY]).assert_problem(400, "request.bad_path");
    }
    assert_eq!(e.upstream_seen().len(), 1, "only GET /health reached it");
}

/// One policy per module that picks rules by path or method, each run alone.
fn modules() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        ("api-key", api_key_policy()),
        (
            "content-type",
            json!({"default": {"allow": ["application/json"]}}),
        ),
        ("csrf", json!({})),
        ("error-shield", json!({})),
        (
            "jwt-auth",
            json!({"providers": [{"name": "p", "issuer": "https://idp.example", "algorithms": ["HS256"],
                "jwks": {"keys": [{"kty": "oct", "kid": "k", "alg": "HS256", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ"}]}}],
                "routes": [{"match": {"prefix": "/health"}, "allow_anonymous": true}]}),
        ),
        (
            "request-signing",
            json!({"keys": [{"keyid": "k1", "secret": "q83vEjRWeJASNFZ4kBI0VniQEjRWeJASNFZ4kBI0Vng="}],
                   "routes": [{"match": {"prefix": "/health"}, "required": false}]}),
        ),
        (
            "payload-crypto",
            json!({"keys": [{"kid": "kw", "alg": "A256KW", "k": "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8"}]}),
        ),
        ("header-guard", json!({})),
        (
            "guard",
            json!({"chain": ["header_guard", "api_key"], "header_guard": {}, "api_key": api_key_policy()}),
        ),
    ]
}

#[test]
fn every_module_refuses_a_backslash_path_and_a_method_override_by_default() {
    for (module, policy) in modules() {
        let e = envoy()
            .wasm(module, policy)
            .hcm("normalize_path", json!(false))
            .start();
        e.get("/health\\..\\reports", &[KEY])
            .assert_problem(400, "request.bad_path");
        e.get("/health%5C..%5Creports", &[KEY])
            .assert_problem(400, "request.bad_path");
        for h in [
            "x-http-method-override",
            "x-http-method",
            "x-method-override",
        ] {
            let r = e.post("/health", &[KEY, (h, "DELETE")], b"");
            r.assert_problem(400, "request.method_override");
            assert!(r.text().contains(h), "{module}: {}", r.text());
        }
        assert!(e.upstream_seen().is_empty(), "{module}");
        // The VM is fine, and a plain request on an open route still passes.
        assert_ne!(e.get("/health", &[KEY]).status, 400, "{module}");
        assert_eq!(
            e.counter(
                &module.replace('-', "_"),
                "denied",
                "request.method_override"
            ),
            3,
            "{module}"
        );
    }
}

#[test]
fn method_override_strip_removes_the_header_and_the_real_method_is_matched() {
    let mut policy = api_key_policy();
    policy["method_override"] = json!("strip");
    // POST /health is matched as the POST it is; DELETE never reaches the upstream as the
    // method it would act on.
    let e = envoy().wasm("api-key", policy).start();
    let r = e.post("/health", &[KEY, ("x-http-method-override", "DELETE")], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = &e.upstream_seen()[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.header("x-http-method-override"), None);
}

#[test]
fn an_unknown_method_override_setting_is_refused_at_load_with_its_path() {
    let mut policy = api_key_policy();
    policy["method_override"] = json!("allow");
    let log = envoy().wasm("api-key", policy).start_expect_exit();
    assert!(log.contains("invalid policy: method_override:"), "{log}");
}
