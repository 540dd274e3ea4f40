//! What a control sees of a request or response: an owned, read-only snapshot.

use std::cell::RefCell;

use crate::path::{self, PathError};
use crate::reject::Rejection;
use crate::verdict::HeaderOp;

/// Header fields as Envoy hands them over: lower-case names, raw value bytes, in order,
/// including HTTP/2-style pseudo-headers (`:method`, `:path`, …).
pub type Headers = Vec<(String, Vec<u8>)>;

/// What the runtime knows of the downstream connection, as opposed to what the request's
/// headers claim: the truth `x-forwarded-for` / `x-forwarded-proto` are rewritten from
/// (header-guard's `forwarding`) and the scheme csrf compares origins with. Filled in by the
/// host (proxy-wasm: Envoy's `source.address` and `connection.tls_version` attributes); the
/// default (no address, not TLS) is what tests and the CLI see.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Connection {
    /// The client address the runtime settled on, if it reports one. In Envoy this is
    /// `source.address`: the TCP peer with `use_remote_address: true` and no trusted hops,
    /// otherwise the address Envoy picked from `x-forwarded-for`.
    pub peer: Option<std::net::IpAddr>,
    /// The downstream connection is TLS (HTTPS).
    pub tls: bool,
}

impl Connection {
    /// `http` or `https`: the scheme the client used to reach this proxy.
    pub fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct RequestView {
    /// The method upper-cased: what route rules match on.
    pub method: String,
    /// `:method` exactly as received: what a signature covers (RFC 9421 §2.2.1: no case
    /// change).
    pub raw_method: String,
    /// `:path` exactly as received (path and query).
    pub raw_path: String,
    /// Normalised path without the query: what route rules match on.
    pub path: String,
    pub query: Option<String>,
    pub authority: String,
    pub scheme: String,
    pub headers: Headers,
    /// A body follows the headers. The host knows this for certain (the headers did not end the
    /// stream); natively it is derived from Content-Length / Transfer-Encoding.
    pub has_body: bool,
    /// The downstream connection (peer address, TLS), from the runtime, never from headers.
    pub connection: Connection,
    /// Notes a control leaves for its own later phases of the same request (the host keeps one
    /// view per request): which members of a chain asked for the body, say.
    pub notes: RefCell<Vec<(&'static str, u64)>>,
    /// Header edits and reports a chain holds back until a body verdict of this request.
    pub held: RefCell<Option<(Vec<HeaderOp>, Vec<Rejection>)>>,
}

impl RequestView {
    /// Build the view from Envoy's header map. Fails only on a request target that cannot be
    /// normalised (the host answers 400 `request.bad_path`).
    pub fn from_headers(headers: Headers) -> Result<Self, PathError> {
        let pseudo = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        // Methods are case-sensitive on the wire (RFC 9110 §9.1), but Django, Werkzeug, Rack and
        // others upper-case them: `post` sent over HTTP/2 must meet the rules written for POST,
        // or it would slip past them to the default rule.
        let raw_method = pseudo(":method");
        let method = raw_method.to_ascii_uppercase();
        let raw_path = pseudo(":path");
        let authority = pseudo(":authority");
        let scheme = pseudo(":scheme");
        let (path, query) = path::split_and_normalize(&raw_path)?;
        let mut view = RequestView {
            method,
            raw_method,
            raw_path,
            path,
            query,
            authority,
            scheme,
            headers,
            has_body: false,
            connection: Connection::default(),
            notes: RefCell::new(Vec::new()),
            held: RefCell::new(None),
        };
        view.has_body = view.announces_body();
        Ok(view)
    }

    /// Convenience for tests and the CLI: `RequestView::new("POST", "/orders", &[("a", "b")])`.
    pub fn new(method: &str, target: &str, headers: &[(&str, &str)]) -> Result<Self, PathError> {
        let mut all: Headers = vec![
            (":method".into(), method.as_bytes().to_vec()),
            (":path".into(), target.as_bytes().to_vec()),
            (":authority".into(), b"localhost".to_vec()),
            (":scheme".into(), b"http".to_vec()),
        ];
        all.extend(
            headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec())),
        );
        Self::from_headers(all)
    }

    /// Every value of a header (name in lower case), in order.
    pub fn header_values<'a, 'n>(
        &'a self,
        name: &'n str,
    ) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
        header_values(&self.headers, name)
    }

    /// The first value of a header, if it is valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name)
            .next()
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Ordinary header fields (no pseudo-headers).
    pub fn fields(&self) -> impl Iterator<Item = &(String, Vec<u8>)> {
        self.headers.iter().filter(|(k, _)| !k.starts_with(':'))
    }

    /// True when the request announces a body (RFC 9112 §6.3: Content-Length > 0 or any
    /// Transfer-Encoding). HTTP/2 without either may still carry one; the host also sees
    /// whether the headers ended the stream.
    pub fn announces_body(&self) -> bool {
        self.header_values("transfer-encoding").next().is_some()
            || self.header_values("content-length").any(|v| v != b"0")
    }

    pub fn request_id(&self) -> Option<&str> {
        self.header("x-request-id")
    }

    /// Leave a note for a later phase of this request.
    pub fn note(&self, key: &'static str, value: u64) {
        self.notes.borrow_mut().push((key, value));
    }

    /// The last note left under `key`.
    pub fn noted(&self, key: &str) -> Option<u64> {
        self.notes
            .borrow()
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }

    /// The request as the next control in a chain sees it, after these header edits.
    pub fn with_ops(&self, ops: &[HeaderOp]) -> Self {
        let mut v = self.clone();
        for op in ops {
            match op {
                HeaderOp::Set(k, val) => {
                    v.headers.retain(|(n, _)| n != k);
                    v.headers.push((k.clone(), val.as_bytes().to_vec()));
                }
                HeaderOp::Add(k, val) => v.headers.push((k.clone(), val.as_bytes().to_vec())),
                HeaderOp::Remove(k) => v.headers.retain(|(n, _)| n != k),
            }
        }
        let pseudo = |op: &HeaderOp| match op {
            HeaderOp::Set(k, _) | HeaderOp::Add(k, _) | HeaderOp::Remove(k) => k.starts_with(':'),
        };
        if !ops.iter().any(pseudo) {
            return v;
        }
        if let Ok(fresh) = RequestView::from_headers(v.headers.clone()) {
            // Pseudo-headers may have changed (`:path` without an API-key query parameter).
            let (has_body, notes, held) = (v.has_body, v.notes.clone(), v.held.clone());
            let connection = v.connection;
            v = fresh;
            v.has_body = has_body;
            v.connection = connection;
            v.notes = notes;
            v.held = held;
        }
        v
    }
}

/// What a control sees of a response.
#[derive(Debug, Clone, Default)]
pub struct ResponseView {
    pub status: u16,
    pub headers: Headers,
}

impl ResponseView {
    pub fn header(&self, name: &str) -> Option<&str> {
        header_values(&self.headers, name)
            .next()
            .and_then(|v| std::str::from_utf8(v).ok())
    }
}

fn header_values<'a, 'n>(
    headers: &'a Headers,
    name: &'n str,
) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
    headers
        .iter()
        .filter(move |(k, _)| k == name)
        .map(|(_, v)| v.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_normalises_the_path_and_keeps_the_raw_target() {
        let r = RequestView::new("POST", "//api/./orders?x=1", &[("Content-Type", "a/b")]).unwrap();
        assert_eq!(r.path, "/api/orders");
        assert_eq!(r.raw_path, "//api/./orders?x=1");
        assert_eq!(r.query.as_deref(), Some("x=1"));
        assert_eq!(r.header("content-type"), Some("a/b"));
        assert_eq!(r.fields().count(), 1);
    }

    #[test]
    fn a_lower_case_method_meets_the_rules_for_its_upper_case_form() {
        let r = RequestView::new("post", "/orders", &[]).unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(
            r.raw_method, "post",
            "signatures cover the method as received"
        );
    }

    #[test]
    fn body_announcement_rfc9112_6_3() {
        let no = RequestView::new("POST", "/", &[("content-length", "0")]).unwrap();
        assert!(!no.announces_body());
        let cl = RequestView::new("POST", "/", &[("content-length", "3")]).unwrap();
        assert!(cl.announces_body());
        let te = RequestView::new("POST", "/", &[("transfer-encoding", "chunked")]).unwrap();
        assert!(te.announces_body());
    }
}
