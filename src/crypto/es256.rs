//! ES256 (ECDSA over P-256 with SHA-256, RFC 7518 §3.4) verification with precomputed tables.
//!
//! Why not jwt-simple's (p256's) verifier: it computes `u1·G + u2·Q` by wNAF, building both
//! points' tables and doubling 256 times on every call: ~0.6 ms per token in V8. Here
//! both bases are fixed: the generator's table is built once per VM and each key's when its JWKS
//! is compiled, so a verification is ~90 mixed additions and no doublings. The arithmetic is
//! p256's (field, scalar, complete point formulas); only the scalar-multiplication schedule is
//! ours. Everything here works on public data (key, message, signature), so variable time is fine.

use std::sync::OnceLock;

use p256::elliptic_curve::ops::Reduce;
use p256::elliptic_curve::point::AffineCoordinates;
use p256::elliptic_curve::{CurveGroup, Field, Group, PrimeField};
use p256::{AffinePoint, FieldBytes, ProjectivePoint, PublicKey, Scalar};
use sha2::{Digest, Sha256};

/// Window of the generator's table: 38 windows × 64 points (~170 KB, built once per VM).
const G_WINDOW: u32 = 7;
/// Window of a key's table: 53 windows × 16 points (~60 KB per ES256 key).
const KEY_WINDOW: u32 = 5;

/// `j · 2^(w·i) · P` for every window `i` and `j` in `1..=2^(w-1)`, in affine form, so that
/// `k·P` is one mixed addition per non-zero signed digit of `k`.
struct Table {
    window: u32,
    points: Vec<AffinePoint>,
}

impl Table {
    fn new(base: ProjectivePoint, window: u32) -> Table {
        let half = 1usize << (window - 1);
        let windows = windows(window);
        let mut projective = Vec::with_capacity(windows * half);
        let mut step = base;
        for _ in 0..windows {
            let mut multiple = step;
            projective.push(multiple);
            for _ in 1..half {
                multiple += step;
                projective.push(multiple);
            }
            for _ in 0..window {
                step = step.double();
            }
        }
        // P has prime order n and every multiple here is j·2^(w·i) with j < n, never ≡ 0 mod n,
        // so no entry is the identity (which has no affine form).
        let mut points = vec![AffinePoint::IDENTITY; projective.len()];
        <ProjectivePoint as CurveGroup>::batch_normalize(&projective, &mut points);
        Table { window, points }
    }

    /// Add `k·P` to `acc`; `false` only if the table were too short (it never is).
    fn mul_add(&self, k: &Scalar, acc: &mut ProjectivePoint) -> bool {
        let half = 1usize << (self.window - 1);
        for (i, digit) in signed_digits(&k.to_repr(), self.window).enumerate() {
            if digit != 0 {
                let at = i * half + digit.unsigned_abs() as usize - 1;
                let Some(point) = self.points.get(at) else {
                    return false;
                };
                if digit > 0 {
                    *acc += point;
                } else {
                    *acc += -point;
                }
            }
        }
        true
    }
}

/// Windows for a 256-bit scalar, plus one for the last carry of the signed recoding.
fn windows(window: u32) -> usize {
    256usize.div_ceil(window as usize) + 1
}

/// The digits `d_i` in `[-(2^(w-1) - 1), 2^(w-1)]` with `k = Σ d_i · 2^(w·i)`, least
/// significant first; `k` is big-endian, as `Scalar::to_repr` gives it.
fn signed_digits(k: &FieldBytes, window: u32) -> impl Iterator<Item = i32> + '_ {
    let bit = move |i: usize| -> i32 {
        let byte = k.len().checked_sub(1 + i / 8).and_then(|at| k.get(at));
        byte.map_or(0, |b| i32::from((b >> (i % 8)) & 1))
    };
    let w = window as usize;
    let half = 1i32 << (window - 1);
    let mut carry = 0;
    (0..windows(window)).map(move |i| {
        let v = (0..w).fold(carry, |v, b| v + (bit(i * w + b) << b));
        if v > half {
            carry = 1;
            v - (1 << window)
        } else {
            carry = 0;
            v
        }
    })
}

fn generator_table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| Table::new(ProjectivePoint::GENERATOR, G_WINDOW))
}

/// One P-256 public key, ready to verify ES256 signatures.
pub struct Es256Key {
    table: Table,
}

impl Es256Key {
    /// From the SEC1 uncompressed point `04 || x || y`; `None` unless it is on the curve (and
    /// not the identity).
    pub fn from_sec1(point: &[u8]) -> Option<Es256Key> {
        let key = PublicKey::from_sec1_bytes(point).ok()?;
        generator_table();
        Some(Es256Key {
            table: Table::new(key.to_projective(), KEY_WINDOW),
        })
    }

    /// Check a JWS signature (`r || s`, 32 bytes each, RFC 7518 §3.4) over `message`: the same
    /// acceptance as `p256::ecdsa` (r, s in `1..n`, high `s` allowed, `x(R) mod n == r`).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Some((r, s)) = signature.split_at_checked(32) else {
            return false;
        };
        let (Some(r), Some(s)) = (non_zero_scalar(r), non_zero_scalar(s)) else {
            return false;
        };
        let Some(s_inv) = Option::<Scalar>::from(s.invert_vartime()) else {
            return false;
        };
        let z = <Scalar as Reduce<FieldBytes>>::reduce(&Sha256::digest(message));
        let mut point = ProjectivePoint::IDENTITY;
        let complete = generator_table().mul_add(&(z * s_inv), &mut point)
            && self.table.mul_add(&(r * s_inv), &mut point);
        if !complete || bool::from(point.is_identity()) {
            return false;
        }
        let x = point.to_affine().x();
        <Scalar as Reduce<FieldBytes>>::reduce(&x) == r
    }
}

/// A 32-byte big-endian scalar in `1..n`.
fn non_zero_scalar(bytes: &[u8]) -> Option<Scalar> {
    let bytes = FieldBytes::try_from(bytes).ok()?;
    let s = Option::<Scalar>::from(Scalar::from_repr(bytes))?;
    (!bool::from(s.is_zero())).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwt_simple::prelude::*;
    use proptest::prelude::*;

    #[test]
    fn recoding_is_exact_at_the_edges() {
        for window in [4, 5, 7] {
            for k in [
                Scalar::ZERO,
                Scalar::ONE,
                -Scalar::ONE,
                Scalar::from(u64::MAX),
            ] {
                let repr = k.to_repr();
                let digits: Vec<i32> = signed_digits(&repr, window).collect();
                let half = 1 << (window - 1);
                assert!(digits.iter().all(|d| (-(half - 1)..=half).contains(d)));
                let mut sum = Scalar::ZERO;
                let radix = Scalar::from(1u64 << window);
                for d in digits.iter().rev() {
                    let m = Scalar::from(u64::from(d.unsigned_abs()));
                    sum = sum * radix + if *d < 0 { -m } else { m };
                }
                assert_eq!(sum, k, "window {window}");
            }
        }
    }

    fn keypair(seed: u8) -> (ES256KeyPair, Es256Key) {
        let mut secret = [seed; 32];
        secret[0] = 1;
        let pair = ES256KeyPair::from_bytes(&secret).unwrap();
        let point = pair.public_key().public_key().to_bytes_uncompressed();
        let key = Es256Key::from_sec1(&point).unwrap();
        (pair, key)
    }

    fn split(token: &str) -> (String, Vec<u8>) {
        let (input, sig) = token.rsplit_once('.').unwrap();
        (input.to_string(), super::super::b64url(sig).unwrap())
    }

    #[test]
    fn accepts_what_jwt_simple_signs_and_nothing_else() {
        let (pair, key) = keypair(7);
        let (_, other) = keypair(9);
        for i in 0..20 {
            let claims = Claims::create(Duration::from_secs(60)).with_subject(format!("u{i}"));
            let token = pair.sign(claims).unwrap();
            let (input, sig) = split(&token);
            assert!(key.verify(input.as_bytes(), &sig));
            assert!(!other.verify(input.as_bytes(), &sig), "another key");
            let mut tampered = input.clone().into_bytes();
            tampered[5] ^= 1;
            assert!(!key.verify(&tampered, &sig), "another message");
            for at in [0, 31, 32, 63] {
                let mut bad = sig.clone();
                bad[at] ^= 0x40;
                assert!(!key.verify(input.as_bytes(), &bad), "signature byte {at}");
            }
            assert!(!key.verify(input.as_bytes(), &sig[..63]));
        }
    }

    #[test]
    fn refuses_out_of_range_scalars() {
        let (pair, key) = keypair(3);
        let token = pair.sign(Claims::create(Duration::from_secs(60))).unwrap();
        let (input, sig) = split(&token);
        let n_minus_1 = (-Scalar::ONE).to_repr();
        let n = {
            // n = (n - 1) + 1 as a big-endian integer: the last byte of n - 1 is not 0xff.
            let mut b = n_minus_1;
            b[31] += 1;
            b
        };
        for (r, s) in [
            ([0u8; 32], sig[32..].to_vec()),
            (sig[..32].try_into().unwrap(), vec![0u8; 32]),
            (n.into(), sig[32..].to_vec()),
            (sig[..32].try_into().unwrap(), n.to_vec()),
            ([0xff; 32], sig[32..].to_vec()),
        ] {
            let mut bad = r.to_vec();
            bad.extend_from_slice(&s);
            assert!(!key.verify(input.as_bytes(), &bad));
        }
        // A high `s` (n - s) is as valid as `s` for ECDSA, and for p256.
        let s =
            Option::<Scalar>::from(Scalar::from_repr(FieldBytes::try_from(&sig[32..]).unwrap()))
                .unwrap();
        let mut high = sig[..32].to_vec();
        high.extend_from_slice(&(-s).to_repr());
        assert!(key.verify(input.as_bytes(), &high));
    }

    #[test]
    fn refuses_points_off_the_curve() {
        let mut point = [4u8; 65];
        point[64] = 5;
        assert!(Es256Key::from_sec1(&point).is_none());
        assert!(Es256Key::from_sec1(&[0u8; 65]).is_none());
        assert!(Es256Key::from_sec1(&point[..64]).is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any 64 bytes as a signature, any message: the same answer as p256's own verifier.
        #[test]
        fn agrees_with_p256(message in proptest::collection::vec(any::<u8>(), 0..64),
                            sig in proptest::collection::vec(any::<u8>(), 64),
                            seed in 1u8..200) {
            use p256::ecdsa::signature::Verifier;
            let (pair, key) = keypair(seed);
            let reference = p256::ecdsa::VerifyingKey::from_sec1_bytes(
                &pair.public_key().public_key().to_bytes_uncompressed()).unwrap();
            let theirs = p256::ecdsa::Signature::from_slice(&sig)
                .is_ok_and(|s| reference.verify(&message, &s).is_ok());
            prop_assert_eq!(key.verify(&message, &sig), theirs);
        }

        /// Signatures by p256's signer over random messages verify; flipping one bit of the
        /// message or the signature makes them fail.
        #[test]
        fn verifies_p256_signatures(message in proptest::collection::vec(any::<u8>(), 0..300),
                                    secret in proptest::array::uniform32(any::<u8>()),
                                    flip in 0usize..(64 * 8)) {
            use p256::ecdsa::signature::Signer;
            let Ok(signer) = p256::ecdsa::SigningKey::from_slice(&secret) else {
                return Ok(()); // zero or not below n
            };
            let point = signer.verifying_key().to_sec1_point(false);
            let key = Es256Key::from_sec1(point.as_bytes()).unwrap();
            let sig: p256::ecdsa::Signature = signer.sign(&message);
            let sig = sig.to_bytes();
            prop_assert!(key.verify(&message, &sig));
            let mut bad = sig.to_vec();
            bad[flip / 8] ^= 1 << (flip % 8);
            prop_assert!(!key.verify(&message, &bad));
            let mut other = message.clone();
            other.push(0);
            prop_assert!(!key.verify(&other, &sig));
        }
    }
}
