//! The double-submit token: cookies as browsers send them (RFC 6265 §5.4) and fresh tokens.

use crate::request::RequestView;

/// Longest token accepted from a request; issued tokens are 64 characters.
pub const MAX_TOKEN_LEN: usize = 256;

/// Every value of cookie `name` in the request's `Cookie` field(s), in order. Names are
/// case-sensitive; a value in double quotes loses them (RFC 6265 §4.1.1).
pub fn cookie_values<'a>(req: &'a RequestView, name: &str) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    for field in req.header_values("cookie") {
        out.extend(cookie_values_in(field, name));
    }
    out
}

/// The values of cookie `name` in one `Cookie` field value.
pub fn cookie_values_in<'a>(field: &'a [u8], name: &str) -> Vec<&'a [u8]> {
    field
        .split(|b| *b == b';')
        .filter_map(|pair| {
            let pair = trim(pair);
            let eq = pair.iter().position(|b| *b == b'=')?;
            let (k, v) = (pair.get(..eq)?, pair.get(eq + 1..)?);
            (trim(k) == name.as_bytes()).then(|| unquote(trim(v)))
        })
        .collect()
}

fn trim(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

fn unquote(v: &[u8]) -> &[u8] {
    match v {
        [b'"', inner @ .., b'"'] => inner,
        _ => v,
    }
}

/// A new token: 32 bytes from the platform's CSPRNG (WASI `random_get` in the wasm module),
/// hex-encoded. `None` if no randomness is available: then no cookie is issued, never a
/// guessable one.
pub fn fresh_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// `Set-Cookie` for a fresh token (RFC 6265 §4.1; `__Host-` prefix rules: Secure, Path=/,
/// no Domain).
pub fn set_cookie(name: &str, token: &str, http_only: bool) -> String {
    let http_only = if http_only { "; HttpOnly" } else { "" };
    format!("{name}={token}; Secure{http_only}; SameSite=Strict; Path=/")
}
