//! Request-target normalisation, so route rules see the path the upstream will see.
//!
//! `/./orders`, `//orders` and `/%6Frders` must all match a rule for `/orders`. We decode
//! %-encoded unreserved characters (RFC 3986 §2.3), upper-case the remaining escapes (§6.2.2.1),
//! merge repeated slashes, drop `;` path parameters and remove dot-segments (§5.2.4). Encoded
//! slashes (`%2F`) stay encoded: they are data, not separators, as Envoy keeps them by default.
//! A backslash, raw or %-encoded, is refused: RFC 3986 has no `\` in a path, and Envoy's own
//! normaliser, IIS and WHATWG URL parsers read it as `/` (`/health\..\reports` is `/reports`
//! to them) while others keep it as data, so no one path can stand for what the upstream sees.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Not origin-form (`/…`) nor `*`.
    NotOriginForm,
    /// `%` not followed by two hex digits.
    BadEscape,
    /// A raw control character, space or non-ASCII byte.
    BadCharacter,
    /// A segment that is only path parameters or a dot-segment with them (`/;x/`, `/..;/`):
    /// servlet containers read it as empty or `..`, other servers as an ordinary segment, so
    /// no one path can stand for what the upstream will see.
    AmbiguousParameters,
    /// A `\` or `%5C`: a separator to some servers, data to others.
    Backslash,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::NotOriginForm => "the request target must start with '/'",
            PathError::BadEscape => "the path has an invalid percent-escape",
            PathError::BadCharacter => "the path has a character that must be percent-encoded",
            PathError::AmbiguousParameters => {
                "the path has a segment that is empty or a dot-segment before its ';' parameters"
            }
            PathError::Backslash => {
                "the path has a backslash (raw or %5C), which servers read differently"
            }
        })
    }
}

/// Split `:path` into (normalised path, raw query).
pub fn split_and_normalize(target: &str) -> Result<(String, Option<String>), PathError> {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (target, None),
    };
    // A fragment never belongs in a request target; treat it as data of the query or path by
    // refusing it outright.
    if target.contains('#') {
        return Err(PathError::BadCharacter);
    }
    if path == "*" {
        return Ok(("*".to_string(), query));
    }
    Ok((normalize(path)?, query))
}

/// Normalise an origin-form path (no query).
pub fn normalize(path: &str) -> Result<String, PathError> {
    if !path.starts_with('/') {
        return Err(PathError::NotOriginForm);
    }
    let decoded = decode_unreserved(path)?;
    remove_dot_segments(&decoded)
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn hex_digit(v: u8) -> char {
    char::from_digit(u32::from(v), 16).map_or('0', |c| c.to_ascii_uppercase())
}

fn decode_unreserved(path: &str) -> Result<String, PathError> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex_val);
            let lo = bytes.get(i + 2).copied().and_then(hex_val);
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(PathError::BadEscape);
            };
            let v = hi * 16 + lo;
            if v == b'\\' {
                return Err(PathError::Backslash);
            }
            if is_unreserved(v) {
                out.push(char::from(v));
            } else {
                out.push('%');
                out.push(hex_digit(hi));
                out.push(hex_digit(lo));
            }
            i += 3;
        } else if b == b'\\' {
            return Err(PathError::Backslash);
        } else if b <= b' ' || b >= 0x7f {
            return Err(PathError::BadCharacter);
        } else {
            out.push(char::from(b));
            i += 1;
        }
    }
    Ok(out)
}

/// RFC 3986 §5.2.4 on a path that starts with '/', with empty segments merged.
fn remove_dot_segments(path: &str) -> Result<String, PathError> {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut trailing_slash = false;
    for (i, seg) in segments.iter().enumerate() {
        // Path parameters (`/admin;jsessionid=1`) are dropped: Tomcat, Jetty and Spring route by
        // the segment before the `;`, so a rule for `/admin` must see `/admin`. Before a `;`,
        // an empty or dot-segment is read one way by them and another by everyone else.
        let (seg, params) = seg
            .split_once(';')
            .map_or((*seg, false), |(s, _)| (s, true));
        if params && matches!(seg, "" | "." | "..") {
            return Err(PathError::AmbiguousParameters);
        }
        match seg {
            "." | "" => trailing_slash = i == last,
            ".." => {
                out.pop();
                trailing_slash = i == last;
            }
            s => {
                out.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut s = String::with_capacity(path.len());
    for seg in &out {
        s.push('/');
        s.push_str(seg);
    }
    if trailing_slash || s.is_empty() {
        s.push('/');
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3986_5_2_4_dot_segments_and_merged_slashes() {
        let cases = [
            ("/", "/"),
            ("/orders", "/orders"),
            ("/orders/", "/orders/"),
            ("/./orders", "/orders"),
            ("//orders", "/orders"),
            ("/a//b///c", "/a/b/c"),
            ("/a/b/../c", "/a/c"),
            ("/a/b/..", "/a/"),
            ("/a/./b/.", "/a/b/"),
            ("/../../orders", "/orders"),
            ("/a/..//b", "/b"),
            ("/a/...", "/a/..."),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn path_parameters_are_dropped_as_servlet_containers_do() {
        let cases = [
            ("/admin;jsessionid=1", "/admin"),
            ("/admin;x=1/users;y", "/admin/users"),
            ("/a%3Bb", "/a%3Bb"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input).unwrap(), want, "{input}");
        }
        // `/admin/;x/../secret` is `/secret` to Tomcat and `/admin/secret` to nginx or Go.
        for ambiguous in [
            "/public/..;/admin",
            "/;x/orders",
            "/admin/;x/../secret",
            "/a/.;x/b",
            "/%2e%2e;/admin",
        ] {
            assert_eq!(
                normalize(ambiguous),
                Err(PathError::AmbiguousParameters),
                "{ambiguous}"
            );
        }
    }

    #[test]
    fn rfc3986_6_2_2_unreserved_escapes_are_decoded_others_uppercased() {
        assert_eq!(normalize("/%6Frders").unwrap(), "/orders");
        assert_eq!(normalize("/%2e%2e/admin").unwrap(), "/admin");
        assert_eq!(normalize("/a%2fb").unwrap(), "/a%2Fb");
        assert_eq!(normalize("/caf%C3%A9").unwrap(), "/caf%C3%A9");
    }

    #[test]
    fn a_backslash_raw_or_encoded_is_refused_anywhere_in_the_path() {
        for p in [
            "/health\\..\\reports",
            "/health\\../reports",
            "/health/..\\reports",
            "/a\\b",
            "/a%5cb",
            "/a%5Cb",
            "/health%5C..%5Creports",
            "/health/.%2E%5Creports",
            "/\\",
            "\\reports",
        ] {
            let e = split_and_normalize(p).unwrap_err();
            assert!(
                matches!(e, PathError::Backslash | PathError::NotOriginForm),
                "{p}: {e:?}"
            );
        }
        // In the query it is data, not part of the path.
        assert!(split_and_normalize("/search?q=a\\b").is_ok());
        // A double-encoded one is a literal `%5C` after one decoding: data to everyone.
        assert_eq!(normalize("/a%255Cb").unwrap(), "/a%255Cb");
    }

    #[test]
    fn invalid_targets_are_refused() {
        assert_eq!(normalize("orders"), Err(PathError::NotOriginForm));
        assert_eq!(normalize("/a%2"), Err(PathError::BadEscape));
        assert_eq!(normalize("/a%zz"), Err(PathError::BadEscape));
        assert_eq!(normalize("/a b"), Err(PathError::BadCharacter));
        assert_eq!(normalize("/caf\u{e9}"), Err(PathError::BadCharacter));
        assert_eq!(split_and_normalize("/a#frag"), Err(PathError::BadCharacter));
    }

    #[test]
    fn query_is_split_off_untouched() {
        let (p, q) = split_and_normalize("/a/./b?x=%2e&y=/../").unwrap();
        assert_eq!(p, "/a/b");
        assert_eq!(q.as_deref(), Some("x=%2e&y=/../"));
        assert_eq!(split_and_normalize("*").unwrap(), ("*".to_string(), None));
    }
}
