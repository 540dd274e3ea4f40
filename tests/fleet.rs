//! Request-time callouts in a real Envoy: the wasm host pauses a request while a control asks
//! another service through an Envoy cluster, and resumes it with the control's verdict.
//! - request-signing `replay_store: etcd`: two Envoys (two replicas of one policy) against a
//!   real three-member etcd cluster; a request accepted by one is refused by the other, and
//!   with quorum lost signed requests fail closed and recover when it returns.
//! - jwt-auth `introspection`: opaque tokens checked by a real RFC 7662 endpoint.

mod signing_support;
mod support;

use std::net::SocketAddr;

use serde_json::json;
use signing_support::{lib_sign, now, with, SECRET, SECRET_ENV};
use support::etcd::EtcdCluster;
use support::introspection::{unix_now, IntrospectionServer, Mode};
use support::*;

const COMPONENTS: &[&str] = &["@method", "@authority", "@path", "@query", "content-digest"];
const BODY: &[u8] = br#"{"item": "book", "qty": 2}"#;

fn etcd_policy(prefix: &str) -> String {
    format!(
        r#"{{"keys": [{{"keyid": "client-1", "secret_env": "{SECRET_ENV}"}}],
            "default": {{"components": ["@method", "@authority", "@path", "@query", "content-digest"]}},
            "replay_store": {{"kind": "etcd", "cluster": "etcd", "prefix": "{prefix}", "timeout_ms": 1500}}}}"#
    )
}

/// One replica: an Envoy whose cluster `etcd` is the given member.
fn replica(prefix: &str, member: SocketAddr) -> Envoy {
    envoy()
        .filter(Filter::new("request-signing", etcd_policy(prefix)).vm_env(SECRET_ENV, SECRET))
        .cluster("etcd", member)
        .start()
}

/// The same, as the middle member of a guard chain.
fn guard_replica(prefix: &str, member: SocketAddr) -> Envoy {
    let policy = format!(
        r#"{{"chain": ["header_guard", "request_signing", "content_type"],
            "header_guard": {{}}, "request_signing": {}, "content_type": {{}}}}"#,
        etcd_policy(prefix)
    );
    envoy()
        .filter(Filter::new("guard", policy).vm_env(SECRET_ENV, SECRET))
        .cluster("etcd", member)
        .start()
}

fn signed() -> Vec<(String, String)> {
    lib_sign(
        "POST",
        "/orders?id=7",
        &[("content-type", "application/json")],
        BODY,
        now(),
        COMPONENTS,
    )
}

fn post(e: &Envoy, signature: &[(String, String)]) -> Response {
    e.post(
        "/orders?id=7",
        &with(&[("content-type", "application/json")], signature),
        BODY,
    )
}

/// The replica is up once its first lease is granted (a background call at start): until then
/// a signed request is refused 503, never passed.
fn wait_serving(e: &Envoy) {
    let ok = eventually_secs(15, || {
        let r = post(e, &signed());
        assert!(r.status == 200 || r.status == 503, "{r:?}");
        r.status == 200
    });
    assert!(ok, "no signed request passed; log:\n{}", e.log());
}

#[test]
fn etcd_replay_store_a_request_accepted_by_one_replica_is_refused_by_another() {
    let cluster = EtcdCluster::start(3);
    let prefix = format!("/portcullis/fleet-{}/", std::process::id());
    let a = replica(&prefix, cluster.client(0));
    let b = replica(&prefix, cluster.client(1));
    wait_serving(&a);
    wait_serving(&b);
    let before_a = a.upstream_seen().len();
    let before_b = b.upstream_seen().len();

    let sig = signed();
    assert_eq!(post(&a, &sig).status, 200);
    let r = post(&b, &sig);
    r.assert_problem(401, "signature.replayed");
    // And back at A: its local cache refuses it without asking etcd.
    post(&a, &sig).assert_problem(401, "signature.replayed");
    assert_eq!(a.upstream_seen().len(), before_a + 1);
    assert_eq!(
        b.upstream_seen().len(),
        before_b,
        "the replay reached B's upstream"
    );
    assert_eq!(
        b.counter("request_signing", "denied", "signature.replayed"),
        1
    );
}

#[test]
fn etcd_replay_store_the_same_request_sent_to_two_replicas_at_once_is_accepted_exactly_once() {
    let cluster = EtcdCluster::start(3);
    let prefix = format!("/portcullis/race-{}/", std::process::id());
    let a = replica(&prefix, cluster.client(0));
    let b = replica(&prefix, cluster.client(1));
    wait_serving(&a);
    wait_serving(&b);
    let (before_a, before_b) = (a.upstream_seen().len(), b.upstream_seen().len());
    let rounds = 20;
    for round in 0..rounds {
        let sig = signed();
        let (ra, rb) = std::thread::scope(|s| {
            let ta = s.spawn(|| post(&a, &sig).status);
            let tb = s.spawn(|| post(&b, &sig).status);
            (ta.join().unwrap(), tb.join().unwrap())
        });
        let mut got = [ra, rb];
        got.sort_unstable();
        assert_eq!(got, [200, 401], "round {round}: A {ra}, B {rb}");
    }
    // Over the whole run no nonce reached an upstream twice.
    let accepted = a.upstream_seen().len() - before_a + b.upstream_seen().len() - before_b;
    assert_eq!(accepted, rounds);
}

#[test]
fn etcd_replay_store_in_guard_pauses_the_chain_mid_way_and_refuses_the_replay_elsewhere() {
    let cluster = EtcdCluster::start(3);
    let prefix = format!("/portcullis/guard-{}/", std::process::id());
    let a = guard_replica(&prefix, cluster.client(0));
    let b = guard_replica(&prefix, cluster.client(2));
    wait_serving(&a);
    wait_serving(&b);
    let sig = signed();
    assert_eq!(post(&a, &sig).status, 200);
    post(&b, &sig).assert_problem(401, "signature.replayed");
    // The members after the one that asked still run: content_type refuses a bad body.
    let bad = lib_sign(
        "POST",
        "/orders?id=7",
        &[("content-type", "text/plain")],
        BODY,
        now(),
        COMPONENTS,
    );
    let r = a.post(
        "/orders?id=7",
        &with(&[("content-type", "text/plain")], &bad),
        BODY,
    );
    r.assert_problem(415, "content_type.unsupported");
}

#[test]
fn etcd_replay_store_with_quorum_lost_fails_closed_and_recovers() {
    let mut cluster = EtcdCluster::start(3);
    let prefix = format!("/portcullis/quorum-{}/", std::process::id());
    let a = replica(&prefix, cluster.client(0));
    wait_serving(&a);

    // One member down: a majority is left, everything works (once a new leader is elected,
    // if the stopped member led; meanwhile requests fail closed).
    cluster.stop(2);
    assert!(
        eventually_secs(10, || post(&a, &signed()).status == 200),
        "one member down stopped signed requests"
    );
    let before = a.upstream_seen().len();

    // Two down: member 0 cannot commit; the insert times out and the request is refused.
    cluster.stop(1);
    let r = post(&a, &signed());
    r.assert_problem(503, "signature.replay_store_unavailable");
    assert_eq!(
        a.upstream_seen().len(),
        before,
        "a request passed without the store"
    );

    cluster.restart(1);
    cluster.restart(2);
    cluster.wait_healthy(0, 20);
    let ok = eventually_secs(20, || post(&a, &signed()).status == 200);
    assert!(ok, "signed requests did not recover with quorum back");
}

#[test]
fn etcd_replay_store_unreachable_is_503_and_nothing_reaches_the_upstream() {
    // A port nothing listens on: every lease grant and insert fails.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let a = replica("/portcullis/down/", addr);
    let r = post(&a, &signed());
    r.assert_problem(503, "signature.replay_store_unavailable");
    assert!(a.upstream_seen().is_empty());
}

const CLIENT_ID: &str = "gateway";
const IDP_SECRET: &str = "gw-secret";
const IDP_SECRET_ENV: &str = "IDP_CLIENT_SECRET";

fn introspection_envoy(server: &IntrospectionServer) -> Envoy {
    let policy = json!({
        "providers": [{"name": "idp", "issuer": "https://idp.example", "audiences": ["orders"],
                       "introspection": {"cluster": "idp", "uri": "http://idp.example/oauth2/introspect",
                                         "client_id": CLIENT_ID, "client_secret_env": IDP_SECRET_ENV,
                                         "timeout_ms": 1000, "negative_cache_secs": 5},
                       "forward": {"claims": ["sub"]}}],
        "default": {"scopes_any": ["read"]}
    });
    envoy()
        .filter(Filter::new("jwt-auth", policy).vm_env(IDP_SECRET_ENV, IDP_SECRET))
        .cluster("idp", server.addr)
        .start()
}

fn active(scope: &str) -> serde_json::Value {
    json!({"active": true, "iss": "https://idp.example", "aud": "orders", "sub": "alice",
           "scope": scope, "exp": unix_now() + 300})
}

#[test]
fn rfc7662_an_active_opaque_token_passes_and_an_inactive_one_is_401() {
    let server = IntrospectionServer::start(CLIENT_ID, IDP_SECRET);
    server.issue("opaque-read", active("read"));
    server.issue("opaque-write", active("write"));
    let e = introspection_envoy(&server);

    let r = e.get("/orders", &[("authorization", "Bearer opaque-read")]);
    assert_eq!(r.status, 200, "{r:?}\n{}", e.log());
    let seen = e.upstream_seen();
    let last = seen.last().expect("the upstream saw it");
    assert!(
        last.headers
            .iter()
            .any(|(k, v)| k == "x-jwt-sub" && v == "alice"),
        "{:?}",
        last.headers
    );
    // Cached until exp: the second request does not ask again.
    let hits = server.hits();
    assert_eq!(
        e.get("/orders", &[("authorization", "Bearer opaque-read")])
            .status,
        200
    );
    assert_eq!(server.hits(), hits);

    e.get("/orders", &[("authorization", "Bearer opaque-write")])
        .assert_problem(403, "jwt.scope");
    let r = e.get("/orders", &[("authorization", "Bearer revoked-or-unknown")]);
    r.assert_problem(401, "jwt.inactive");
    assert!(
        r.header("www-authenticate")
            .is_some_and(|c| c.contains("invalid_token")),
        "{r:?}"
    );
    assert_eq!(e.upstream_seen().len(), 2);
}

#[test]
fn rfc7662_an_endpoint_that_fails_or_drops_is_503_never_a_pass() {
    let server = IntrospectionServer::start(CLIENT_ID, IDP_SECRET);
    server.issue("opaque-read", active("read"));
    let e = introspection_envoy(&server);
    for mode in [Mode::Fail, Mode::Drop] {
        server.mode(mode);
        e.get("/orders", &[("authorization", "Bearer opaque-read")])
            .assert_problem(503, "jwt.introspection_unavailable");
    }
    assert!(e.upstream_seen().is_empty());
    // Failures are not cached: the endpoint back, the token passes.
    server.mode(Mode::Serve);
    assert_eq!(
        e.get("/orders", &[("authorization", "Bearer opaque-read")])
            .status,
        200
    );
}

fn introspection_policy() -> serde_json::Value {
    json!({
        "providers": [{"name": "idp", "issuer": "https://idp.example", "audiences": ["orders"],
                       "introspection": {"cluster": "idp", "uri": "http://idp.example/oauth2/introspect",
                                         "client_id": CLIENT_ID, "client_secret_env": IDP_SECRET_ENV,
                                         "timeout_ms": 1000}}],
        "default": {"scopes_any": ["read"]}
    })
}

#[test]
fn a_body_sent_while_the_request_waits_for_an_answer_reaches_the_upstream_whole() {
    let server = IntrospectionServer::start(CLIENT_ID, IDP_SECRET);
    server.issue("opaque-read", active("read"));
    // The endpoint answers late: the whole body has arrived (and is held) by then.
    server.mode(Mode::Slow(std::time::Duration::from_millis(300)));
    let e = envoy()
        .filter(Filter::new("jwt-auth", introspection_policy()).vm_env(IDP_SECRET_ENV, IDP_SECRET))
        .cluster("idp", server.addr)
        .start();
    let body = vec![b'x'; 200_000];
    let r = e.post(
        "/orders",
        &[
            ("authorization", "Bearer opaque-read"),
            ("content-type", "text/plain"),
        ],
        &body,
    );
    assert_eq!(r.status, 200, "{r:?}");
    let seen = e.upstream_seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].body.len(),
        body.len(),
        "the upstream got a different body"
    );
    // Refused while waiting: nothing at all reaches the upstream.
    server.revoke("opaque-read");
    let r = e.post(
        "/orders",
        &[
            ("authorization", "Bearer opaque-other"),
            ("content-type", "text/plain"),
        ],
        &body,
    );
    r.assert_problem(401, "jwt.inactive");
    assert_eq!(e.upstream_seen().len(), 1);
}

#[test]
fn in_guard_a_member_after_the_one_that_asked_can_still_read_the_body() {
    let server = IntrospectionServer::start(CLIENT_ID, IDP_SECRET);
    server.issue("opaque-read", active("read"));
    server.mode(Mode::Slow(std::time::Duration::from_millis(200)));
    let policy = json!({
        "chain": ["jwt_auth", "content_type"],
        "jwt_auth": introspection_policy(),
        "content_type": {"default": {"allow": ["application/json"]}}
    });
    let e = envoy()
        .filter(Filter::new("guard", policy).vm_env(IDP_SECRET_ENV, IDP_SECRET))
        .cluster("idp", server.addr)
        .start();
    let h = [
        ("authorization", "Bearer opaque-read"),
        ("content-type", "application/json"),
    ];
    let r = e.post("/orders", &h, br#"{"sku": "a1"}"#);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(e.upstream_seen()[0].body, r#"{"sku": "a1"}"#);
    e.post("/orders", &h, br#"{"sku": "#)
        .assert_problem(400, "content_type.body_mismatch");
    assert_eq!(e.upstream_seen().len(), 1);
}
