//! Native micro-benchmarks of each control's hot path (ns/op, median of 7 batches).

use std::hint::black_box;
use std::time::{Instant, SystemTime};

use portcullis::control::{configure, Control, Env};
use portcullis::controls::content_type::ContentType;
use portcullis::store::MemoryStore;
use portcullis::RequestView;

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
    let body = crate::variants::order_json(10 * 1024);
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
    out.extend(jwt_auth_micro(&env));
    out
}

use crate::variants::jwt;

/// jwt-auth: one full verification per algorithm (cache off), and a cache hit.
fn jwt_auth_micro(env: &Env) -> Vec<(String, f64)> {
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
