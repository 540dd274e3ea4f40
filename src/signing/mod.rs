//! HTTP Message Signatures (RFC 9421) with `hmac-sha256`, and Content-Digest (RFC 9530): the
//! library the request-signing control, the `portcullis sign` CLI and Rust clients share.
//!
//! [`sign`] adds `Content-Digest`, `Signature-Input` and `Signature` to a request; [`verify`]
//! checks them. Both build the signature base with the same code ([`base::signature_base`]).
//! Replay protection (remembering nonces) is the caller's: [`verify`] returns the nonce.
//!
//! ```
//! use portcullis::signing::{sign, verify, Key, Message, SignRequest, VerifyOptions};
//! let secret = [7u8; 32];
//! let headers = vec![("content-type".to_string(), b"application/json".to_vec())];
//! let msg = Message { method: "POST", scheme: "https", authority: "api.example",
//!                     target: "/orders?x=1", headers: &headers };
//! let body = br#"{"id": 1}"#;
//! let req = SignRequest::new("k1", 1_700_000_000,
//!     &["@method", "@authority", "@path", "@query", "content-type", "content-digest"]);
//! let signed = sign(&msg, Some(body), &secret, &req).unwrap();
//!
//! let mut received = headers.clone();
//! received.extend(signed.headers().into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v.into_bytes())));
//! let msg = Message { headers: &received, ..msg };
//! let keys = [Key::new("k1", secret.to_vec())];
//! let ok = verify(&msg, Some(body), &keys, &VerifyOptions::at(1_700_000_010)).unwrap();
//! assert_eq!(ok.keyid, "k1");
//! ```

pub mod base;
pub mod digest;
pub mod sfv;

use crate::crypto;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

pub use base::{BaseError, Message};
pub use digest::{Algorithm, DigestError};
use sfv::{BareItem, Item, Member, Params};

use crate::time::{key_window, KeyWindow};

/// The only algorithm supported.
pub const ALG: &str = "hmac-sha256";
/// Longest nonce accepted.
pub const MAX_NONCE_LEN: usize = 256;

/// HMAC-SHA256 of the signature base.
pub fn mac(secret: &[u8], base: &str) -> Vec<u8> {
    crypto::hmac(crypto::Hmac::Sha256, secret, base.as_bytes())
}

/// Constant-time check of a signature against the HMAC of the base (full 32 bytes only).
pub fn mac_matches(secret: &[u8], base: &str, signature: &[u8]) -> bool {
    crypto::hmac_verify(crypto::Hmac::Sha256, secret, base.as_bytes(), signature)
}

/// Why a signature was refused. Each maps to a stable reason code (see [`SigError::code`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigError {
    /// No `Signature-Input` / `Signature`.
    Missing,
    /// The fields do not parse, the label is absent or ambiguous, or a parameter is malformed.
    Malformed(String),
    /// An `alg` other than hmac-sha256.
    UnsupportedAlg,
    /// The signature does not cover a component the policy requires.
    Components(String),
    KeyUnknown,
    /// The key exists but is not accepted where it is used.
    KeyNotAllowed,
    KeyNotYetValid,
    KeyExpired,
    /// `created` is older than the window allows.
    Stale,
    /// `created` lies in the future beyond the clock skew.
    Future,
    /// `expires` has passed.
    Expired,
    NonceMissing,
    /// The MAC does not match, or a covered field is absent.
    Bad(String),
    Digest(DigestError),
    /// `content-digest` is covered or required but the field is absent.
    DigestMissing,
}

impl SigError {
    /// The stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            SigError::Missing => "signature.missing",
            SigError::Malformed(_) => "signature.malformed",
            SigError::UnsupportedAlg => "signature.unsupported_alg",
            SigError::Components(_) => "signature.components",
            SigError::KeyUnknown => "signature.key_unknown",
            SigError::KeyNotAllowed => "signature.key_not_allowed",
            SigError::KeyNotYetValid => "signature.key_not_yet_valid",
            SigError::KeyExpired => "signature.key_expired",
            SigError::Stale => "signature.stale",
            SigError::Future => "signature.future",
            SigError::Expired => "signature.expired",
            SigError::NonceMissing => "signature.nonce_missing",
            SigError::Bad(_) => "signature.bad",
            SigError::Digest(DigestError::Mismatch) => "digest.mismatch",
            SigError::Digest(DigestError::Malformed) => "digest.malformed",
            SigError::Digest(DigestError::Unsupported) => "digest.unsupported",
            SigError::DigestMissing => "digest.missing",
        }
    }
}

impl std::fmt::Display for SigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SigError::Missing => f.write_str("the request has no Signature-Input and Signature"),
            SigError::Malformed(d) => write!(f, "malformed signature: {d}"),
            SigError::UnsupportedAlg => write!(f, "only alg \"{ALG}\" is accepted"),
            SigError::Components(d) => write!(f, "the signature does not cover {d}"),
            SigError::KeyUnknown => f.write_str("unknown key id"),
            SigError::KeyNotAllowed => f.write_str("the key id is not accepted for this route"),
            SigError::KeyNotYetValid => f.write_str("the key is not valid yet"),
            SigError::KeyExpired => f.write_str("the key has expired"),
            SigError::Stale => f.write_str("the signature was created too long ago"),
            SigError::Future => f.write_str("the signature was created in the future"),
            SigError::Expired => f.write_str("the signature has expired"),
            SigError::NonceMissing => f.write_str("the signature has no nonce"),
            SigError::Bad(d) => write!(f, "the signature does not verify{d}"),
            SigError::Digest(e) => write!(f, "{e}"),
            SigError::DigestMissing => f.write_str("the request has no Content-Digest"),
        }
    }
}

impl std::error::Error for SigError {}

/// A signature as received: its label, covered components, parameters and value.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub label: String,
    pub components: Vec<Item>,
    pub params: Params,
    pub created: Option<i64>,
    pub expires: Option<i64>,
    pub nonce: Option<String>,
    pub keyid: Option<String>,
    pub signature: Vec<u8>,
}

impl Parsed {
    /// Whether the signature covers `wanted`.
    pub fn covers(&self, wanted: &Item) -> bool {
        base::covers(&self.components, wanted)
    }

    /// The signature base this signature was computed over.
    pub fn base(&self, msg: &Message) -> Result<String, SigError> {
        base::signature_base(msg, &self.components, &self.params).map_err(|e| match e {
            BaseError::FieldMissing(_) => SigError::Bad(format!(": {e}")),
            e => SigError::Malformed(e.to_string()),
        })
    }
}

fn malformed(d: impl Into<String>) -> SigError {
    SigError::Malformed(d.into())
}

/// Most signatures one request may make [`verify_headers`] try (each costs an HMAC); later
/// ones are skipped, so a flood of signatures costs bounded CPU.
pub const MAX_SIGNATURES: usize = 8;

type Dictionary = Vec<(String, Member)>;

/// The `Signature-Input` and `Signature` dictionaries.
fn dictionaries(msg: &Message) -> Result<(Dictionary, Dictionary), SigError> {
    let (Some(input), Some(sig)) = (msg.field("signature-input"), msg.field("signature")) else {
        return Err(SigError::Missing);
    };
    let inputs =
        sfv::parse_dictionary(&input).map_err(|e| malformed(format!("Signature-Input: {e}")))?;
    let sigs = sfv::parse_dictionary(&sig).map_err(|e| malformed(format!("Signature: {e}")))?;
    Ok((inputs, sigs))
}

/// Parse `Signature-Input` and `Signature` and pick the signature labelled `label` (or, with
/// `None`, the only one).
pub fn parse(msg: &Message, label: Option<&str>) -> Result<Parsed, SigError> {
    let (inputs, sigs) = dictionaries(msg)?;
    let (label, member) = match label {
        Some(l) => inputs
            .iter()
            .find(|(k, _)| k == l)
            .ok_or_else(|| malformed(format!("no signature labelled `{l}`")))?,
        None => match inputs.as_slice() {
            [one] => one,
            [] => return Err(SigError::Missing),
            _ => return Err(malformed("several signatures and no label configured")),
        },
    };
    parse_pair(label, member, &sigs)
}

/// One signature: its `Signature-Input` member and the `Signature` member of the same label.
fn parse_pair(label: &str, member: &Member, sigs: &Dictionary) -> Result<Parsed, SigError> {
    let (components, params) = base::components_of(member)
        .ok_or_else(|| malformed("Signature-Input member is not an inner list"))?;
    let signature = match sigs.iter().find(|(k, _)| k == label).map(|(_, m)| m) {
        Some(Member::Item(Item {
            bare: BareItem::Bytes(b),
            ..
        })) => b.clone(),
        Some(_) => return Err(malformed("Signature member is not a byte sequence")),
        None => return Err(malformed(format!("no Signature for label `{label}`"))),
    };
    let mut parsed = Parsed {
        label: label.to_string(),
        components: components.to_vec(),
        params: params.clone(),
        created: None,
        expires: None,
        nonce: None,
        keyid: None,
        signature,
    };
    for (k, v) in params {
        match (k.as_str(), v) {
            ("created", BareItem::Integer(n)) if *n >= 0 => parsed.created = Some(*n),
            ("expires", BareItem::Integer(n)) if *n >= 0 => parsed.expires = Some(*n),
            ("nonce", BareItem::String(s)) if !s.is_empty() && s.len() <= MAX_NONCE_LEN => {
                parsed.nonce = Some(s.clone())
            }
            ("keyid", BareItem::String(s)) => parsed.keyid = Some(s.clone()),
            ("alg", BareItem::String(s)) if s == ALG => {}
            ("alg", BareItem::String(_)) => return Err(SigError::UnsupportedAlg),
            ("tag", BareItem::String(_)) => {}
            (k, _) => return Err(malformed(format!("bad signature parameter `{k}`"))),
        }
    }
    Ok(parsed)
}

/// A shared secret with its validity (seconds since the epoch).
#[derive(Clone)]
pub struct Key {
    pub keyid: String,
    /// Wiped when the key is dropped.
    pub secret: crate::secret::Secret,
    pub not_before: Option<u64>,
    pub not_after: Option<u64>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("Key")
            .field("keyid", &self.keyid)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl Key {
    pub fn new(keyid: &str, secret: impl Into<crate::secret::Secret>) -> Self {
        Key {
            keyid: keyid.into(),
            secret: secret.into(),
            not_before: None,
            not_after: None,
        }
    }

    /// `Ok` when the key may be used at `now`.
    /// `not_after` is exclusive: see [`crate::time::key_window`].
    pub fn valid_at(&self, now: u64) -> Result<(), SigError> {
        let secs = |t: u64| i64::try_from(t).unwrap_or(i64::MAX);
        match key_window(
            secs(now),
            self.not_before.map(secs),
            self.not_after.map(secs),
        ) {
            KeyWindow::Valid => Ok(()),
            KeyWindow::NotYetValid => Err(SigError::KeyNotYetValid),
            KeyWindow::Expired => Err(SigError::KeyExpired),
        }
    }
}

/// The key a signer should use at `now`: among the valid ones, the newest (latest
/// `not_before`; the later in the list on a tie).
pub fn newest_key(keys: &[Key], now: u64) -> Option<&Key> {
    keys.iter()
        .filter(|k| k.valid_at(now).is_ok())
        .max_by_key(|k| k.not_before.unwrap_or(0))
}

/// What [`verify`] requires of a signature.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The label to verify; `None`: the only signature.
    pub label: Option<String>,
    /// Components the signature must cover (parsed with [`base::parse_component`]); listing
    /// `content-digest` requires it of requests without a body too.
    pub required: Vec<Item>,
    /// When true, a request with a body must cover `content-digest` (even when `required`
    /// does not list it).
    pub require_digest: bool,
    /// Accepted key ids; empty: every key.
    pub key_ids: Vec<String>,
    /// `created` must be at most this old…
    pub window_secs: u64,
    /// …give or take this much clock difference.
    pub skew_secs: u64,
    pub require_nonce: bool,
    /// Seconds since the epoch.
    pub now: u64,
}

impl VerifyOptions {
    /// Defaults: the only signature, covering `@method`, `@authority`, `@path`, `@query`,
    /// a 300 s window, 30 s skew, nonce not required (callers without a nonce store).
    pub fn at(now: u64) -> Self {
        VerifyOptions {
            label: None,
            required: ["@method", "@authority", "@path", "@query"]
                .iter()
                .filter_map(|c| base::parse_component(c).ok())
                .collect(),
            require_digest: true,
            key_ids: Vec::new(),
            window_secs: 300,
            skew_secs: 30,
            require_nonce: false,
            now,
        }
    }
}

/// A verified signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub label: String,
    pub keyid: String,
    pub created: i64,
    pub nonce: Option<String>,
    /// The signature value (what a replay cache can key on when there is no nonce).
    pub signature: Vec<u8>,
    /// `content-digest` is covered: the body must be checked with [`check_digest`].
    pub covers_digest: bool,
    /// The other signatures tried before this one that failed, or not tried (over
    /// [`MAX_SIGNATURES`]): label and reason code. Signatures by unknown keys are ignored, not
    /// listed.
    pub skipped: Vec<(String, &'static str)>,
}

fn content_digest_component() -> Item {
    Item {
        bare: BareItem::String("content-digest".into()),
        params: Vec::new(),
    }
}

/// Everything but the body: parse, coverage, parameters, window, key, MAC. `has_body`: the
/// request carries a body (then `content-digest` must be covered if the options say so).
///
/// With a `label` in the options only that signature is checked. Without one (RFC 9421 §4.3:
/// several signatures for several verifiers), the request verifies when any one signature by a
/// known key does: signatures naming an unknown key id are ignored, malformed or failing ones
/// skipped (listed in [`Verified::skipped`]), and at most [`MAX_SIGNATURES`] are tried. When none
/// verifies, the error is the first one of a signature by a known key, else "unknown key",
/// else the first malformed one.
pub fn verify_headers(
    msg: &Message,
    has_body: bool,
    keys: &[Key],
    opts: &VerifyOptions,
) -> Result<Verified, SigError> {
    if opts.label.is_some() {
        let p = parse(msg, opts.label.as_deref())?;
        return verify_parsed(p, msg, has_body, keys, opts);
    }
    let (inputs, sigs) = dictionaries(msg)?;
    if inputs.is_empty() {
        return Err(SigError::Missing);
    }
    // The most telling failure so far, ranked: 2 by a known key, 1 unknown key, 0 malformed.
    let mut failure: Option<(u8, SigError)> = None;
    let mut fail = |rank: u8, e: SigError| {
        if failure.as_ref().is_none_or(|(r, _)| rank > *r) {
            failure = Some((rank, e));
        }
    };
    let mut skipped = Vec::new();
    for (i, (label, member)) in inputs.iter().enumerate() {
        if i >= MAX_SIGNATURES {
            skipped.push((label.clone(), "signature.too_many"));
            continue;
        }
        let p = match parse_pair(label, member, &sigs) {
            Ok(p) => p,
            Err(e) => {
                skipped.push((label.clone(), e.code()));
                fail(0, e);
                continue;
            }
        };
        let known = p
            .keyid
            .as_deref()
            .is_some_and(|id| keys.iter().any(|k| k.keyid == id));
        if !known {
            fail(1, SigError::KeyUnknown);
            continue;
        }
        match verify_parsed(p, msg, has_body, keys, opts) {
            Ok(mut v) => {
                // The signatures after this one were not looked at: not skipped.
                v.skipped = skipped;
                return Ok(v);
            }
            Err(e) => {
                skipped.push((label.clone(), e.code()));
                fail(2, e);
            }
        }
    }
    Err(failure.map_or(SigError::Missing, |(_, e)| e))
}

/// [`verify_headers`] for one parsed signature.
fn verify_parsed(
    p: Parsed,
    msg: &Message,
    has_body: bool,
    keys: &[Key],
    opts: &VerifyOptions,
) -> Result<Verified, SigError> {
    let digest_item = content_digest_component();
    // Every required component, `content-digest` too: a route that requires it requires it of
    // a request without a body as well (the digest of the empty body, RFC 9530).
    if let Some(missing) = opts.required.iter().find(|c| !p.covers(c)) {
        let mut name = String::new();
        let _ = sfv::write_item(&mut name, missing);
        return Err(SigError::Components(name));
    }
    let covers_digest = p.covers(&digest_item);
    if has_body && opts.require_digest && !covers_digest {
        return Err(SigError::Components("\"content-digest\"".into()));
    }
    let created = p
        .created
        .ok_or_else(|| malformed("the `created` parameter is required"))?;
    if let Some(expires) = p.expires {
        if expires < created {
            return Err(malformed("`expires` is before `created`"));
        }
    }
    let now = i64::try_from(opts.now).unwrap_or(i64::MAX);
    let (window, skew) = (
        i64::try_from(opts.window_secs).unwrap_or(i64::MAX),
        i64::try_from(opts.skew_secs).unwrap_or(i64::MAX),
    );
    if created > now.saturating_add(skew) {
        return Err(SigError::Future);
    }
    if created < now.saturating_sub(window).saturating_sub(skew) {
        return Err(SigError::Stale);
    }
    if p.expires.is_some_and(|e| now > e.saturating_add(skew)) {
        return Err(SigError::Expired);
    }
    if opts.require_nonce && p.nonce.is_none() {
        return Err(SigError::NonceMissing);
    }
    let keyid = p
        .keyid
        .clone()
        .ok_or_else(|| malformed("the `keyid` parameter is required"))?;
    let key = keys
        .iter()
        .find(|k| k.keyid == keyid)
        .ok_or(SigError::KeyUnknown)?;
    if !opts.key_ids.is_empty() && !opts.key_ids.contains(&keyid) {
        return Err(SigError::KeyNotAllowed);
    }
    key.valid_at(opts.now)?;
    if covers_digest && msg.field("content-digest").is_none() {
        return Err(SigError::DigestMissing);
    }
    let base = p.base(msg)?;
    if !mac_matches(&key.secret, &base, &p.signature) {
        return Err(SigError::Bad(String::new()));
    }
    Ok(Verified {
        label: p.label,
        keyid,
        created,
        nonce: p.nonce,
        signature: p.signature,
        covers_digest,
        skipped: Vec::new(),
    })
}

/// The body against the (signed) `Content-Digest` field.
pub fn check_digest(msg: &Message, body: &[u8]) -> Result<(), SigError> {
    let value = msg.field("content-digest").ok_or(SigError::DigestMissing)?;
    digest::verify(&value, body)
        .map(|_| ())
        .map_err(SigError::Digest)
}

/// Verify a request's signature (and, when `content-digest` is covered, its body). `body`:
/// `None` when the request has none. Replay protection is the caller's: remember
/// [`Verified::nonce`] for the window.
pub fn verify(
    msg: &Message,
    body: Option<&[u8]>,
    keys: &[Key],
    opts: &VerifyOptions,
) -> Result<Verified, SigError> {
    let has_body = body.is_some_and(|b| !b.is_empty());
    let v = verify_headers(msg, has_body, keys, opts)?;
    if v.covers_digest {
        check_digest(msg, body.unwrap_or_default())?;
    }
    Ok(v)
}

/// What to sign.
#[derive(Debug, Clone)]
pub struct SignRequest {
    pub label: String,
    /// Component identifiers ([`base::parse_component`] syntax). `content-digest` makes
    /// [`sign`] compute and add the `Content-Digest` field.
    pub components: Vec<String>,
    pub keyid: String,
    pub created: u64,
    pub expires: Option<u64>,
    pub nonce: Option<String>,
    /// Add `alg="hmac-sha256"` (optional in RFC 9421; the key id implies it).
    pub alg: bool,
}

impl SignRequest {
    pub fn new(keyid: &str, created: u64, components: &[&str]) -> Self {
        SignRequest {
            label: "sig1".into(),
            components: components.iter().map(|c| c.to_string()).collect(),
            keyid: keyid.into(),
            created,
            expires: None,
            nonce: None,
            alg: false,
        }
    }
}

/// The header fields [`sign`] adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub content_digest: Option<String>,
    pub signature_input: String,
    pub signature: String,
}

impl Signed {
    /// (name, value) pairs in the order to add them.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(d) = &self.content_digest {
            out.push(("Content-Digest", d.clone()));
        }
        out.push(("Signature-Input", self.signature_input.clone()));
        out.push(("Signature", self.signature.clone()));
        out
    }
}

fn int(n: u64) -> BareItem {
    BareItem::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

/// A random nonce (128 bits, base64url): WASI `random_get` in the wasm, the OS natively.
pub fn random_nonce() -> Option<String> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

/// Sign a request: the `Content-Digest` (when covered), `Signature-Input` and `Signature`
/// fields to add. Components absent from the request are an error (`FieldMissing`).
pub fn sign(
    msg: &Message,
    body: Option<&[u8]>,
    secret: &[u8],
    req: &SignRequest,
) -> Result<Signed, SigError> {
    let components = req
        .components
        .iter()
        .map(|c| base::parse_component(c).map_err(|e| malformed(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let mut headers: Vec<(String, Vec<u8>)> = msg
        .headers
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "signature" | "signature-input"))
        .cloned()
        .collect();
    let content_digest = if base::covers(&components, &content_digest_component()) {
        let d = digest::content_digest(Algorithm::Sha256, body.unwrap_or_default());
        headers.retain(|(k, _)| k != "content-digest");
        headers.push(("content-digest".into(), d.clone().into_bytes()));
        Some(d)
    } else {
        None
    };
    let mut params: Params = vec![("created".into(), int(req.created))];
    if let Some(e) = req.expires {
        params.push(("expires".into(), int(e)));
    }
    if let Some(n) = &req.nonce {
        params.push(("nonce".into(), BareItem::String(n.clone())));
    }
    params.push(("keyid".into(), BareItem::String(req.keyid.clone())));
    if req.alg {
        params.push(("alg".into(), BareItem::String(ALG.into())));
    }
    let msg = Message {
        headers: &headers,
        ..*msg
    };
    let base = base::signature_base(&msg, &components, &params).map_err(|e| match e {
        BaseError::FieldMissing(_) => SigError::Bad(format!(": {e}")),
        e => malformed(e.to_string()),
    })?;
    let label = &req.label;
    let dict_input = vec![(label.clone(), Member::InnerList(components, params))];
    let dict_sig = vec![(
        label.clone(),
        Member::Item(Item {
            bare: BareItem::Bytes(mac(secret, &base)),
            params: Vec::new(),
        }),
    )];
    let signature_input =
        sfv::serialize_dictionary(&dict_input).map_err(|e| malformed(e.to_string()))?;
    let signature = sfv::serialize_dictionary(&dict_sig).map_err(|e| malformed(e.to_string()))?;
    Ok(Signed {
        content_digest,
        signature_input,
        signature,
    })
}

/// Decode a base64 secret (standard alphabet, padding optional).
pub fn decode_secret(b64: &str) -> Option<crate::secret::Secret> {
    let t = b64.trim();
    STANDARD
        .decode(t)
        .ok()
        .or_else(|| {
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(t)
                .ok()
        })
        .map(crate::secret::Secret::new)
}

#[cfg(test)]
mod tests;
