//! Micro-benchmarks of each control's hot path (ns/op, median of 7 batches). `make bench` runs
//! them natively and, built for wasm32-wasip1 (`benches/micro/main.rs`), in V8 (Node's), so
//! that each cost is known in both.

use std::hint::black_box;
use std::time::{Instant, SystemTime};

use portcullis::control::{configure, Control, Env};
use portcullis::controls::content_type::ContentType;
use portcullis::controls::header_guard::HeaderGuard;
use portcullis::controls::payload_crypto::PayloadCrypto;
use portcullis::store::MemoryStore;
use portcullis::RequestView;
use portcullis::ResponseView;

fn ns_per_op(mut f: impl FnMut()) -> f64 {
    // Size a batch to ~20 ms, then take the median of 7 batches.
    let mut n = 1u64;
    loop {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        if t.elapsed().as_millis() >= 20 || n > 1 << 24 {
            break;
        }
        n *= 2;
    }
    let mut runs: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed().as_nanos() as f64 / n as f64
        })
        .collect();
    runs.sort_by(|a, b| a.total_cmp(b));
    runs[3]
}

#[path = "../../tests/support/jwt.rs"]
pub mod jwt;

/// A realistic JSON order document of about `size` bytes.
pub fn order_json(size: usize) -> String {
    let mut items = Vec::new();
    let mut s = String::new();
    let mut i = 0;
    while s.len() < size {
        items.push(format!(
            r#"{{"sku":"SKU-{i:05}","qty":{},"price":"{}.99","tags":["a","b"]}}"#,
            i % 7 + 1,
            i % 90 + 10
        ));
        s = format!(
            r#"{{"customer":"c-1842","currency":"EUR","items":[{}]}}"#,
            items.join(",")
        );
        i += 1;
    }
    s
}

/// api-schema's bench policy: the contract of `order_json`'s documents (POST /api/orders), 20
/// properties in all, most of them optional as in real contracts; responses not checked.
pub fn api_schema_policy() -> String {
    let s = |extra: serde_json::Value| {
        let mut v = serde_json::json!({"type": "string"});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        v
    };
    let item = serde_json::json!({
        "type": "object", "required": ["sku", "qty"], "additionalProperties": false,
        "properties": {
            "sku": s(serde_json::json!({"pattern": "^SKU-[0-9]{5}$"})),
            "qty": {"type": "integer", "minimum": 1, "maximum": 99},
            "price": s(serde_json::json!({"pattern": "^[0-9]+\\.[0-9]{2}$"})),
            "tags": {"type": "array", "maxItems": 8, "items": s(serde_json::json!({"maxLength": 16}))},
            "gift": {"type": "boolean"}
        }
    });
    let order = serde_json::json!({
        "type": "object", "required": ["customer", "currency", "items"], "additionalProperties": false,
        "properties": {
            "customer": s(serde_json::json!({"pattern": "^c-[0-9]+$"})),
            "currency": {"type": "string", "enum": ["EUR", "USD", "GBP"]},
            "items": {"type": "array", "minItems": 1, "maxItems": 100, "items": item},
            "note": s(serde_json::json!({"maxLength": 200})),
            "coupon": s(serde_json::json!({"maxLength": 32})),
            "channel": {"type": "string", "enum": ["web", "app", "partner"]},
            "requested_at": s(serde_json::json!({"format": "date-time"})),
            "shipping": {"type": "object", "additionalProperties": false, "properties": {
                "name": s(serde_json::json!({"maxLength": 100})),
                "street": s(serde_json::json!({"maxLength": 100})),
                "city": s(serde_json::json!({"maxLength": 60})),
                "zip": s(serde_json::json!({"pattern": "^[0-9A-Z -]{3,10}$"})),
                "country": s(serde_json::json!({"pattern": "^[A-Z]{2}$"}))
            }}
        }
    });
    serde_json::json!({
        "openapi": {
            "openapi": "3.0.3", "info": {"title": "bench", "version": "1"},
            "servers": [{"url": "/api"}],
            "paths": {"/orders": {"post": {
                "requestBody": {"required": true,
                                "content": {"application/json": {"schema": order}}},
                "responses": {"201": {"description": "created"}}
            }}}
        },
        "responses": "off"
    })
    .to_string()
}

pub fn run() -> Vec<(String, f64)> {
    let store = MemoryStore::default();
    let env = Env {
        now: SystemTime::now(),
        store: &store,
    };
    let mut out = Vec::new();

    let ct: ContentType =
        configure(br#"{"default": {"allow": ["application/json"], "max_body_bytes": 65536}}"#)
            .unwrap();
    let body = order_json(10 * 1024);
    let req = RequestView::new(
        "POST",
        "/api/orders",
        &[
            ("content-type", "application/json"),
            ("content-length", "10240"),
        ],
    )
    .unwrap();
    out.push((
        "content-type: validate a 10 KiB JSON body".to_string(),
        ns_per_op(|| {
            black_box(ct.on_request(black_box(&req), &env));
            black_box(ct.on_request_body(black_box(&req), black_box(body.as_bytes()), &env));
        }),
    ));

    let schema: portcullis::controls::api_schema::ApiSchema =
        configure(api_schema_policy().as_bytes()).unwrap();
    let body = order_json(1024);
    let len = body.len().to_string();
    let req = RequestView::new(
        "POST",
        "/api/orders",
        &[
            ("content-type", "application/json"),
            ("content-length", &len),
        ],
    )
    .unwrap();
    // The bench request is valid: the cost measured is a full validation, not a rejection.
    schema.on_request(&req, &env);
    assert!(matches!(
        schema.on_request_body(&req, body.as_bytes(), &env),
        portcullis::Verdict::Continue
    ));
    out.push((
        "api-schema: validate a 1 KiB JSON body (20 properties)".to_string(),
        ns_per_op(|| {
            black_box(schema.on_request(black_box(&req), &env));
            black_box(schema.on_request_body(black_box(&req), black_box(body.as_bytes()), &env));
        }),
    ));

    let csrf: portcullis::controls::csrf::Csrf =
        configure(br#"{"default": {"allowed_origins": ["https://app.example.com"], "token": {}}}"#)
            .unwrap();
    let req = RequestView::new(
        "POST",
        "/api/orders",
        &[
            ("origin", "https://app.example.com"),
            (
                "cookie",
                "session=abc; __Host-csrf=0123456789abcdef0123456789abcdef",
            ),
            ("x-csrf-token", "0123456789abcdef0123456789abcdef"),
        ],
    )
    .unwrap();
    out.push((
        "csrf: origin + double-submit token check".to_string(),
        ns_per_op(|| {
            black_box(csrf.on_request(black_box(&req), &env));
        }),
    ));

    let keys: Vec<String> = (0..100)
        .map(|i| {
            let h = portcullis::controls::api_key::sha256_hex(format!("pk_key_{i}").as_bytes());
            format!(r#"{{"id": "k{i}", "client": "c{i}", "sha256": "{h}", "scopes": ["read"]}}"#)
        })
        .collect();
    let api_key: portcullis::controls::api_key::ApiKey =
        configure(format!(r#"{{"keys": [{}]}}"#, keys.join(",")).as_bytes()).unwrap();
    let req = RequestView::new("GET", "/api/orders", &[("x-api-key", "pk_key_57")]).unwrap();
    out.push((
        "api-key: hash and look up a key among 100".to_string(),
        ns_per_op(|| {
            black_box(api_key.on_request(black_box(&req), &env));
        }),
    ));

    // payload-crypto: decrypt a 10 KiB A256KW/A256GCM request body, encrypt a 10 KiB response.
    let pc: PayloadCrypto = configure(
        br#"{"keys": [{"kid": "k", "alg": "A256KW", "k": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"}],
             "default": {"decrypt_request": true, "encrypt_response": {"kid": "k"}}}"#,
    )
    .unwrap();
    let jose_req = RequestView::new(
        "POST",
        "/api/orders",
        &[("content-type", "application/jose")],
    )
    .unwrap();
    let resp = ResponseView {
        status: 200,
        headers: vec![("content-type".into(), b"application/json".to_vec())],
    };
    pc.on_request(&jose_req, &env);
    let sealed = match pc.on_response_body(&jose_req, &resp, Some(body.as_bytes()), &env) {
        portcullis::Verdict::ReplaceBody { body, .. } => body,
        v => panic!("payload-crypto did not encrypt: {v:?}"),
    };
    out.push((
        "payload-crypto: decrypt a 10 KiB JWE request (A256KW, A256GCM)".to_string(),
        ns_per_op(|| {
            black_box(pc.on_request_body(black_box(&jose_req), black_box(&sealed), &env));
        }),
    ));
    out.push((
        "payload-crypto: encrypt a 10 KiB response (A256KW, A256GCM)".to_string(),
        ns_per_op(|| {
            black_box(pc.on_response_body(
                black_box(&jose_req),
                &resp,
                Some(black_box(body.as_bytes())),
                &env,
            ));
        }),
    ));
    out.push(request_signing_verify(&env));
    out.extend(jwt_auth_micro(&env));
    let hg: HeaderGuard = configure(b"{}").unwrap();
    let names: Vec<String> = (0..26).map(|i| format!("x-custom-{i}")).collect();
    let mut fields: Vec<(&str, &str)> = vec![
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
        ),
        ("accept", "application/json"),
        (
            "authorization",
            "Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln",
        ),
        ("x-request-id", "5f1c9a4e-9a1b-4f7e-8c55-0a0b0c0d0e0f"),
    ];
    fields.extend(
        names
            .iter()
            .map(|n| (n.as_str(), "some ordinary header value")),
    );
    let req = RequestView::new("GET", "/api/orders?page=2", &fields).unwrap();
    out.push((
        "header-guard: check 30 headers (default policy)".to_string(),
        ns_per_op(|| {
            black_box(hg.on_request(black_box(&req), &env));
        }),
    ));
    out
}

/// jwt-auth: one full verification per algorithm (cache off), and a cache hit.
fn jwt_auth_micro(env: &Env) -> Vec<(String, f64)> {
    use jwt_simple::prelude::*;
    use portcullis::controls::jwt_auth::JwtAuth;
    use serde_json::json;
    let now = jwt::now();
    let claims = |iss: &str| json!({"iss": iss, "sub": "bench", "iat": now, "exp": now + 86_400});
    let (es, es384, rs, ed) = (
        jwt::es256("es"),
        jwt::es384("es384"),
        jwt::rsa("rs"),
        jwt::ed25519("ed"),
    );
    let secret = b"0123456789abcdef0123456789abcdef";
    let provider = |name: &str, alg: &str, key: serde_json::Value| json!({"name": name, "issuer": name, "algorithms": [alg], "jwks": jwt::jwks(&[key])});
    let policy = |cache: usize| {
        json!({"providers": [
            provider("es", "ES256", jwt::jwk_es256(&es, "es")),
            provider("es384", "ES384", jwt::jwk_es384(&es384, "es384")),
            provider("rs", "RS256", jwt::jwk_rsa(&rs, "rs")),
            provider("ed", "EdDSA", jwt::jwk_ed25519(&ed, "ed")),
            provider("hs", "HS256", jwt::jwk_oct(secret, "hs")),
        ], "default": {}, "cache_entries": cache})
        .to_string()
    };
    let off: JwtAuth = configure(policy(0).as_bytes()).unwrap();
    let on: JwtAuth = configure(policy(16).as_bytes()).unwrap();
    let tokens = [
        ("ES256", jwt::sign_es256(&es, &claims("es"))),
        ("ES384", jwt::sign_es384(&es384, &claims("es384"))),
        ("RS256", jwt::sign_rs256(&rs, &claims("rs"))),
        ("EdDSA", jwt::sign_ed25519(&ed, &claims("ed"))),
        ("HS256", jwt::hs256(secret, Some("hs"), &claims("hs"))),
    ];
    let mut out = Vec::new();
    for (alg, token) in &tokens {
        let auth = format!("Bearer {token}");
        let req = RequestView::new("GET", "/api/orders", &[("authorization", &auth)]).unwrap();
        assert!(!off.on_request(&req, env).is_deny(), "{alg}");
        out.push((
            format!("jwt-auth: verify an {alg} token (cache off)"),
            ns_per_op(|| {
                black_box(off.on_request(black_box(&req), env));
            }),
        ));
    }
    // The verifier jwt-auth used before its table-driven ES256 (es256.rs): jwt-simple → p256's
    // wNAF, which rebuilds both points' tables and doubles 256 times per signature.
    let es_public = es.public_key();
    out.push((
        "jwt-simple alone: verify an ES256 token (p256 wNAF, no tables)".to_string(),
        ns_per_op(|| {
            black_box(
                es_public
                    .verify_token::<NoCustomClaims>(black_box(&tokens[0].1), None)
                    .unwrap(),
            );
        }),
    ));
    let auth = format!("Bearer {}", tokens[0].1);
    let req = RequestView::new("GET", "/api/orders", &[("authorization", &auth)]).unwrap();
    assert!(!on.on_request(&req, env).is_deny());
    out.push((
        "jwt-auth: a repeated ES256 token (cache hit)".to_string(),
        ns_per_op(|| {
            black_box(on.on_request(black_box(&req), env));
        }),
    ));
    out
}

/// Verify an RFC 9421 hmac-sha256 signature over a 1 KiB body (coverage, window, key, MAC,
/// Content-Digest) with the library the control runs; the replay-cache write is left out
/// (a fresh nonce per request would grow the in-memory store without bound).
fn request_signing_verify(env: &Env) -> (String, f64) {
    use portcullis::controls::request_signing::RequestSigning;
    use portcullis::signing::{self, Message, SignRequest};
    let secret = "q83vEjRWeJASNFZ4kBI0VniQEjRWeJASNFZ4kBI0Vng=";
    let policy = format!(
        r#"{{"keys": [{{"keyid": "k", "secret": "{secret}"}}], "require_nonce": false,
            "default": {{"components": ["@method", "@authority", "@path", "@query", "content-type", "content-digest"]}}}}"#
    );
    let rs: RequestSigning = configure(policy.as_bytes()).unwrap();
    let body = order_json(1024);
    let mut headers = vec![
        ("content-type".to_string(), b"application/json".to_vec()),
        ("content-length".to_string(), b"1024".to_vec()),
    ];
    let now = env
        .now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let msg = Message {
        method: "POST",
        scheme: "http",
        authority: "localhost",
        target: "/api/orders?tenant=7",
        headers: &headers,
    };
    let comps = [
        "@method",
        "@authority",
        "@path",
        "@query",
        "content-type",
        "content-digest",
    ];
    let key = signing::decode_secret(secret).unwrap();
    let s = signing::sign(
        &msg,
        Some(body.as_bytes()),
        &key,
        &SignRequest::new("k", now, &comps),
    )
    .unwrap();
    for (k, v) in s.headers() {
        headers.push((k.to_ascii_lowercase(), v.into_bytes()));
    }
    let h: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), std::str::from_utf8(v).unwrap()))
        .collect();
    let req = RequestView::new("POST", "/api/orders?tenant=7", &h).unwrap();
    let keys = [signing::Key::new("k", key)];
    let opts = signing::VerifyOptions::at(now);
    let m = Message::from_view(&req);
    // Sanity: the control accepts it (one nonce-free pass fills the store once).
    assert!(!rs.on_request_body(&req, body.as_bytes(), env).is_deny());
    (
        "request-signing: verify an RFC 9421 HMAC signature over 1 KiB".to_string(),
        ns_per_op(|| {
            let v = signing::verify(
                black_box(&m),
                Some(black_box(body.as_bytes())),
                &keys,
                &opts,
            );
            black_box(v.unwrap());
        }),
    )
}
