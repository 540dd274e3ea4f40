//! The ring backend (feature `native-crypto`, the native library only). Sizes are checked by
//! the facade (mod.rs) before these are called.

use ring::{aead, signature};
#[cfg(test)]
use ring::{digest, hmac as rhmac};

use super::Gcm;
#[cfg(test)]
use super::Hmac;

// Measured against sha2 only (crypto::tests::bench_backends): not used by the facade.
#[cfg(test)]
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

#[cfg(test)]
pub fn sha512(data: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    out.copy_from_slice(digest::digest(&digest::SHA512, data).as_ref());
    out
}

#[cfg(test)]
fn key(alg: Hmac, key: &[u8]) -> rhmac::Key {
    let alg = match alg {
        Hmac::Sha256 => rhmac::HMAC_SHA256,
        Hmac::Sha384 => rhmac::HMAC_SHA384,
        Hmac::Sha512 => rhmac::HMAC_SHA512,
    };
    rhmac::Key::new(alg, key)
}

#[cfg(test)]
pub fn hmac(alg: Hmac, k: &[u8], data: &[u8]) -> Vec<u8> {
    rhmac::sign(&key(alg, k), data).as_ref().to_vec()
}

#[cfg(test)]
/// `ring::hmac::verify` compares in constant time.
pub fn hmac_verify(alg: Hmac, k: &[u8], data: &[u8], tag: &[u8]) -> bool {
    rhmac::verify(&key(alg, k), data, tag).is_ok()
}

fn gcm_key(alg: Gcm, key: &[u8]) -> Option<aead::LessSafeKey> {
    let alg = match alg {
        Gcm::Aes128 => &aead::AES_128_GCM,
        Gcm::Aes256 => &aead::AES_256_GCM,
    };
    aead::UnboundKey::new(alg, key)
        .ok()
        .map(aead::LessSafeKey::new)
}

/// "LessSafe": ring wants to own nonce generation; the JWE layer draws a fresh random IV per
/// message (and tests pass published ones), so the nonce is taken as given.
pub fn gcm_seal(alg: Gcm, key: &[u8], iv: &[u8], aad: &[u8], buf: &mut [u8]) -> Option<Vec<u8>> {
    let key = gcm_key(alg, key)?;
    let nonce = aead::Nonce::try_assume_unique_for_key(iv).ok()?;
    let tag = key
        .seal_in_place_separate_tag(nonce, aead::Aad::from(aad), buf)
        .ok()?;
    Some(tag.as_ref().to_vec())
}

pub fn gcm_open(alg: Gcm, key: &[u8], iv: &[u8], aad: &[u8], buf: &mut [u8], tag: &[u8]) -> bool {
    let (Some(key), Ok(nonce), Ok(tag)) = (
        gcm_key(alg, key),
        aead::Nonce::try_assume_unique_for_key(iv),
        <[u8; 16]>::try_from(tag),
    ) else {
        return false;
    };
    key.open_in_place_separate_tag(nonce, aead::Aad::from(aad), aead::Tag::from(tag), buf, 0..)
        .is_ok()
}

/// RS*/PS* (RFC 7518 §3.3, §3.5) from the key's components (minimal big-endian, sizes checked
/// by jws.rs). ring's PSS uses a salt as long as the hash, as RFC 7518 §3.5 requires.
pub fn rsa_verify(alg: &str, n: &[u8], e: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let params: &'static signature::RsaParameters = match alg {
        "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
        "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
        "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
        "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
        "PS384" => &signature::RSA_PSS_2048_8192_SHA384,
        "PS512" => &signature::RSA_PSS_2048_8192_SHA512,
        _ => return false,
    };
    signature::RsaPublicKeyComponents { n, e }
        .verify(params, msg, sig)
        .is_ok()
}

/// ES256/ES384 over a SEC1 uncompressed point, EdDSA over a 32-byte Ed25519 key.
pub fn key_verify(alg: &str, key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let a: &'static dyn signature::VerificationAlgorithm = match alg {
        // FIXED: `r || s` (RFC 7518 §3.4), never DER.
        "ES256" => &signature::ECDSA_P256_SHA256_FIXED,
        "ES384" => &signature::ECDSA_P384_SHA384_FIXED,
        "EdDSA" => &signature::ED25519,
        _ => return false,
    };
    signature::UnparsedPublicKey::new(a, key)
        .verify(msg, sig)
        .is_ok()
}
