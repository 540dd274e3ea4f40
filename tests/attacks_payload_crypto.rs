//! JWE attacks against payload-crypto in a real Envoy: each gets its exact status and code, and
//! the upstream sees nothing.

mod support;

use serde_json::json;
use support::*;

const K_SVC: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
const K_DIR: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8";

/// RFC 7520 §5.9 (A128KW + A128GCM + `zip: DEF`), verbatim.
const RFC7520_5_9: &str = "eyJhbGciOiJBMTI4S1ciLCJraWQiOiI4MWIyMDk2NS04MzMyLTQzZDktYTQ2OC04MjE2MGFkOTFhYzgiLCJlbmMiOiJBMTI4R0NNIiwiemlwIjoiREVGIn0.5vUT2WOtQxKWcekM_IzVQwkGgzlFDwPi.p9pUq6XHY0jfEZIl.HbDtOsdai1oYziSx25KEeTxmwnh8L8jKMFNc1k3zmMI6VB8hry57tDZ61jXyezSPt0fdLVfe6Jf5y5-JaCap_JQBcb5opbmT60uWGml8blyiMQmOn9J--XhhlYg0m-BHaqfDO5iTOWxPxFMUedx7WCy8mxgDHj0aBMG6152PsM-w5E_o2B3jDbrYBKhpYA7qi3AyijnCJ7BP9rr3U8kxExCpG3mK420TjOw.VILuUwuIxaLVmh5X-T7kmA";

fn start() -> Envoy {
    let policy = json!({
        "keys": [
            {"kid": "svc-kw", "alg": "A256KW", "k": K_SVC},
            {"kid": "svc-dir", "alg": "dir", "k": K_DIR},
            {"kid": "81b20965-8332-43d9-a468-82160ad91ac8", "alg": "A128KW", "k": "GZy6sIZ6wl9NJOKB-jnmVQ"},
            {"kid": "client", "alg": "A256KW", "k": K_SVC}
        ],
        "routes": [
            {"match": {"prefix": "/secure"}, "decrypt_request": true, "max_ciphertext_bytes": 2048},
            {"match": {"prefix": "/mine"}, "encrypt_response": {"kid_header": "x-jwt-sub"}}
        ]
    });
    envoy().wasm("payload-crypto", policy).start()
}

fn b64(s: &str) -> String {
    use std::fmt::Write;
    // base64url without padding, enough for test headers.
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let (b, mut out) = (s.as_bytes(), String::new());
    for c in b.chunks(3) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, x)| n | (u32::from(*x) << (16 - 8 * i)));
        for i in 0..=c.len() {
            let _ = out.write_char(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A JWE-shaped body with this header and junk parts of the right sizes.
fn with_header(h: &str) -> String {
    format!(
        "{}.{}.{}.{}.{}",
        b64(h),
        "A".repeat(54),
        "AAAAAAAAAAAAAAAA",
        "AAAA",
        "A".repeat(22)
    )
}

fn post_jose(e: &Envoy, body: &str) -> Response {
    e.post(
        "/secure",
        &[("content-type", "application/jose")],
        body.as_bytes(),
    )
}

#[test]
fn alg_none_is_400() {
    let e = start();
    post_jose(&e, &with_header(r#"{"alg":"none","enc":"A256GCM"}"#))
        .assert_problem(400, "payload_crypto.unsupported_alg");
    assert!(e.upstream_seen().is_empty());
}

#[test]
fn rsa1_5_padding_oracle_alg_is_400() {
    let e = start();
    post_jose(
        &e,
        &with_header(r#"{"alg":"RSA1_5","enc":"A256GCM","kid":"svc-kw"}"#),
    )
    .assert_problem(400, "payload_crypto.unsupported_alg");
    assert!(e.upstream_seen().is_empty());
}

#[test]
fn compressed_content_rfc7520_5_9_is_400() {
    // zip invites decompression bombs and length side channels (CRIME-style).
    let e = start();
    post_jose(&e, RFC7520_5_9).assert_problem(400, "payload_crypto.zip_rejected");
    assert!(e.upstream_seen().is_empty());
}

#[test]
fn algorithm_confusion_a_kw_kid_used_as_dir_is_400() {
    // The attacker names the key-wrapping key but claims `dir`, hoping it is used as the CEK.
    let e = start();
    post_jose(
        &e,
        &with_header(r#"{"alg":"dir","enc":"A256GCM","kid":"svc-kw"}"#),
    )
    .assert_problem(400, "payload_crypto.unknown_kid");
    assert!(e.upstream_seen().is_empty());
}

#[test]
fn forged_ciphertext_for_a_real_kid_is_400() {
    let e = start();
    post_jose(
        &e,
        &with_header(r#"{"alg":"A256KW","enc":"A256GCM","kid":"svc-kw"}"#),
    )
    .assert_problem(400, "payload_crypto.decrypt_failed");
    post_jose(
        &e,
        &with_header(r#"{"alg":"dir","enc":"A256GCM","kid":"svc-dir"}"#),
    )
    .assert_problem(400, "payload_crypto.malformed");
    assert!(e.upstream_seen().is_empty());
}

#[test]
fn critical_extensions_are_400() {
    let e = start();
    post_jose(
        &e,
        &with_header(r#"{"alg":"A256KW","enc":"A256GCM","kid":"svc-kw","crit":["x"],"x":1}"#),
    )
    .assert_problem(400, "payload_crypto.crit_rejected");
    assert!(e.upstream_seen().is_empty());
}

#[test]
fn plaintext_smuggled_past_a_decrypt_route_is_415() {
    // A client skipping encryption: the upstream must never take cleartext on this route.
    let e = start();
    let r = e.post(
        "/secure",
        &[("content-type", "application/json")],
        br#"{"a":1}"#,
    );
    r.assert_problem(415, "payload_crypto.not_jwe");
    assert_eq!(r.header("accept-post"), Some("application/jose"));
    let r = e.post("/secure", &[], br#"{"a":1}"#);
    r.assert_problem(415, "payload_crypto.not_jwe");
    assert!(e.upstream_seen().is_empty());
}

#[test]
fn oversized_ciphertext_is_413() {
    let e = start();
    let big = with_header(r#"{"alg":"A256KW","enc":"A256GCM","kid":"svc-kw"}"#).repeat(40);
    post_jose(&e, &big).assert_problem(413, "payload_crypto.too_large");
    assert!(e.upstream_seen().is_empty());
}

#[test]
fn a_garbage_body_is_400_and_the_vm_stays_healthy() {
    let e = start();
    // (A request without a body has nothing to decrypt and passes: GET, DELETE.)
    for body in ["....", "a.b.c.d.e", "\u{feff}x", &"A.".repeat(1000)] {
        let r = post_jose(&e, body);
        assert_eq!(r.status, 400, "{body:?}: {}", r.text());
    }
    // Still answering: an unknown client key on another route is its own denial.
    e.post("/mine", &[("x-jwt-sub", "nobody")], b"")
        .assert_problem(400, "payload_crypto.unknown_client_key");
    assert!(e.upstream_seen().is_empty());
}
