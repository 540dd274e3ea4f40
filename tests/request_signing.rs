//! request-signing in a real Envoy: requests signed by `portcullis sign` pass, tampered and
//! replayed ones get 401 and the upstream sees nothing; sign mode signs what leaves Envoy.

mod signing_support;
mod support;

use signing_support::*;
use support::*;

fn start() -> Envoy {
    envoy()
        .filter(Filter::new("request-signing", verify_policy()).vm_env(SECRET_ENV, SECRET))
        .start()
}

const BODY: &[u8] = br#"{"item": "book", "qty": 2}"#;

/// A file of its own per call: tests run in parallel, and one rewriting a shared file while
/// another's `portcullis sign` reads it signed a truncated body (a flaky `digest.mismatch`).
fn body_file() -> std::path::PathBuf {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("portcullis-sign-body-{}-{n}.json", std::process::id());
    let p = std::env::temp_dir().join(name);
    std::fs::write(&p, BODY).expect("write body");
    p
}

fn cli_post_headers() -> Vec<(String, String)> {
    let f = body_file();
    cli_sign(&[
        "--method",
        "POST",
        "--url",
        "http://localhost/orders?tenant=7",
        "--header",
        "content-type: application/json",
        "--body",
        f.to_str().expect("utf-8 path"),
    ])
}

#[test]
fn a_request_signed_by_the_cli_passes_and_reaches_the_upstream() {
    let e = start();
    let signed = cli_post_headers();
    let names: Vec<&str> = signed.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["Content-Digest", "Signature-Input", "Signature"]);
    let r = e.post(
        "/orders?tenant=7",
        &with(&[("content-type", "application/json")], &signed),
        BODY,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = e.upstream_seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body.as_bytes(), BODY);
    assert_eq!(seen[0].header("signature"), Some(signed[2].1.as_str()));
    assert_eq!(e.counter("request_signing", "allowed", "ok"), 1);
}

#[test]
fn a_signed_get_without_a_body_passes() {
    let e = start();
    // `/orders` lists content-digest: a GET covers the digest of its empty body too.
    let signed = cli_sign(&[
        "--method",
        "GET",
        "--url",
        "http://localhost/orders/1?x=y",
        "--header",
        "content-type: application/json",
        "--components",
        "@method,@authority,@path,@query,content-type,content-digest",
    ]);
    let r = e.get(
        "/orders/1?x=y",
        &with(&[("content-type", "application/json")], &signed),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(e.upstream_seen().len(), 1);
}

#[test]
fn a_tampered_body_is_401_digest_mismatch_and_the_upstream_sees_nothing() {
    let e = start();
    let signed = cli_post_headers();
    let r = e.post(
        "/orders?tenant=7",
        &with(&[("content-type", "application/json")], &signed),
        br#"{"item": "book", "qty": 200}"#,
    );
    r.assert_problem(401, "digest.mismatch");
    assert_eq!(r.header("www-authenticate"), Some("Signature"));
    assert!(e.upstream_seen().is_empty());
    assert_eq!(e.counter("request_signing", "denied", "digest.mismatch"), 1);
}

#[test]
fn a_replayed_request_is_401_replayed() {
    let e = start();
    let signed = cli_post_headers();
    let h = with(&[("content-type", "application/json")], &signed);
    assert_eq!(e.post("/orders?tenant=7", &h, BODY).status, 200);
    let r = e.post("/orders?tenant=7", &h, BODY);
    r.assert_problem(401, "signature.replayed");
    assert_eq!(r.header("www-authenticate"), Some("Signature"));
    assert_eq!(e.upstream_seen().len(), 1);
    assert_eq!(
        e.counter("request_signing", "denied", "signature.replayed"),
        1
    );
}

#[test]
fn an_unsigned_request_is_401_missing_and_unsigned_routes_pass() {
    let e = start();
    e.post("/orders", &[("content-type", "application/json")], BODY)
        .assert_problem(401, "signature.missing");
    assert!(e.upstream_seen().is_empty());
    assert_eq!(e.get("/health", &[]).status, 200);
    assert_eq!(e.upstream_seen().len(), 1);
}

#[test]
fn a_secret_env_the_vm_lacks_makes_envoy_refuse_the_policy() {
    let log = envoy()
        .wasm("request-signing", verify_policy())
        .start_expect_exit();
    assert!(
        log.contains("keys[0].secret_env: environment variable `ORDERS_CLIENT_KEY` is not set"),
        "{log}"
    );
}

const SIGN_COMPONENTS: &[&str] = &["@method", "@authority", "@path", "@query", "content-type"];

fn sign_policy() -> String {
    format!(
        r#"{{"mode": "sign",
  "keys": [
    {{"keyid": "old", "secret": "{SECRET}", "not_after": "2020-01-01T00:00:00Z"}},
    {{"keyid": "partner-2026", "secret_env": "{SECRET_ENV}"}}
  ],
  "default": {{"components": ["@method", "@authority", "@path", "@query", "content-type"]}}
}}"#
    )
}

fn start_signer() -> Envoy {
    envoy()
        .filter(Filter::new("request-signing", sign_policy()).vm_env(SECRET_ENV, SECRET))
        .start()
}

#[test]
fn sign_mode_signs_a_post_and_its_body_and_the_upstream_verifies_it() {
    let e = start_signer();
    let r = e.post(
        "/v1/payments?idempotency=9",
        &[("content-type", "application/json")],
        BODY,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = e.upstream_seen();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert_eq!(
        s.header("content-digest"),
        Some(
            portcullis::signing::digest::content_digest(
                portcullis::signing::Algorithm::Sha256,
                BODY
            )
            .as_str()
        )
    );
    let mut required = SIGN_COMPONENTS.to_vec();
    required.push("content-digest");
    let v = verify_seen(s, "partner-2026", SECRET, &required)
        .expect("the upstream verifies the signature");
    assert_eq!(v.keyid, "partner-2026");
    assert!(v.covers_digest);
    // A changed body would not verify: the digest is really over what was sent.
    let mut tampered = s.clone();
    tampered.body.push(' ');
    assert_eq!(
        verify_seen(&tampered, "partner-2026", SECRET, &required)
            .unwrap_err()
            .code(),
        "digest.mismatch"
    );
}

#[test]
fn sign_mode_signs_a_get_with_a_fresh_random_nonce_each_time() {
    let e = start_signer();
    for _ in 0..2 {
        assert_eq!(e.get("/v1/rates?ccy=EUR", &[]).status, 200);
    }
    let seen = e.upstream_seen();
    let nonces: Vec<String> = seen
        .iter()
        .map(|s| {
            let v = verify_seen(
                s,
                "partner-2026",
                SECRET,
                &["@method", "@authority", "@path", "@query"],
            )
            .expect("verifies");
            assert!(!v.covers_digest, "no body, no digest");
            v.nonce.expect("a nonce")
        })
        .collect();
    assert_eq!(nonces.len(), 2);
    assert_ne!(nonces[0], nonces[1]);
    assert_eq!(nonces[0].len(), 22, "128 random bits, base64url");
}
