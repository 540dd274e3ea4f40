//! JWE compact serialization (RFC 7516 §3.1, §7.1) with the algorithms of RFC 7518 this module
//! supports: key management `dir`, `A128KW`, `A256KW`, `ECDH-ES+A256KW` (P-256), content
//! encryption `A128GCM`, `A256GCM`. No compression (`zip`), no `crit` extensions.

use aes_gcm::KeyInit;
use aes_kw::{KwAes128, KwAes256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::elliptic_curve::sec1::ToSec1Point;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::crypto;
use crate::secret::Secret;

/// Key management algorithm (`alg`, RFC 7518 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Dir,
    A128Kw,
    A256Kw,
    EcdhEsA256Kw,
}

impl Alg {
    pub fn parse(s: &str) -> Option<Alg> {
        Some(match s {
            "dir" => Alg::Dir,
            "A128KW" => Alg::A128Kw,
            "A256KW" => Alg::A256Kw,
            "ECDH-ES+A256KW" => Alg::EcdhEsA256Kw,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Alg::Dir => "dir",
            Alg::A128Kw => "A128KW",
            Alg::A256Kw => "A256KW",
            Alg::EcdhEsA256Kw => "ECDH-ES+A256KW",
        }
    }
}

/// Content encryption algorithm (`enc`, RFC 7518 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enc {
    A128Gcm,
    A256Gcm,
}

impl Enc {
    pub fn parse(s: &str) -> Option<Enc> {
        Some(match s {
            "A128GCM" => Enc::A128Gcm,
            "A256GCM" => Enc::A256Gcm,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Enc::A128Gcm => "A128GCM",
            Enc::A256Gcm => "A256GCM",
        }
    }

    pub fn key_len(self) -> usize {
        match self {
            Enc::A128Gcm => 16,
            Enc::A256Gcm => 32,
        }
    }

    fn gcm(self) -> crypto::Gcm {
        match self {
            Enc::A128Gcm => crypto::Gcm::Aes128,
            Enc::A256Gcm => crypto::Gcm::Aes256,
        }
    }
}

/// Key material: a symmetric key (`oct`) or a P-256 key (`EC`).
#[derive(Clone)]
pub enum KeyMaterial {
    Oct(Secret),
    /// A private key decrypts (and could encrypt to its own public half).
    EcPrivate(p256::SecretKey),
    /// A public key only encrypts (a client's key for encrypt-response).
    EcPublic(p256::PublicKey),
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        f.write_str(match self {
            KeyMaterial::Oct(_) => "Oct(..)",
            KeyMaterial::EcPrivate(_) => "EcPrivate(..)",
            KeyMaterial::EcPublic(_) => "EcPublic(..)",
        })
    }
}

/// Why a JWE was refused. Each maps to one stable reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JweError {
    /// Not five base64url parts, or the header is not a JSON object.
    Malformed,
    /// `alg` absent or not supported (`none`, `RSA1_5`, …).
    UnsupportedAlg,
    /// `enc` absent or not supported.
    UnsupportedEnc,
    /// `zip` present: compression is refused (it leaks through length, and invites bombs).
    Compressed,
    /// `crit` present: we understand no extension.
    Critical,
    /// No key with this `kid` (and `alg`) in the key set.
    UnknownKey,
    /// The key exists but is not valid now (`not_before` / `not_after`).
    KeyNotValid,
    /// Key unwrap or the authentication tag failed: one code for both, no oracle.
    Decrypt,
    /// No randomness available (encryption only).
    Random,
}

impl JweError {
    pub fn code(self) -> &'static str {
        match self {
            JweError::Malformed => "payload_crypto.malformed",
            JweError::UnsupportedAlg => "payload_crypto.unsupported_alg",
            JweError::UnsupportedEnc => "payload_crypto.unsupported_enc",
            JweError::Compressed => "payload_crypto.zip_rejected",
            JweError::Critical => "payload_crypto.crit_rejected",
            JweError::UnknownKey => "payload_crypto.unknown_kid",
            JweError::KeyNotValid => "payload_crypto.key_not_valid",
            JweError::Decrypt => "payload_crypto.decrypt_failed",
            JweError::Random => "payload_crypto.no_randomness",
        }
    }

    pub fn detail(self) -> &'static str {
        match self {
            JweError::Malformed => "the body is not a JWE compact serialization",
            JweError::UnsupportedAlg => "the JWE `alg` is not accepted",
            JweError::UnsupportedEnc => "the JWE `enc` is not accepted",
            JweError::Compressed => "compressed JWE (`zip`) is not accepted",
            JweError::Critical => "the JWE names critical extensions (`crit`)",
            JweError::UnknownKey => "the JWE names no key this service holds",
            JweError::KeyNotValid => "the JWE key is outside its validity period",
            JweError::Decrypt => "the JWE could not be decrypted",
            JweError::Random => "no randomness available",
        }
    }
}

/// Largest protected header accepted (base64url characters).
pub const MAX_HEADER_LEN: usize = 4096;

pub fn b64d(s: &str) -> Result<Vec<u8>, JweError> {
    URL_SAFE_NO_PAD.decode(s).map_err(|_| JweError::Malformed)
}

pub fn b64e(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

/// A parsed, not yet decrypted, compact JWE.
#[derive(Debug)]
pub struct Parsed<'a> {
    /// The protected header as sent: the AAD (RFC 7516 §5.1 step 14).
    pub header_b64: &'a str,
    pub header: Map<String, Value>,
    pub alg: Alg,
    pub enc: Enc,
    pub encrypted_key: Vec<u8>,
    pub iv: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub tag: Vec<u8>,
}

impl Parsed<'_> {
    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }

    /// The `cty` header (RFC 7516 §4.1.12), if any.
    pub fn cty(&self) -> Option<&str> {
        self.header.get("cty").and_then(Value::as_str)
    }
}

/// Parse a compact JWE (RFC 7516 §7.1): five base64url parts, a JSON-object header with a
/// supported `alg` and `enc`, no `zip`, no `crit`. Never decrypts, never panics.
pub fn parse(compact: &str) -> Result<Parsed<'_>, JweError> {
    let mut parts = compact.split('.');
    let (Some(h), Some(k), Some(iv), Some(ct), Some(tag), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(JweError::Malformed);
    };
    if h.is_empty() || h.len() > MAX_HEADER_LEN {
        return Err(JweError::Malformed);
    }
    let header: Map<String, Value> =
        serde_json::from_slice(&b64d(h)?).map_err(|_| JweError::Malformed)?;
    if header.contains_key("zip") {
        return Err(JweError::Compressed);
    }
    if header.contains_key("crit") {
        return Err(JweError::Critical);
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(Alg::parse)
        .ok_or(JweError::UnsupportedAlg)?;
    let enc = header
        .get("enc")
        .and_then(Value::as_str)
        .and_then(Enc::parse)
        .ok_or(JweError::UnsupportedEnc)?;
    let parsed = Parsed {
        header_b64: h,
        alg,
        enc,
        encrypted_key: b64d(k)?,
        iv: b64d(iv)?,
        ciphertext: b64d(ct)?,
        tag: b64d(tag)?,
        header,
    };
    // GCM: 96-bit IV, 128-bit tag (RFC 7518 §5.3).
    if parsed.iv.len() != 12 || parsed.tag.len() != 16 {
        return Err(JweError::Malformed);
    }
    Ok(parsed)
}

/// Decrypt a parsed JWE with a key already chosen for it (`kid`, `alg`, validity checked by the
/// caller). Any failure of key unwrap or tag is `Decrypt`.
pub fn decrypt(p: &Parsed, key: &KeyMaterial) -> Result<Vec<u8>, JweError> {
    let cek = unwrap_cek(p, key)?;
    let mut buf = p.ciphertext.clone();
    // RFC 7516 §5.2: the AAD is the ASCII of the encoded protected header.
    let aad = p.header_b64.as_bytes();
    if !crypto::gcm_open(p.enc.gcm(), &cek, &p.iv, aad, &mut buf, &p.tag) {
        return Err(JweError::Decrypt);
    }
    Ok(buf)
}

fn unwrap_cek(p: &Parsed, key: &KeyMaterial) -> Result<Secret, JweError> {
    let want = p.enc.key_len();
    let cek = match (p.alg, key) {
        (Alg::Dir, KeyMaterial::Oct(k)) => {
            if !p.encrypted_key.is_empty() {
                return Err(JweError::Malformed);
            }
            k.clone()
        }
        (Alg::A128Kw | Alg::A256Kw, KeyMaterial::Oct(k)) => kw_unwrap(k, &p.encrypted_key)?,
        (Alg::EcdhEsA256Kw, KeyMaterial::EcPrivate(d)) => {
            let epk = p
                .header
                .get("epk")
                .and_then(Value::as_object)
                .ok_or(JweError::Malformed)?;
            let epk = ec_public_from_jwk(epk).ok_or(JweError::Malformed)?;
            let kek = ecdh_kek(d, &epk, p.alg, &p.header)?;
            kw_unwrap(&kek, &p.encrypted_key)?
        }
        _ => return Err(JweError::UnknownKey),
    };
    if cek.len() != want {
        return Err(JweError::Decrypt);
    }
    Ok(cek)
}

/// AES key wrap (RFC 3394) with a 128- or 256-bit key-encryption key.
enum Kw {
    A128(KwAes128),
    A256(KwAes256),
}

impl Kw {
    fn new(kek: &[u8]) -> Option<Kw> {
        match kek.len() {
            16 => KwAes128::new_from_slice(kek).ok().map(Kw::A128),
            32 => KwAes256::new_from_slice(kek).ok().map(Kw::A256),
            _ => None,
        }
    }
}

fn kw_unwrap(kek: &[u8], wrapped: &[u8]) -> Result<Secret, JweError> {
    if wrapped.len() < 24 || wrapped.len() > 40 || wrapped.len() % 8 != 0 {
        return Err(JweError::Decrypt);
    }
    let mut out = Secret::new(vec![0u8; wrapped.len().saturating_sub(8)]);
    let ok = match Kw::new(kek).ok_or(JweError::Decrypt)? {
        Kw::A128(kw) => kw.unwrap_key(wrapped, &mut out).is_ok(),
        Kw::A256(kw) => kw.unwrap_key(wrapped, &mut out).is_ok(),
    };
    if ok {
        Ok(out)
    } else {
        Err(JweError::Decrypt)
    }
}

fn kw_wrap(kek: &[u8], cek: &[u8]) -> Result<Vec<u8>, JweError> {
    let mut out = vec![0u8; cek.len().saturating_add(8)];
    let ok = match Kw::new(kek).ok_or(JweError::Random)? {
        Kw::A128(kw) => kw.wrap_key(cek, &mut out).is_ok(),
        Kw::A256(kw) => kw.wrap_key(cek, &mut out).is_ok(),
    };
    if ok {
        Ok(out)
    } else {
        Err(JweError::Random)
    }
}

/// A P-256 public key from JWK members `kty`, `crv`, `x`, `y` (RFC 7518 §6.2.1). The point is
/// checked to be on the curve (invalid-curve attacks).
pub fn ec_public_from_jwk(jwk: &Map<String, Value>) -> Option<p256::PublicKey> {
    let s = |k: &str| jwk.get(k).and_then(Value::as_str);
    if s("kty") != Some("EC") || s("crv") != Some("P-256") {
        return None;
    }
    let x = b64d(s("x")?).ok()?;
    let y = b64d(s("y")?).ok()?;
    ec_public_from_xy(&x, &y)
}

pub fn ec_public_from_xy(x: &[u8], y: &[u8]) -> Option<p256::PublicKey> {
    if x.len() != 32 || y.len() != 32 {
        return None;
    }
    let mut sec1 = Vec::with_capacity(65);
    sec1.push(4u8);
    sec1.extend_from_slice(x);
    sec1.extend_from_slice(y);
    p256::PublicKey::from_sec1_bytes(&sec1).ok()
}

/// The JWK of a P-256 public key: `{"kty":"EC","crv":"P-256","x":…,"y":…}`.
pub fn ec_public_jwk(pk: &p256::PublicKey) -> Value {
    let point = pk.as_affine().to_sec1_point(false);
    let (x, y) = (
        point.x().map(|x| b64e(x)).unwrap_or_default(),
        point.y().map(|y| b64e(y)).unwrap_or_default(),
    );
    serde_json::json!({"kty": "EC", "crv": "P-256", "x": x, "y": y})
}

/// ECDH-ES key agreement and the Concat KDF (RFC 7518 §4.6.2, NIST SP 800-56A §5.8.1):
/// one SHA-256 round gives the 256-bit key-wrapping key.
fn ecdh_kek(
    secret: &p256::SecretKey,
    public: &p256::PublicKey,
    alg: Alg,
    header: &Map<String, Value>,
) -> Result<Secret, JweError> {
    let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), public.as_affine());
    let party = |k: &str| -> Result<Vec<u8>, JweError> {
        match header.get(k) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => b64d(s),
            Some(_) => Err(JweError::Malformed),
        }
    };
    let (apu, apv) = (party("apu")?, party("apv")?);
    let alg_id = alg.name().as_bytes();
    let len32 = |n: usize| u32::try_from(n).map(u32::to_be_bytes);
    let mut h = Sha256::new();
    h.update(1u32.to_be_bytes());
    h.update(shared.raw_secret_bytes());
    for part in [alg_id, &apu, &apv] {
        h.update(len32(part.len()).map_err(|_| JweError::Malformed)?);
        h.update(part);
    }
    h.update(256u32.to_be_bytes());
    Ok(Secret::new(h.finalize().to_vec()))
}

/// Fill a buffer from the platform's randomness (WASI `random_get` in Envoy).
pub fn random(n: usize) -> Result<Vec<u8>, JweError> {
    let mut v = vec![0u8; n];
    getrandom::fill(&mut v).map_err(|_| JweError::Random)?;
    Ok(v)
}

/// What to encrypt for: the recipient's key and the algorithms.
pub struct Recipient<'a> {
    pub kid: Option<&'a str>,
    pub alg: Alg,
    pub enc: Enc,
    pub key: &'a KeyMaterial,
}

/// Encrypt `plaintext` into a compact JWE for `to`, with `cty` (RFC 7516 §4.1.12) when given.
pub fn encrypt(plaintext: &[u8], to: &Recipient, cty: Option<&str>) -> Result<String, JweError> {
    let iv = random(12)?;
    let cek = match to.alg {
        Alg::Dir => match to.key {
            KeyMaterial::Oct(k) if k.len() == to.enc.key_len() => k.clone(),
            _ => return Err(JweError::UnknownKey),
        },
        _ => Secret::new(random(to.enc.key_len())?),
    };
    encrypt_with(plaintext, to, cty, cek, &iv)
}

/// [`encrypt`] with the CEK and IV given (deterministic: tests against published vectors).
pub fn encrypt_with(
    plaintext: &[u8],
    to: &Recipient,
    cty: Option<&str>,
    cek: Secret,
    iv: &[u8],
) -> Result<String, JweError> {
    let mut header = Map::new();
    header.insert("alg".into(), to.alg.name().into());
    header.insert("enc".into(), to.enc.name().into());
    if let Some(kid) = to.kid {
        header.insert("kid".into(), kid.into());
    }
    if let Some(cty) = cty {
        header.insert("cty".into(), cty.into());
    }
    let encrypted_key = match (to.alg, to.key) {
        (Alg::Dir, _) => Vec::new(),
        (Alg::A128Kw | Alg::A256Kw, KeyMaterial::Oct(k)) => kw_wrap(k, &cek)?,
        (Alg::EcdhEsA256Kw, KeyMaterial::EcPublic(pk)) => ecdh_wrap(pk, &cek, &mut header)?,
        (Alg::EcdhEsA256Kw, KeyMaterial::EcPrivate(sk)) => {
            ecdh_wrap(&sk.public_key(), &cek, &mut header)?
        }
        _ => return Err(JweError::UnknownKey),
    };
    let header_b64 = b64e(&serde_json::to_vec(&header).map_err(|_| JweError::Malformed)?);
    let mut buf = plaintext.to_vec();
    let tag = crypto::gcm_seal(to.enc.gcm(), &cek, iv, header_b64.as_bytes(), &mut buf)
        .ok_or(JweError::Random)?;
    Ok(format!(
        "{header_b64}.{}.{}.{}.{}",
        b64e(&encrypted_key),
        b64e(iv),
        b64e(&buf),
        b64e(&tag)
    ))
}

fn ecdh_wrap(
    to: &p256::PublicKey,
    cek: &[u8],
    header: &mut Map<String, Value>,
) -> Result<Vec<u8>, JweError> {
    let eph = ephemeral()?;
    header.insert("epk".into(), ec_public_jwk(&eph.public_key()));
    let kek = ecdh_kek(&eph, to, Alg::EcdhEsA256Kw, header)?;
    kw_wrap(&kek, cek)
}

/// A fresh P-256 key from 32 random bytes (retried in the negligible case that they are not a
/// valid scalar).
fn ephemeral() -> Result<p256::SecretKey, JweError> {
    for _ in 0..8 {
        let bytes = Secret::new(random(32)?);
        if let Ok(k) = p256::SecretKey::from_slice(&bytes) {
            return Ok(k);
        }
    }
    Err(JweError::Random)
}
