//! request-signing `replay_store: etcd` against a real three-member etcd cluster (Debian's
//! etcd-server 3.4, on loopback), driving the control directly (tests/fleet.rs runs it
//! through two Envoys): the test plays the host, it sends the exact requests the control builds
//! (lease grants from `on_tick`, the txn of each `Ask`) to an etcd member over plain HTTP, and
//! feeds the real answers back to the control. Two controls with separate local caches are two
//! replicas of the same policy.

mod signing_support;
mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, SystemTime};

use portcullis::callout::{Answer, Callout, CalloutFailure, HostCapabilities};
use portcullis::control::parse_policy;
use portcullis::controls::request_signing::etcd::{self, Endpoint, Insert, Leases};
use portcullis::controls::request_signing::{Policy, RequestSigning};
use portcullis::store::MemoryStore;
use portcullis::{Control, Env, RequestView, Verdict};
use signing_support::{lib_sign, now, SECRET};
use support::etcd::{execute, EtcdCluster};

const COMPONENTS: &[&str] = &["@method", "@authority", "@path", "@query", "content-digest"];

fn policy(prefix: &str, timeout_ms: u64) -> Policy {
    let doc = format!(
        r#"{{
  "keys": [{{"keyid": "client-1", "secret": "{SECRET}"}}],
  "default": {{"components": ["@method", "@authority", "@path", "@query", "content-digest"]}},
  "replay_store": {{"kind": "etcd", "cluster": "etcd", "prefix": "{prefix}", "timeout_ms": {timeout_ms}}}
}}"#
    );
    parse_policy(doc.as_bytes()).expect("policy")
}

/// One replica: the control (as the driver will build it) and its own local cache.
struct Replica {
    control: RequestSigning,
    store: MemoryStore,
}

impl Replica {
    fn new(prefix: &str, timeout_ms: u64) -> Replica {
        let control = RequestSigning::build_with(policy(prefix, timeout_ms), HostCapabilities::ALL)
            .expect("build");
        Replica {
            control,
            store: MemoryStore::default(),
        }
    }

    fn env(&self) -> Env<'_> {
        Env {
            now: SystemTime::now(),
            store: &self.store,
        }
    }

    /// The background work until a lease is granted, through `member`.
    fn get_lease(&self, member: SocketAddr) {
        for _ in 0..50 {
            let env = self.env();
            let calls = self.control.on_tick(&env);
            if calls.is_empty() {
                return;
            }
            for c in calls {
                let resp = execute(&c, member).ok();
                self.control.on_callout_response(c.tag, resp, &env);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no lease granted");
    }

    /// Both phases and the ask, with the calls sent to `member`. `(verdict, asked the store)`.
    fn handle(&self, req: &Signed, member: SocketAddr) -> (Verdict, bool) {
        let env = self.env();
        let view = req.view();
        let (v, body) = match self.control.on_request(&view, &env) {
            Verdict::NeedBody { .. } => {
                (self.control.on_request_body(&view, &req.body, &env), true)
            }
            v => (v, false),
        };
        match v {
            Verdict::Ask(ask) => {
                let answers: Vec<Answer> =
                    ask.callouts.iter().map(|c| execute(c, member)).collect();
                let body = body.then_some(req.body.as_slice());
                let env = self.env();
                (
                    self.control
                        .on_answers(&view, body, &ask.state, &answers, &env),
                    true,
                )
            }
            v => (v, false),
        }
    }
}

/// A signed POST, as a client sends it.
struct Signed {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Signed {
    fn new(body: &str) -> Signed {
        let signed = lib_sign("POST", "/orders", &[], body.as_bytes(), now(), COMPONENTS);
        let mut headers: Vec<(String, String)> = signed
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        headers.push(("content-length".into(), body.len().to_string()));
        Signed {
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    fn view(&self) -> RequestView {
        let h: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        RequestView::new("POST", "/orders", &h).expect("view")
    }
}

fn outcome(v: &Verdict) -> &'static str {
    match v {
        Verdict::Continue => "ok",
        Verdict::Deny(r) => r.code,
        Verdict::Pass { reports, .. } if reports.is_empty() => "ok",
        other => panic!("unexpected verdict {other:?}"),
    }
}

fn status(v: &Verdict) -> u16 {
    match v {
        Verdict::Deny(r) => r.status,
        _ => 200,
    }
}

fn unique_prefix(test: &str) -> String {
    format!("/portcullis/test/{}/{test}/", std::process::id())
}

fn endpoint(timeout: Duration) -> Endpoint {
    Endpoint {
        cluster: "etcd".into(),
        authority: "etcd".into(),
        timeout,
    }
}

#[test]
fn txn_compare_create_revision_0_is_an_atomic_insert_if_absent() {
    let etcd = EtcdCluster::start(3);
    let member = etcd.client(0);
    let e = endpoint(Duration::from_secs(2));
    let leases = Leases::new(360, 30, e.timeout);
    let grant = leases.on_tick(&e, 0, now() as i64).expect("a grant is due");
    let lease = leases
        .on_response(execute(&grant, member).ok().as_ref(), now() as i64)
        .expect("etcd granted the lease");
    assert!(lease.expires - now() as i64 >= 800, "{lease:?}");
    let key = etcd::nonce_key(&unique_prefix("txn"), "client-1", b"nonce-1");
    let txn = e.txn_insert(1, &key, b"v", lease.id);
    assert_eq!(etcd::parse_txn(&execute(&txn, member)), Insert::Inserted);
    // The same insert again, through another member: the key exists.
    assert_eq!(
        etcd::parse_txn(&execute(&txn, etcd.client(1))),
        Insert::Exists
    );
    assert_eq!(
        etcd::parse_txn(&execute(&txn, etcd.client(2))),
        Insert::Exists
    );
    // Another nonce is another key.
    let other = etcd::nonce_key(&unique_prefix("txn"), "client-1", b"nonce-2");
    let txn2 = e.txn_insert(1, &other, b"v", lease.id);
    assert_eq!(etcd::parse_txn(&execute(&txn2, member)), Insert::Inserted);
    // A put with a lease etcd does not have: the gateway's error, read as such.
    let ghost = etcd::nonce_key(&unique_prefix("txn"), "client-1", b"nonce-3");
    let txn3 = e.txn_insert(1, &ghost, b"v", 0x1234_5678);
    assert_eq!(etcd::parse_txn(&execute(&txn3, member)), Insert::LeaseGone);
}

#[test]
fn a_key_lives_as_long_as_its_lease() {
    let etcd = EtcdCluster::start(3);
    let member = etcd.client(0);
    let e = endpoint(Duration::from_secs(2));
    let short = e.lease_grant(0, 3);
    let lease = etcd::parse_grant(&execute(&short, member).expect("grant"), now() as i64)
        .expect("a 3 s lease");
    let key = etcd::nonce_key(&unique_prefix("lease"), "client-1", b"n");
    let txn = e.txn_insert(1, &key, b"v", lease.id);
    assert_eq!(etcd::parse_txn(&execute(&txn, member)), Insert::Inserted);
    assert_eq!(etcd::parse_txn(&execute(&txn, member)), Insert::Exists);
    // Once the lease expired, the key is gone with it, and so is the lease.
    let gone = support::eventually_secs(15, || {
        etcd::parse_txn(&execute(&txn, member)) == Insert::LeaseGone
    });
    assert!(gone, "the key or the lease outlived its TTL");
}

#[test]
fn a_request_accepted_by_replica_a_is_refused_as_a_replay_by_replica_b() {
    let etcd = EtcdCluster::start(3);
    let prefix = unique_prefix("replay");
    let (a, b) = (Replica::new(&prefix, 1000), Replica::new(&prefix, 1000));
    a.get_lease(etcd.client(0));
    b.get_lease(etcd.client(1));
    let req = Signed::new(r#"{"order":1}"#);
    let (v, asked) = a.handle(&req, etcd.client(0));
    assert!(asked);
    assert_eq!(outcome(&v), "ok");
    let (v, asked) = b.handle(&req, etcd.client(1));
    assert!(
        asked,
        "replica B's own cache never saw it: the store decides"
    );
    assert_eq!(outcome(&v), "signature.replayed");
    assert_eq!(status(&v), 401);
    // Again on B: its local cache now refuses it without a round trip.
    let (v, asked) = b.handle(&req, etcd.client(2));
    assert!(!asked);
    assert_eq!(outcome(&v), "signature.replayed");
}

#[test]
fn concurrent_duplicates_on_every_replica_are_accepted_exactly_once() {
    let etcd = EtcdCluster::start(3);
    let prefix = unique_prefix("concurrent");
    let members: Vec<SocketAddr> = (0..etcd.len()).map(|i| etcd.client(i)).collect();
    const REPLICAS: usize = 6;
    const ROUNDS: usize = 5;
    let requests: Vec<Arc<Signed>> = (0..ROUNDS)
        .map(|i| Arc::new(Signed::new(&format!(r#"{{"round":{i}}}"#))))
        .collect();
    let accepted: Arc<Mutex<HashMap<usize, usize>>> = Arc::default();
    let barrier = Arc::new(Barrier::new(REPLICAS));
    let threads: Vec<_> = (0..REPLICAS)
        .map(|r| {
            let (prefix, members, requests) = (prefix.clone(), members.clone(), requests.clone());
            let (accepted, barrier) = (accepted.clone(), barrier.clone());
            std::thread::spawn(move || {
                let replica = Replica::new(&prefix, 2000);
                let member = members[r % members.len()];
                replica.get_lease(member);
                for (round, req) in requests.iter().enumerate() {
                    barrier.wait();
                    let (v, _) = replica.handle(req, member);
                    match outcome(&v) {
                        "ok" => *accepted.lock().unwrap().entry(round).or_default() += 1,
                        "signature.replayed" => {}
                        other => panic!("replica {r}, round {round}: {other}"),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("replica thread");
    }
    let accepted = accepted.lock().unwrap();
    for round in 0..ROUNDS {
        assert_eq!(
            accepted.get(&round).copied().unwrap_or(0),
            1,
            "round {round}: {REPLICAS} replicas at once, accepted exactly once"
        );
    }
}

#[test]
fn one_member_down_still_works_quorum_lost_fails_closed_and_recovers() {
    let mut etcd = EtcdCluster::start(3);
    let prefix = unique_prefix("quorum");
    let a = Replica::new(&prefix, 1500);
    a.get_lease(etcd.client(0));
    let mut accepted: HashMap<Vec<(String, String)>, usize> = HashMap::new();
    let mut count = |req: &Signed, v: &Verdict| {
        if outcome(v) == "ok" {
            *accepted.entry(req.headers.clone()).or_default() += 1;
        }
    };

    // One member stopped: two of three are a quorum. (Were it the leader, writes stall for
    // one election, about the election timeout: they fail closed meanwhile.)
    etcd.stop(2);
    etcd.wait_healthy(0, 30);
    etcd.wait_healthy(1, 30);
    for member in [etcd.client(0), etcd.client(1)] {
        let req = Signed::new(r#"{"one_down":true}"#);
        let (v, asked) = a.handle(&req, member);
        assert!(asked);
        assert_eq!(outcome(&v), "ok", "with one member down");
        count(&req, &v);
        let (v, _) = a.handle(&req, member);
        assert_eq!(outcome(&v), "signature.replayed");
    }

    // Two stopped: no quorum. The insert cannot commit; the control fails closed (503, so
    // nothing reaches the upstream), and the nonce is not spent.
    etcd.stop(1);
    let held = Signed::new(r#"{"no_quorum":true}"#);
    let (v, asked) = a.handle(&held, etcd.client(0));
    assert!(asked);
    assert_eq!(outcome(&v), "signature.replay_store_unavailable");
    assert_eq!(status(&v), 503);
    // The members that are down: no connection, the same.
    let (v, _) = a.handle(&held, etcd.client(1));
    assert_eq!(outcome(&v), "signature.replay_store_unavailable");

    // Quorum back. A timed-out insert has an unknown outcome: etcd may still commit it once
    // quorum returns (it was proposed), so the held request is accepted at most once, or
    // refused as a replay; never twice. A request signed anew passes.
    etcd.restart(1);
    etcd.wait_healthy(0, 30);
    etcd.wait_healthy(1, 30);
    let fresh = Signed::new(r#"{"after_quorum":true}"#);
    let recovered = support::eventually_secs(15, || {
        let (v, _) = a.handle(&fresh, etcd.client(0));
        count(&fresh, &v);
        outcome(&v) == "ok"
    });
    assert!(recovered, "signed requests pass again once quorum is back");
    for member in [etcd.client(0), etcd.client(1)] {
        let (v, _) = a.handle(&held, member);
        assert!(
            matches!(outcome(&v), "ok" | "signature.replayed"),
            "{}",
            outcome(&v)
        );
        count(&held, &v);
        let (v, _) = a.handle(&fresh, member);
        assert_eq!(outcome(&v), "signature.replayed");
    }
    etcd.restart(2);
    etcd.wait_healthy(2, 30);
    let after = Signed::new(r#"{"all_back":true}"#);
    let (v, _) = a.handle(&after, etcd.client(2));
    assert_eq!(outcome(&v), "ok");
    count(&after, &v);
    // Over the whole run, no nonce accepted twice.
    assert!(accepted.values().all(|n| *n == 1), "{accepted:?}");
    assert!((4..=5).contains(&accepted.len()), "{accepted:?}");
}

/// The failure mapping the executor applies, checked against a port nobody listens on.
#[test]
fn no_listener_is_a_failed_call_never_an_answer() {
    let addr: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let c = Callout {
        tag: 0,
        cluster: "etcd".into(),
        method: "POST".into(),
        authority: "etcd".into(),
        path: "/v3/kv/txn".into(),
        headers: vec![],
        body: Some(b"{}".to_vec()),
        timeout: Duration::from_millis(300),
    };
    assert_eq!(execute(&c, addr), Err(CalloutFailure::Reset));
}
