//! Opaque access tokens, validated by OAuth 2.0 Token Introspection (RFC 7662) through an
//! Envoy cluster: the request (§2.1: a form `token=…` POSTed with the client's credentials,
//! HTTP Basic per RFC 6749 §2.3.1), the answer (§2.2: `active`, `scope`, `aud`, `exp`, `iss`,
//! `client_id`, …) mapped onto the same checks as a JWT's claims, and a bounded cache of the
//! answers (positive until `exp`, at most `cache_max_secs`; negative briefly).

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{Map, Value};

use super::cache::Digest32;
use super::remote::Target;
use super::Failure;
use crate::callout::{Answer, Callout};
use crate::secret::Secret;

/// An introspection endpoint, compiled.
#[derive(Debug)]
pub struct Introspection {
    pub cluster: String,
    pub target: Target,
    pub timeout: Duration,
    /// `Basic base64(client_id ":" secret)`, both form-encoded first (RFC 6749 §2.3.1).
    authorization: Secret,
    pub token_type_hint: bool,
    /// Longest a positive answer is cached, whatever its `exp`.
    pub cache_max_secs: i64,
    /// How long a negative answer (inactive, or refused by the checks) is cached.
    pub negative_secs: i64,
    /// Status when the endpoint gives no usable answer: 503 or 401.
    pub unavailable_status: u16,
}

/// `application/x-www-form-urlencoded` (WHATWG URL §5.2): unreserved bytes as they are,
/// space as `+`, everything else percent-encoded.
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl Introspection {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cluster: String,
        target: Target,
        timeout: Duration,
        client_id: &str,
        client_secret: &str,
        token_type_hint: bool,
        cache_max_secs: i64,
        negative_secs: i64,
        unavailable_status: u16,
    ) -> Self {
        let pair = zeroize::Zeroizing::new(format!(
            "{}:{}",
            form_encode(client_id),
            form_encode(client_secret)
        ));
        let header = format!("Basic {}", STANDARD.encode(pair.as_bytes()));
        Introspection {
            cluster,
            target,
            timeout,
            authorization: Secret::new(header.into_bytes()),
            token_type_hint,
            cache_max_secs,
            negative_secs,
            unavailable_status,
        }
    }

    /// The introspection request for `token` (RFC 7662 §2.1).
    pub fn request(&self, tag: u64, token: &str) -> Callout {
        let mut body = format!("token={}", form_encode(token));
        if self.token_type_hint {
            body.push_str("&token_type_hint=access_token");
        }
        Callout {
            tag,
            cluster: self.cluster.clone(),
            method: "POST".into(),
            authority: self.target.authority.clone(),
            path: self.target.path.clone(),
            headers: vec![
                (
                    "content-type".into(),
                    "application/x-www-form-urlencoded".into(),
                ),
                ("accept".into(), "application/json".into()),
                (
                    "authorization".into(),
                    String::from_utf8_lossy(&self.authorization).into_owned(),
                ),
            ],
            body: Some(body.into_bytes()),
            timeout: self.timeout,
        }
    }
}

/// What an answer says about a token.
#[derive(Debug, Clone, PartialEq)]
pub enum Said {
    /// `"active": true`: the response members, as a JWT's claims, and the response body
    /// (base64url, for `x-jwt-payload`).
    Active(Map<String, Value>, String),
    /// `"active": false` (RFC 7662 §2.2: nothing else is to be read from it).
    Inactive,
    /// No usable answer: failed call, an error status, or a body that is not a response.
    Unavailable(&'static str),
}

/// Read the answer to [`Introspection::request`].
pub fn parse_answer(answer: &Answer) -> Said {
    let resp = match answer {
        Ok(r) => r,
        Err(f) => return Said::Unavailable(f.as_str()),
    };
    if resp.status != 200 {
        // 401/403: our client credentials are refused; 5xx: the server is down. Never
        // "inactive": that would cache the token as bad while the endpoint is the problem.
        return Said::Unavailable("status");
    }
    let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(&resp.body) else {
        return Said::Unavailable("not a JSON object");
    };
    match doc.get("active") {
        Some(Value::Bool(true)) => {
            let b64 = URL_SAFE_NO_PAD.encode(&resp.body);
            Said::Active(doc, b64)
        }
        Some(Value::Bool(false)) => Said::Inactive,
        _ => Said::Unavailable("no boolean `active`"),
    }
}

/// The checks a JWT's claims get, on an active token's response members: `iss` (when given)
/// must be the provider's issuer; `exp`, `nbf` against the clock with the skew; `aud` against
/// the provider's audiences. Returns the last second the token may be accepted at.
pub fn check(
    members: &Map<String, Value>,
    issuer: &str,
    audiences: &[String],
    skew: i64,
    require_exp: bool,
    now: i64,
) -> Result<i64, Failure> {
    let date = |name: &str| match members.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map(Some)
            .ok_or(Failure::Malformed("a time member is not a number")),
        Some(_) => Err(Failure::Malformed("a time member is not a number")),
    };
    let (exp, nbf) = (date("exp")?, date("nbf")?);
    match members.get("iss") {
        None => {}
        Some(Value::String(i)) if i == issuer => {}
        Some(_) => return Err(Failure::Issuer),
    }
    let valid_until = match exp {
        Some(e) if e < now.saturating_sub(skew) => return Err(Failure::Expired),
        Some(e) => e.saturating_add(skew),
        None if require_exp => return Err(Failure::ExpRequired),
        None => i64::MAX,
    };
    if nbf.is_some_and(|n| n > now.saturating_add(skew)) {
        return Err(Failure::NotYetValid);
    }
    if !audiences.is_empty() {
        let ok = match members.get("aud") {
            Some(Value::String(a)) => audiences.contains(a),
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(Value::as_str)
                .any(|a| audiences.iter().any(|x| x == a)),
            _ => false,
        };
        if !ok {
            return Err(Failure::Audience);
        }
    }
    Ok(valid_until)
}

/// Tokens recently found inactive (or refused by the checks): refused without a call until
/// their entry expires. Bounded: the oldest entry goes first.
/// Token digest -> (refused until, why), and the digests oldest first.
type Refused = (HashMap<Digest32, (i64, Failure)>, VecDeque<Digest32>);

#[derive(Debug)]
pub struct NegativeCache {
    max: usize,
    inner: RefCell<Refused>,
}

impl NegativeCache {
    pub fn new(max: usize) -> Self {
        NegativeCache {
            max,
            inner: RefCell::new((HashMap::new(), VecDeque::new())),
        }
    }

    pub fn get(&self, key: &Digest32, now: i64) -> Option<Failure> {
        let inner = self.inner.borrow();
        inner
            .0
            .get(key)
            .filter(|(until, _)| now < *until)
            .map(|(_, f)| *f)
    }

    pub fn insert(&self, key: Digest32, failure: Failure, until: i64) {
        if self.max == 0 {
            return;
        }
        let mut inner = self.inner.borrow_mut();
        let (map, order) = &mut *inner;
        if map.insert(key, (until, failure)).is_none() {
            order.push_back(key);
        }
        while map.len() > self.max {
            let Some(old) = order.pop_front() else {
                break;
            };
            map.remove(&old);
        }
    }

    pub fn len(&self) -> usize {
        self.inner.borrow().0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callout::{CalloutFailure, CalloutResponse};
    use serde_json::json;

    fn endpoint() -> Introspection {
        Introspection::new(
            "idp".into(),
            Target {
                authority: "idp.example".into(),
                path: "/oauth2/introspect".into(),
            },
            Duration::from_millis(500),
            "gateway client",
            "s3cr:et/+",
            true,
            300,
            10,
            503,
        )
    }

    fn ok(body: Value) -> Answer {
        Ok(CalloutResponse {
            status: 200,
            body: body.to_string().into_bytes(),
        })
    }

    #[test]
    fn rfc7662_2_1_the_request_is_a_form_post_with_basic_client_credentials() {
        let c = endpoint().request(4, "mF_9.B5f-4.1JqM+/=");
        assert_eq!(c.method, "POST");
        assert_eq!(
            (c.cluster.as_str(), c.authority.as_str()),
            ("idp", "idp.example")
        );
        assert_eq!(c.path, "/oauth2/introspect");
        assert_eq!(c.timeout, Duration::from_millis(500));
        let h = |n: &str| {
            c.headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(h("content-type"), "application/x-www-form-urlencoded");
        assert_eq!(h("accept"), "application/json");
        // RFC 6749 §2.3.1: client id and secret form-encoded, then `id:secret` in base64.
        let basic = h("authorization");
        let decoded = STANDARD
            .decode(basic.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(decoded, b"gateway+client:s3cr%3Aet%2F%2B");
        assert_eq!(
            c.body.as_deref().unwrap(),
            b"token=mF_9.B5f-4.1JqM%2B%2F%3D&token_type_hint=access_token"
        );
    }

    #[test]
    fn rfc7662_2_2_active_inactive_and_no_usable_answer() {
        let active = json!({"active": true, "scope": "read write", "client_id": "c1",
                            "exp": 2000, "iss": "https://idp.example"});
        match parse_answer(&ok(active.clone())) {
            Said::Active(members, b64) => {
                assert_eq!(Value::Object(members), active);
                assert_eq!(
                    URL_SAFE_NO_PAD.decode(b64).unwrap(),
                    active.to_string().as_bytes()
                );
            }
            other => panic!("{other:?}"),
        }
        // Inactive: nothing else counts (a server may say more, RFC 7662 §2.2).
        assert_eq!(
            parse_answer(&ok(json!({"active": false, "scope": "admin"}))),
            Said::Inactive
        );
        for bad in [
            ok(json!({"scope": "read"})),
            ok(json!({"active": "true"})),
            ok(json!(["active"])),
            Ok(CalloutResponse {
                status: 200,
                body: b"<html>".to_vec(),
            }),
            Ok(CalloutResponse {
                status: 401,
                body: br#"{"error":"invalid_client"}"#.to_vec(),
            }),
            Ok(CalloutResponse {
                status: 503,
                body: br#"{"active":false}"#.to_vec(),
            }),
            Err(CalloutFailure::Timeout),
            Err(CalloutFailure::Reset),
        ] {
            assert!(
                matches!(parse_answer(&bad), Said::Unavailable(_)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn response_members_meet_the_same_checks_as_jwt_claims() {
        let m = |v: Value| v.as_object().unwrap().clone();
        let iss = "https://idp.example";
        let aud = vec!["orders".to_string()];
        let now = 1000;
        let good = m(json!({"active": true, "iss": iss, "aud": ["x", "orders"], "exp": 1100}));
        assert_eq!(check(&good, iss, &aud, 60, true, now), Ok(1160));
        // `iss` absent is allowed (optional in RFC 7662), another one is not.
        let no_iss = m(json!({"active": true, "aud": "orders", "exp": 1100}));
        assert_eq!(check(&no_iss, iss, &aud, 60, true, now), Ok(1160));
        let other = m(json!({"active": true, "iss": "https://evil", "aud": "orders", "exp": 1100}));
        assert_eq!(
            check(&other, iss, &aud, 60, true, now),
            Err(Failure::Issuer)
        );
        let wrong_aud = m(json!({"active": true, "aud": "billing", "exp": 1100}));
        assert_eq!(
            check(&wrong_aud, iss, &aud, 60, true, now),
            Err(Failure::Audience)
        );
        let no_aud = m(json!({"active": true, "exp": 1100}));
        assert_eq!(
            check(&no_aud, iss, &aud, 60, true, now),
            Err(Failure::Audience)
        );
        assert_eq!(check(&no_aud, iss, &[], 60, true, now), Ok(1160));
        let expired = m(json!({"active": true, "exp": 900}));
        assert_eq!(
            check(&expired, iss, &[], 60, true, now),
            Err(Failure::Expired)
        );
        let no_exp = m(json!({"active": true}));
        assert_eq!(
            check(&no_exp, iss, &[], 60, true, now),
            Err(Failure::ExpRequired)
        );
        assert_eq!(check(&no_exp, iss, &[], 60, false, now), Ok(i64::MAX));
        let early = m(json!({"active": true, "exp": 5000, "nbf": 2000}));
        assert_eq!(
            check(&early, iss, &[], 60, true, now),
            Err(Failure::NotYetValid)
        );
        let bad_exp = m(json!({"active": true, "exp": "soon"}));
        assert!(matches!(
            check(&bad_exp, iss, &[], 60, true, now),
            Err(Failure::Malformed(_))
        ));
    }

    #[test]
    fn the_negative_cache_expires_and_is_bounded() {
        let c = NegativeCache::new(2);
        c.insert([1; 32], Failure::Inactive, 110);
        assert_eq!(c.get(&[1; 32], 100), Some(Failure::Inactive));
        assert_eq!(c.get(&[1; 32], 110), None, "expired");
        c.insert([2; 32], Failure::Inactive, 200);
        c.insert([3; 32], Failure::Audience, 200);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(&[1; 32], 100), None, "the oldest went first");
        assert_eq!(c.get(&[3; 32], 100), Some(Failure::Audience));
        let off = NegativeCache::new(0);
        off.insert([1; 32], Failure::Inactive, 200);
        assert_eq!(off.len(), 0);
    }
}
