//! Remote key sets: a JWKS fetched through an Envoy cluster at start and every refresh
//! interval, or found through OpenID Connect discovery. The last good set is kept when a fetch
//! fails; failures are retried with exponential backoff; a token naming an unknown `kid` asks
//! for an early refetch, at most once per `unknown_kid_refetch_secs`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use serde_json::Value;

use super::keys::{compile_jwks, KeySet};
use crate::callout::{Callout, CalloutResponse};

/// Where a fetch goes: `authority` and `path` of an `http(s)://` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub authority: String,
    pub path: String,
}

/// Split `https://idp.example.com:8443/keys?x=1` into authority and path.
pub fn parse_uri(uri: &str) -> Option<Target> {
    let rest = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (rest.get(..i)?, rest.get(i..)?),
        None => (rest, "/"),
    };
    let ok = !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
        && path.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| Target {
        authority: authority.to_string(),
        path: path.to_string(),
    })
}

#[derive(Debug)]
pub struct Remote {
    pub cluster: String,
    /// The JWKS URI, known from the policy or learnt by discovery.
    jwks: RefCell<Option<Target>>,
    /// The discovery document's URI (`None`: the policy names the JWKS URI).
    discovery: Option<Target>,
    /// The issuer the discovery document must name (OpenID Connect Discovery §4.3).
    issuer: String,
    refresh: i64,
    timeout: Duration,
    refetch_gap: i64,
    keys: RefCell<Option<Rc<KeySet>>>,
    /// SHA-256 of the JWKS document the keys came from: any change clears the token cache.
    keys_digest: Cell<[u8; 32]>,
    next_at: Cell<i64>,
    in_flight_until: Cell<Option<i64>>,
    failures: Cell<u32>,
    early_wish: Cell<bool>,
    last_early: Cell<i64>,
}

/// What a callout answer changed.
#[derive(Debug, PartialEq, Eq)]
pub enum Update {
    Nothing,
    /// A new key set replaced a different one (or the first one arrived).
    KeysChanged,
}

/// Backoff after `n` consecutive failures: 1, 2, 4 … 64 s, never beyond the refresh interval.
fn backoff(n: u32, refresh: i64) -> i64 {
    (1i64 << n.saturating_sub(1).min(6)).min(refresh.max(1))
}

impl Remote {
    pub fn new(
        cluster: String,
        jwks: Option<Target>,
        discovery: Option<Target>,
        issuer: String,
        refresh_secs: u64,
        timeout: Duration,
        refetch_gap_secs: u64,
    ) -> Self {
        Remote {
            cluster,
            jwks: RefCell::new(jwks),
            discovery,
            issuer,
            refresh: i64::try_from(refresh_secs).unwrap_or(i64::MAX),
            timeout,
            refetch_gap: i64::try_from(refetch_gap_secs).unwrap_or(i64::MAX),
            keys: RefCell::new(None),
            keys_digest: Cell::new([0; 32]),
            next_at: Cell::new(0),
            in_flight_until: Cell::new(None),
            failures: Cell::new(0),
            early_wish: Cell::new(false),
            last_early: Cell::new(i64::MIN / 2),
        }
    }

    pub fn keys(&self) -> Option<Rc<KeySet>> {
        self.keys.borrow().clone()
    }

    /// A token named a `kid` we do not have: fetch again soon (rate-limited by `on_tick`).
    pub fn wish_refetch(&self) {
        self.early_wish.set(true);
    }

    /// The callout to make now, if any. `tag_base`: this provider's tags are `tag_base`
    /// (JWKS) and `tag_base + 1` (discovery).
    pub fn on_tick(&self, now: i64, tag_base: u64) -> Option<Callout> {
        if let Some(until) = self.in_flight_until.get() {
            if now < until {
                return None;
            }
            // The host never answered: count it as a failure.
            self.fail(now);
        }
        let early =
            self.early_wish.get() && now.saturating_sub(self.last_early.get()) >= self.refetch_gap;
        if now < self.next_at.get() && !early {
            return None;
        }
        if early {
            self.last_early.set(now);
        }
        self.early_wish.set(false);
        let (tag, target) = match (self.jwks.borrow().clone(), &self.discovery) {
            (Some(t), _) => (tag_base, t),
            (None, Some(d)) => (tag_base + 1, d.clone()),
            (None, None) => return None,
        };
        let secs = i64::try_from(self.timeout.as_secs()).unwrap_or(60);
        self.in_flight_until.set(Some(now.saturating_add(secs + 5)));
        Some(Callout {
            tag,
            cluster: self.cluster.clone(),
            method: "GET".into(),
            authority: target.authority,
            path: target.path,
            headers: vec![("accept".into(), "application/json".into())],
            body: None,
            timeout: self.timeout,
        })
    }

    fn fail(&self, now: i64) {
        self.in_flight_until.set(None);
        let n = self.failures.get().saturating_add(1);
        self.failures.set(n);
        self.next_at
            .set(now.saturating_add(backoff(n, self.refresh)));
        // A discovered JWKS URI that keeps failing is discovered again.
        if n >= 3 && self.discovery.is_some() {
            *self.jwks.borrow_mut() = None;
        }
    }

    /// The answer to one of our callouts (`discovery`: to the discovery request).
    pub fn on_response(
        &self,
        discovery: bool,
        resp: Option<CalloutResponse>,
        allowed: &[&'static str],
        now: i64,
        provider: &str,
    ) -> Update {
        let body = match resp {
            Some(r) if r.status == 200 => r.body,
            Some(r) => {
                log::warn!(
                    "portcullis jwt_auth: provider {provider}: key fetch answered {}",
                    r.status
                );
                self.fail(now);
                return Update::Nothing;
            }
            None => {
                log::warn!("portcullis jwt_auth: provider {provider}: key fetch failed");
                self.fail(now);
                return Update::Nothing;
            }
        };
        let doc = super::token::parse_strict(&body);
        if discovery {
            let target = doc.as_ref().and_then(|d| {
                let issuer_ok = d.get("issuer").and_then(Value::as_str) == Some(&self.issuer);
                let uri = d.get("jwks_uri").and_then(Value::as_str)?;
                issuer_ok.then(|| parse_uri(uri)).flatten()
            });
            match target {
                Some(t) => {
                    *self.jwks.borrow_mut() = Some(t);
                    self.in_flight_until.set(None);
                    // Fetch the keys at the next tick.
                    self.next_at.set(now);
                }
                None => {
                    log::warn!(
                        "portcullis jwt_auth: provider {provider}: discovery document without a \
                         usable jwks_uri or with another issuer"
                    );
                    self.fail(now);
                }
            }
            return Update::Nothing;
        }
        let digest = super::cache::digest_bytes(&body);
        if self.keys.borrow().is_some() && self.keys_digest.get() == digest {
            // The same document again: keep the compiled keys (ES256 keys carry tables that
            // take milliseconds to build).
            self.in_flight_until.set(None);
            self.failures.set(0);
            self.next_at.set(now.saturating_add(self.refresh));
            return Update::Nothing;
        }
        match doc.map(|d| compile_jwks(&d, allowed, false)) {
            Some(Ok(set)) => {
                self.in_flight_until.set(None);
                self.failures.set(0);
                self.next_at.set(now.saturating_add(self.refresh));
                // A document identical to the last good one returned above: this one is new.
                self.keys_digest.set(digest);
                log::info!(
                    "portcullis jwt_auth: provider {provider}: {} keys loaded",
                    set.keys.len()
                );
                *self.keys.borrow_mut() = Some(Rc::new(set));
                Update::KeysChanged
            }
            _ => {
                log::warn!(
                    "portcullis jwt_auth: provider {provider}: the key set is not a usable JWKS; \
                     keeping the last good one"
                );
                self.fail(now);
                Update::Nothing
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_same_document_again_keeps_the_compiled_keys() {
        let r = Remote::new(
            "jwks".into(),
            parse_uri("https://idp.example/keys"),
            None,
            "https://idp.example".into(),
            60,
            Duration::from_secs(5),
            10,
        );
        let jwk = |x: &str| {
            json!({"keys": [{"kty": "oct", "kid": x, "k": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"}]})
                .to_string()
        };
        let answer = |body: String, now| {
            let resp = CalloutResponse {
                status: 200,
                body: body.into_bytes(),
            };
            r.on_response(false, Some(resp), &["HS256"], now, "idp")
        };
        assert!(matches!(answer(jwk("a"), 0), Update::KeysChanged));
        let first = r.keys().unwrap();
        assert!(matches!(answer(jwk("a"), 60), Update::Nothing));
        assert!(Rc::ptr_eq(&first, &r.keys().unwrap()), "recompiled");
        assert!(matches!(answer(jwk("b"), 120), Update::KeysChanged));
        assert!(!Rc::ptr_eq(&first, &r.keys().unwrap()));
    }
}
