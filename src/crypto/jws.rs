//! JWS signature verification (RFC 7515 §5.2, algorithms of RFC 7518 §3) for one key bound to
//! one algorithm. The pure backend is jwt-simple (ES256: the tables of es256.rs); with
//! `native-crypto`, ring verifies the algorithms in [`native_wins`], after the same
//! structural checks jwt-simple makes, so both refuse the same tokens.

use jwt_simple::prelude::*;

use super::b64url;
use super::es256::Es256Key;

/// The algorithms ring verifies in the native library: where it measured faster
/// (docs/native.md, "Crypto backend": RSA ~6.6x, ES256 ~1.2x over es256.rs's tables). The rest
/// keep the pure verifier there too: ES384 (ring's P-384 is plain C, no faster), EdDSA (small
/// gain, and ring's cofactorless check without a small-order key test would not accept exactly
/// what ed25519-compact accepts), HS* (the same HMAC speed; the cost is parsing).
#[cfg(feature = "native-crypto")]
fn native_wins(alg: &str) -> bool {
    matches!(
        alg,
        "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" | "ES256"
    )
}

enum Pure {
    Rs256(RS256PublicKey),
    Rs384(RS384PublicKey),
    Rs512(RS512PublicKey),
    Ps256(PS256PublicKey),
    Ps384(PS384PublicKey),
    Ps512(PS512PublicKey),
    Es256(Es256Key),
    Es384(ES384PublicKey),
    EdDsa(Ed25519PublicKey),
    Hs256(HS256Key),
    Hs384(HS384Key),
    Hs512(HS512Key),
}

/// What ring needs for a key: RSA components, or the public key bytes.
#[cfg(feature = "native-crypto")]
enum Native {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Key(Vec<u8>),
}

/// A compiled verification key for one algorithm.
pub struct Verifier {
    alg: &'static str,
    pure: Pure,
    #[cfg(feature = "native-crypto")]
    native: Option<Native>,
}

/// The RSA public keys both backends accept (RFC 7518 §3.3: 2048 bits at least): 2048 to 4096
/// bits (the pure backend's `rsa` caps at 4096, ring at 8192), an odd exponent from 3 to
/// 2^33 - 1 (ring's range; `rsa` also takes even ones, which are not RSA keys).
fn rsa_components(n: &[u8], e: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let minimal = |b: &[u8]| {
        b.iter()
            .position(|&x| x != 0)
            .map_or(Vec::new(), |i| b.get(i..).unwrap_or_default().to_vec())
    };
    let (n, e) = (minimal(n), minimal(e));
    let n_bits = n.first().map_or(0, |&top| {
        (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize)
    });
    let e_value = if e.len() <= 8 {
        e.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b))
    } else {
        u64::MAX
    };
    let ok = (2048..=4096).contains(&n_bits)
        && e_value % 2 == 1
        && (3..=(1u64 << 33) - 1).contains(&e_value);
    ok.then_some((n, e))
}

impl Verifier {
    /// RS*/PS* from the JWK members `n`, `e` (RFC 7518 §6.3.1); `None`: not a key we accept.
    pub fn rsa(alg: &'static str, n: &[u8], e: &[u8]) -> Option<Verifier> {
        let (n, e) = rsa_components(n, e)?;
        let pure = match alg {
            "RS256" => RS256PublicKey::from_components(&n, &e).map(Pure::Rs256),
            "RS384" => RS384PublicKey::from_components(&n, &e).map(Pure::Rs384),
            "RS512" => RS512PublicKey::from_components(&n, &e).map(Pure::Rs512),
            "PS256" => PS256PublicKey::from_components(&n, &e).map(Pure::Ps256),
            "PS384" => PS384PublicKey::from_components(&n, &e).map(Pure::Ps384),
            "PS512" => PS512PublicKey::from_components(&n, &e).map(Pure::Ps512),
            _ => return None,
        }
        .ok()?;
        Some(Verifier {
            alg,
            pure,
            #[cfg(feature = "native-crypto")]
            native: native_wins(alg).then_some(Native::Rsa { n, e }),
        })
    }

    /// ES256/ES384 from the SEC1 uncompressed point `04 || x || y`; `None` unless on the curve.
    pub fn ec(alg: &'static str, point: &[u8]) -> Option<Verifier> {
        let pure = match alg {
            "ES256" => Es256Key::from_sec1(point).map(Pure::Es256)?,
            "ES384" => ES384PublicKey::from_bytes(point).ok().map(Pure::Es384)?,
            _ => return None,
        };
        Some(Verifier {
            alg,
            pure,
            #[cfg(feature = "native-crypto")]
            native: native_wins(alg).then(|| Native::Key(point.to_vec())),
        })
    }

    /// EdDSA (RFC 8037) with an Ed25519 key `x`.
    pub fn ed25519(x: &[u8]) -> Option<Verifier> {
        let pure = Ed25519PublicKey::from_bytes(x).ok().map(Pure::EdDsa)?;
        Some(Verifier {
            alg: "EdDSA",
            pure,
            #[cfg(feature = "native-crypto")]
            native: native_wins("EdDSA").then(|| Native::Key(x.to_vec())),
        })
    }

    /// HS* with a secret (its length is checked by the caller, RFC 7518 §3.2).
    pub fn hmac(alg: &'static str, k: &[u8]) -> Option<Verifier> {
        let pure = match alg {
            "HS256" => Pure::Hs256(HS256Key::from_bytes(k)),
            "HS384" => Pure::Hs384(HS384Key::from_bytes(k)),
            "HS512" => Pure::Hs512(HS512Key::from_bytes(k)),
            _ => return None,
        };
        Some(Verifier {
            alg,
            pure,
            #[cfg(feature = "native-crypto")]
            native: None,
        })
    }

    pub fn alg(&self) -> &'static str {
        self.alg
    }

    /// Check the signature of a compact JWS whose header token.rs already checked.
    pub fn verify(&self, token: &str) -> bool {
        #[cfg(feature = "native-crypto")]
        if let Some(native) = &self.native {
            if let Some(answer) = self.verify_native(native, token) {
                return answer;
            }
        }
        self.verify_pure(token)
    }

    fn verify_pure(&self, t: &str) -> bool {
        // Claims are checked by the control with its own clock and codes; make jwt-simple's
        // own claim checks vacuous (time 0, no tolerance, future accepted).
        let opts = || {
            Some(VerificationOptions {
                accept_future: true,
                time_tolerance: Some(Duration::from_secs(0)),
                artificial_time: Some(UnixTimeStamp::from_secs(0)),
                max_token_length: None,
                max_header_length: Some(64 * 1024),
                ..Default::default()
            })
        };
        match &self.pure {
            Pure::Rs256(k) => k.verify_token::<NoCustomClaims>(t, opts()).is_ok(),
            Pure::Rs384(k) => k.verify_token::<NoCustomClaims>(t, opts()).is_ok(),
            Pure::Rs512(k) => k.verify_token::<NoCustomClaims>(t, opts()).is_ok(),
            Pure::Ps256(k) => k.verify_token::<NoCustomClaims>(t, opts()).is_ok(),
            Pure::Ps384(k) => k.verify_token::<NoCustomClaims>(t, opts()).is_ok(),
            Pure::Ps512(k) => k.verify_token::<NoCustomClaims>(t, opts()).is_ok(),
            // The token was parsed and its header checked already (token.rs): only the
            // signature over `header.payload` is left.
            Pure::Es256(k) => t
                .rsplit_once('.')
                .and_then(|(input, sig)| Some((input, b64url(sig)?)))
                .is_some_and(|(input, sig)| k.verify(input.as_bytes(), &sig)),
            Pure::Es384(k) => k.verify_token::<NoCustomClaims>(t, opts()).is_ok(),
            Pure::EdDsa(k) => k.verify_token::<NoCustomClaims>(t, opts()).is_ok(),
            Pure::Hs256(k) => k.verify_token::<NoCustomClaims>(t, opts()).is_ok(),
            Pure::Hs384(k) => k.verify_token::<NoCustomClaims>(t, opts()).is_ok(),
            Pure::Hs512(k) => k.verify_token::<NoCustomClaims>(t, opts()).is_ok(),
        }
    }

    /// ring, after the checks the pure verifier makes besides the signature; `None`: a case
    /// left to the pure verifier (so that the answer is its answer).
    #[cfg(feature = "native-crypto")]
    fn verify_native(&self, native: &Native, t: &str) -> Option<bool> {
        let (input, sig_b64) = t.rsplit_once('.')?;
        let sig = if matches!(self.pure, Pure::Es256(_)) {
            // The pure ES256 verifier reads the signature as token.rs does, and nothing else.
            b64url(sig_b64)
        } else {
            let (header_b64, claims_b64) = input.split_once('.')?;
            // jwt-simple's own header checks (JWTHeader, alg, typ, crit); longer headers and
            // `salt` (which jwt-simple decodes) are rare: leave them to it.
            if header_b64.len() > jwt_simple::token::MAX_HEADER_LENGTH {
                return None;
            }
            let Ok(meta) = Token::decode_metadata(t) else {
                return Some(false);
            };
            let typ_ok = meta.signature_type().is_none_or(|typ| {
                let typ = typ.to_uppercase();
                typ == "JWT" || typ.ends_with("+JWT")
            });
            if meta.algorithm() != self.alg
                || !meta.critical().is_none_or(<[String]>::is_empty)
                || !typ_ok
            {
                return Some(false);
            }
            let header = Base64UrlSafeNoPadding::decode_to_vec(header_b64, None).ok()?;
            if header.windows(4).any(|w| w == b"salt") {
                return None;
            }
            // Claims must have jwt-simple's shape (its checks of them are vacuous here).
            let claims = Base64UrlSafeNoPadding::decode_to_vec(claims_b64, None).ok();
            if claims
                .is_none_or(|c| serde_json::from_slice::<JWTClaims<NoCustomClaims>>(&c).is_err())
            {
                return Some(false);
            }
            Base64UrlSafeNoPadding::decode_to_vec(sig_b64, None).ok()
        };
        let Some(sig) = sig else {
            return Some(false);
        };
        let msg = input.as_bytes();
        Some(match native {
            Native::Rsa { n, e } => super::native::rsa_verify(self.alg, n, e, msg, &sig),
            Native::Key(key) => super::native::key_verify(self.alg, key, msg, &sig),
        })
    }

    /// The pure verifier alone (the backend-comparison tests).
    #[cfg(all(test, feature = "native-crypto"))]
    pub fn verify_with_pure(&self, token: &str) -> bool {
        self.verify_pure(token)
    }
}
