//! The fleet-wide replay store: nonces in an etcd v3 cluster, reached through an Envoy cluster
//! to etcd's JSON gateway.
//!
//! - One atomic insert-if-absent per signed request: `POST /v3/kv/txn` comparing the key's
//!   `create_revision` to 0 (the key does not exist) and, only then, putting it with a lease.
//!   etcd is linearizable (Raft): of two replicas inserting the same key at once, exactly one
//!   sees `"succeeded": true`.
//! - Keys are `{prefix}{hex(SHA-256(len(keyid) ‖ keyid ‖ nonce))}`: namespaced per policy, and
//!   neither the nonce nor anything secret is in them.
//! - Leases are granted ahead, in the background (`on_tick`, `POST /v3/lease/grant`), each for
//!   twice the time a nonce must be remembered, and rotated: a put only takes a lease that
//!   outlives its nonce's replay window, and a new lease is granted while the newest one still
//!   has half its usable time left. A request therefore costs one round trip.
//! - The local replay cache stays in front: a nonce seen by this Envoy is refused without a
//!   round trip.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::callout::{Answer, Callout, CalloutResponse};

/// Spare seconds on top of every lifetime computed here (clock steps, slow answers).
const MARGIN_SECS: u64 = 30;
/// The longest a lease grant may stay unanswered before it counts as failed.
const GRANT_GRACE_SECS: i64 = 5;

/// The gateway paths (etcd 3.4+).
pub const TXN_PATH: &str = "/v3/kv/txn";
pub const LEASE_GRANT_PATH: &str = "/v3/lease/grant";

/// What the store says about one nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Insert {
    /// The key was absent and is now written: the first use fleet-wide.
    Inserted,
    /// The key exists: another request (on any replica) used the nonce.
    Exists,
    /// The lease named in the put is gone (expired or revoked): no decision.
    LeaseGone,
    /// No decision (store unreachable, slow, erroring, or an answer we cannot read).
    Unavailable(&'static str),
}

/// The store's key for a nonce of `keyid` under `prefix`. The nonce is hashed with the key id
/// (as the local cache does): the key holds no secret and no client-chosen bytes.
pub fn nonce_key(prefix: &str, keyid: &str, nonce: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update((keyid.len() as u64).to_be_bytes());
    h.update(keyid.as_bytes());
    h.update(nonce);
    let digest = h.finalize();
    let mut key = String::with_capacity(prefix.len() + 64);
    key.push_str(prefix);
    for b in digest {
        key.push_str(&format!("{b:02x}"));
    }
    key
}

/// Where and how the store is reached.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub cluster: String,
    pub authority: String,
    pub timeout: Duration,
}

impl Endpoint {
    fn post(&self, tag: u64, path: &str, body: Value) -> Callout {
        Callout {
            tag,
            cluster: self.cluster.clone(),
            method: "POST".into(),
            authority: self.authority.clone(),
            path: path.into(),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("accept".into(), "application/json".into()),
            ],
            body: Some(body.to_string().into_bytes()),
            timeout: self.timeout,
        }
    }

    /// The atomic insert-if-absent of `key` (its value: `value`) with `lease`.
    pub fn txn_insert(&self, tag: u64, key: &str, value: &[u8], lease: i64) -> Callout {
        let k = STANDARD.encode(key.as_bytes());
        let body = json!({
            "compare": [{
                "key": k,
                "result": "EQUAL",
                "target": "CREATE",
                "create_revision": "0"
            }],
            "success": [{"request_put": {
                "key": k,
                "value": STANDARD.encode(value),
                "lease": lease.to_string()
            }}],
            "failure": []
        });
        self.post(tag, TXN_PATH, body)
    }

    /// A lease grant for `ttl_secs` (etcd picks the id).
    pub fn lease_grant(&self, tag: u64, ttl_secs: u64) -> Callout {
        self.post(
            tag,
            LEASE_GRANT_PATH,
            json!({"TTL": ttl_secs.to_string(), "ID": "0"}),
        )
    }
}

/// An int64 of the gateway: a JSON string of digits (proto3 JSON), or a number.
fn int64(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// The gateway's error body (`{"error": "...", "code": N, "message": "..."}`), if it is one.
fn gateway_error(doc: &Value) -> Option<String> {
    let text = |k: &str| doc.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    text("error")
        .or_else(|| text("message"))
        .map(str::to_string)
}

/// Read the answer to [`Endpoint::txn_insert`].
pub fn parse_txn(answer: &Answer) -> Insert {
    let resp = match answer {
        Ok(r) => r,
        Err(f) => return Insert::Unavailable(f.as_str()),
    };
    let doc: Option<Value> = serde_json::from_slice(&resp.body).ok();
    if let Some(e) = doc.as_ref().and_then(gateway_error) {
        if e.contains("lease not found") {
            return Insert::LeaseGone;
        }
        return Insert::Unavailable("store error");
    }
    if resp.status != 200 {
        return Insert::Unavailable("store status");
    }
    let Some(doc) = doc.filter(|d| d.get("header").is_some_and(Value::is_object)) else {
        // Not a txn answer (a proxy's error page, a truncated body): no decision.
        return Insert::Unavailable("unreadable answer");
    };
    // proto3 JSON leaves out `false`: a failed compare answers without `succeeded`.
    match doc.get("succeeded") {
        Some(Value::Bool(true)) => Insert::Inserted,
        Some(Value::Bool(false)) | None => Insert::Exists,
        Some(_) => Insert::Unavailable("unreadable answer"),
    }
}

/// A granted lease: its id and the unix second it expires at (at the latest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub id: i64,
    pub expires: i64,
}

/// Read the answer to [`Endpoint::lease_grant`] sent at `sent_at`: the lease lives until
/// `sent_at + TTL` at least (etcd starts it when it handles the grant, after we sent it).
pub fn parse_grant(resp: &CalloutResponse, sent_at: i64) -> Option<Lease> {
    if resp.status != 200 {
        return None;
    }
    let doc: Value = serde_json::from_slice(&resp.body).ok()?;
    if gateway_error(&doc).is_some() {
        return None;
    }
    let id = int64(doc.get("ID")).filter(|id| *id != 0)?;
    let ttl = int64(doc.get("TTL")).filter(|t| *t > 0)?;
    Some(Lease {
        id,
        expires: sent_at.saturating_add(ttl),
    })
}

/// The leases one Envoy worker holds, granted ahead and rotated.
#[derive(Debug)]
pub struct Leases {
    /// How long a put's lease must still live: the nonce's whole replay lifetime.
    needed: i64,
    /// What each grant asks for: twice `needed`, so a lease serves new puts for `needed` s.
    ttl: u64,
    held: RefCell<Vec<Lease>>,
    /// A grant in flight: when it was sent.
    pending: Cell<Option<i64>>,
    grace: i64,
    failures: Cell<u32>,
    next_try: Cell<i64>,
}

impl Leases {
    /// Leases for nonces remembered `remember_secs` after the later of their `created` and
    /// their use, where `created` may lie `skew_secs` ahead; grants time out after `timeout`.
    pub fn new(remember_secs: u64, skew_secs: u64, timeout: Duration) -> Self {
        let needed = remember_secs
            .saturating_add(skew_secs)
            .saturating_add(MARGIN_SECS);
        Leases {
            needed: i64::try_from(needed).unwrap_or(i64::MAX / 4),
            ttl: needed.saturating_mul(2),
            held: RefCell::new(Vec::new()),
            pending: Cell::new(None),
            grace: i64::try_from(timeout.as_secs())
                .unwrap_or(60)
                .saturating_add(GRANT_GRACE_SECS),
            failures: Cell::new(0),
            next_try: Cell::new(0),
        }
    }

    /// The TTL each grant asks for.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl
    }

    /// The lease a put at `now` takes: the one living longest, if it outlives the nonce.
    pub fn current(&self, now: i64) -> Option<i64> {
        self.held
            .borrow()
            .iter()
            .filter(|l| l.expires.saturating_sub(now) >= self.needed)
            .max_by_key(|l| l.expires)
            .map(|l| l.id)
    }

    /// Whether a grant is due at `now`: no grant in flight (or one overdue, then failed), no
    /// back-off running, and no lease with more than half its usable time left.
    pub fn grant_due(&self, now: i64) -> bool {
        if let Some(sent) = self.pending.get() {
            if now.saturating_sub(sent) < self.grace {
                return false;
            }
            self.failed(now);
        }
        if now < self.next_try.get() {
            return false;
        }
        // Drop leases that can never serve a put again.
        self.held
            .borrow_mut()
            .retain(|l| l.expires.saturating_sub(now) >= self.needed);
        let best = self.held.borrow().iter().map(|l| l.expires).max();
        let lead = self.needed.saturating_add(self.needed / 2);
        best.is_none_or(|e| e.saturating_sub(now) < lead)
    }

    /// The grant callout, when one is due (and it is then in flight).
    pub fn on_tick(&self, endpoint: &Endpoint, tag: u64, now: i64) -> Option<Callout> {
        if !self.grant_due(now) {
            return None;
        }
        self.pending.set(Some(now));
        Some(endpoint.lease_grant(tag, self.ttl))
    }

    /// The answer to our grant (`None`: it failed).
    pub fn on_response(&self, resp: Option<&CalloutResponse>, now: i64) -> Option<Lease> {
        let sent = self.pending.take().unwrap_or(now);
        match resp.and_then(|r| parse_grant(r, sent)) {
            Some(lease) => {
                self.failures.set(0);
                self.held.borrow_mut().push(lease);
                Some(lease)
            }
            None => {
                self.failed(now);
                None
            }
        }
    }

    fn failed(&self, now: i64) {
        self.pending.set(None);
        let n = self.failures.get().saturating_add(1);
        self.failures.set(n);
        // 1, 2, 4, 8 s, then every 10 s: a store coming back is noticed quickly.
        let wait = (1i64 << n.saturating_sub(1).min(3)).min(10);
        self.next_try.set(now.saturating_add(wait));
    }

    /// A put found this lease gone: never use it again, and grant a new one at the next tick.
    pub fn forget(&self, id: i64) {
        self.held.borrow_mut().retain(|l| l.id != id);
        self.next_try.set(0);
    }

    /// Leases held (for tests).
    pub fn held(&self) -> Vec<Lease> {
        self.held.borrow().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callout::CalloutFailure;

    fn endpoint() -> Endpoint {
        Endpoint {
            cluster: "etcd".into(),
            authority: "etcd.internal".into(),
            timeout: Duration::from_millis(250),
        }
    }

    fn answer(status: u16, body: &str) -> Answer {
        Ok(CalloutResponse {
            status,
            body: body.as_bytes().to_vec(),
        })
    }

    fn body_of(c: &Callout) -> Value {
        serde_json::from_slice(c.body.as_deref().unwrap()).unwrap()
    }

    #[test]
    fn keys_are_namespaced_and_hold_neither_the_nonce_nor_a_secret() {
        let k = nonce_key("/portcullis/orders/", "client-1", b"nonce-123");
        assert!(k.starts_with("/portcullis/orders/"));
        assert_eq!(k.len(), "/portcullis/orders/".len() + 64);
        assert!(!k.contains("nonce-123") && !k.contains("client-1"));
        // The same nonce by another key is another key; the same inputs the same key.
        assert_ne!(
            k,
            nonce_key("/portcullis/orders/", "client-2", b"nonce-123")
        );
        assert_eq!(
            k,
            nonce_key("/portcullis/orders/", "client-1", b"nonce-123")
        );
        // (len, keyid) framing: ("ab", "c…") and ("a", "bc…") differ.
        assert_ne!(nonce_key("p", "ab", b"c"), nonce_key("p", "a", b"bc"));
    }

    #[test]
    fn the_txn_compares_create_revision_to_zero_and_puts_with_the_lease() {
        let c = endpoint().txn_insert(3, "/p/k", b"1790000000", 7587862);
        assert_eq!((c.method.as_str(), c.path.as_str()), ("POST", TXN_PATH));
        assert_eq!(c.cluster, "etcd");
        assert_eq!(c.authority, "etcd.internal");
        assert_eq!(c.timeout, Duration::from_millis(250));
        let b = body_of(&c);
        let key = STANDARD.encode("/p/k");
        assert_eq!(
            b["compare"],
            json!([{"key": key, "result": "EQUAL", "target": "CREATE", "create_revision": "0"}])
        );
        assert_eq!(
            b["success"],
            json!([{"request_put": {"key": key, "value": STANDARD.encode("1790000000"), "lease": "7587862"}}])
        );
        assert_eq!(b["failure"], json!([]));
    }

    #[test]
    fn txn_answers_are_read_strictly() {
        let header =
            r#""header":{"cluster_id":"1","member_id":"2","revision":"9","raft_term":"3"}"#;
        assert_eq!(
            parse_txn(&answer(
                200,
                &format!(
                    r#"{{{header},"succeeded":true,"responses":[{{"response_put":{{"header":{{"revision":"9"}}}}}}]}}"#
                )
            )),
            Insert::Inserted
        );
        // The compare failed: proto3 JSON leaves `succeeded` out.
        assert_eq!(
            parse_txn(&answer(200, &format!("{{{header}}}"))),
            Insert::Exists
        );
        assert_eq!(
            parse_txn(&answer(200, &format!(r#"{{{header},"succeeded":false}}"#))),
            Insert::Exists
        );
        assert_eq!(
            parse_txn(&answer(
                404,
                r#"{"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5}"#
            )),
            Insert::LeaseGone
        );
        assert_eq!(
            parse_txn(&answer(
                503,
                r#"{"error":"etcdserver: request timed out","code":14}"#
            )),
            Insert::Unavailable("store error")
        );
        // Never a decision from something that is not a txn answer.
        assert_eq!(
            parse_txn(&answer(200, "<html>upstream connect error</html>")),
            Insert::Unavailable("unreadable answer")
        );
        assert_eq!(
            parse_txn(&answer(200, "{}")),
            Insert::Unavailable("unreadable answer")
        );
        assert_eq!(
            parse_txn(&answer(503, "")),
            Insert::Unavailable("store status")
        );
        assert_eq!(
            parse_txn(&answer(200, &format!(r#"{{{header},"succeeded":"yes"}}"#))),
            Insert::Unavailable("unreadable answer")
        );
        assert_eq!(
            parse_txn(&Err(CalloutFailure::Timeout)),
            Insert::Unavailable("timeout")
        );
    }

    #[test]
    fn grants_are_read_with_their_send_time() {
        let r = |s: &str| CalloutResponse {
            status: 200,
            body: s.as_bytes().to_vec(),
        };
        assert_eq!(
            parse_grant(&r(r#"{"header":{},"ID":"7587862","TTL":"780"}"#), 1000),
            Some(Lease {
                id: 7587862,
                expires: 1780
            })
        );
        assert_eq!(parse_grant(&r(r#"{"ID":"0","TTL":"780"}"#), 0), None);
        assert_eq!(parse_grant(&r(r#"{"ID":"5","TTL":"0"}"#), 0), None);
        assert_eq!(
            parse_grant(
                &r(r#"{"ID":"5","TTL":"9","error":"etcdserver: too many requests"}"#),
                0
            ),
            None
        );
        assert_eq!(parse_grant(&r("nope"), 0), None);
    }

    /// 300 s window, 30 s skew: nonces live window + 2·skew = 360 s after max(created, now),
    /// and `created` may be 30 s ahead: a put needs a lease living 360 + 30 + 30 (margin) s.
    #[test]
    fn every_put_takes_a_lease_that_outlives_its_nonce_and_leases_rotate_ahead() {
        let l = Leases::new(360, 30, Duration::from_millis(250));
        let e = endpoint();
        assert_eq!(l.ttl_secs(), 840);
        let t0 = 1_000_000i64;
        assert_eq!(l.current(t0), None, "no lease before the first grant");
        let c = l.on_tick(&e, 9, t0).expect("a grant at start");
        assert_eq!(c.path, LEASE_GRANT_PATH);
        assert_eq!(body_of(&c), json!({"TTL": "840", "ID": "0"}));
        assert!(
            l.on_tick(&e, 9, t0).is_none(),
            "one grant in flight at a time"
        );
        let grant = |id: i64| CalloutResponse {
            status: 200,
            body: format!(r#"{{"header":{{}},"ID":"{id}","TTL":"840"}}"#).into_bytes(),
        };
        l.on_response(Some(&grant(1)), t0 + 1);
        assert_eq!(l.current(t0 + 1), Some(1));
        // Over two hours of ticks every second: whenever a put happens, its lease lives at
        // least the nonce's lifetime past it, and few leases are alive at once.
        let mut next_id = 2;
        for now in t0 + 1..t0 + 7200 {
            if l.on_tick(&e, 9, now).is_some() {
                l.on_response(Some(&grant(next_id)), now);
                next_id += 1;
            }
            let id = l.current(now).expect("a usable lease at every moment");
            let lease = l.held().into_iter().find(|x| x.id == id).unwrap();
            assert!(lease.expires - now >= 420, "at {now}: {lease:?}");
            assert!(l.held().len() <= 3, "{:?}", l.held());
        }
        // About one grant per 210 s (half the usable span), not one per request or per tick.
        assert!((30..=40).contains(&next_id), "{next_id} grants");
    }

    #[test]
    fn failed_grants_back_off_and_a_lost_lease_is_replaced_at_once() {
        let l = Leases::new(360, 30, Duration::from_millis(250));
        let e = endpoint();
        let t = 5_000i64;
        assert!(l.on_tick(&e, 1, t).is_some());
        l.on_response(None, t);
        assert!(l.on_tick(&e, 1, t).is_none(), "backing off");
        assert!(l.on_tick(&e, 1, t + 1).is_some());
        // Unanswered past the grace: failed, and retried after the back-off.
        assert!(l.on_tick(&e, 1, t + 2).is_none());
        assert!(
            l.on_tick(&e, 1, t + 1 + 5).is_none(),
            "overdue now, backing off 2 s"
        );
        assert!(l.on_tick(&e, 1, t + 1 + 5 + 2).is_some());
        let ok = CalloutResponse {
            status: 200,
            body: br#"{"header":{},"ID":"42","TTL":"840"}"#.to_vec(),
        };
        l.on_response(Some(&ok), t + 8);
        assert_eq!(l.current(t + 8), Some(42));
        assert!(
            l.on_tick(&e, 1, t + 9).is_none(),
            "fresh lease: nothing due"
        );
        l.forget(42);
        assert_eq!(l.current(t + 9), None);
        assert!(
            l.on_tick(&e, 1, t + 9).is_some(),
            "replaced at the next tick"
        );
    }
}
