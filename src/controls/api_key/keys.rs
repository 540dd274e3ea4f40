//! Where a request carries its key, and the request without it.

use crate::params::{percent_decode, query_values, trim};
use crate::request::RequestView;

/// Longest key accepted (`portcullis keygen` makes 46-character keys).
pub const MAX_KEY_LEN: usize = 512;

/// Where the key may be, as compiled from the policy.
#[derive(Debug, Clone)]
pub struct Locations {
    pub header: Option<String>,
    pub authorization: bool,
    pub query_param: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Header,
    Authorization,
    Query,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// The same location twice, or keys in two locations.
    Ambiguous,
    Empty,
    TooLong,
    /// Not visible ASCII.
    Invalid,
}

impl KeyError {
    pub fn detail(self) -> &'static str {
        match self {
            KeyError::Ambiguous => "the request carries more than one API key",
            KeyError::Empty => "the API key is empty",
            KeyError::TooLong => "the API key is too long",
            KeyError::Invalid => "the API key contains characters keys never have",
        }
    }
}

fn validate(key: Vec<u8>) -> Result<Vec<u8>, KeyError> {
    if key.is_empty() {
        return Err(KeyError::Empty);
    }
    if key.len() > MAX_KEY_LEN {
        return Err(KeyError::TooLong);
    }
    if !key.iter().all(|b| b.is_ascii_graphic()) {
        return Err(KeyError::Invalid);
    }
    Ok(key)
}

/// The value of `Authorization: ApiKey <key>` (the scheme is case-insensitive, RFC 9110 §11.1).
fn authorization_key(v: &[u8]) -> Option<&[u8]> {
    let v = trim(v);
    let sp = v.iter().position(|b| *b == b' ')?;
    let (scheme, rest) = (v.get(..sp)?, v.get(sp..)?);
    scheme.eq_ignore_ascii_case(b"apikey").then(|| trim(rest))
}

impl Locations {
    /// The one key of the request and where it was; `None` when there is none anywhere.
    pub fn extract(&self, req: &RequestView) -> Result<Option<(Vec<u8>, Source)>, KeyError> {
        let mut found: Vec<(Vec<u8>, Source)> = Vec::new();
        if let Some(h) = &self.header {
            for v in req.header_values(h) {
                found.push((trim(v).to_vec(), Source::Header));
            }
        }
        if self.authorization {
            for v in req.header_values("authorization") {
                if let Some(k) = authorization_key(v) {
                    found.push((k.to_vec(), Source::Authorization));
                }
            }
        }
        if let (Some(p), Some(q)) = (&self.query_param, &req.query) {
            for v in query_values(q, p) {
                found.push((percent_decode(v.as_bytes()), Source::Query));
            }
        }
        let mut it = found.into_iter();
        match (it.next(), it.next()) {
            (None, _) => Ok(None),
            (Some((k, src)), None) => Ok(Some((validate(k)?, src))),
            (Some(_), Some(_)) => Err(KeyError::Ambiguous),
        }
    }
}
