//! Denials and their RFC 9457 `application/problem+json` bodies.

use std::sync::Arc;

use serde::Serialize;

/// A denial: status, a stable machine-readable reason code, and a short human detail.
///
/// `code` is what dashboards and clients key on (`content_type.unsupported`); it goes into the
/// problem body, the log line and the metric. `detail` never holds secrets, tokens, keys or
/// internal addresses: controls write it from fixed text and policy values only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub code: &'static str,
    pub detail: String,
    /// Extra response headers (`WWW-Authenticate`, `Accept-Post`, …).
    pub headers: Vec<(String, String)>,
    /// The operation it is about, for `portcullis_operation_violations_total` (api-schema's
    /// `operationId`, `METHOD /template` or `undeclared`). A bounded label the control takes
    /// from its policy, never from the request; `None` for controls without operations.
    pub operation: Option<Arc<str>>,
}

pub const PROBLEM_JSON: &str = "application/problem+json";

/// The problem body (RFC 9457 §3). `type` is omitted: it defaults to `about:blank`, and then
/// `title` must be the status phrase (§4.2.1).
#[derive(Serialize)]
struct Problem<'a> {
    status: u16,
    title: &'a str,
    code: &'a str,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

impl Rejection {
    pub fn new(status: u16, code: &'static str, detail: impl Into<String>) -> Self {
        Rejection {
            status,
            code,
            detail: detail.into(),
            headers: Vec::new(),
            operation: None,
        }
    }

    /// Counted per operation too (see [`Rejection::operation`]).
    pub fn for_operation(mut self, operation: &Arc<str>) -> Self {
        self.operation = Some(operation.clone());
        self
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// The JSON problem body. The request id is echoed only when it is a short token, so a
    /// client cannot make us reflect arbitrary text.
    pub fn problem_body(&self, request_id: Option<&str>) -> String {
        let request_id = request_id.filter(|id| {
            id.len() <= 128
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        });
        let problem = Problem {
            status: self.status,
            title: status_title(self.status),
            code: self.code,
            detail: &self.detail,
            request_id,
        };
        serde_json::to_string(&problem).unwrap_or_else(|_| {
            // Serialising a struct of strings cannot fail; stay closed and well-formed anyway.
            format!(r#"{{"status":{},"code":"internal"}}"#, self.status)
        })
    }

    /// Headers of the local reply, content type first.
    pub fn response_headers(&self) -> Vec<(&str, &str)> {
        let mut h = vec![
            ("content-type", PROBLEM_JSON),
            ("cache-control", "no-store"),
        ];
        h.extend(self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        h
    }
}

/// Reason phrases (RFC 9110 §15) for the statuses portcullis sends.
pub fn status_title(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9457_problem_body_has_status_title_code_detail() {
        let r = Rejection::new(
            415,
            "content_type.unsupported",
            "text/plain is not accepted",
        );
        let v: serde_json::Value = serde_json::from_str(&r.problem_body(Some("abc-123"))).unwrap();
        assert_eq!(v["status"], 415);
        assert_eq!(v["title"], "Unsupported Media Type");
        assert_eq!(v["code"], "content_type.unsupported");
        assert_eq!(v["detail"], "text/plain is not accepted");
        assert_eq!(v["request_id"], "abc-123");
        assert_eq!(v.as_object().unwrap().len(), 5);
    }

    #[test]
    fn request_id_is_not_reflected_when_it_is_not_a_token() {
        let r = Rejection::new(400, "x", "y");
        let body = r.problem_body(Some("<script>alert(1)</script>"));
        assert!(!body.contains("script"), "{body}");
        assert!(!body.contains("request_id"), "{body}");
    }

    #[test]
    fn detail_is_json_escaped() {
        let r = Rejection::new(400, "x", "quote \" and \n newline");
        let v: serde_json::Value = serde_json::from_str(&r.problem_body(None)).unwrap();
        assert_eq!(v["detail"], "quote \" and \n newline");
    }
}
