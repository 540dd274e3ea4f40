//! Compact JWS parsing before any signature check: segments, base64url, strict JSON, the
//! header rules (RFC 7515 §4, RFC 8725).

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why a token was refused before its signature was looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not three base64url segments of JSON objects.
    Malformed(&'static str),
    /// `alg` missing, `none`, or not allowed.
    Algorithm,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Malformed(why) => f.write_str(why),
            TokenError::Algorithm => f.write_str("the token's algorithm is not accepted"),
        }
    }
}

/// A token split and decoded, not yet verified.
#[derive(Debug)]
pub struct Parsed<'t> {
    pub raw: &'t str,
    pub alg: String,
    pub kid: Option<String>,
    pub claims: Map<String, Value>,
    /// The payload segment as received (base64url of the claims JSON).
    pub payload_b64: &'t str,
}

/// Split, decode and check the header of a compact JWS.
pub fn parse(raw: &str) -> Result<Parsed<'_>, TokenError> {
    let segments: Vec<&str> = raw.split('.').collect();
    let [header_b64, payload_b64, sig_b64] = segments.as_slice() else {
        return Err(TokenError::Malformed(if segments.len() == 5 {
            "encrypted tokens (JWE) are not accepted"
        } else {
            "a JWT has three dot-separated segments"
        }));
    };
    if header_b64.is_empty() || payload_b64.is_empty() || sig_b64.is_empty() {
        return Err(TokenError::Malformed("a JWT segment is empty"));
    }
    let header = decode_object(header_b64, "the token header")?;
    let claims = decode_object(payload_b64, "the token payload")?;
    if URL_SAFE_NO_PAD.decode(sig_b64).is_err() {
        return Err(TokenError::Malformed("the signature is not base64url"));
    }
    let alg = match header.get("alg") {
        Some(Value::String(a)) => a.clone(),
        _ => return Err(TokenError::Algorithm),
    };
    if alg.eq_ignore_ascii_case("none") {
        return Err(TokenError::Algorithm);
    }
    // RFC 7515 §4.1.11: extensions we do not understand (all of them) must be refused.
    if let Some(crit) = header.get("crit") {
        let empty = matches!(crit, Value::Array(a) if a.is_empty());
        if !empty {
            return Err(TokenError::Malformed(
                "the token names critical header extensions",
            ));
        }
    }
    // A nested JWT (RFC 7519 §5.2) or a non-JWT object.
    if let Some(cty) = header.get("cty") {
        if cty.as_str().is_some_and(|c| c.eq_ignore_ascii_case("jwt")) {
            return Err(TokenError::Malformed("nested tokens are not accepted"));
        }
    }
    if let Some(typ) = header.get("typ") {
        let ok = typ.as_str().is_some_and(|t| {
            let t = t.to_ascii_uppercase();
            t == "JWT" || t.ends_with("+JWT")
        });
        if !ok {
            return Err(TokenError::Malformed("the token type is not JWT"));
        }
    }
    // `jku`, `x5u`, `x5c` and `jwk` are never used to find a key. jwt-simple reads `jwk` as a
    // string: refuse another shape now so that it is not reported as a bad signature later.
    if header.get("jwk").is_some_and(|v| !v.is_string()) {
        return Err(TokenError::Malformed(
            "embedded keys (jwk header) are not accepted",
        ));
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(TokenError::Malformed("kid is not a string")),
    };
    Ok(Parsed {
        raw,
        alg,
        kid,
        claims,
        payload_b64,
    })
}

fn decode_object(b64: &str, what: &'static str) -> Result<Map<String, Value>, TokenError> {
    let bytes = URL_SAFE_NO_PAD.decode(b64).map_err(|_| {
        TokenError::Malformed(if what == "the token header" {
            "the token header is not base64url"
        } else {
            "the token payload is not base64url"
        })
    })?;
    match parse_strict(&bytes) {
        Some(Value::Object(m)) => Ok(m),
        _ => Err(TokenError::Malformed(if what == "the token header" {
            "the token header is not a JSON object"
        } else {
            "the token payload is not a JSON object (or repeats a member)"
        })),
    }
}

/// JSON that refuses repeated object members at any depth: two `alg` or two `sub` members
/// are read differently by different parsers (RFC 7515 §5.2, RFC 8259 §4).
pub fn parse_strict(bytes: &[u8]) -> Option<Value> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = Strict::deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(v.0)
}

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            let Strict(v) = map.next_value()?;
            if out.insert(k, v).is_some() {
                return Err(de::Error::custom("duplicate member"));
            }
        }
        Ok(Value::Object(out))
    }
}

/// A NumericDate claim (RFC 7519 §2) in whole seconds; `Err` when present but not a number
/// between 0 and 2^32 - 1 (what the verifier accepts too; fractions are truncated).
pub fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, ()> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            let secs = match (n.as_u64(), n.as_f64()) {
                (Some(u), _) => u,
                (None, Some(f)) if (0.0..4_294_967_296.0).contains(&f) => f as u64,
                _ => return Err(()),
            };
            if secs > u64::from(u32::MAX) {
                return Err(());
            }
            i64::try_from(secs).map(Some).map_err(|_| ())
        }
        Some(_) => Err(()),
    }
}

/// The registered claims have the types RFC 7519 §4.1 gives them.
pub fn registered_claims_well_typed(claims: &Map<String, Value>) -> bool {
    let strings = ["iss", "sub", "jti", "nonce"]
        .iter()
        .all(|n| claims.get(*n).is_none_or(Value::is_string));
    let aud = match claims.get("aud") {
        None | Some(Value::String(_)) => true,
        Some(Value::Array(a)) => a.iter().all(Value::is_string),
        Some(_) => false,
    };
    strings && aud
}

/// The granted scopes: `scope` (space-delimited, RFC 8693 §4.2 / RFC 9068) and `scp`
/// (an array, or a space-delimited string in some IdPs).
pub fn scopes(claims: &Map<String, Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in ["scope", "scp"] {
        match claims.get(name) {
            Some(Value::String(s)) => {
                out.extend(s.split(' ').filter(|x| !x.is_empty()).map(String::from))
            }
            Some(Value::Array(a)) => {
                out.extend(a.iter().filter_map(|v| v.as_str()).map(String::from))
            }
            _ => {}
        }
    }
    out
}

/// Decode base64url without padding (JWK members); padded input is tolerated.
pub fn b64url(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}
