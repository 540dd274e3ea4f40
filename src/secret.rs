//! Holding secrets, and comparing them without leaking where they differ.

/// Secret bytes (a key, an HMAC secret, a CEK or KEK): wiped when dropped, with writes the
/// optimiser may not remove (`zeroize`). Clones are wiped too.
pub type Secret = zeroize::Zeroizing<Vec<u8>>;

/// Constant-time equality of two byte strings: the time taken depends only on the lengths,
/// never on where the first difference is. Lengths are not secret here (tokens and MACs have a
/// fixed, public length), so unequal lengths return early.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keep the optimiser from turning the fold into an early-exit comparison.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::{ct_eq, Secret};

    fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>(_: &T) {}

    /// Every secret key, HMAC secret and CEK is held as a `Secret`: this fails to compile if
    /// one of them goes back to a plain `Vec<u8>`.
    #[test]
    fn key_material_is_zeroized_on_drop() {
        wiped_on_drop(&Secret::new(vec![1; 32]));
        let k = crate::signing::Key::new("k", vec![1; 32]);
        wiped_on_drop(&k.secret);
        if let crate::controls::payload_crypto::jwe::KeyMaterial::Oct(k) =
            crate::controls::payload_crypto::jwe::KeyMaterial::Oct(Secret::new(vec![2; 16]))
        {
            wiped_on_drop(&k);
        }
    }

    #[test]
    fn equal_unequal_and_different_lengths() {
        assert!(ct_eq(b"", b""));
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"xbc"));
        assert!(!ct_eq(b"abc", b"abcd"));
        assert!(!ct_eq(b"abc", b""));
    }
}
