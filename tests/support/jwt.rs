//! Test keys and tokens for jwt-auth, shared by the unit tests (included with `#[path]`) and
//! the real-Envoy tests. Keys are generated per run except RSA, whose generation is slow in
//! debug builds: that one is a fixed test-only key in tests/data/.
#![allow(dead_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{KeyInit, Mac};
use jwt_simple::prelude::*;
use serde_json::{json, Map, Value};

pub const RSA_PEM: &str = include_str!("../data/jwt-rsa2048.pem");

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn rsa(kid: &str) -> RS256KeyPair {
    RS256KeyPair::from_pem(RSA_PEM)
        .expect("test RSA key")
        .with_key_id(kid)
}

pub fn es256(kid: &str) -> ES256KeyPair {
    ES256KeyPair::generate().with_key_id(kid)
}

pub fn es384(kid: &str) -> ES384KeyPair {
    ES384KeyPair::generate().with_key_id(kid)
}

pub fn ed25519(kid: &str) -> Ed25519KeyPair {
    Ed25519KeyPair::generate().with_key_id(kid)
}

pub fn jwk_rsa(kp: &RS256KeyPair, kid: &str) -> Value {
    let c = kp.public_key().to_components();
    json!({"kty": "RSA", "kid": kid, "use": "sig", "n": b64(c.n), "e": b64(c.e)})
}

fn jwk_ec(point: Vec<u8>, crv: &str, kid: &str) -> Value {
    let n = (point.len() - 1) / 2;
    json!({"kty": "EC", "crv": crv, "kid": kid, "x": b64(&point[1..1 + n]), "y": b64(&point[1 + n..])})
}

pub fn jwk_es256(kp: &ES256KeyPair, kid: &str) -> Value {
    jwk_ec(
        kp.public_key().public_key().to_bytes_uncompressed(),
        "P-256",
        kid,
    )
}

pub fn jwk_es384(kp: &ES384KeyPair, kid: &str) -> Value {
    jwk_ec(
        kp.public_key().public_key().to_bytes_uncompressed(),
        "P-384",
        kid,
    )
}

pub fn jwk_ed25519(kp: &Ed25519KeyPair, kid: &str) -> Value {
    json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(kp.public_key().to_bytes())})
}

pub fn jwk_oct(secret: &[u8], kid: &str) -> Value {
    json!({"kty": "oct", "kid": kid, "k": b64(secret)})
}

pub fn jwks(keys: &[Value]) -> Value {
    json!({ "keys": keys })
}

/// jwt-simple claims whose payload is exactly `claims` (an object).
fn claims_of(claims: &Value) -> JWTClaims<Map<String, Value>> {
    JWTClaims {
        issued_at: None,
        expires_at: None,
        invalid_before: None,
        issuer: None,
        subject: None,
        audiences: None,
        jwt_id: None,
        nonce: None,
        custom: claims.as_object().cloned().unwrap_or_default(),
    }
}

pub fn sign_rs256(kp: &RS256KeyPair, claims: &Value) -> String {
    kp.sign(claims_of(claims)).unwrap()
}
pub fn sign_es256(kp: &ES256KeyPair, claims: &Value) -> String {
    kp.sign(claims_of(claims)).unwrap()
}
pub fn sign_es384(kp: &ES384KeyPair, claims: &Value) -> String {
    kp.sign(claims_of(claims)).unwrap()
}
pub fn sign_ed25519(kp: &Ed25519KeyPair, claims: &Value) -> String {
    kp.sign(claims_of(claims)).unwrap()
}

/// A token with a hand-written header and payload (JSON text, so duplicates are possible),
/// HMAC-SHA256 authenticated with `secret`.
pub fn hs256_raw(secret: &[u8], header: &str, payload: &str) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(mac.finalize().into_bytes()))
}

pub fn hs256(secret: &[u8], kid: Option<&str>, claims: &Value) -> String {
    let header = match kid {
        Some(k) => json!({"alg": "HS256", "typ": "JWT", "kid": k}),
        None => json!({"alg": "HS256", "typ": "JWT"}),
    };
    hs256_raw(secret, &header.to_string(), &claims.to_string())
}

/// A token with this header and payload and raw signature bytes.
pub fn unsigned(header: &str, payload: &str, sig: &[u8]) -> String {
    format!("{}.{}.{}", b64(header), b64(payload), b64(sig))
}

/// Replace a token's header (re-encoding it), keeping its payload and signature.
pub fn with_header(token: &str, header: &Value) -> String {
    let mut parts = token.splitn(2, '.');
    let _ = parts.next();
    format!("{}.{}", b64(header.to_string()), parts.next().unwrap())
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
