//! Origins (RFC 6454) as browsers send them in `Origin` and `Referer`, the request's own host,
//! and the `allowed_origins` patterns of a policy.

use std::fmt;

/// A serialised origin: scheme, host, port. The port is `None` when it is the scheme's default
/// (`https://a.example` and `https://a.example:443` are the same origin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginError {
    /// `Origin: null` (sandboxed frames, `file:` pages, some redirects).
    Null,
    Malformed,
}

impl fmt::Display for OriginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OriginError::Null => "the origin is `null`",
            OriginError::Malformed => "not scheme://host[:port]",
        })
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

fn valid_scheme(s: &str) -> bool {
    let mut b = s.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic())
        && b.all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(&c))
}

/// `host[:port]`, lower-cased; an IPv6 literal keeps its brackets. `*` allowed only when
/// `wildcard` (policy patterns).
fn parse_host_port(s: &str, wildcard: bool) -> Result<(String, Option<u16>), OriginError> {
    let (host, port) = if s.starts_with('[') {
        let end = s.find(']').ok_or(OriginError::Malformed)?;
        let (h, rest) = s.split_at(end + 1);
        match rest {
            "" => (h, None),
            r => (h, Some(r.strip_prefix(':').ok_or(OriginError::Malformed)?)),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let host_ok = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        !inner.is_empty()
            && inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        !host.is_empty()
            && host.bytes().all(|b| {
                b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (wildcard && b == b'*')
            })
    };
    if !host_ok {
        return Err(OriginError::Malformed);
    }
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().map_err(|_| OriginError::Malformed)?)
        }
        Some(_) => return Err(OriginError::Malformed),
    };
    Ok((host.to_ascii_lowercase(), port))
}

fn build(scheme: &str, authority: &str, wildcard: bool) -> Result<Origin, OriginError> {
    if !valid_scheme(scheme) {
        return Err(OriginError::Malformed);
    }
    // Userinfo (`https://example.com@evil.com`) never appears in an origin.
    if authority.contains('@') {
        return Err(OriginError::Malformed);
    }
    let scheme = scheme.to_ascii_lowercase();
    let (host, port) = parse_host_port(authority, wildcard)?;
    let port = port.filter(|p| Some(*p) != default_port(&scheme));
    Ok(Origin { scheme, host, port })
}

/// The value of an `Origin` header (RFC 6454 §7): `null`, or exactly `scheme://host[:port]`.
pub fn parse_origin(value: &str) -> Result<Origin, OriginError> {
    let v = value.trim_matches([' ', '\t']);
    if v == "null" {
        return Err(OriginError::Null);
    }
    let (scheme, authority) = v.split_once("://").ok_or(OriginError::Malformed)?;
    if authority.contains(['/', '?', '#', ' ', ',']) {
        return Err(OriginError::Malformed);
    }
    build(scheme, authority, false)
}

/// The origin of a `Referer` (RFC 9110 §10.1.3): an absolute URI; its scheme and authority.
/// A relative or schemeless reference has no origin we could trust.
pub fn parse_referer(value: &str) -> Result<Origin, OriginError> {
    let v = value.trim_matches([' ', '\t']);
    let (scheme, rest) = v.split_once("://").ok_or(OriginError::Malformed)?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = rest.get(..end).ok_or(OriginError::Malformed)?;
    build(scheme, authority, false)
}

impl Origin {
    /// Same host and port as the request's own `Host` / `:authority`. The scheme is not
    /// compared: TLS often ends before Envoy (Envoy's csrf filter compares host and port too);
    /// the port is, taking the Origin's scheme default for a Host without one.
    pub fn is_host(&self, authority: &str) -> bool {
        let Ok((host, port)) = parse_host_port(authority, false) else {
            return false;
        };
        let port = port.filter(|p| Some(*p) != default_port(&self.scheme));
        host == self.host && port == self.port
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

/// An `allowed_origins` entry: an exact origin, or `scheme://*.domain[:port]` for any
/// subdomain of `domain` (at any depth; never `domain` itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    Exact(Origin),
    Subdomains {
        scheme: String,
        /// `.example.com`
        suffix: String,
        port: Option<u16>,
    },
}

impl OriginPattern {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("`{s}` is not an origin (`https://app.example.com`) or a subdomain pattern (`https://*.example.com`)")
        };
        let (scheme, authority) = s.split_once("://").ok_or_else(bad)?;
        if authority.contains(['/', '?', '#', ' ', ',']) {
            return Err(bad());
        }
        let o = build(scheme, authority, true).map_err(|_| bad())?;
        match o.host.strip_prefix('*') {
            None if !o.host.contains('*') => Ok(OriginPattern::Exact(o)),
            Some(suffix)
                if suffix.starts_with('.') && suffix.len() > 1 && !suffix.contains('*') =>
            {
                // `https://*.com` would allow every .com site.
                if !suffix.get(1..).is_some_and(|d| d.contains('.')) {
                    return Err(format!("`{s}` matches a whole top-level domain"));
                }
                Ok(OriginPattern::Subdomains {
                    scheme: o.scheme,
                    suffix: suffix.to_string(),
                    port: o.port,
                })
            }
            _ => Err(format!(
                "`{s}`: `*` is allowed only as the whole first label (`https://*.example.com`)"
            )),
        }
    }

    pub fn matches(&self, o: &Origin) -> bool {
        match self {
            OriginPattern::Exact(p) => p == o,
            OriginPattern::Subdomains {
                scheme,
                suffix,
                port,
            } => {
                *scheme == o.scheme
                    && *port == o.port
                    && o.host.len() > suffix.len()
                    && o.host.ends_with(suffix.as_str())
            }
        }
    }
}
