//! `Content-Digest` (RFC 9530 §2): a Dictionary of algorithm = byte sequence.

use crate::crypto;

use super::sfv::{self, BareItem, Item, Member};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha-256",
            Algorithm::Sha512 => "sha-512",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha-256" => Some(Algorithm::Sha256),
            "sha-512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }

    pub fn digest(self, body: &[u8]) -> Vec<u8> {
        match self {
            Algorithm::Sha256 => crypto::sha256(body).to_vec(),
            Algorithm::Sha512 => crypto::sha512(body).to_vec(),
        }
    }
}

/// The `Content-Digest` value for `body` (`sha-256=:…:`).
pub fn content_digest(alg: Algorithm, body: &[u8]) -> String {
    let dict = vec![(
        alg.name().to_string(),
        Member::Item(Item {
            bare: BareItem::Bytes(alg.digest(body)),
            params: Vec::new(),
        }),
    )];
    // A byte sequence under a fixed key always serialises.
    sfv::serialize_dictionary(&dict).unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestError {
    /// The field does not parse as a Dictionary of byte sequences.
    Malformed,
    /// No algorithm we compute (sha-256, sha-512) is listed.
    Unsupported,
    /// A listed digest differs from the body's.
    Mismatch,
}

impl std::fmt::Display for DigestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DigestError::Malformed => "Content-Digest is not a dictionary of byte sequences",
            DigestError::Unsupported => {
                "Content-Digest lists no supported algorithm (sha-256, sha-512)"
            }
            DigestError::Mismatch => "Content-Digest does not match the body",
        })
    }
}

/// Check a `Content-Digest` value against `body`: every supported algorithm listed must match,
/// and at least one must be listed (unknown algorithms are ignored, RFC 9530 §2).
pub fn verify(value: &str, body: &[u8]) -> Result<Algorithm, DigestError> {
    let dict = sfv::parse_dictionary(value).map_err(|_| DigestError::Malformed)?;
    let mut checked = None;
    for (name, member) in &dict {
        let Some(alg) = Algorithm::from_name(name) else {
            continue;
        };
        let Member::Item(Item {
            bare: BareItem::Bytes(expected),
            ..
        }) = member
        else {
            return Err(DigestError::Malformed);
        };
        if alg.digest(body) != *expected {
            return Err(DigestError::Mismatch);
        }
        checked = Some(alg);
    }
    checked.ok_or(DigestError::Unsupported)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 9530 §2 and Appendix B.1: the digests of `{"hello": "world"}`.
    const BODY: &[u8] = br#"{"hello": "world"}"#;
    const SHA256: &str = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:";
    const SHA512: &str = "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:";

    #[test]
    fn rfc9530_examples_sha256_and_sha512() {
        assert_eq!(content_digest(Algorithm::Sha256, BODY), SHA256);
        assert_eq!(content_digest(Algorithm::Sha512, BODY), SHA512);
        assert_eq!(verify(SHA256, BODY), Ok(Algorithm::Sha256));
        assert_eq!(verify(SHA512, BODY), Ok(Algorithm::Sha512));
        assert_eq!(
            verify(&format!("{SHA256}, {SHA512}"), BODY),
            Ok(Algorithm::Sha512)
        );
    }

    #[test]
    fn rfc9530_a_changed_body_mismatches() {
        assert_eq!(
            verify(SHA256, br#"{"hello": "World"}"#),
            Err(DigestError::Mismatch)
        );
        // One good and one bad digest is still a mismatch.
        let bad512 = content_digest(Algorithm::Sha512, b"other");
        assert_eq!(
            verify(&format!("{SHA256}, {bad512}"), BODY),
            Err(DigestError::Mismatch)
        );
    }

    #[test]
    fn unsupported_and_malformed_digests() {
        assert_eq!(verify("md5=:AAAA:", BODY), Err(DigestError::Unsupported));
        assert_eq!(verify("", BODY), Err(DigestError::Unsupported));
        assert_eq!(verify("sha-256=abc", BODY), Err(DigestError::Malformed));
        assert_eq!(verify("sha-256=:abc", BODY), Err(DigestError::Malformed));
    }
}
