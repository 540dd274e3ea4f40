//! jwt-auth's `introspection` provider against a real RFC 7662 endpoint (the test server in
//! tests/support/introspection.rs), driving the control directly (tests/fleet.rs runs it
//! through Envoy): the test plays the host, it sends the exact request the control builds to
//! the server over plain HTTP, with the callout's timeout, and feeds the real answer back.

mod support;

use std::cell::Cell;
use std::time::{Duration, UNIX_EPOCH};

use portcullis::callout::{Answer, HostCapabilities};
use portcullis::control::parse_policy;
use portcullis::controls::jwt_auth::{JwtAuth, Policy};
use portcullis::store::MemoryStore;
use portcullis::{Control, Env, HeaderOp, RequestView, Verdict};
use serde_json::{json, Value};
use support::etcd::execute;
use support::introspection::{unix_now, IntrospectionServer, Mode};

const IDP: &str = "https://idp.example";
const CLIENT_ID: &str = "gateway";
const SECRET: &str = "gw secret:/+";
const SECRET_ENV: &str = "PORTCULLIS_IT_INTROSPECTION_SECRET";

fn control(extra: Value) -> JwtAuth {
    std::env::set_var(SECRET_ENV, SECRET);
    let mut spec = json!({"cluster": "idp", "uri": "http://idp.example/oauth2/introspect",
                          "client_id": CLIENT_ID, "client_secret_env": SECRET_ENV,
                          "timeout_ms": 400, "cache_max_secs": 60, "negative_cache_secs": 5});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    let doc = json!({
        "providers": [{"name": "idp", "issuer": IDP, "audiences": ["orders"],
                       "introspection": spec, "forward": {"claims": ["sub", "client_id"]}}],
        "routes": [{"match": {"prefix": "/admin"}, "scopes_all": ["admin"]}],
        "default": {"scopes_any": ["read"]}
    });
    let p: Policy = parse_policy(doc.to_string().as_bytes()).expect("policy");
    JwtAuth::build_with(p, HostCapabilities::ALL).expect("build")
}

struct Host<'a> {
    c: &'a JwtAuth,
    server: &'a IntrospectionServer,
    /// Calls made to the endpoint.
    calls: Cell<usize>,
}

impl Host<'_> {
    /// One request at `now`, the callouts sent to the server.
    fn at(&self, now: i64, path: &str, token: &str) -> Verdict {
        let store = MemoryStore::default();
        let env = Env {
            now: UNIX_EPOCH + Duration::from_secs(now as u64),
            store: &store,
        };
        let auth = format!("Bearer {token}");
        let req = RequestView::new("GET", path, &[("authorization", &auth)]).unwrap();
        match self.c.on_request(&req, &env) {
            Verdict::Ask(ask) => {
                self.calls.set(self.calls.get() + 1);
                let answers: Vec<Answer> = ask
                    .callouts
                    .iter()
                    .map(|c| execute(c, self.server.addr))
                    .collect();
                self.c.on_answers(&req, None, &ask.state, &answers, &env)
            }
            v => v,
        }
    }

    fn get(&self, path: &str, token: &str) -> Verdict {
        self.at(unix_now(), path, token)
    }
}

fn denied(v: &Verdict) -> (u16, &'static str, String) {
    match v {
        Verdict::Deny(r) => (
            r.status,
            r.code,
            r.headers
                .iter()
                .find(|(k, _)| k == "www-authenticate")
                .map(|(_, v)| v.clone())
                .unwrap_or_default(),
        ),
        other => panic!("expected a denial, got {other:?}"),
    }
}

fn set(v: &Verdict, name: &str) -> Option<String> {
    match v {
        Verdict::Mutate(ops) => ops.iter().find_map(|op| match op {
            HeaderOp::Set(k, val) if k == name => Some(val.clone()),
            _ => None,
        }),
        other => panic!("expected a pass, got {other:?}"),
    }
}

fn members(scope: &str) -> Value {
    json!({"iss": IDP, "aud": "orders", "sub": "alice", "client_id": "app-7",
           "scope": scope, "exp": unix_now() + 3600, "token_type": "Bearer"})
}

#[test]
fn rfc7662_an_active_opaque_token_passes_with_its_members_and_is_cached() {
    let server = IntrospectionServer::start(CLIENT_ID, SECRET);
    server.issue("2YotnFZFEjr1zCsicMWpAA", members("read write"));
    let c = control(json!({}));
    let h = Host {
        c: &c,
        server: &server,
        calls: Cell::new(0),
    };
    let v = h.get("/orders", "2YotnFZFEjr1zCsicMWpAA");
    assert_eq!(set(&v, "x-jwt-sub").as_deref(), Some("alice"));
    assert_eq!(set(&v, "x-jwt-client_id").as_deref(), Some("app-7"));
    // What the server received: RFC 7662 §2.1, and our client credentials (checked by it).
    let forms = server.forms();
    assert_eq!(forms.len(), 1);
    assert_eq!(forms[0]["token"], "2YotnFZFEjr1zCsicMWpAA");
    assert_eq!(forms[0]["token_type_hint"], "access_token");
    // Cached: no second call.
    let v = h.get("/orders", "2YotnFZFEjr1zCsicMWpAA");
    assert!(!v.is_deny(), "{v:?}");
    assert_eq!((h.calls.get(), server.hits()), (1, 1));
    // The same route rules as JWTs: /admin needs `admin`.
    let (status, code, www) = denied(&h.get("/admin", "2YotnFZFEjr1zCsicMWpAA"));
    assert_eq!((status, code), (403, "jwt.scope"));
    assert!(www.contains("insufficient_scope"), "{www}");
}

#[test]
fn rfc7662_inactive_revoked_and_expired_tokens_are_401_invalid_token() {
    let server = IntrospectionServer::start(CLIENT_ID, SECRET);
    let c = control(json!({}));
    let h = Host {
        c: &c,
        server: &server,
        calls: Cell::new(0),
    };
    let (status, code, www) = denied(&h.get("/orders", "unknown-token"));
    assert_eq!((status, code), (401, "jwt.inactive"));
    assert!(www.contains("error=\"invalid_token\""), "{www}");
    // Refused without a call while negatively cached.
    denied(&h.get("/orders", "unknown-token"));
    assert_eq!(server.hits(), 1);
    // Expired by the server's clock: it says inactive.
    server.issue(
        "expired",
        json!({"iss": IDP, "aud": "orders", "scope": "read", "exp": unix_now() - 10}),
    );
    assert_eq!(denied(&h.get("/orders", "expired")).1, "jwt.inactive");
    // Revoked: the cached positive answer serves until cache_max_secs (60 here), then the
    // server is asked again and says inactive. (The control's clock is moved, not slept on.)
    server.issue("soon-revoked", members("read"));
    let now = unix_now();
    assert!(!h.at(now, "/orders", "soon-revoked").is_deny());
    server.revoke("soon-revoked");
    assert!(
        !h.at(now + 59, "/orders", "soon-revoked").is_deny(),
        "cached"
    );
    assert_eq!(
        denied(&h.at(now + 61, "/orders", "soon-revoked")).1,
        "jwt.inactive"
    );
}

#[test]
fn answers_for_another_audience_or_issuer_are_refused() {
    let server = IntrospectionServer::start(CLIENT_ID, SECRET);
    let c = control(json!({}));
    let h = Host {
        c: &c,
        server: &server,
        calls: Cell::new(0),
    };
    let mut m = members("read");
    m["aud"] = json!("billing");
    server.issue("for-billing", m);
    assert_eq!(denied(&h.get("/orders", "for-billing")).1, "jwt.audience");
    let mut m = members("read");
    m["iss"] = json!("https://other.example");
    server.issue("other-issuer", m);
    assert_eq!(denied(&h.get("/orders", "other-issuer")).1, "jwt.issuer");
}

#[test]
fn slow_failing_dropping_or_refusing_endpoints_fail_closed_and_are_not_cached() {
    let server = IntrospectionServer::start(CLIENT_ID, SECRET);
    server.issue("good", members("read"));
    let c = control(json!({}));
    let h = Host {
        c: &c,
        server: &server,
        calls: Cell::new(0),
    };
    for mode in [
        Mode::Slow(Duration::from_millis(1500)),
        Mode::Fail,
        Mode::Drop,
    ] {
        server.mode(mode.clone());
        let (status, code, _) = denied(&h.get("/orders", "good"));
        assert_eq!(
            (status, code),
            (503, "jwt.introspection_unavailable"),
            "{mode:?}"
        );
    }
    // Our client credentials refused (401 from the server): the endpoint is the problem, not
    // the token: unavailable, never "inactive".
    server.mode(Mode::Serve);
    let wrong = control(json!({"client_id": "not-the-gateway"}));
    let w = Host {
        c: &wrong,
        server: &server,
        calls: Cell::new(0),
    };
    assert_eq!(
        denied(&w.get("/orders", "good")).1,
        "jwt.introspection_unavailable"
    );
    // The endpoint back: the token passes at once (no failure was cached).
    assert!(!h.get("/orders", "good").is_deny());
    assert_eq!(h.calls.get(), 4);
}
