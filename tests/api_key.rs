//! api-key in a real Envoy: what the client gets and what the upstream saw. Validity windows
//! are relative to the real clock (Envoy's), with days of margin.

mod support;

use std::process::Command;

use portcullis::controls::api_key::sha256_hex;
use portcullis::time::{format_rfc3339, http_date, parse_rfc3339};
use serde_json::{json, Value};
use support::*;

const DAY: i64 = 86_400;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn policy() -> Value {
    let t = now();
    json!({
        "grace": "7d",
        "query_param": "api_key",
        "keys": [
            {"id": "acme-live", "client": "acme", "sha256": sha256_hex(b"pk_live"),
             "scopes": ["orders:read", "orders:write"]},
            {"id": "acme-old", "client": "acme", "sha256": sha256_hex(b"pk_old"),
             "not_after": format_rfc3339(t - DAY)},
            {"id": "acme-grace", "client": "acme", "sha256": sha256_hex(b"pk_grace"),
             "not_after": format_rfc3339(t + 3 * DAY)},
            {"id": "acme-future", "client": "acme", "sha256": sha256_hex(b"pk_future"),
             "not_before": format_rfc3339(t + DAY)}
        ],
        "routes": [
            {"match": {"prefix": "/orders", "methods": ["POST"]}, "scopes_all": ["orders:write"]},
            {"match": {"prefix": "/public"}, "optional": true}
        ]
    })
}

fn start() -> Envoy {
    envoy().wasm("api-key", policy()).start()
}

#[test]
fn a_valid_key_reaches_the_upstream_as_a_client_id_never_as_the_key() {
    let e = start();
    let r = e.get("/orders", &[("x-api-key", "pk_live")]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("deprecation"), None);
    let seen = &e.upstream_seen()[0];
    assert_eq!(seen.header("x-api-key"), None, "the key is removed");
    assert_eq!(seen.header("x-apikey-client"), Some("acme"));
    assert_eq!(seen.header("x-apikey-id"), Some("acme-live"));
    assert_eq!(
        seen.header("x-apikey-scopes"),
        Some("orders:read orders:write")
    );
    assert_eq!(e.counter("api_key", "allowed", "ok"), 1);
}

#[test]
fn expired_unknown_not_yet_valid_and_missing_keys_are_401() {
    let e = start();
    for (key, code) in [
        (Some("pk_old"), "api_key.expired"),
        (Some("pk_unknown"), "api_key.unknown"),
        (Some("pk_future"), "api_key.not_yet_valid"),
        (None, "api_key.missing"),
    ] {
        let headers: Vec<(&str, &str)> = key.map(|k| ("x-api-key", k)).into_iter().collect();
        let r = e.get("/orders", &headers);
        r.assert_problem(401, code);
        assert_eq!(r.header("www-authenticate"), Some("ApiKey"));
        if let Some(k) = key {
            assert!(!r.text().contains(k), "{}", r.text());
        }
    }
    assert!(e.upstream_seen().is_empty());
    assert_eq!(e.counter("api_key", "denied", "api_key.expired"), 1);
}

#[test]
fn a_key_in_its_grace_period_works_with_deprecation_and_sunset_headers() {
    let pol = policy();
    let e = envoy().wasm("api-key", &pol).start();
    let r = e.get("/orders", &[("x-api-key", "pk_grace")]);
    assert_eq!(r.status, 200, "{}", r.text());
    let not_after = parse_rfc3339(pol["keys"][2]["not_after"].as_str().unwrap()).unwrap();
    assert_eq!(r.header("sunset"), Some(http_date(not_after).as_str()));
    assert_eq!(
        r.header("deprecation"),
        Some(format!("@{}", not_after - 7 * DAY).as_str())
    );
    assert_eq!(
        e.upstream_seen()[0].header("x-apikey-id"),
        Some("acme-grace")
    );
}

#[test]
fn spoofed_identity_headers_are_stripped() {
    let e = start();
    let spoof = [
        ("x-apikey-client", "admin"),
        ("x-apikey-scopes", "admin"),
        ("x-apikey-id", "root"),
    ];
    // Anonymous on an optional route: the spoofed headers are removed.
    let r = e.get("/public/info", &spoof);
    assert_eq!(r.status, 200, "{}", r.text());
    // With a key without scopes: replaced by the key's identity, scopes removed.
    let mut with_key = spoof.to_vec();
    with_key.push(("x-api-key", "pk_grace"));
    assert_eq!(e.get("/public/info", &with_key).status, 200);
    let seen = e.upstream_seen();
    assert_eq!(seen[0].header("x-apikey-client"), None);
    assert_eq!(seen[0].header("x-apikey-scopes"), None);
    assert_eq!(seen[0].header("x-apikey-id"), None);
    assert_eq!(seen[1].header("x-apikey-client"), Some("acme"));
    assert_eq!(seen[1].header("x-apikey-id"), Some("acme-grace"));
    assert_eq!(seen[1].header("x-apikey-scopes"), None);
    assert_eq!(
        seen[1]
            .headers
            .iter()
            .filter(|(k, _)| k == "x-apikey-client")
            .count(),
        1
    );
}

/// Envoy accepts a new `:path` from the wasm filter: the upstream gets the path without the
/// key parameter, and the rest of the query unchanged.
#[test]
fn a_key_in_the_query_is_removed_from_the_path_before_the_upstream() {
    let e = start();
    let r = e.get("/orders/7?a=1&api_key=pk_live&b=x%20y", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = &e.upstream_seen()[0];
    assert_eq!(seen.path, "/orders/7?a=1&b=x%20y");
    assert_eq!(seen.header("x-apikey-client"), Some("acme"));
    let r = e.get("/orders?api_key=pk_live", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(e.upstream_seen()[1].path, "/orders");
}

#[test]
fn route_scopes_are_enforced() {
    let e = start();
    let r = e.post("/orders", &[("x-api-key", "pk_grace")], b"{}");
    r.assert_problem(403, "api_key.scope");
    let r = e.post("/orders", &[("x-api-key", "pk_live")], b"{}");
    assert_eq!(r.status, 200);
    assert_eq!(e.upstream_seen().len(), 1);
}

fn portcullis(args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .output()
        .expect("run portcullis");
    assert!(
        out.status.success(),
        "portcullis {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A rotation done with the CLI: keygen, a policy with that key, `rotate`, and the rotated
/// policy loaded into Envoy. Both keys work during the overlap; the old one announces its end.
#[test]
fn a_cli_rotation_keeps_both_keys_working_during_the_overlap() {
    let (out, _) = portcullis(&["keygen", "--client", "acme", "--id", "acme-1"]);
    let gen: Value = serde_json::from_str(&out).unwrap();
    let old_key = gen["key"].as_str().unwrap().to_string();
    assert!(
        old_key.starts_with("pk_") && old_key.len() == 46,
        "{old_key}"
    );
    assert_eq!(gen["sha256"], sha256_hex(old_key.as_bytes()));
    let mut entry = gen["policy_key"].clone();
    entry["scopes"] = json!(["orders:read"]);
    let dir = std::env::temp_dir().join(format!("portcullis-rotate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("policy.json");
    std::fs::write(&file, json!({"grace": "30d", "keys": [entry]}).to_string()).unwrap();

    let (rotated, stderr) = portcullis(&[
        "rotate",
        file.to_str().unwrap(),
        "--client",
        "acme",
        "--overlap",
        "7d",
    ]);
    let new_key = stderr.lines().last().unwrap().trim().to_string();
    assert!(new_key.starts_with("pk_"), "{stderr}");
    assert!(
        !rotated.contains(&new_key) && !rotated.contains(&old_key),
        "no plaintext in the policy"
    );
    let doc: Value = serde_json::from_str(&rotated).unwrap();
    let keys = doc["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    let not_after = parse_rfc3339(keys[0]["not_after"].as_str().unwrap()).unwrap();
    assert!((not_after - (now() + 7 * DAY)).abs() < 120, "{not_after}");
    assert_eq!(keys[1]["sha256"], sha256_hex(new_key.as_bytes()));
    assert_eq!(keys[1]["scopes"], json!(["orders:read"]));
    let _ = std::fs::remove_dir_all(&dir);

    let e = envoy().wasm("api-key", &rotated).start();
    let old = e.get("/orders", &[("x-api-key", &old_key)]);
    assert_eq!(old.status, 200, "{}", old.text());
    assert_eq!(old.header("sunset"), Some(http_date(not_after).as_str()));
    assert!(old.header("deprecation").is_some());
    let new = e.get("/orders", &[("x-api-key", &new_key)]);
    assert_eq!(new.status, 200, "{}", new.text());
    assert_eq!(new.header("sunset"), None);
    let seen = e.upstream_seen();
    assert_eq!(seen[0].header("x-apikey-id"), Some("acme-1"));
    assert_eq!(seen[1].header("x-apikey-id"), keys[1]["id"].as_str());
    assert!(seen.iter().all(|s| s.header("x-api-key").is_none()));
}
