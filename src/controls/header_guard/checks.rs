//! The request-facing checks, one small function each, on raw header bytes.

/// Byte classes, looked up for every byte of every header: one table load per byte.
const TCHAR: u8 = 1;
/// VCHAR, SP, HTAB (RFC 9110 §5.5 `field-vchar` without obs-text).
const VALUE_ASCII: u8 = 2;
/// `obs-text`: 0x80-0xFF.
const OBS_TEXT: u8 = 4;

// Evaluated at compile time: an out-of-bounds index would fail the build, not a request.
#[allow(clippy::indexing_slicing)]
const CLASSES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut c = 0;
        if b.is_ascii_alphanumeric() {
            c |= TCHAR;
        }
        let mut j = 0;
        let specials = b"!#$%&'*+-.^_`|~";
        while j < specials.len() {
            if specials[j] == b {
                c |= TCHAR;
            }
            j += 1;
        }
        if (b >= 0x20 && b < 0x7f) || b == b'\t' {
            c |= VALUE_ASCII;
        }
        if b >= 0x80 {
            c |= OBS_TEXT;
        }
        t[i] = c;
        i += 1;
    }
    t
};

fn class(b: u8) -> u8 {
    CLASSES.get(usize::from(b)).copied().unwrap_or(0)
}

/// RFC 9110 §5.6.2 `tchar`.
pub fn is_tchar(b: u8) -> bool {
    class(b) & TCHAR != 0
}

/// RFC 9110 §5.1: a field name is a `token`. Pseudo-headers (`:path`) are `:` + token.
pub fn is_field_name(name: &[u8]) -> bool {
    let base = name.strip_prefix(b":").unwrap_or(name);
    !base.is_empty() && base.iter().all(|&b| is_tchar(b))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueError {
    /// CR LF followed by SP or HTAB: a folded line (RFC 9112 §5.2, obsolete).
    ObsFold,
    /// CR, LF, NUL or another control character but HTAB (RFC 9110 §5.5).
    Control,
    /// A byte above 0x7F (`obs-text`) where the policy allows ASCII only.
    NonAscii,
}

/// RFC 9110 §5.5: `field-value = *field-content`, VCHAR, SP, HTAB and obs-text only.
pub fn check_value(value: &[u8], allow_obs_text: bool) -> Result<(), ValueError> {
    let is_ctl = |b: u8| class(b) & (VALUE_ASCII | OBS_TEXT) == 0;
    let ok = if allow_obs_text {
        VALUE_ASCII | OBS_TEXT
    } else {
        VALUE_ASCII
    };
    // One pass for the common, clean value; the kind of error only when there is one.
    if value.iter().all(|&b| class(b) & ok != 0) {
        return Ok(());
    }
    // CR LF SP, LF SP (and the HTAB forms) fold a line.
    if value.windows(2).any(|w| matches!(w, [b'\n', b' ' | b'\t'])) {
        return Err(ValueError::ObsFold);
    }
    match value.iter().find(|&&b| is_ctl(b) || b >= 0x80) {
        Some(&b) if b >= 0x80 && !value.iter().any(|&b| is_ctl(b)) => Err(ValueError::NonAscii),
        _ => Err(ValueError::Control),
    }
}

/// Encoded line breaks that become real ones when a value is decoded into a response header
/// (`Location`) or a log line: `%0d` / `%0a` (and double-encoded `%250d`), `\r` / `\n`,
/// `\u000d`, `\x0a` escapes, and the Unicode line breaks NEL, LS and PS, raw or %-encoded.
pub fn has_encoded_line_break(value: &[u8]) -> bool {
    const RAW: &[&[u8]] = &[
        "\u{85}".as_bytes(),
        "\u{2028}".as_bytes(),
        "\u{2029}".as_bytes(),
    ];
    const FOLDED: &[&[u8]] = &[
        b"%0d",
        b"%0a",
        b"%250d",
        b"%250a",
        b"\\r",
        b"\\n",
        b"\\u000d",
        b"\\u000a",
        b"\\x0d",
        b"\\x0a",
        b"%c2%85",
        b"%e2%80%a8",
        b"%e2%80%a9",
        b"%u000d",
        b"%u000a",
        b"%u2028",
        b"%u2029",
    ];
    if value.iter().any(|&b| b >= 0x80) && RAW.iter().any(|n| contains(value, n)) {
        return true;
    }
    // Only lower-case the values that can hold an escape at all.
    if !value.iter().any(|&b| b == b'%' || b == b'\\') {
        return false;
    }
    let lower = value.to_ascii_lowercase();
    FOLDED.iter().any(|n| contains(&lower, n))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |e| e + 1);
    v.get(start..end).unwrap_or_default()
}

/// RFC 9110 §8.6: `Content-Length = 1*DIGIT`, one field, one value (no list: a comma means the
/// codec joined two fields, or the client sent `3, 3`).
pub fn content_length_ok<'a>(mut values: impl Iterator<Item = &'a [u8]>) -> bool {
    let Some(first) = values.next() else {
        return true;
    };
    let v = trim_ows(first);
    values.next().is_none() && !v.is_empty() && v.len() <= 18 && v.iter().all(u8::is_ascii_digit)
}

/// RFC 9112 §6.1 / §7: the only transfer coding a request may use here is exactly `chunked`,
/// once. `xchunked`, `chunked, identity`, `gzip, chunked` and repeated fields are refused:
/// two parsers that disagree on them is what request smuggling (TE.TE) needs.
pub fn transfer_encoding_ok<'a>(mut values: impl Iterator<Item = &'a [u8]>) -> bool {
    let Some(first) = values.next() else {
        return true;
    };
    values.next().is_none() && trim_ows(first).eq_ignore_ascii_case(b"chunked")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorityError {
    /// A comma: the codec joined two `Host` fields (`a.example,b.example`).
    Duplicate,
    /// Userinfo, spaces, a bad port or other characters no host name has.
    Malformed,
}

/// The host of an authority (RFC 3986 §3.2.2), lower case, without port or a trailing dot.
pub fn authority_host(authority: &str) -> Result<String, AuthorityError> {
    if authority.contains(',') {
        return Err(AuthorityError::Duplicate);
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (ip, after) = rest.split_once(']').ok_or(AuthorityError::Malformed)?;
        if ip.is_empty()
            || !ip
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(AuthorityError::Malformed);
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or(AuthorityError::Malformed)?),
        };
        let host = authority
            .get(..ip.len() + 2)
            .ok_or(AuthorityError::Malformed)?;
        (host, port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if port.is_some_and(|p| p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit())) {
        return Err(AuthorityError::Malformed);
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    let valid = host.starts_with('[')
        || (!host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')));
    if !valid {
        return Err(AuthorityError::Malformed);
    }
    Ok(host.to_ascii_lowercase())
}

/// A host allow-list entry: `api.example.com`, or `*.example.com` for any name below it
/// (`a.example.com`, `a.b.example.com`, never `example.com` itself or `evilexample.com`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Exact(String),
    /// The suffix with its leading dot: `.example.com`.
    Suffix(String),
}

impl HostPattern {
    pub fn parse(p: &str) -> Result<Self, String> {
        let lower = p.to_ascii_lowercase();
        let (pattern, name) = match lower.strip_prefix("*.") {
            Some(rest) => (HostPattern::Suffix(format!(".{rest}")), rest.to_string()),
            None => (HostPattern::Exact(lower.clone()), lower.clone()),
        };
        match authority_host(&name) {
            Ok(h) if h == name && !name.contains('*') => Ok(pattern),
            _ => Err(format!(
                "`{p}` is not a host name or `*.suffix` pattern (no port, no trailing dot)"
            )),
        }
    }

    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(h) => h == host,
            HostPattern::Suffix(s) => host.len() > s.len() && host.ends_with(s.as_str()),
        }
    }
}

/// The elements of a list-valued field (RFC 9110 §5.6.1), split at commas outside quoted
/// strings. More than one element in a field whose grammar has no list is the sign that the
/// codec joined two fields (Envoy joins repeated `Host`, `Content-Type`, `Authorization`).
pub fn split_list(value: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let (mut quoted, mut escaped, mut start) = (false, false, 0);
    for (i, &b) in value.iter().enumerate() {
        match (quoted, escaped, b) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (_, false, b'"') => quoted = !quoted,
            (false, _, b',') => {
                out.push(value.get(start..i).unwrap_or_default());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value.get(start..).unwrap_or_default());
    out
}

/// Two `Authorization` fields joined by the codec (`Bearer a,Bearer b`). A comma is legal
/// between auth-params (`Digest realm="x", nonce="y"`, RFC 9110 §11.4), so only an element
/// after the first that is not `name=value` counts as a second credential.
pub fn authorization_joined(value: &[u8]) -> bool {
    split_list(value).iter().skip(1).any(|e| !is_auth_param(e))
}

fn is_auth_param(element: &[u8]) -> bool {
    let e = trim_ows(element);
    if e.is_empty() {
        // `#rule` allows empty list elements.
        return true;
    }
    let name_len = e.iter().take_while(|&&b| is_tchar(b)).count();
    name_len > 0
        && trim_ows(e.get(name_len..).unwrap_or_default())
            .first()
            .is_some_and(|&b| b == b'=')
}
