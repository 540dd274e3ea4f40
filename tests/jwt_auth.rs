//! jwt-auth in a real Envoy: inline and remote keys, rotation, a key server that is down,
//! per-route scopes, and the claim headers the upstream sees.

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

fn claims(extra: Value) -> Value {
    let mut c =
        json!({"iss": ISS, "sub": "alice", "aud": "orders", "iat": now(), "exp": now() + 600});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn inline_policy(keys: &[Value]) -> Value {
    json!({
        "realm": "orders",
        "providers": [{
            "name": "idp", "issuer": ISS, "audiences": ["orders"], "algorithms": ["ES256", "RS256"],
            "jwks": jwks(keys),
            "forward": {"claims": ["sub", "groups"], "payload": true}
        }],
        "routes": [
            {"match": {"prefix": "/health"}, "allow_anonymous": true},
            {"match": {"prefix": "/admin"}, "scopes_all": ["orders:admin"]},
            {"match": {"prefix": "/orders", "methods": ["POST"]}, "scopes_any": ["orders:write", "orders:admin"]}
        ],
        "default": {}
    })
}

#[test]
fn inline_jwks_valid_token_reaches_the_upstream_with_claim_headers_only_ours() {
    let es = es256("e1");
    let rs = rsa("r1");
    let e = envoy()
        .wasm(
            "jwt-auth",
            inline_policy(&[jwk_es256(&es, "e1"), jwk_rsa(&rs, "r1")]),
        )
        .start();
    let t = sign_es256(&es, &claims(json!({"groups": ["eng", "ops"]})));
    let r = e.get(
        "/orders/1",
        &[
            ("authorization", &bearer(&t)),
            ("x-jwt-sub", "mallory"),
            ("x-jwt-groups", "admins"),
            ("x-jwt-payload", "e30"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = e.upstream_seen();
    assert_eq!(seen.len(), 1);
    let subs: Vec<_> = seen[0]
        .headers
        .iter()
        .filter(|(k, _)| k == "x-jwt-sub")
        .collect();
    assert_eq!(subs.len(), 1, "{:?}", seen[0].headers);
    assert_eq!(seen[0].header("x-jwt-sub"), Some("alice"));
    assert_eq!(seen[0].header("x-jwt-groups"), Some("eng,ops"));
    assert_eq!(seen[0].header("x-jwt-payload"), t.split('.').nth(1));
    assert_eq!(seen[0].header("authorization"), Some(bearer(&t).as_str()));
    // RS256 through the same provider.
    let r = e.get(
        "/orders/1",
        &[(
            "authorization",
            &bearer(&sign_rs256(&rs, &claims(json!({})))),
        )],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(e.counter("jwt_auth", "allowed", "ok"), 2);
}

#[test]
fn missing_invalid_and_expired_tokens_get_rfc6750_challenges() {
    let es = es256("e1");
    let e = envoy()
        .wasm("jwt-auth", inline_policy(&[jwk_es256(&es, "e1")]))
        .start();
    let r = e.get("/orders/1", &[("x-jwt-sub", "mallory")]);
    r.assert_problem(401, "jwt.missing");
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="orders""#)
    );
    let expired = sign_es256(&es, &claims(json!({"exp": now() - 3600})));
    let r = e.get("/orders/1", &[("authorization", &bearer(&expired))]);
    r.assert_problem(401, "jwt.expired");
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            r#"Bearer realm="orders", error="invalid_token", error_description="the token has expired""#
        )
    );
    let other = sign_es256(&es256("e1"), &claims(json!({})));
    let r = e.get("/orders/1", &[("authorization", &bearer(&other))]);
    r.assert_problem(401, "jwt.bad_signature");
    let r = e.get(
        "/orders/1",
        &[(
            "authorization",
            &bearer(&sign_es256(&es, &claims(json!({"aud": "billing"})))),
        )],
    );
    r.assert_problem(401, "jwt.audience");
    assert!(e.upstream_seen().is_empty());
    assert_eq!(e.counter("jwt_auth", "denied", "jwt.missing"), 1);
    assert_eq!(e.counter("jwt_auth", "denied", "jwt.expired"), 1);
    // The public route lets an anonymous request through, spoofed claims removed.
    let r = e.get("/health", &[("x-jwt-sub", "mallory")]);
    assert_eq!(r.status, 200);
    assert_eq!(e.upstream_seen()[0].header("x-jwt-sub"), None);
}

#[test]
fn per_route_scopes_rfc6750_3_1_insufficient_scope() {
    let es = es256("e1");
    let e = envoy()
        .wasm("jwt-auth", inline_policy(&[jwk_es256(&es, "e1")]))
        .start();
    let reader = sign_es256(&es, &claims(json!({"scope": "orders:read"})));
    let writer = sign_es256(
        &es,
        &claims(json!({"scp": ["orders:read", "orders:write"]})),
    );
    let r = e.get("/admin/users", &[("authorization", &bearer(&reader))]);
    r.assert_problem(403, "jwt.scope");
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            r#"Bearer realm="orders", error="insufficient_scope", error_description="the token lacks a required scope", scope="orders:admin""#
        )
    );
    let r = e.post("/orders", &[("authorization", &bearer(&reader))], b"");
    r.assert_problem(403, "jwt.scope");
    assert!(e.upstream_seen().is_empty());
    let r = e.post("/orders", &[("authorization", &bearer(&writer))], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    // GET /orders needs no scope.
    assert_eq!(
        e.get("/orders", &[("authorization", &bearer(&reader))])
            .status,
        200
    );
    assert_eq!(e.upstream_seen().len(), 2);
}

fn remote_policy(remote: Value) -> Value {
    json!({
        "providers": [{"name": "idp", "issuer": ISS, "algorithms": ["ES256"], "remote_jwks": remote,
                       "forward": {"claims": ["sub"]}}],
        "default": {}
    })
}

#[test]
fn remote_jwks_through_a_cluster_and_key_rotation() {
    let (k1, k2) = (es256("k1"), es256("k2"));
    let server = JwksServer::start();
    server.set("/keys", jwks(&[jwk_es256(&k1, "k1")]));
    let e = envoy()
        .wasm(
            "jwt-auth",
            remote_policy(json!({"cluster": "jwks", "uri": "http://idp.example/keys",
                "refresh_secs": 2, "unknown_kid_refetch_secs": 1})),
        )
        .cluster("jwks", server.addr)
        .start();
    let t1 = sign_es256(&k1, &claims(json!({})));
    let t2 = sign_es256(&k2, &claims(json!({})));
    let get = |t: &str| e.get("/x", &[("authorization", &bearer(t))]);
    assert!(
        eventually(10, || get(&t1).status == 200),
        "k1 never accepted"
    );
    assert_eq!(
        e.upstream_seen().last().unwrap().header("x-jwt-sub"),
        Some("alice")
    );
    get(&t2).assert_problem(401, "jwt.unknown_kid");
    // Rotation: k2 added, then k1 removed.
    server.set("/keys", jwks(&[jwk_es256(&k2, "k2")]));
    assert!(
        eventually(10, || get(&t2).status == 200),
        "k2 never accepted"
    );
    assert!(
        eventually(10, || get(&t1).status == 401),
        "k1 still accepted"
    );
    get(&t1).assert_problem(401, "jwt.unknown_kid");
    assert!(server.hits() >= 2);
}

#[test]
fn jwks_down_at_start_fails_closed_then_last_good_keys_are_kept() {
    let k = es256("k");
    let addr = JwksServer::free_addr();
    let e = envoy()
        .wasm(
            "jwt-auth",
            remote_policy(json!({"cluster": "jwks", "uri": "http://idp.example/keys",
                "refresh_secs": 1, "timeout_ms": 500})),
        )
        .cluster("jwks", addr)
        .start();
    let t = sign_es256(&k, &claims(json!({})));
    let get = || e.get("/x", &[("authorization", &bearer(&t))]);
    let r = get();
    r.assert_problem(503, "jwt.keys_unavailable");
    assert!(e.upstream_seen().is_empty());
    // The key server comes up: keys load (the backoff is at most 1 s here).
    let server = JwksServer::start_on(addr);
    server.set("/keys", jwks(&[jwk_es256(&k, "k")]));
    assert!(eventually(15, || get().status == 200), "keys never loaded");
    // Down again, or answering garbage: the last good keys stay.
    server.mode(Mode::Drop);
    let hits = server.hits();
    assert!(
        eventually(10, || server.hits() > hits + 1),
        "no refetch while down"
    );
    assert_eq!(get().status, 200);
    server.mode(Mode::Garbage);
    let hits = server.hits();
    assert!(
        eventually(10, || server.hits() > hits + 1),
        "no refetch of garbage"
    );
    assert_eq!(get().status, 200);
}

#[test]
fn oidc_discovery_through_the_cluster() {
    let k = es256("k");
    let server = JwksServer::start();
    server.set(
        "/.well-known/openid-configuration",
        json!({"issuer": ISS, "jwks_uri": "https://idp.example/oauth/jwks"}),
    );
    server.set("/oauth/jwks", jwks(&[jwk_es256(&k, "k")]));
    let e = envoy()
        .wasm(
            "jwt-auth",
            remote_policy(json!({"cluster": "jwks", "discovery": true})),
        )
        .cluster("jwks", server.addr)
        .start();
    let t = sign_es256(&k, &claims(json!({})));
    assert!(eventually(10, || e
        .get("/x", &[("authorization", &bearer(&t))])
        .status
        == 200));
    assert_eq!(
        e.upstream_seen().last().unwrap().header("x-jwt-sub"),
        Some("alice")
    );
}

#[test]
fn an_invalid_policy_stops_envoy() {
    let p = json!({"providers": [{"name": "h", "issuer": "h", "algorithms": ["HS256"],
        "jwks": jwks(&[jwk_oct(b"too-short", "k")])}]});
    let log = envoy().wasm("jwt-auth", p).start_expect_exit();
    assert!(
        log.contains("providers[0].jwks.keys[0].k: weak key"),
        "{log}"
    );
}

/// RFC 6750 §3.1: two `Authorization` field lines (Envoy joins them with a comma), or a token
/// both in the header and in the configured query parameter (the same token included), are
/// 400 `jwt.multiple_credentials` with an `invalid_request` challenge; the upstream sees none.
#[test]
fn rfc6750_3_1_more_than_one_credential_is_400_invalid_request() {
    let es = es256("e1");
    let mut policy = inline_policy(&[jwk_es256(&es, "e1")]);
    policy["providers"][0]["from"] =
        json!([{"header": "authorization"}, {"query": "access_token"}]);
    let e = envoy().wasm("jwt-auth", policy).start();
    let t = sign_es256(&es, &claims(json!({})));
    let other = sign_es256(&es, &claims(json!({"sub": "bob"})));
    let challenge = r#"Bearer realm="orders", error="invalid_request", error_description="the request carries more than one credential""#;
    let cases: Vec<(String, Vec<(&str, String)>)> = vec![
        (
            "/orders/1".into(),
            vec![
                ("authorization", bearer(&t)),
                ("authorization", bearer(&other)),
            ],
        ),
        (
            "/orders/1".into(),
            vec![("authorization", bearer(&t)), ("authorization", bearer(&t))],
        ),
        (
            "/orders/1".into(),
            vec![("authorization", format!("Basic dXNlcjpwYXNz, Bearer {t}"))],
        ),
        (
            format!("/orders/1?access_token={t}"),
            vec![("authorization", bearer(&t))],
        ),
        (
            format!("/health?access_token={t}"),
            vec![("authorization", bearer(&other))],
        ),
    ];
    for (path, headers) in &cases {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = e.get(path, &h);
        r.assert_problem(400, "jwt.multiple_credentials");
        assert_eq!(r.header("www-authenticate"), Some(challenge), "{path}");
    }
    assert!(e.upstream_seen().is_empty());
    assert_eq!(
        e.counter("jwt_auth", "denied", "jwt.multiple_credentials"),
        cases.len() as u64
    );
    // One credential, in either place, passes.
    assert_eq!(
        e.get(&format!("/orders/1?access_token={t}"), &[]).status,
        200
    );
    assert_eq!(
        e.get("/orders/1", &[("authorization", &bearer(&t))]).status,
        200
    );
}
