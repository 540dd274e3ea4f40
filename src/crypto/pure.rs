//! The pure-Rust backend (RustCrypto): what the wasm modules run. Sizes are checked by the
//! facade (mod.rs) before these are called.
// With native-crypto on, the facade routes some operations to ring; these stay for the
// backend-comparison tests.
#![cfg_attr(feature = "native-crypto", allow(dead_code))]

use aes_gcm::aead::{AeadInOut, Nonce, Tag};
use aes_gcm::{Aes128Gcm, Aes256Gcm, KeyInit};
use hmac::{Hmac as HmacOf, Mac};
use sha2::{Digest, Sha256, Sha384, Sha512};

use super::{Gcm, Hmac};

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

pub fn sha512(data: &[u8]) -> [u8; 64] {
    Sha512::digest(data).into()
}

fn mac<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> Option<M> {
    // HMAC accepts keys of any length: this never fails.
    let mut m = <M as KeyInit>::new_from_slice(key).ok()?;
    m.update(data);
    Some(m)
}

pub fn hmac(alg: Hmac, key: &[u8], data: &[u8]) -> Vec<u8> {
    let tag = match alg {
        Hmac::Sha256 => {
            mac::<HmacOf<Sha256>>(key, data).map(|m| m.finalize().into_bytes().to_vec())
        }
        Hmac::Sha384 => {
            mac::<HmacOf<Sha384>>(key, data).map(|m| m.finalize().into_bytes().to_vec())
        }
        Hmac::Sha512 => {
            mac::<HmacOf<Sha512>>(key, data).map(|m| m.finalize().into_bytes().to_vec())
        }
    };
    tag.unwrap_or_default()
}

pub fn hmac_verify(alg: Hmac, key: &[u8], data: &[u8], tag: &[u8]) -> bool {
    match alg {
        Hmac::Sha256 => {
            mac::<HmacOf<Sha256>>(key, data).is_some_and(|m| m.verify_slice(tag).is_ok())
        }
        Hmac::Sha384 => {
            mac::<HmacOf<Sha384>>(key, data).is_some_and(|m| m.verify_slice(tag).is_ok())
        }
        Hmac::Sha512 => {
            mac::<HmacOf<Sha512>>(key, data).is_some_and(|m| m.verify_slice(tag).is_ok())
        }
    }
}

fn seal<A: AeadInOut + KeyInit>(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    buf: &mut [u8],
) -> Option<Vec<u8>> {
    let cipher = A::new_from_slice(key).ok()?;
    let nonce = Nonce::<A>::try_from(iv).ok()?;
    let tag = cipher
        .encrypt_inout_detached(&nonce, aad, buf.into())
        .ok()?;
    Some(tag.to_vec())
}

fn open<A: AeadInOut + KeyInit>(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8],
) -> bool {
    let (Ok(cipher), Ok(nonce), Ok(tag)) = (
        A::new_from_slice(key),
        Nonce::<A>::try_from(iv),
        Tag::<A>::try_from(tag),
    ) else {
        return false;
    };
    cipher
        .decrypt_inout_detached(&nonce, aad, buf.into(), &tag)
        .is_ok()
}

pub fn gcm_seal(alg: Gcm, key: &[u8], iv: &[u8], aad: &[u8], buf: &mut [u8]) -> Option<Vec<u8>> {
    match alg {
        Gcm::Aes128 => seal::<Aes128Gcm>(key, iv, aad, buf),
        Gcm::Aes256 => seal::<Aes256Gcm>(key, iv, aad, buf),
    }
}

pub fn gcm_open(alg: Gcm, key: &[u8], iv: &[u8], aad: &[u8], buf: &mut [u8], tag: &[u8]) -> bool {
    match alg {
        Gcm::Aes128 => open::<Aes128Gcm>(key, iv, aad, buf, tag),
        Gcm::Aes256 => open::<Aes256Gcm>(key, iv, aad, buf, tag),
    }
}
