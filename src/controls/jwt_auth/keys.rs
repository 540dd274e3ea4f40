//! JSON Web Key Sets (RFC 7517) compiled into verifiers; signatures are checked by the crypto
//! facade (`crate::crypto::jws`). A key is bound to one
//! algorithm: an HMAC secret only verifies HS*, an RSA key only RS*/PS*, so RS256→HS256
//! confusion cannot happen.

use serde_json::Value;

use super::token::b64url;
use crate::crypto::jws::Verifier;

/// The algorithms a provider may allow. `none` is not one of them.
pub const ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "HS256",
    "HS384", "HS512",
];

/// One key, for one algorithm.
pub struct Key {
    pub kid: Option<String>,
    pub alg: &'static str,
    verifier: Verifier,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({:?}, {})", self.kid, self.alg)
    }
}

/// A provider's usable keys.
#[derive(Debug, Default)]
pub struct KeySet {
    pub keys: Vec<Key>,
}

/// The outcome of looking for a key and checking the signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigError {
    /// The token names a `kid` we do not have (or no key fits its algorithm).
    UnknownKid,
    BadSignature,
}

/// Largest number of keys tried for a token without `kid`.
const MAX_TRIES: usize = 8;

impl KeySet {
    /// Verify the signature of `token` (algorithm already checked against the allow-list).
    pub fn verify(&self, token: &str, alg: &str, kid: Option<&str>) -> Result<(), SigError> {
        let mut candidates = self
            .keys
            .iter()
            .filter(|k| k.alg == alg && (kid.is_none() || k.kid.as_deref() == kid))
            .peekable();
        if candidates.peek().is_none() {
            return Err(SigError::UnknownKid);
        }
        for k in candidates.take(MAX_TRIES) {
            if k.verify(token) {
                return Ok(());
            }
        }
        Err(SigError::BadSignature)
    }
}

impl Key {
    fn verify(&self, token: &str) -> bool {
        self.verifier.verify(token)
    }
}

fn str_member<'a>(jwk: &'a Value, name: &str) -> Option<&'a str> {
    jwk.get(name).and_then(Value::as_str)
}

fn bytes_member(jwk: &Value, name: &str) -> Result<Vec<u8>, (String, String)> {
    let s = str_member(jwk, name)
        .ok_or_else(|| (name.to_string(), "missing (a base64url string)".to_string()))?;
    b64url(s).ok_or_else(|| (name.to_string(), "is not base64url".to_string()))
}

/// The smallest HMAC secret for an algorithm: the hash size (RFC 7518 §3.2).
fn hmac_min(alg: &str) -> usize {
    match alg {
        "HS384" => 48,
        "HS512" => 64,
        _ => 32,
    }
}

/// Compile one JWK into keys for each of `allowed` algorithms it can serve. `Ok(empty)`: the key
/// is not for signatures or fits none of the algorithms. `Err((member, reason))`: it is broken.
pub fn compile_jwk(jwk: &Value, allowed: &[&'static str]) -> Result<Vec<Key>, (String, String)> {
    if !jwk.is_object() {
        return Err((String::new(), "a JWK is a JSON object".into()));
    }
    if str_member(jwk, "use").is_some_and(|u| u != "sig") {
        return Ok(Vec::new());
    }
    let kid = match jwk.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(("kid".into(), "must be a string".into())),
    };
    let kty = str_member(jwk, "kty").ok_or(("kty".to_string(), "missing".to_string()))?;
    let jwk_alg = str_member(jwk, "alg");
    let family: &[&str] = match (kty, str_member(jwk, "crv")) {
        ("RSA", _) => &["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"],
        ("EC", Some("P-256")) => &["ES256"],
        ("EC", Some("P-384")) => &["ES384"],
        ("OKP", Some("Ed25519")) => &["EdDSA"],
        ("oct", _) => &["HS256", "HS384", "HS512"],
        ("EC", _) | ("OKP", _) => return Ok(Vec::new()),
        (other, _) => {
            return Err((
                "kty".into(),
                format!("`{}` is not a supported key type", clip(other)),
            ))
        }
    };
    if let Some(a) = jwk_alg {
        if !family.contains(&a) {
            return Err((
                "alg".into(),
                format!("`{}` does not fit key type {kty}", clip(a)),
            ));
        }
    }
    let algs: Vec<&'static str> = allowed
        .iter()
        .copied()
        .filter(|a| family.contains(a) && jwk_alg.is_none_or(|j| j == *a))
        .collect();
    let mut out = Vec::new();
    let bad = |m: &str| (m.to_string(), "is not a valid key".to_string());
    match kty {
        "RSA" => {
            let n = bytes_member(jwk, "n")?;
            let e = bytes_member(jwk, "e")?;
            if n.len() < 256 {
                return Err(("n".into(), "RSA keys need at least 2048 bits".into()));
            }
            for alg in algs {
                out.push(Key {
                    kid: kid.clone(),
                    alg,
                    verifier: Verifier::rsa(alg, &n, &e).ok_or_else(|| bad("n"))?,
                });
            }
        }
        "EC" => {
            let x = bytes_member(jwk, "x")?;
            let y = bytes_member(jwk, "y")?;
            let mut point = vec![4u8];
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            for alg in algs {
                out.push(Key {
                    kid: kid.clone(),
                    alg,
                    verifier: Verifier::ec(alg, &point).ok_or_else(|| bad("x"))?,
                });
            }
        }
        "OKP" => {
            let x = bytes_member(jwk, "x")?;
            for alg in algs {
                out.push(Key {
                    kid: kid.clone(),
                    alg,
                    verifier: Verifier::ed25519(&x).ok_or_else(|| bad("x"))?,
                });
            }
        }
        _ => {
            // jwt-simple wipes its own HMAC keys; this copy is wiped too.
            let k = crate::secret::Secret::new(bytes_member(jwk, "k")?);
            if let Some(a) = jwk_alg {
                if k.len() < hmac_min(a) {
                    return Err((
                        "k".into(),
                        format!(
                            "weak key: {a} needs a secret of at least {} bytes (RFC 7518 §3.2)",
                            hmac_min(a)
                        ),
                    ));
                }
            }
            if k.len() < 32 {
                return Err((
                    "k".into(),
                    "weak key: an HMAC secret needs at least 32 bytes (RFC 7518 §3.2)".into(),
                ));
            }
            for alg in algs.into_iter().filter(|a| k.len() >= hmac_min(a)) {
                out.push(Key {
                    kid: kid.clone(),
                    alg,
                    verifier: Verifier::hmac(alg, &k).ok_or_else(|| bad("k"))?,
                });
            }
        }
    }
    Ok(out)
}

/// Compile a JWKS document. `strict`: any broken key is an error (inline keys, checked at
/// configure time); otherwise broken keys are skipped (remote keys: the rest still work).
pub fn compile_jwks(
    jwks: &Value,
    allowed: &[&'static str],
    strict: bool,
) -> Result<KeySet, (String, String)> {
    let Some(list) = jwks.get("keys").and_then(Value::as_array) else {
        return Err((
            "keys".into(),
            "a JWKS is an object with a `keys` array".into(),
        ));
    };
    let mut set = KeySet::default();
    for (i, jwk) in list.iter().enumerate() {
        match compile_jwk(jwk, allowed) {
            Ok(keys) => set.keys.extend(keys),
            Err((member, reason)) if strict => {
                let at = if member.is_empty() {
                    format!("keys[{i}]")
                } else {
                    format!("keys[{i}].{member}")
                };
                return Err((at, reason));
            }
            Err(_) => {}
        }
    }
    if set.keys.is_empty() {
        return Err((
            "keys".into(),
            "no key usable with the allowed algorithms".into(),
        ));
    }
    Ok(set)
}

/// Policy text in error messages: short and printable.
fn clip(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(32)
        .collect()
}
