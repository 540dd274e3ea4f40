use super::*;
use crate::control::configure;
use crate::store::MemoryStore;
use serde_json::json;
use std::time::{Duration, SystemTime};

#[path = "../../../tests/support/jwt.rs"]
mod kit;
use kit::*;

const NOW: u64 = 1_800_000_000;
const ES: &str = "https://es.example";
const RS: &str = "https://rs.example";
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

struct Fixture {
    c: JwtAuth,
    es: jwt_simple::prelude::ES256KeyPair,
    es2: jwt_simple::prelude::ES256KeyPair,
    es384: jwt_simple::prelude::ES384KeyPair,
    rsa: jwt_simple::prelude::RS256KeyPair,
    ed: jwt_simple::prelude::Ed25519KeyPair,
}

fn policy(f: &Fixture, extra: Value) -> Value {
    let mut p = json!({
        "realm": "orders",
        "providers": [
            {"name": "es", "issuer": ES, "audiences": ["api"], "algorithms": ["ES256", "ES384"],
             "jwks": jwks(&[jwk_es256(&f.es, "e1"), jwk_es256(&f.es2, "e2"), jwk_es384(&f.es384, "e3")]),
             "forward": {"claims": ["sub", "roles", {"claim": "email", "header": "x-user-email"}],
                         "payload": true}},
            {"name": "rs", "issuer": RS, "algorithms": ["RS256", "EdDSA"],
             "jwks": jwks(&[jwk_rsa(&f.rsa, "r1"), jwk_ed25519(&f.ed, "d1")]),
             "forward": {"claims": ["sub"], "strip_authorization": true}},
            {"name": "hs", "issuer": "hs", "algorithms": ["HS256"], "require_exp": false,
             "jwks": jwks(&[jwk_oct(SECRET, "h1")])}
        ],
        "routes": [
            {"match": {"prefix": "/public"}, "allow_anonymous": true},
            {"match": {"prefix": "/admin"}, "scopes_all": ["admin", "write"]},
            {"match": {"prefix": "/read"}, "scopes_any": ["read", "write"]},
            {"match": {"prefix": "/es"}, "providers": ["es"]},
            {"match": {"prefix": "/closed"}, "deny": true}
        ],
        "default": {}
    });
    if let (Some(p), Some(extra)) = (p.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            p.insert(k.clone(), v.clone());
        }
    }
    p
}

fn fixture_with(extra: Value) -> Fixture {
    let mut f = Fixture {
        c: build(
            &json!({"providers": [{"name": "x", "issuer": "x", "algorithms": ["HS256"],
            "jwks": jwks(&[jwk_oct(SECRET, "p")])}], "default": {}}),
        ),
        es: es256("e1"),
        es2: es256("e2"),
        es384: es384("e3"),
        rsa: rsa("r1"),
        ed: ed25519("d1"),
    };
    // The keys exist before the policy that names them.
    f.c = build(&policy(&f, extra));
    f
}

fn fixture() -> Fixture {
    fixture_with(json!({}))
}

fn build(p: &Value) -> JwtAuth {
    configure::<JwtAuth>(p.to_string().as_bytes()).unwrap()
}

fn config_err(p: &Value) -> ConfigError {
    configure::<JwtAuth>(p.to_string().as_bytes()).unwrap_err()
}

fn at(c: &JwtAuth, secs: u64, method: &str, path: &str, headers: &[(&str, &str)]) -> Verdict {
    let store = MemoryStore::default();
    let env = Env {
        now: SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
        store: &store,
    };
    c.on_request(&RequestView::new(method, path, headers).unwrap(), &env)
}

fn get(c: &JwtAuth, path: &str, token: &str) -> Verdict {
    let auth = format!("Bearer {token}");
    at(c, NOW, "GET", path, &[("authorization", &auth)])
}

fn denial(v: &Verdict) -> (u16, &'static str, String) {
    match v {
        Verdict::Deny(r) => {
            let www = r
                .headers
                .iter()
                .find(|(k, _)| k == "www-authenticate")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            (r.status, r.code, www)
        }
        other => panic!("expected a denial, got {other:?}"),
    }
}

fn code(v: &Verdict) -> &'static str {
    denial(v).1
}

fn ops(v: &Verdict) -> Vec<HeaderOp> {
    match v {
        Verdict::Mutate(ops) => ops.clone(),
        Verdict::Continue => Vec::new(),
        other => panic!("expected a pass, got {other:?}"),
    }
}

fn set(v: &Verdict, name: &str) -> Option<String> {
    ops(v).into_iter().find_map(|op| match op {
        HeaderOp::Set(k, val) if k == name => Some(val),
        _ => None,
    })
}

fn claims(iss: &str) -> Value {
    json!({"iss": iss, "sub": "alice", "aud": "api", "iat": NOW - 10, "exp": NOW + 600})
}

fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            if v.is_null() {
                b.remove(k);
            } else {
                b.insert(k.clone(), v.clone());
            }
        }
    }
    base
}

#[test]
fn every_algorithm_family_verifies_with_its_key() {
    let f = fixture();
    let tokens = [
        ("ES256", sign_es256(&f.es, &claims(ES))),
        ("ES384", sign_es384(&f.es384, &claims(ES))),
        ("RS256", sign_rs256(&f.rsa, &claims(RS))),
        ("EdDSA", sign_ed25519(&f.ed, &claims(RS))),
        ("HS256", hs256(SECRET, Some("h1"), &claims("hs"))),
    ];
    for (alg, t) in tokens {
        let v = get(&f.c, "/orders", &t);
        assert!(!v.is_deny(), "{alg}: {v:?}");
    }
}

#[test]
fn rfc6750_3_missing_token_is_401_with_a_bare_challenge() {
    let f = fixture();
    let (status, code_, www) = denial(&at(&f.c, NOW, "GET", "/orders", &[]));
    assert_eq!((status, code_), (401, "jwt.missing"));
    assert_eq!(www, r#"Bearer realm="orders""#);
    // Another auth-scheme is no bearer token.
    let v = at(
        &f.c,
        NOW,
        "GET",
        "/orders",
        &[("authorization", "Basic YTpi")],
    );
    assert_eq!(code(&v), "jwt.missing");
}

#[test]
fn rfc7235_bearer_scheme_is_case_insensitive() {
    let f = fixture();
    let t = sign_es256(&f.es, &claims(ES));
    for scheme in ["bearer", "BEARER", "Bearer", "bEaReR"] {
        let auth = format!("{scheme}  {t}");
        let v = at(&f.c, NOW, "GET", "/orders", &[("authorization", &auth)]);
        assert!(!v.is_deny(), "{scheme}: {v:?}");
    }
}

#[test]
fn rfc6750_3_1_invalid_token_names_the_error() {
    let f = fixture();
    let t = sign_es256(&f.es, &with(claims(ES), json!({"exp": NOW - 3600})));
    let (status, code_, www) = denial(&get(&f.c, "/orders", &t));
    assert_eq!((status, code_), (401, "jwt.expired"));
    assert_eq!(
        www,
        r#"Bearer realm="orders", error="invalid_token", error_description="the token has expired""#
    );
}

#[test]
fn alg_none_is_refused_in_any_spelling() {
    let f = fixture();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let h = json!({"alg": alg, "typ": "JWT"}).to_string();
        let t = format!("{}.{}.", b64(&h), b64(claims(ES).to_string()));
        assert_eq!(
            code(&get(&f.c, "/orders", &t)),
            "jwt.malformed",
            "{alg} empty sig"
        );
        let t = unsigned(&h, &claims(ES).to_string(), b"x");
        assert_eq!(code(&get(&f.c, "/orders", &t)), "jwt.algorithm", "{alg}");
    }
}

#[test]
fn only_the_providers_algorithms_are_accepted() {
    let f = fixture();
    // A valid ES256 signature, but provider `rs` allows RS256 and EdDSA only.
    let t = sign_es256(&f.es, &claims(RS));
    assert_eq!(code(&get(&f.c, "/orders", &t)), "jwt.algorithm");
    // An algorithm name outside the list, with a key-shaped signature.
    let h = json!({"alg": "ES512", "kid": "e1"}).to_string();
    let t = unsigned(&h, &claims(ES).to_string(), &[1; 132]);
    assert_eq!(code(&get(&f.c, "/orders", &t)), "jwt.algorithm");
}

#[test]
fn rsa_public_key_as_hmac_secret_is_refused() {
    let f = fixture();
    let pem = f.rsa.public_key().to_pem().unwrap();
    let h = json!({"alg": "HS256", "typ": "JWT", "kid": "r1"}).to_string();
    let t = hs256_raw(pem.as_bytes(), &h, &claims(RS).to_string());
    assert_eq!(code(&get(&f.c, "/orders", &t)), "jwt.algorithm");
    // Even where HS256 is allowed next to RS256, the RSA key never serves as a secret.
    let p = json!({"providers": [{"name": "rs", "issuer": RS, "algorithms": ["RS256", "HS256"],
        "jwks": jwks(&[jwk_rsa(&f.rsa, "r1")])}], "default": {}});
    let c = build(&p);
    assert_eq!(code(&get(&c, "/orders", &t)), "jwt.unknown_kid");
    let h = json!({"alg": "HS256"}).to_string();
    let t = hs256_raw(pem.as_bytes(), &h, &claims(RS).to_string());
    assert_eq!(code(&get(&c, "/orders", &t)), "jwt.unknown_kid");
}

#[test]
fn kid_selects_the_key_and_without_kid_every_key_of_the_type_is_tried() {
    let f = fixture();
    let t = sign_es256(&f.es2, &claims(ES));
    assert!(!get(&f.c, "/orders", &t).is_deny());
    // No kid: e1 and e2 are tried.
    let bytes = f.es2.to_bytes();
    let anonymous = jwt_simple::prelude::ES256KeyPair::from_bytes(&bytes).unwrap();
    let no_kid = sign_es256(&anonymous, &claims(ES));
    assert!(!get(&f.c, "/orders", &no_kid).is_deny());
    // The wrong kid: e1 does not verify e2's signature.
    let wrong = jwt_simple::prelude::ES256KeyPair::from_bytes(&bytes)
        .unwrap()
        .with_key_id("e1");
    let wrong = sign_es256(&wrong, &claims(ES));
    assert_eq!(code(&get(&f.c, "/orders", &wrong)), "jwt.bad_signature");
    for kid in ["nope", "../../etc/passwd", "' OR 1=1 --", "e1\u{0}"] {
        let h = with_header(&t, &json!({"alg": "ES256", "kid": kid}));
        assert_eq!(
            code(&get(&f.c, "/orders", &h)),
            "jwt.unknown_kid",
            "{kid:?}"
        );
    }
}

#[test]
fn rfc8725_3_10_jku_x5u_and_embedded_jwk_are_not_trusted() {
    let f = fixture();
    let attacker = es256("e1");
    let t = sign_es256(&attacker, &claims(ES));
    let jwk = jwk_es256(&attacker, "e1");
    for header in [
        json!({"alg": "ES256", "kid": "e1", "jku": "https://evil.example/jwks"}),
        json!({"alg": "ES256", "kid": "e1", "x5u": "https://evil.example/cert"}),
        json!({"alg": "ES256", "kid": "e1", "jwk": jwk.to_string()}),
    ] {
        let forged = with_header(&t, &header);
        assert_eq!(code(&get(&f.c, "/orders", &forged)), "jwt.bad_signature");
    }
    let forged = with_header(&t, &json!({"alg": "ES256", "kid": "e1", "jwk": jwk}));
    assert_eq!(code(&get(&f.c, "/orders", &forged)), "jwt.malformed");
}

#[test]
fn rfc7515_4_1_11_crit_extensions_are_refused() {
    let f = fixture();
    let h = json!({"alg": "HS256", "kid": "h1", "crit": ["exp"], "exp": 1}).to_string();
    let t = hs256_raw(SECRET, &h, &claims("hs").to_string());
    assert_eq!(code(&get(&f.c, "/orders", &t)), "jwt.malformed");
    let h = json!({"alg": "HS256", "kid": "h1", "crit": "b64"}).to_string();
    let t = hs256_raw(SECRET, &h, &claims("hs").to_string());
    assert_eq!(code(&get(&f.c, "/orders", &t)), "jwt.malformed");
}

#[test]
fn rfc7519_4_1_time_claims_with_skew() {
    let f = fixture();
    let cases = [
        (json!({"exp": NOW - 61}), Some("jwt.expired")),
        (json!({"exp": NOW - 59}), None),
        (json!({"exp": null}), Some("jwt.exp_required")),
        (json!({"nbf": NOW + 61}), Some("jwt.not_yet_valid")),
        (json!({"nbf": NOW + 59}), None),
        (json!({"iat": NOW + 61}), Some("jwt.issued_in_future")),
        (json!({"iat": NOW + 30}), None),
        (json!({"exp": "tomorrow"}), Some("jwt.malformed")),
        (json!({"exp": -1}), Some("jwt.malformed")),
        (json!({"exp": 1e30}), Some("jwt.malformed")),
        (json!({"exp": (NOW + 600) as f64 + 0.5}), None),
        (json!({"sub": 42}), Some("jwt.malformed")),
    ];
    for (extra, want) in cases {
        let t = sign_es256(&f.es, &with(claims(ES), extra.clone()));
        let v = get(&f.c, "/orders", &t);
        match want {
            Some(c) => assert_eq!(code(&v), c, "{extra}"),
            None => assert!(!v.is_deny(), "{extra}: {v:?}"),
        }
    }
    // Without `require_exp`, a token without exp passes.
    let t = hs256(SECRET, Some("h1"), &json!({"iss": "hs", "sub": "x"}));
    assert!(!get(&f.c, "/orders", &t).is_deny());
}

#[test]
fn max_lifetime_needs_iat_and_bounds_exp_minus_iat() {
    let p = json!({"providers": [{"name": "hs", "issuer": "hs", "algorithms": ["HS256"],
        "max_lifetime_secs": 3600, "jwks": jwks(&[jwk_oct(SECRET, "h1")])}], "default": {}});
    let c = build(&p);
    let ok = hs256(
        SECRET,
        None,
        &json!({"iss": "hs", "iat": NOW, "exp": NOW + 3600}),
    );
    assert!(!get(&c, "/x", &ok).is_deny());
    let long = hs256(
        SECRET,
        None,
        &json!({"iss": "hs", "iat": NOW, "exp": NOW + 3601}),
    );
    assert_eq!(code(&get(&c, "/x", &long)), "jwt.lifetime");
    let no_iat = hs256(SECRET, None, &json!({"iss": "hs", "exp": NOW + 60}));
    assert_eq!(code(&get(&c, "/x", &no_iat)), "jwt.lifetime");
}

#[test]
fn issuer_is_matched_exactly_and_audience_is_any_of() {
    let f = fixture();
    for (extra, want) in [
        (json!({"iss": "https://es.example/"}), Some("jwt.issuer")),
        (json!({"iss": null}), Some("jwt.issuer")),
        (json!({"aud": "other"}), Some("jwt.audience")),
        (json!({"aud": ["other", "more"]}), Some("jwt.audience")),
        (json!({"aud": null}), Some("jwt.audience")),
        (json!({"aud": ["other", "api"]}), None),
    ] {
        let t = sign_es256(&f.es, &with(claims(ES), extra.clone()));
        let v = get(&f.c, "/orders", &t);
        match want {
            Some(c) => assert_eq!(code(&v), c, "{extra}"),
            None => assert!(!v.is_deny(), "{extra}: {v:?}"),
        }
    }
    // A route accepting only `es` refuses a valid `rs` token.
    let t = sign_rs256(&f.rsa, &claims(RS));
    assert_eq!(code(&get(&f.c, "/es/x", &t)), "jwt.issuer");
}

#[test]
fn cve_2022_21449_ecdsa_zero_and_out_of_range_signatures_are_refused() {
    let f = fixture();
    let h = json!({"alg": "ES256", "kid": "e1"}).to_string();
    let p = claims(ES).to_string();
    // The P-256 group order n: r = n or s = n is out of range.
    let n = hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    let one = {
        let mut v = vec![0u8; 32];
        v[31] = 1;
        v
    };
    let sigs: Vec<Vec<u8>> = vec![
        vec![0; 64],
        [vec![0; 32], one.clone()].concat(),
        [one.clone(), vec![0; 32]].concat(),
        [n.clone(), one.clone()].concat(),
        [one.clone(), n.clone()].concat(),
        vec![0xff; 64],
        vec![0; 63],
    ];
    for s in sigs {
        let t = unsigned(&h, &p, &s);
        assert_eq!(
            code(&get(&f.c, "/orders", &t)),
            "jwt.bad_signature",
            "{s:?}"
        );
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn malformed_tokens_are_refused_without_panicking() {
    let f = fixture();
    let good = sign_es256(&f.es, &claims(ES));
    let parts: Vec<&str> = good.split('.').collect();
    let cases = [
        "abc".to_string(),
        "a.b".to_string(),
        "a.b.c.d".to_string(),
        format!(
            "{}.{}.{}.{}.{}",
            parts[0], parts[1], parts[2], parts[0], parts[1]
        ),
        format!("{}!.{}.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}", b64("not json"), parts[1], parts[2]),
        format!("{}.{}.{}", b64("[1]"), parts[1], parts[2]),
        format!("{}.{}.{}", parts[0], b64("\"str\""), parts[2]),
        format!("{}.{}.{}", parts[0], parts[1], "%%%"),
        format!("{}==.{}.{}", parts[0], parts[1], parts[2]),
        format!("..{}", parts[2]),
        unsigned(
            r#"{"alg":"ES256","alg":"HS256"}"#,
            &claims(ES).to_string(),
            &[1; 64],
        ),
        unsigned(
            r#"{"alg":"ES256"}"#,
            r#"{"iss":"x","sub":"a","sub":"admin"}"#,
            &[1; 64],
        ),
        unsigned(
            r#"{"alg":"ES256","cty":"JWT"}"#,
            &claims(ES).to_string(),
            &[1; 64],
        ),
        unsigned(
            r#"{"alg":"ES256","typ":"JOSE+JSON"}"#,
            &claims(ES).to_string(),
            &[1; 64],
        ),
        unsigned(
            r#"{"alg":"ES256","kid":7}"#,
            &claims(ES).to_string(),
            &[1; 64],
        ),
    ];
    for t in &cases {
        assert_eq!(code(&get(&f.c, "/orders", t)), "jwt.malformed", "{t}");
    }
    let big = format!("{}.{}.{}", parts[0], "A".repeat(9000), parts[2]);
    assert_eq!(code(&get(&f.c, "/orders", &big)), "jwt.too_large");
    let v = at(
        &f.c,
        NOW,
        "GET",
        "/orders",
        &[("authorization", "Bearer a"), ("authorization", "Bearer b")],
    );
    assert_eq!(code(&v), "jwt.multiple_credentials");
}

#[test]
fn scopes_from_scope_and_scp_and_rfc6750_3_1_insufficient_scope() {
    let f = fixture();
    let sc = |extra: Value| sign_es256(&f.es, &with(claims(ES), extra));
    assert!(!get(&f.c, "/admin", &sc(json!({"scope": "read admin write"}))).is_deny());
    assert!(!get(&f.c, "/admin", &sc(json!({"scp": ["admin", "write"]}))).is_deny());
    assert!(!get(
        &f.c,
        "/admin",
        &sc(json!({"scope": "admin", "scp": "write"}))
    )
    .is_deny());
    let (status, code_, www) = denial(&get(&f.c, "/admin", &sc(json!({"scope": "admin"}))));
    assert_eq!((status, code_), (403, "jwt.scope"));
    assert_eq!(
        www,
        r#"Bearer realm="orders", error="insufficient_scope", error_description="the token lacks a required scope", scope="admin write""#
    );
    assert!(!get(&f.c, "/read", &sc(json!({"scope": "write"}))).is_deny());
    let (_, _, www) = denial(&get(&f.c, "/read", &sc(json!({"scope": "reader"}))));
    assert!(www.ends_with(r#"scope="read write""#), "{www}");
}

#[test]
fn claims_are_forwarded_and_spoofed_copies_removed() {
    let f = fixture();
    let t = sign_es256(
        &f.es,
        &with(
            claims(ES),
            json!({"roles": ["a", "b", 3], "email": "a@example.com"}),
        ),
    );
    let auth = format!("Bearer {t}");
    let v = at(
        &f.c,
        NOW,
        "GET",
        "/orders",
        &[
            ("authorization", &auth),
            ("x-jwt-sub", "mallory"),
            ("x-user-email", "m@x"),
        ],
    );
    let o = ops(&v);
    for h in ["x-jwt-sub", "x-jwt-roles", "x-user-email", "x-jwt-payload"] {
        let removed = o.iter().position(|op| *op == HeaderOp::Remove(h.into()));
        let set_at = o
            .iter()
            .position(|op| matches!(op, HeaderOp::Set(k, _) if k == h));
        assert!(removed.is_some() && removed < set_at, "{h}: {o:?}");
    }
    assert_eq!(set(&v, "x-jwt-sub").as_deref(), Some("alice"));
    assert_eq!(set(&v, "x-jwt-roles").as_deref(), Some("a,b,3"));
    assert_eq!(set(&v, "x-user-email").as_deref(), Some("a@example.com"));
    assert_eq!(set(&v, "x-jwt-payload").as_deref(), t.split('.').nth(1));
    assert!(!o.contains(&HeaderOp::Remove("authorization".into())));
    // An anonymous route still removes the spoofed headers.
    let v = at(&f.c, NOW, "GET", "/public/x", &[("x-jwt-sub", "mallory")]);
    assert!(ops(&v).contains(&HeaderOp::Remove("x-jwt-sub".into())));
    assert_eq!(set(&v, "x-jwt-sub"), None);
    // Provider `rs` strips Authorization.
    let v = get(&f.c, "/orders", &sign_rs256(&f.rsa, &claims(RS)));
    assert!(ops(&v).contains(&HeaderOp::Remove("authorization".into())));
    assert_eq!(set(&v, "x-jwt-sub").as_deref(), Some("alice"));
}

#[test]
fn anonymous_routes_still_refuse_invalid_tokens_and_deny_rules_refuse_all() {
    let f = fixture();
    assert!(!at(&f.c, NOW, "GET", "/public", &[]).is_deny());
    assert_eq!(code(&get(&f.c, "/public", "a.b.c")), "jwt.malformed");
    let t = sign_es256(&f.es, &claims(ES));
    assert_eq!(denial(&get(&f.c, "/closed", &t)).0, 403);
    // Without a `default`, unmatched requests are denied.
    let p = json!({"providers": [{"name": "hs", "issuer": "hs", "algorithms": ["HS256"],
        "jwks": jwks(&[jwk_oct(SECRET, "h1")])}],
        "routes": [{"match": {"prefix": "/api"}}]});
    let c = build(&p);
    let t = hs256(SECRET, None, &json!({"iss": "hs", "exp": NOW + 60}));
    assert!(!get(&c, "/api/x", &t).is_deny());
    let (status, code_, _) = denial(&get(&c, "/other", &t));
    assert_eq!((status, code_), (403, "jwt.no_route"));
}

#[test]
fn token_from_a_cookie_or_query_only_when_configured() {
    let p = json!({"providers": [{"name": "hs", "issuer": "hs", "algorithms": ["HS256"],
        "jwks": jwks(&[jwk_oct(SECRET, "h1")]),
        "from": [{"cookie": "session"}, {"query": "access_token"}, {"header": "x-token"}]}],
        "default": {}});
    let c = build(&p);
    let t = hs256(SECRET, None, &json!({"iss": "hs", "exp": NOW + 60}));
    let cookie = format!("a=b; session={t}");
    assert!(!at(&c, NOW, "GET", "/x", &[("cookie", &cookie)]).is_deny());
    assert!(!at(&c, NOW, "GET", &format!("/x?a=1&access_token={t}"), &[]).is_deny());
    assert!(!at(&c, NOW, "GET", "/x", &[("x-token", &t)]).is_deny());
    let auth = format!("Bearer {t}");
    assert_eq!(
        code(&at(&c, NOW, "GET", "/x", &[("authorization", &auth)])),
        "jwt.missing"
    );
    // A token is matched only to a provider that reads it from where it was.
    let p = json!({"providers": [
        {"name": "hdr", "issuer": "hdr", "algorithms": ["HS256"], "jwks": jwks(&[jwk_oct(SECRET, "h1")])},
        {"name": "ck", "issuer": "ck", "algorithms": ["HS256"], "jwks": jwks(&[jwk_oct(SECRET, "h1")]),
         "from": [{"cookie": "session"}]}], "default": {}});
    let c = build(&p);
    let ck = hs256(SECRET, None, &json!({"iss": "ck", "exp": NOW + 60}));
    let cookie = format!("session={ck}");
    assert!(!at(&c, NOW, "GET", "/x", &[("cookie", &cookie)]).is_deny());
    let auth = format!("Bearer {ck}");
    assert_eq!(
        code(&at(&c, NOW, "GET", "/x", &[("authorization", &auth)])),
        "jwt.issuer"
    );
    // The default policy does not read cookies or the query.
    let f = fixture();
    let t = sign_es256(&f.es, &claims(ES));
    let cookie = format!("session={t}");
    assert_eq!(
        code(&at(&f.c, NOW, "GET", "/x", &[("cookie", &cookie)])),
        "jwt.missing"
    );
    assert_eq!(
        code(&at(&f.c, NOW, "GET", &format!("/x?access_token={t}"), &[])),
        "jwt.missing"
    );
}

#[test]
fn invalid_policies_name_the_path() {
    let oct = |k: &[u8]| jwks(&[jwk_oct(k, "h")]);
    let prov = |extra: Value| {
        json!({"providers": [with(json!({"name": "p", "issuer": "i", "algorithms": ["HS256"],
            "jwks": oct(SECRET)}), extra)], "default": {}})
    };
    let cases = [
        (
            prov(json!({"jwks": oct(b"short-secret")})),
            "providers[0].jwks.keys[0].k",
            "weak key",
        ),
        (
            prov(json!({"algorithms": ["none"]})),
            "providers[0].algorithms[0]",
            "not an accepted",
        ),
        (
            prov(json!({"algorithms": []})),
            "providers[0].algorithms",
            "explicitly",
        ),
        (
            prov(json!({"remote_jwks": {"cluster": "c", "uri": "https://x/k"}})),
            "providers[0]",
            "exactly one",
        ),
        (prov(json!({"jwks": null})), "providers[0]", "exactly one"),
        (
            prov(json!({"jwks": {"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}})),
            "providers[0].jwks.keys[0].n",
            "2048",
        ),
        (
            prov(
                json!({"jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}], }, "algorithms": ["ES256"]}),
            ),
            "providers[0].jwks.keys[0].x",
            "not a valid key",
        ),
        (
            prov(json!({"forward": {"claims": [{"claim": "sub", "header": "X-Sub"}]}})),
            "providers[0].forward.claims[0]",
            "lower-case",
        ),
        (
            prov(json!({"from": [{"cookie": "a", "query": "b"}]})),
            "providers[0].from[0]",
            "exactly one",
        ),
        (
            prov(json!({"remote_jwks": {"cluster": "c", "discovery": true}, "jwks": null})),
            "providers[0].remote_jwks.discovery",
            "http",
        ),
        (
            prov(json!({"remote_jwks": {"cluster": "c", "uri": "ftp://x"}, "jwks": null})),
            "providers[0].remote_jwks.uri",
            "http",
        ),
        (
            with(
                prov(json!({})),
                json!({"routes": [{"match": {"prefix": "/"}, "providers": ["q"]}]}),
            ),
            "routes[0].providers[0]",
            "no provider",
        ),
        (
            with(
                prov(json!({})),
                json!({"routes": [{"match": {"prefix": "/"}, "scopes_all": ["a b"]}]}),
            ),
            "routes[0].scopes_all[0]",
            "scope",
        ),
        (
            with(prov(json!({})), json!({"cache_entries": 1_000_000})),
            "cache_entries",
            "at most",
        ),
        (
            with(prov(json!({})), json!({"keys_unavailable_status": 500})),
            "keys_unavailable_status",
            "401 or 503",
        ),
        (
            with(prov(json!({})), json!({"realm": "a\"b"})),
            "realm",
            "quotes",
        ),
        (json!({"providers": []}), "providers", "at least one"),
    ];
    for (p, path, reason) in cases {
        let e = config_err(&p);
        assert_eq!(e.path, path, "{e} for {p}");
        assert!(e.reason.contains(reason), "{e}");
    }
    let e = configure::<JwtAuth>(br#"{"providers": [], "extra": 1}"#).unwrap_err();
    assert!(e.reason.contains("unknown field"), "{e}");
}

#[test]
fn repeated_tokens_are_served_from_the_bounded_cache_until_exp() {
    let f = fixture_with(json!({"cache_entries": 2}));
    let t = sign_es256(&f.es, &with(claims(ES), json!({"exp": NOW + 100})));
    assert!(!get(&f.c, "/orders", &t).is_deny());
    assert_eq!(f.c.cached_tokens(), 1);
    assert!(!get(&f.c, "/orders", &t).is_deny());
    assert_eq!(f.c.cached_tokens(), 1);
    // Past exp + skew the cached entry is not served.
    let auth = format!("Bearer {t}");
    let late = at(
        &f.c,
        NOW + 161,
        "GET",
        "/orders",
        &[("authorization", &auth)],
    );
    assert_eq!(code(&late), "jwt.expired");
    assert!(!at(
        &f.c,
        NOW + 159,
        "GET",
        "/orders",
        &[("authorization", &auth)]
    )
    .is_deny());
    // A cached token still needs the route's scopes and an accepted provider.
    assert_eq!(code(&get(&f.c, "/admin", &t)), "jwt.scope");
    let r = sign_rs256(&f.rsa, &claims(RS));
    assert!(!get(&f.c, "/orders", &r).is_deny());
    assert_eq!(code(&get(&f.c, "/es", &r)), "jwt.issuer");
    // Bounded.
    for i in 0..5 {
        let t = sign_es256(&f.es, &with(claims(ES), json!({"jti": format!("t{i}")})));
        assert!(!get(&f.c, "/orders", &t).is_deny());
    }
    assert_eq!(f.c.cached_tokens(), 2);
    let off = fixture_with(json!({"cache_entries": 0}));
    let t = sign_es256(&off.es, &claims(ES));
    assert!(!get(&off.c, "/orders", &t).is_deny());
    assert_eq!(off.c.cached_tokens(), 0);
}

// ---- remote keys ----

fn remote_policy(remote: Value) -> Value {
    json!({"providers": [{"name": "idp", "issuer": "https://idp.example", "algorithms": ["ES256"],
        "remote_jwks": remote}], "default": {}})
}

fn env_at(secs: u64) -> (MemoryStore, SystemTime) {
    (
        MemoryStore::default(),
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
    )
}

fn tick(c: &JwtAuth, secs: u64) -> Vec<Callout> {
    let (store, now) = env_at(secs);
    c.on_tick(&Env { now, store: &store })
}

fn answer(c: &JwtAuth, secs: u64, tag: u64, resp: Option<(u16, String)>) {
    let (store, now) = env_at(secs);
    let resp = resp.map(|(status, body)| CalloutResponse {
        status,
        body: body.into_bytes(),
    });
    c.on_callout_response(tag, resp, &Env { now, store: &store });
}

#[test]
fn remote_jwks_fails_closed_until_loaded_then_keeps_the_last_good_set() {
    let c = build(&remote_policy(
        json!({"cluster": "jwks", "uri": "https://idp.example/keys",
        "refresh_secs": 60}),
    ));
    assert_eq!(c.tick_period(), Some(Duration::from_secs(1)));
    let k1 = es256("k1");
    let t = sign_es256(
        &k1,
        &json!({"iss": "https://idp.example", "exp": NOW + 600}),
    );
    let (status, code_, _) = denial(&get(&c, "/x", &t));
    assert_eq!((status, code_), (503, "jwt.keys_unavailable"));
    let calls = tick(&c, NOW);
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (
            calls[0].cluster.as_str(),
            calls[0].authority.as_str(),
            calls[0].path.as_str()
        ),
        ("jwks", "idp.example", "/keys")
    );
    // In flight: no second call.
    assert!(tick(&c, NOW + 1).is_empty());
    answer(&c, NOW + 1, calls[0].tag, Some((500, String::new())));
    // Backoff: 1 s, then 2 s.
    assert_eq!(tick(&c, NOW + 2).len(), 1);
    answer(&c, NOW + 2, 0, None);
    assert!(tick(&c, NOW + 3).is_empty());
    assert_eq!(tick(&c, NOW + 4).len(), 1);
    answer(
        &c,
        NOW + 4,
        0,
        Some((200, jwks(&[jwk_es256(&k1, "k1")]).to_string())),
    );
    assert!(!get(&c, "/x", &t).is_deny());
    // Refresh only after refresh_secs; a failing refresh keeps the keys.
    assert!(tick(&c, NOW + 30).is_empty());
    assert_eq!(tick(&c, NOW + 64).len(), 1);
    answer(&c, NOW + 64, 0, Some((200, "garbage".into())));
    assert!(!get(&c, "/x", &t).is_deny());
    assert_eq!(tick(&c, NOW + 65).len(), 1);
    answer(
        &c,
        NOW + 65,
        0,
        Some((200, json!({"keys": []}).to_string())),
    );
    assert!(!get(&c, "/x", &t).is_deny());
}

#[test]
fn unknown_kid_asks_for_an_early_rate_limited_refetch_and_rotation_clears_the_cache() {
    let c = build(&remote_policy(
        json!({"cluster": "jwks", "uri": "http://idp.example/keys",
        "refresh_secs": 3600, "unknown_kid_refetch_secs": 10}),
    ));
    let (k1, k2) = (es256("k1"), es256("k2"));
    let claims = json!({"iss": "https://idp.example", "exp": NOW + 600});
    let (t1, t2) = (sign_es256(&k1, &claims), sign_es256(&k2, &claims));
    assert_eq!(tick(&c, NOW).len(), 1);
    answer(
        &c,
        NOW,
        0,
        Some((200, jwks(&[jwk_es256(&k1, "k1")]).to_string())),
    );
    assert!(!get(&c, "/x", &t1).is_deny());
    assert_eq!(c.cached_tokens(), 1);
    assert!(tick(&c, NOW + 1).is_empty());
    assert_eq!(code(&get(&c, "/x", &t2)), "jwt.unknown_kid");
    assert_eq!(tick(&c, NOW + 2).len(), 1, "early refetch");
    answer(
        &c,
        NOW + 2,
        0,
        Some((200, jwks(&[jwk_es256(&k2, "k2")]).to_string())),
    );
    assert!(!get(&c, "/x", &t2).is_deny());
    // k1 is gone: its cached verdict is forgotten too.
    assert_eq!(code(&get(&c, "/x", &t1)), "jwt.unknown_kid");
    // Rate limit: the next early fetch waits for the gap.
    assert!(tick(&c, NOW + 3).is_empty());
    assert!(tick(&c, NOW + 11).is_empty());
    assert_eq!(tick(&c, NOW + 12).len(), 1);
}

#[test]
fn oidc_discovery_finds_the_jwks_uri() {
    let c = build(&remote_policy(json!({"cluster": "idp", "discovery": true})));
    let calls = tick(&c, NOW);
    assert_eq!(calls[0].path, "/.well-known/openid-configuration");
    assert_eq!(calls[0].tag, 1);
    // Another issuer in the document: refused.
    answer(
        &c,
        NOW,
        1,
        Some((
            200,
            json!({"issuer": "https://evil.example",
        "jwks_uri": "https://idp.example/jwks"})
            .to_string(),
        )),
    );
    let calls = tick(&c, NOW + 1);
    assert_eq!(calls[0].tag, 1);
    answer(
        &c,
        NOW + 1,
        1,
        Some((
            200,
            json!({"issuer": "https://idp.example",
        "jwks_uri": "https://keys.idp.example/v1/jwks"})
            .to_string(),
        )),
    );
    let calls = tick(&c, NOW + 2);
    assert_eq!(
        (
            calls[0].tag,
            calls[0].authority.as_str(),
            calls[0].path.as_str()
        ),
        (0, "keys.idp.example", "/v1/jwks")
    );
    let k = es256("k");
    answer(
        &c,
        NOW + 2,
        0,
        Some((200, jwks(&[jwk_es256(&k, "k")]).to_string())),
    );
    let t = sign_es256(&k, &json!({"iss": "https://idp.example", "exp": NOW + 60}));
    assert!(!get(&c, "/x", &t).is_deny());
}

#[test]
fn keys_unavailable_can_be_a_401() {
    let mut p = remote_policy(json!({"cluster": "jwks", "uri": "https://idp.example/keys"}));
    p["keys_unavailable_status"] = json!(401);
    let c = build(&p);
    let t = sign_es256(
        &es256("k"),
        &json!({"iss": "https://idp.example", "exp": NOW + 60}),
    );
    let (status, code_, www) = denial(&get(&c, "/x", &t));
    assert_eq!((status, code_), (401, "jwt.keys_unavailable"));
    assert!(www.contains("invalid_token"), "{www}");
}

#[test]
fn strict_json_refuses_duplicate_members_at_any_depth() {
    assert!(parse_strict(br#"{"a":{"b":1,"b":2}}"#).is_none());
    assert!(parse_strict(br#"[{"a":1},{"a":1}]"#).is_some());
    assert!(parse_strict(br#"{"a":1} x"#).is_none());
}

#[test]
fn jwt_auth_runs_as_its_own_module_and_in_a_guard_chain() {
    let p = json!({"providers": [{"name": "hs", "issuer": "hs", "algorithms": ["HS256"],
        "jwks": jwks(&[jwk_oct(SECRET, "h1")])}], "default": {}});
    let store = MemoryStore::default();
    let env = Env {
        now: SystemTime::UNIX_EPOCH + Duration::from_secs(NOW),
        store: &store,
    };
    let req = RequestView::new("GET", "/x", &[]).unwrap();
    let g = json!({"chain": ["jwt_auth"], "jwt_auth": p.clone()});
    for (module, policy) in [("jwt-auth", &p), ("guard", &g)] {
        let c = crate::controls::build_module(module, policy)
            .unwrap()
            .unwrap();
        assert_eq!(code(&c.on_request(&req, &env)), "jwt.missing", "{module}");
    }
    let Some(Err(e)) = crate::controls::build_module("jwt-auth", &json!({"providers": []})) else {
        panic!("an invalid policy must fail");
    };
    assert_eq!(e.path, "providers");
    let g = json!({"chain": ["jwt_auth"], "jwt_auth": {"providers": []}});
    let Some(Err(e)) = crate::controls::build_module("guard", &g) else {
        panic!("an invalid member policy must fail");
    };
    assert_eq!(e.path, "jwt_auth.providers");
}

/// Review finding: a second, different token at another place an accepted provider reads was
/// ignored (only the first was verified) and reached the upstream unverified next to the
/// verified one. Two different credentials are refused, as two in one place are.
#[test]
fn a_second_different_token_at_another_place_is_refused_not_ignored() {
    let p = json!({"providers": [{"name": "hs", "issuer": "hs", "algorithms": ["HS256"],
        "jwks": jwks(&[jwk_oct(SECRET, "h1")]),
        "from": [{"header": "authorization"}, {"cookie": "session"}]}],
        "default": {}});
    let c = build(&p);
    let good = hs256(
        SECRET,
        None,
        &json!({"iss": "hs", "sub": "alice", "exp": NOW + 60}),
    );
    let forged = hs256(
        b"not the secret, not the secret!!",
        None,
        &json!({"iss": "hs", "sub": "admin"}),
    );
    let auth = format!("Bearer {good}");
    let with_cookie = |t: &str| {
        let cookie = format!("session={t}");
        at(
            &c,
            NOW,
            "GET",
            "/x",
            &[("authorization", &auth), ("cookie", &cookie)],
        )
    };
    assert_eq!(code(&with_cookie(&forged)), "jwt.multiple_credentials");
    // RFC 6750 §3.1: the same token in both places is two methods, refused too.
    assert_eq!(code(&with_cookie(&good)), "jwt.multiple_credentials");
}

/// Review finding: CGI, PHP, WSGI and Rack read `x_jwt_sub` as `x-jwt-sub` (`HTTP_X_JWT_SUB`)
/// and Envoy forwards underscores by default, so the spelling with `_` of a forwarded claim
/// header is stripped too, with a token and on anonymous routes.
#[test]
fn claim_headers_spelt_with_underscores_are_stripped_too() {
    let f = fixture();
    let removes = |v: &Verdict, name: &str| {
        ops(v)
            .iter()
            .any(|o| matches!(o, HeaderOp::Remove(k) if k == name))
    };
    let v = at(&f.c, NOW, "GET", "/public", &[("x_jwt_sub", "admin")]);
    assert!(removes(&v, "x_jwt_sub"), "{v:?}");
    let auth = format!("Bearer {}", sign_es256(&f.es, &claims(ES)));
    let v = at(
        &f.c,
        NOW,
        "GET",
        "/x",
        &[("authorization", &auth), ("x_user_email", "root@example")],
    );
    assert!(removes(&v, "x_user_email"), "{v:?}");
    assert_eq!(set(&v, "x-jwt-sub").as_deref(), Some("alice"));
}

/// Review finding: a second copy of the token's cookie or query parameter that the upstream
/// reads differently (a name with a space before `=`, a percent-encoded name, a `Cookie`
/// field that is not UTF-8) must count as a second credential, not be skipped.
#[test]
fn a_second_copy_spelt_differently_in_a_cookie_or_the_query_is_refused() {
    let p = json!({"providers": [{"name": "hs", "issuer": "hs", "algorithms": ["HS256"],
        "jwks": jwks(&[jwk_oct(SECRET, "h1")]),
        "from": [{"cookie": "session"}, {"query": "access_token"}]}],
        "default": {}});
    let c = build(&p);
    let good = hs256(SECRET, None, &json!({"iss": "hs", "exp": NOW + 60}));
    let cookie = format!("session={good}; session =forged");
    assert_eq!(
        code(&at(&c, NOW, "GET", "/x", &[("cookie", &cookie)])),
        "jwt.multiple_credentials"
    );
    let path = format!("/x?access_token={good}&acc%65ss_token=forged");
    assert_eq!(
        code(&at(&c, NOW, "GET", &path, &[])),
        "jwt.multiple_credentials"
    );
    // The token's own field next to one with a byte that is not UTF-8.
    let mut headers = RequestView::new("GET", "/x", &[]).unwrap().headers;
    headers.push(("cookie".into(), format!("session={good}").into_bytes()));
    headers.push(("cookie".into(), b"session=forged; x=\xff".to_vec()));
    let store = MemoryStore::default();
    let env = Env {
        now: SystemTime::UNIX_EPOCH + Duration::from_secs(NOW),
        store: &store,
    };
    let req = RequestView::from_headers(headers).unwrap();
    assert_eq!(code(&c.on_request(&req, &env)), "jwt.multiple_credentials");
    // One copy, as before, passes.
    let cookie = format!("a=b; session={good}");
    assert!(!at(&c, NOW, "GET", "/x", &[("cookie", &cookie)]).is_deny());
}

/// RFC 6750 §3.1: two credentials (two `Authorization` lines, which Envoy joins with a comma,
/// or a token in the header and in a configured cookie or query parameter, the same token
/// twice included) are `invalid_request`, 400, also on anonymous routes.
#[test]
fn rfc6750_3_1_more_than_one_credential_is_400_invalid_request() {
    let f = fixture();
    let t = sign_es256(&f.es, &claims(ES));
    let other = sign_es256(&f.es2, &claims(ES));
    for path in ["/x", "/public"] {
        for auth in [
            format!("Bearer {t},Bearer {other}"),
            format!("Bearer {t}, Bearer {t}"),
            format!("Basic dXNlcjpwYXNz, Bearer {t}"),
        ] {
            let (status, code_, www) =
                denial(&at(&f.c, NOW, "GET", path, &[("authorization", &auth)]));
            assert_eq!((status, code_), (400, "jwt.multiple_credentials"), "{auth}");
            assert_eq!(
                www,
                "Bearer realm=\"orders\", error=\"invalid_request\", \
                 error_description=\"the request carries more than one credential\""
            );
        }
        let two_lines = [
            ("authorization", format!("Bearer {t}")),
            ("authorization", format!("Bearer {t}")),
        ];
        let h: Vec<(&str, &str)> = two_lines.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            denial(&at(&f.c, NOW, "GET", path, &h)).0,
            400,
            "two field lines"
        );
    }
    let p = json!({"providers": [{"name": "hs", "issuer": "hs", "algorithms": ["HS256"],
        "jwks": jwks(&[jwk_oct(SECRET, "h1")]),
        "from": [{"header": "authorization"}, {"query": "access_token"}, {"cookie": "at"}]}],
        "default": {}});
    let c = build(&p);
    let t = hs256(SECRET, None, &json!({"iss": "hs", "exp": NOW + 60}));
    let auth = format!("Bearer {t}");
    let cookie = format!("at={t}");
    let path = format!("/x?access_token={t}");
    for (path, headers) in [
        (path.as_str(), vec![("authorization", auth.as_str())]),
        (
            "/x",
            vec![
                ("authorization", auth.as_str()),
                ("cookie", cookie.as_str()),
            ],
        ),
        (path.as_str(), vec![("cookie", cookie.as_str())]),
    ] {
        let v = at(&c, NOW, "GET", path, &headers);
        assert_eq!(denial(&v).0, 400, "{path} {headers:?}");
        assert_eq!(code(&v), "jwt.multiple_credentials");
    }
    // One credential in any one place still passes.
    assert!(!at(&c, NOW, "GET", &path, &[]).is_deny());
    assert!(!at(&c, NOW, "GET", "/x", &[("cookie", &cookie)]).is_deny());
    assert!(!at(&c, NOW, "GET", "/x", &[("authorization", &auth)]).is_deny());
}

mod introspected {
    //! Opaque tokens by RFC 7662 introspection, driven through ask → answers → verdict with
    //! the endpoint's answers made up here (tests/introspection.rs asks a real test server).
    use super::*;
    use crate::callout::{Answer, CalloutFailure, HostCapabilities};
    use crate::control::parse_policy;
    use std::cell::Cell;

    const IDP: &str = "https://idp.example";
    const SECRET_ENV: &str = "PORTCULLIS_TEST_INTROSPECTION_SECRET";

    fn opaque_policy(extra: Value) -> Value {
        std::env::set_var(SECRET_ENV, "gw-secret");
        with(
            json!({
                "providers": [
                    {"name": "hs", "issuer": "hs", "algorithms": ["HS256"], "require_exp": false,
                     "jwks": jwks(&[jwk_oct(SECRET, "h1")])},
                    {"name": "idp", "issuer": IDP, "audiences": ["api"],
                     "introspection": {"cluster": "idp", "uri": "https://idp.example/oauth2/introspect",
                                       "client_id": "gateway", "client_secret_env": SECRET_ENV,
                                       "timeout_ms": 300, "negative_cache_secs": 10},
                     "forward": {"claims": ["sub", "client_id"]}}
                ],
                "routes": [
                    {"match": {"prefix": "/admin"}, "scopes_all": ["admin", "write"]},
                    {"match": {"prefix": "/hs"}, "providers": ["hs"]}
                ],
                "default": {}
            }),
            extra,
        )
    }

    fn opaque(extra: Value) -> JwtAuth {
        let p: Policy = parse_policy(opaque_policy(extra).to_string().as_bytes()).unwrap();
        JwtAuth::build_with(p, HostCapabilities::ALL).unwrap()
    }

    fn active(extra: Value) -> Answer {
        let body = with(
            json!({"active": true, "iss": IDP, "aud": "api", "sub": "alice", "client_id": "app-7",
                   "scope": "read write admin", "exp": NOW + 600}),
            extra,
        );
        Ok(CalloutResponse {
            status: 200,
            body: body.to_string().into_bytes(),
        })
    }

    fn inactive() -> Answer {
        Ok(CalloutResponse {
            status: 200,
            body: br#"{"active":false}"#.to_vec(),
        })
    }

    /// The request as the host runs it; the endpoint answers with `answer`
    /// (counted in `calls`).
    fn run(
        c: &JwtAuth,
        secs: u64,
        path: &str,
        token: &str,
        calls: &Cell<usize>,
        answer: &dyn Fn() -> Answer,
    ) -> Verdict {
        let store = MemoryStore::default();
        let env = Env {
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
            store: &store,
        };
        let auth = format!("Bearer {token}");
        let req = RequestView::new("GET", path, &[("authorization", &auth)]).unwrap();
        match c.on_request(&req, &env) {
            Verdict::Ask(ask) => {
                assert_eq!(ask.callouts.len(), 1);
                let call = &ask.callouts[0];
                assert_eq!(
                    (call.cluster.as_str(), call.path.as_str()),
                    ("idp", "/oauth2/introspect")
                );
                let body = String::from_utf8(call.body.clone().unwrap()).unwrap();
                assert!(body.starts_with("token="), "{body}");
                calls.set(calls.get() + 1);
                c.on_answers(&req, None, &ask.state, &[answer()], &env)
            }
            v => v,
        }
    }

    #[test]
    fn introspection_providers_are_refused_by_a_host_without_request_time_callouts() {
        let p: Policy =
            crate::control::parse_policy(opaque_policy(json!({})).to_string().as_bytes()).unwrap();
        let e = JwtAuth::build_with(p, HostCapabilities::NONE)
            .err()
            .unwrap();
        assert_eq!(e.path, "providers[1].introspection");
        assert_eq!(
            e.reason,
            "needs request-time callouts, which this host does not run"
        );
        // The proxy-wasm host runs them.
        configure::<JwtAuth>(opaque_policy(json!({})).to_string().as_bytes()).unwrap();
    }

    #[test]
    fn introspection_policy_errors_name_the_field() {
        let err = |provider: Value| {
            std::env::set_var(SECRET_ENV, "gw-secret");
            let p: Policy = match parse_policy(
                json!({"providers": [provider], "default": {}})
                    .to_string()
                    .as_bytes(),
            ) {
                Ok(p) => p,
                Err(e) => return e,
            };
            JwtAuth::build_with(p, HostCapabilities::ALL).unwrap_err()
        };
        let spec = json!({"cluster": "idp", "uri": "https://idp/i", "client_id": "gw",
                          "client_secret_env": SECRET_ENV});
        let e = err(
            json!({"name": "i", "issuer": IDP, "algorithms": ["RS256"], "introspection": spec}),
        );
        assert_eq!(e.path, "providers[0].algorithms");
        let e =
            err(json!({"name": "i", "issuer": IDP, "jwks": {"keys": []}, "introspection": spec}));
        assert_eq!(e.path, "providers[0]");
        let e = err(json!({"name": "i", "issuer": IDP,
            "introspection": with(spec.clone(), json!({"uri": "ftp://x"}))}));
        assert_eq!(e.path, "providers[0].introspection.uri");
        let e = err(json!({"name": "i", "issuer": IDP,
            "introspection": with(spec.clone(), json!({"client_secret_env": "PORTCULLIS_NOT_SET_ANYWHERE"}))}));
        assert_eq!(e.path, "providers[0].introspection.client_secret_env");
        assert!(!e.reason.contains("gw-secret"));
        let e = err(json!({"name": "i", "issuer": IDP,
            "introspection": with(spec.clone(), json!({"unavailable_status": 200}))}));
        assert_eq!(e.path, "providers[0].introspection.unavailable_status");
        let e = err(json!({"name": "i", "issuer": IDP,
            "introspection": with(spec.clone(), json!({"timeout_ms": 0}))}));
        assert_eq!(e.path, "providers[0].introspection.timeout_ms");
        let e = err(json!({"name": "i", "issuer": IDP,
            "introspection": with(spec.clone(), json!({"secret": "x"}))}));
        assert!(e.reason.contains("unknown field `secret`"), "{e}");
        // A JWT provider still needs its algorithms.
        let e = err(json!({"name": "j", "issuer": "j", "jwks": {"keys": []}}));
        assert_eq!(e.path, "providers[0].algorithms");
    }

    #[test]
    fn an_active_token_meets_the_route_scopes_and_forwards_its_members() {
        let c = opaque(json!({}));
        let calls = Cell::new(0);
        let v = run(&c, NOW, "/admin/x", "opaque-1", &calls, &|| {
            active(json!({}))
        });
        assert_eq!(set(&v, "x-jwt-sub").as_deref(), Some("alice"));
        assert_eq!(set(&v, "x-jwt-client_id").as_deref(), Some("app-7"));
        // Forwarded headers are removed from the incoming request as for JWTs.
        assert!(ops(&v).contains(&HeaderOp::Remove("x-jwt-sub".into())));
        // RFC 6750 §3.1: too few scopes is 403 insufficient_scope, as for a JWT.
        let v = run(&c, NOW, "/admin/x", "opaque-2", &calls, &|| {
            active(json!({"scope": "read"}))
        });
        let (status, code, www) = denial(&v);
        assert_eq!((status, code), (403, "jwt.scope"));
        assert!(www.contains("error=\"insufficient_scope\""), "{www}");
        assert!(www.contains("scope=\"admin write\""), "{www}");
    }

    #[test]
    fn a_cached_answer_serves_until_exp_and_no_longer() {
        let c = opaque(json!({}));
        let calls = Cell::new(0);
        let exp = NOW + 100;
        let answer = || active(json!({"exp": exp}));
        assert!(!run(&c, NOW, "/x", "tok", &calls, &answer).is_deny());
        assert!(!run(&c, NOW + 50, "/x", "tok", &calls, &answer).is_deny());
        assert_eq!(calls.get(), 1, "a cache hit asks nothing");
        // Past exp (and the skew), the cached answer is not served: asked again, and the
        // server's own expired answer is refused.
        let v = run(&c, exp + 61, "/x", "tok", &calls, &answer);
        assert_eq!(calls.get(), 2);
        assert_eq!(code(&v), "jwt.expired");
        // cache_max_secs bounds a long exp.
        let c = opaque(json!({}));
        let long = || active(json!({"exp": NOW + 86_400}));
        run(&c, NOW, "/x", "tok", &calls, &long);
        run(&c, NOW + 299, "/x", "tok", &calls, &long);
        assert_eq!(calls.get(), 3);
        run(&c, NOW + 301, "/x", "tok", &calls, &long);
        assert_eq!(calls.get(), 4, "re-introspected after cache_max_secs (300)");
    }

    #[test]
    fn an_inactive_token_is_401_invalid_token_and_refused_briefly_without_a_call() {
        let c = opaque(json!({}));
        let calls = Cell::new(0);
        let v = run(&c, NOW, "/x", "revoked", &calls, &inactive);
        let (status, why, www) = denial(&v);
        assert_eq!((status, why), (401, "jwt.inactive"));
        assert!(www.starts_with("Bearer realm="), "{www}");
        assert!(www.contains("error=\"invalid_token\""), "{www}");
        let v = run(&c, NOW + 9, "/x", "revoked", &calls, &|| active(json!({})));
        assert_eq!(code(&v), "jwt.inactive");
        assert_eq!(calls.get(), 1, "negative answers are cached");
        // After negative_cache_secs the endpoint is asked again (the token may be new).
        let v = run(&c, NOW + 10, "/x", "revoked", &calls, &|| active(json!({})));
        assert!(!v.is_deny(), "{v:?}");
        assert_eq!(calls.get(), 2);
    }

    #[test]
    fn members_are_checked_as_claims_are() {
        let c = opaque(json!({}));
        let calls = Cell::new(0);
        let cases = [
            (json!({"iss": "https://evil.example"}), "jwt.issuer"),
            (json!({"aud": "billing"}), "jwt.audience"),
            (json!({"exp": NOW - 3600}), "jwt.expired"),
            (json!({"exp": null}), "jwt.exp_required"),
            (json!({"nbf": NOW + 3600}), "jwt.not_yet_valid"),
        ];
        for (i, (extra, want)) in cases.into_iter().enumerate() {
            let token = format!("t{i}");
            let v = run(&c, NOW, "/x", &token, &calls, &|| active(extra.clone()));
            assert_eq!(code(&v), want, "{extra}");
        }
    }

    #[test]
    fn no_usable_answer_fails_closed_per_the_provider_and_is_not_cached() {
        let c = opaque(json!({}));
        let calls = Cell::new(0);
        let failures: Vec<Answer> = vec![
            Err(CalloutFailure::Timeout),
            Err(CalloutFailure::Reset),
            Err(CalloutFailure::NoCluster),
            Ok(CalloutResponse {
                status: 500,
                body: Vec::new(),
            }),
            Ok(CalloutResponse {
                status: 401,
                body: br#"{"error":"invalid_client"}"#.to_vec(),
            }),
            Ok(CalloutResponse {
                status: 200,
                body: b"<html>".to_vec(),
            }),
        ];
        for f in &failures {
            let v = run(&c, NOW, "/x", "tok", &calls, &|| f.clone());
            let (status, code, _) = denial(&v);
            assert_eq!(
                (status, code),
                (503, "jwt.introspection_unavailable"),
                "{f:?}"
            );
        }
        assert_eq!(calls.get(), failures.len(), "failures are never cached");
        assert!(!run(&c, NOW, "/x", "tok", &calls, &|| active(json!({}))).is_deny());
        // unavailable_status 401: a challenge, still no pass.
        let mut p = opaque_policy(json!({}));
        p["providers"][1]["introspection"]["unavailable_status"] = json!(401);
        let p: Policy = parse_policy(p.to_string().as_bytes()).unwrap();
        let c = JwtAuth::build_with(p, HostCapabilities::ALL).unwrap();
        let v = run(&c, NOW, "/x", "tok", &calls, &|| {
            Err(CalloutFailure::Timeout)
        });
        let (status, code, www) = denial(&v);
        assert_eq!((status, code), (401, "jwt.introspection_unavailable"));
        assert!(www.contains("invalid_token"), "{www}");
    }

    #[test]
    fn jwts_of_a_jwt_provider_are_still_verified_locally() {
        let c = opaque(json!({}));
        let calls = Cell::new(0);
        let token = hs256(SECRET, Some("h1"), &json!({"iss": "hs", "sub": "bob"}));
        let v = run(&c, NOW, "/x", &token, &calls, &|| {
            panic!("no introspection")
        });
        assert!(!v.is_deny(), "{v:?}");
        // A route that accepts only the JWT provider never introspects.
        let v = run(&c, NOW, "/hs", "opaque", &calls, &|| {
            panic!("no introspection")
        });
        assert_eq!(code(&v), "jwt.malformed");
        assert_eq!(calls.get(), 0);
        // A JWT of the JWT provider with an algorithm it does not accept: refused, not sent.
        let hs512 = kit::hs256_raw(
            SECRET,
            r#"{"alg":"HS512","kid":"h1"}"#,
            &json!({"iss": "hs"}).to_string(),
        );
        let v = run(&c, NOW, "/x", &hs512, &calls, &|| {
            panic!("no introspection")
        });
        assert_eq!(code(&v), "jwt.algorithm");
        // A JWT of the JWT provider with a bad signature is refused, not introspected.
        let forged = hs256(
            b"another secret another secret 00",
            Some("h1"),
            &json!({"iss": "hs"}),
        );
        let v = run(&c, NOW, "/x", &forged, &calls, &|| {
            panic!("no introspection")
        });
        assert_eq!(code(&v), "jwt.bad_signature");
    }
}
