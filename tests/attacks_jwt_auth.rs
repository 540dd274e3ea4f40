//! Known JWT attacks against a real Envoy running jwt-auth: each gets its exact status and code,
//! and the upstream sees nothing.

#[path = "support/jwks_server.rs"]
mod jwks_server;
#[path = "support/jwt.rs"]
mod jwt;
mod support;

use jwks_server::{JwksServer, Mode};
use jwt::*;
use serde_json::{json, Value};
use support::*;

const ISS: &str = "https://idp.example";
const HS_ISS: &str = "https://hs.example";
const SECRET: &[u8] = b"an-hmac-secret-of-at-least-32-bytes!";

fn claims(extra: Value) -> Value {
    let mut c =
        json!({"iss": ISS, "sub": "alice", "aud": ["orders"], "iat": now(), "exp": now() + 600});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

struct Setup {
    e: Envoy,
    es: jwt_simple::prelude::ES256KeyPair,
    rs: jwt_simple::prelude::RS256KeyPair,
}

fn start() -> Setup {
    let es = es256("e1");
    let rs = rsa("r1");
    let policy = json!({
        "providers": [
            {"name": "idp", "issuer": ISS, "audiences": ["orders"], "algorithms": ["ES256", "RS256"],
             "jwks": jwks(&[jwk_es256(&es, "e1"), jwk_rsa(&rs, "r1")]),
             "forward": {"claims": ["sub"]}},
            // Lax on purpose: HS256 allowed next to RS256, with only an RSA key.
            {"name": "lax", "issuer": "https://lax.example", "algorithms": ["RS256", "HS256"],
             "jwks": jwks(&[jwk_rsa(&rs, "r1")])},
            {"name": "hs", "issuer": HS_ISS, "algorithms": ["HS256"],
             "jwks": jwks(&[jwk_oct(SECRET, "h1")])}
        ],
        "default": {}
    });
    let e = envoy().wasm("jwt-auth", policy).start();
    Setup { e, es, rs }
}

fn send(s: &Setup, token: &str) -> Response {
    s.e.get("/orders", &[("authorization", &format!("Bearer {token}"))])
}

fn expect(s: &Setup, token: &str, status: u16, code: &str) {
    send(s, token).assert_problem(status, code);
}

#[test]
fn alg_none_in_any_spelling_is_401() {
    let s = start();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let h = json!({"alg": alg, "typ": "JWT"}).to_string();
        let p = claims(json!({})).to_string();
        expect(
            &s,
            &format!("{}.{}.", b64(&h), b64(&p)),
            401,
            "jwt.malformed",
        );
        expect(&s, &unsigned(&h, &p, b"sig"), 401, "jwt.algorithm");
    }
    assert!(s.e.upstream_seen().is_empty());
    // A real token still passes: the denials were about the attack.
    assert_eq!(send(&s, &sign_es256(&s.es, &claims(json!({})))).status, 200);
}

#[test]
fn rs256_to_hs256_confusion_with_the_public_key_as_secret_is_401() {
    let s = start();
    let pem = s.rs.public_key().to_pem().unwrap();
    let h = json!({"alg": "HS256", "typ": "JWT", "kid": "r1"}).to_string();
    let t = hs256_raw(pem.as_bytes(), &h, &claims(json!({})).to_string());
    expect(&s, &t, 401, "jwt.algorithm");
    // Where HS256 is allowed, the RSA key is still no HMAC secret.
    let lax = claims(json!({"iss": "https://lax.example"})).to_string();
    expect(
        &s,
        &hs256_raw(pem.as_bytes(), &h, &lax),
        401,
        "jwt.unknown_kid",
    );
    let der = s.rs.public_key().to_der().unwrap();
    expect(&s, &hs256_raw(&der, &h, &lax), 401, "jwt.unknown_kid");
    assert!(s.e.upstream_seen().is_empty());
}

#[test]
fn cve_2022_21449_ecdsa_r_s_zero_is_401() {
    let s = start();
    let h = json!({"alg": "ES256", "kid": "e1"}).to_string();
    let p = claims(json!({})).to_string();
    expect(&s, &unsigned(&h, &p, &[0; 64]), 401, "jwt.bad_signature");
    expect(&s, &unsigned(&h, &p, &[]), 401, "jwt.malformed");
    assert!(s.e.upstream_seen().is_empty());
}

#[test]
fn kid_injection_is_an_unknown_kid() {
    let s = start();
    let p = claims(json!({})).to_string();
    for kid in [
        "../../../../dev/null",
        "/etc/passwd",
        "' UNION SELECT 'secret' --",
        "e1' OR '1'='1",
        "$(id)",
    ] {
        let h = json!({"alg": "HS256", "kid": kid}).to_string();
        let t = hs256_raw(b"", &h, &p);
        expect(&s, &t, 401, "jwt.algorithm");
        let h = json!({"alg": "ES256", "kid": kid}).to_string();
        expect(&s, &unsigned(&h, &p, &[1; 64]), 401, "jwt.unknown_kid");
    }
    assert!(s.e.upstream_seen().is_empty());
}

#[test]
fn jku_x5u_and_embedded_jwk_are_not_trusted() {
    let s = start();
    // The attacker signs with their own key and points at it.
    let evil = es256("e1");
    let jwk = jwk_es256(&evil, "e1");
    let p = claims(json!({})).to_string();
    for extra in [
        json!({"jku": "http://127.0.0.1:1/jwks.json"}),
        json!({"x5u": "http://127.0.0.1:1/cert.pem"}),
        json!({"jwk": jwk.to_string()}),
    ] {
        let mut h = json!({"alg": "ES256", "kid": "e1"});
        for (k, v) in extra.as_object().unwrap() {
            h[k] = v.clone();
        }
        // The header points at the attacker's key; the module only ever uses the policy's.
        let t = with_header(&sign_es256(&evil, &serde_json::from_str(&p).unwrap()), &h);
        expect(&s, &t, 401, "jwt.bad_signature");
    }
    let t = with_header(
        &sign_es256(&evil, &claims(json!({}))),
        &json!({"alg": "ES256", "kid": "e1", "jwk": jwk}),
    );
    expect(&s, &t, 401, "jwt.malformed");
    // Plainly signed by the attacker, no tricks.
    expect(
        &s,
        &sign_es256(&evil, &claims(json!({}))),
        401,
        "jwt.bad_signature",
    );
    assert!(s.e.upstream_seen().is_empty());
}

#[test]
fn expired_and_not_yet_valid_tokens_are_401() {
    let s = start();
    let t = sign_es256(&s.es, &claims(json!({"exp": now() - 120})));
    expect(&s, &t, 401, "jwt.expired");
    let t = sign_es256(&s.es, &claims(json!({"nbf": now() + 3600})));
    expect(&s, &t, 401, "jwt.not_yet_valid");
    let t = sign_es256(&s.es, &claims(json!({"iat": now() + 3600})));
    expect(&s, &t, 401, "jwt.issued_in_future");
    assert!(s.e.upstream_seen().is_empty());
}

#[test]
fn a_wrong_audience_in_an_array_is_401() {
    let s = start();
    let t = sign_es256(
        &s.es,
        &claims(json!({"aud": ["billing", "orders-v2", "ORDERS"]})),
    );
    expect(&s, &t, 401, "jwt.audience");
    assert!(s.e.upstream_seen().is_empty());
}

#[test]
fn jwe_and_nested_jwt_are_401() {
    let s = start();
    let jwe = format!(
        "{}.{}.{}.{}.{}",
        b64(r#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#),
        b64("key"),
        b64("iv"),
        b64("ciphertext"),
        b64("tag")
    );
    expect(&s, &jwe, 401, "jwt.malformed");
    let inner = sign_es256(&s.es, &claims(json!({})));
    let h = json!({"alg": "HS256", "cty": "JWT"}).to_string();
    let nested = hs256_raw(SECRET, &h, &inner);
    expect(&s, &nested, 401, "jwt.malformed");
    assert!(s.e.upstream_seen().is_empty());
}

#[test]
fn oversized_tokens_are_refused() {
    let s = start();
    let good = sign_es256(&s.es, &claims(json!({})));
    let parts: Vec<&str> = good.split('.').collect();
    // Over max_token_bytes (8 KiB) but inside Envoy's header limit: our 401.
    let big = format!("{}.{}.{}", parts[0], "A".repeat(32 * 1024), parts[2]);
    expect(&s, &big, 401, "jwt.too_large");
    // 1 MB: Envoy's own header limit (60 KiB) answers 431 before any filter runs.
    let huge = format!("{}.{}.{}", parts[0], "A".repeat(1024 * 1024), parts[2]);
    let r = send(&s, &huge);
    assert_eq!(r.status, 431, "{}", r.text());
    assert!(s.e.upstream_seen().is_empty());
}

#[test]
fn duplicated_json_members_are_401_even_when_signed() {
    let s = start();
    let exp = now() + 600;
    let payload = format!(r#"{{"iss":"{HS_ISS}","sub":"alice","sub":"admin","exp":{exp}}}"#);
    let t = hs256_raw(SECRET, r#"{"alg":"HS256","kid":"h1"}"#, &payload);
    expect(&s, &t, 401, "jwt.malformed");
    let payload = format!(r#"{{"iss":"{HS_ISS}","sub":"alice","exp":{exp}}}"#);
    let t = hs256_raw(SECRET, r#"{"alg":"HS256","kid":"h1","kid":"h2"}"#, &payload);
    expect(&s, &t, 401, "jwt.malformed");
    assert!(s.e.upstream_seen().is_empty());
    // The same token without the duplicate passes: the duplicate was the reason.
    let t = hs256_raw(SECRET, r#"{"alg":"HS256","kid":"h1"}"#, &payload);
    assert_eq!(send(&s, &t).status, 200);
}

#[test]
fn jwks_endpoint_slow_down_or_garbage_keeps_every_verdict() {
    let k = es256("k");
    let server = JwksServer::start();
    server.set("/keys", jwks(&[jwk_es256(&k, "k")]));
    let policy = json!({
        "providers": [{"name": "idp", "issuer": ISS, "algorithms": ["ES256"],
            "remote_jwks": {"cluster": "jwks", "uri": "http://idp.example/keys",
                            "refresh_secs": 1, "timeout_ms": 300, "unknown_kid_refetch_secs": 1}}],
        "default": {}
    });
    let e = envoy()
        .wasm("jwt-auth", policy)
        .cluster("jwks", server.addr)
        .start();
    let good = sign_es256(&k, &claims(json!({})));
    let forged = sign_es256(&es256("k"), &claims(json!({})));
    let unknown = sign_es256(&es256("other"), &claims(json!({})));
    let get = |t: &str| e.get("/x", &[("authorization", &format!("Bearer {t}"))]);
    assert!(eventually(10, || get(&good).status == 200));
    for mode in [
        Mode::Slow(std::time::Duration::from_secs(2)),
        Mode::Drop,
        Mode::Garbage,
    ] {
        server.mode(mode.clone());
        let hits = server.hits();
        for _ in 0..5 {
            assert_eq!(get(&good).status, 200, "{mode:?}");
            get(&forged).assert_problem(401, "jwt.bad_signature");
            // Unknown kids ask for refetches; they are rate-limited and never block.
            get(&unknown).assert_problem(401, "jwt.unknown_kid");
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        assert!(
            eventually(10, || server.hits() > hits),
            "{mode:?}: no fetch was attempted"
        );
    }
    let seen = e.upstream_seen();
    assert!(seen.iter().all(|s| s.path == "/x"));
    assert_eq!(seen.len(), 16);
}
