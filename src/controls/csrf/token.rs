//! The double-submit token: cookies as browsers send them (RFC 6265 §5.4) and fresh tokens.

/// Longest token accepted from a request; issued tokens are 64 characters.
pub const MAX_TOKEN_LEN: usize = 256;

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
