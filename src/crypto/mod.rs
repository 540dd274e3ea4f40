//! One facade over the crypto the controls use, two backends.
//!
//! - `pure` (always built): RustCrypto, jwt-simple (`pure-rust`) and the table-driven ES256 of
//!   `es256.rs`. It builds for wasm32-wasip1; the wasm modules use nothing else.
//! - `native` (feature `native-crypto`, turned on only by the native library): ring, for the
//!   operations where it measured faster natively (docs/native.md, "Crypto backend"): AES-GCM
//!   and RSA (RS*/PS*) signatures. SHA-2 and HMAC stay on `pure` in both builds (sha2 uses the
//!   CPU's SHA extensions, ring does not), and so do ES384, EdDSA and HS* (see jws.rs).
//!
//! Outside the facade, one implementation in both builds: incremental SHA-256 (`sha2`: the
//! replay-store keys, ECDH-ES's Concat KDF), AES key wrap (`aes-kw`) and ECDH-ES (`p256`).
//!
//! Both backends accept and refuse the same inputs: the facade checks what the backends would
//! judge differently (key sizes, exponent, tag and signature lengths) before either runs, and
//! the tests below feed the same vectors, valid and tampered, through both.

mod es256;
pub mod jws;
#[cfg(feature = "native-crypto")]
mod native;
mod pure;
#[cfg(test)]
mod tests;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// SHA-256 (FIPS 180-4).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    // sha2 uses the CPU's SHA extensions; ring does not: pure is as fast or faster natively.
    pure::sha256(data)
}

/// SHA-512 (FIPS 180-4).
pub fn sha512(data: &[u8]) -> [u8; 64] {
    // sha2 uses the CPU's SHA extensions; ring does not: pure is as fast or faster natively.
    pure::sha512(data)
}

/// The HMAC hash (RFC 2104 over SHA-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hmac {
    Sha256,
    Sha384,
    Sha512,
}

impl Hmac {
    /// The tag length: the hash output.
    pub fn tag_len(self) -> usize {
        match self {
            Hmac::Sha256 => 32,
            Hmac::Sha384 => 48,
            Hmac::Sha512 => 64,
        }
    }
}

/// HMAC of `data` under `key` (any key length, RFC 2104 §2).
pub fn hmac(alg: Hmac, key: &[u8], data: &[u8]) -> Vec<u8> {
    // sha2 uses the CPU's SHA extensions; ring does not: pure is as fast or faster natively.
    pure::hmac(alg, key, data)
}

/// Constant-time check of a full-length tag: a truncated tag is refused (RFC 2104 §5 allows
/// truncation, but neither RFC 9421 nor RFC 7518 does).
pub fn hmac_verify(alg: Hmac, key: &[u8], data: &[u8], tag: &[u8]) -> bool {
    if tag.len() != alg.tag_len() {
        return false;
    }
    // sha2 uses the CPU's SHA extensions; ring does not: pure is as fast or faster natively.
    pure::hmac_verify(alg, key, data, tag)
}

/// AES-GCM key size (RFC 7518 §5.3: A128GCM, A256GCM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gcm {
    Aes128,
    Aes256,
}

impl Gcm {
    fn key_len(self) -> usize {
        match self {
            Gcm::Aes128 => 16,
            Gcm::Aes256 => 32,
        }
    }
}

/// GCM IV and tag sizes: 96 and 128 bits only (RFC 7518 §5.3).
pub const GCM_IV: usize = 12;
pub const GCM_TAG: usize = 16;

/// Encrypt `buf` in place; the 128-bit tag, or `None` if the key or IV has the wrong size.
pub fn gcm_seal(alg: Gcm, key: &[u8], iv: &[u8], aad: &[u8], buf: &mut [u8]) -> Option<Vec<u8>> {
    if key.len() != alg.key_len() || iv.len() != GCM_IV {
        return None;
    }
    #[cfg(feature = "native-crypto")]
    return native::gcm_seal(alg, key, iv, aad, buf);
    #[cfg(not(feature = "native-crypto"))]
    return pure::gcm_seal(alg, key, iv, aad, buf);
}

/// Check the tag (constant time) and decrypt `buf` in place. `false` (and `buf` unspecified)
/// on a wrong key or IV size, a tag that is not exactly 128 bits, or a tag mismatch.
pub fn gcm_open(alg: Gcm, key: &[u8], iv: &[u8], aad: &[u8], buf: &mut [u8], tag: &[u8]) -> bool {
    if key.len() != alg.key_len() || iv.len() != GCM_IV || tag.len() != GCM_TAG {
        return false;
    }
    #[cfg(feature = "native-crypto")]
    return native::gcm_open(alg, key, iv, aad, buf, tag);
    #[cfg(not(feature = "native-crypto"))]
    return pure::gcm_open(alg, key, iv, aad, buf, tag);
}

/// base64url without padding (RFC 4648 §5), trailing `=` tolerated as in token.rs.
fn b64url(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}
