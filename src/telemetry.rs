//! Names of the counters and the shape of the denial log line, shared by every module.

use std::sync::Arc;

use serde::Serialize;

use crate::config::ROUTE_NOTE;
use crate::reject::Rejection;
use crate::request::RequestView;

/// What happened to a request, as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Allowed,
    Denied,
    /// A denial the policy only reports (`mode: report`): the request went through.
    Reported,
    /// A body the module replaced (a scrubbed error page, a decrypted payload).
    Replaced,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::Reported => "reported",
            Outcome::Replaced => "replaced",
        }
    }
}

/// The one request counter, labelled `module`, `result`, `code`.
pub const COUNTER: &str = "portcullis_requests_total";

/// Counter name: `portcullis_requests_total.module.<m>.result.<r>.code.<c>`. The shipped Envoy
/// configs turn the three parts into Prometheus labels with `stats_tags` (see `envoy/envoy.yaml`);
/// the code keeps its dots (`content_type.unsupported`).
pub fn counter_name(module: &str, outcome: Outcome, code: &str) -> String {
    format!(
        "{COUNTER}.module.{module}.result.{}.code.{code}",
        outcome.as_str()
    )
}

/// The per-operation violation counter, labelled `module`, `result`, `code`, `operation`:
/// every rejection that names an operation ([`Rejection::operation`]), denied or reported.
pub const OPERATION_COUNTER: &str = "portcullis_operation_violations_total";

/// The `operation` label of requests that match no operation the policy declares.
pub const UNDECLARED: &str = "undeclared";

/// Longest `operation` label, in bytes: a label is written into every scrape.
pub const MAX_OPERATION_LABEL: usize = 128;

/// Counter name: `portcullis_operation_violations_total.module.<m>.result.<r>.code.<c>.operation.<o>`.
/// `operation` comes last because it is the one part a policy writes freely: the `stats_tags`
/// regexes take the code up to the first `.operation.` (no reason code contains it) and the
/// operation to the end, dots and all.
pub fn operation_counter_name(
    module: &str,
    outcome: Outcome,
    code: &str,
    operation: &str,
) -> String {
    format!(
        "{OPERATION_COUNTER}.module.{module}.result.{}.code.{code}.operation.{operation}",
        outcome.as_str()
    )
}

/// An `operation` label from a policy's text, the same in both runtimes and in every Prometheus
/// exposition: printable ASCII stays; `"`, `\`, control characters and non-ASCII become `_`, and
/// so does a `.` that would leave an empty part of a dotted stat name (at the start, at the end,
/// after another `.`); at most [`MAX_OPERATION_LABEL`] characters (bytes: all are ASCII).
pub fn operation_label(raw: &str) -> Arc<str> {
    let mut out = String::with_capacity(raw.len().min(MAX_OPERATION_LABEL));
    for c in raw.chars().take(MAX_OPERATION_LABEL) {
        let c = match c {
            '"' | '\\' => '_',
            '.' if out.is_empty() || out.ends_with('.') => '_',
            ' '..='~' => c,
            _ => '_',
        };
        out.push(c);
    }
    if out.ends_with('.') {
        out.pop();
        out.push('_');
    }
    if out.is_empty() {
        out.push('_');
    }
    Arc::from(out)
}

/// One structured log line per denial. No token, key, secret, signature, body or query value.
#[derive(Serialize)]
pub struct DenialLog<'a> {
    pub event: &'static str,
    pub module: &'a str,
    pub code: &'a str,
    pub status: u16,
    pub method: &'a str,
    pub path: &'a str,
    /// The policy rule that applied: `routes[2]` or `default`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The rejection's detail, as in the problem body: it tells apart two causes with one
    /// code, and by the rule of [`Rejection`] it holds no secret.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<&'a str>,
}

pub fn denial_log_line(
    module: &str,
    outcome: Outcome,
    r: &Rejection,
    req: Option<&RequestView>,
    client: Option<&str>,
) -> String {
    let line = DenialLog {
        event: if outcome == Outcome::Reported {
            "report"
        } else {
            "deny"
        },
        module,
        code: r.code,
        status: r.status,
        method: req.map_or("", |q| q.method.as_str()),
        path: req.map_or("", |q| q.path.as_str()),
        route: req.and_then(|q| q.noted(ROUTE_NOTE)).map(|i| match i {
            u64::MAX => "default".to_string(),
            i => format!("routes[{i}]"),
        }),
        detail: &r.detail,
        request_id: req.and_then(RequestView::request_id),
        client,
    };
    serde_json::to_string(&line).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denial_log_has_no_query_values() {
        let req =
            RequestView::new("POST", "/a/./b?token=secret", &[("x-request-id", "r1")]).unwrap();
        let r = Rejection::new(415, "content_type.unsupported", "no");
        let line = denial_log_line(
            "content_type",
            Outcome::Denied,
            &r,
            Some(&req),
            Some("127.0.0.1:5"),
        );
        assert!(!line.contains("secret"), "{line}");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["path"], "/a/b");
        assert_eq!(v["code"], "content_type.unsupported");
        assert_eq!(v["request_id"], "r1");
        assert_eq!(v["event"], "deny");
    }

    #[test]
    fn denial_log_carries_the_detail_that_tells_two_causes_with_one_code_apart() {
        let req = RequestView::new("POST", "/orders", &[]).unwrap();
        let line = |detail: &str| {
            let r = Rejection::new(400, "content_type.body_mismatch", detail);
            let l = denial_log_line("content_type", Outcome::Denied, &r, Some(&req), None);
            serde_json::from_str::<serde_json::Value>(&l).unwrap()
        };
        let (empty, invalid) = (
            line("the body is empty, but application/json was declared"),
            line("the body is not valid JSON"),
        );
        assert_eq!(empty["code"], invalid["code"]);
        assert_eq!(
            empty["detail"],
            "the body is empty, but application/json was declared"
        );
        assert_eq!(invalid["detail"], "the body is not valid JSON");
        // A quote or a newline in a detail cannot break the line (JSON-escaped).
        let odd = line("a \"quoted\"\nsecond line");
        assert_eq!(odd["detail"], "a \"quoted\"\nsecond line");
        // No detail, no field.
        assert!(line("").get("detail").is_none());
    }

    #[test]
    fn operation_counter_names_end_with_the_operation() {
        assert_eq!(
            operation_counter_name(
                "api_schema",
                Outcome::Reported,
                "api_schema.invalid_body",
                "orders.create"
            ),
            "portcullis_operation_violations_total.module.api_schema.result.reported\
             .code.api_schema.invalid_body.operation.orders.create"
        );
    }

    #[test]
    fn operation_labels_are_printable_bounded_and_keep_inner_dots() {
        assert_eq!(&*operation_label("createOrder"), "createOrder");
        assert_eq!(&*operation_label("POST /orders/{id}"), "POST /orders/{id}");
        assert_eq!(&*operation_label("orders.v2.create"), "orders.v2.create");
        // No empty part in a dotted stat name.
        assert_eq!(&*operation_label(".a..b."), "_a._b_");
        assert_eq!(&*operation_label("."), "_");
        // Nothing that needs escaping in a Prometheus label, nothing outside printable ASCII.
        assert_eq!(&*operation_label("a\"b\\c\nd\u{e9}"), "a_b_c_d_");
        assert_eq!(&*operation_label(""), "_");
        let long = "x".repeat(1000);
        assert_eq!(operation_label(&long).len(), MAX_OPERATION_LABEL);
        let wide = "\u{e9}".repeat(1000);
        assert_eq!(operation_label(&wide).len(), MAX_OPERATION_LABEL);
    }

    #[test]
    fn counter_names_carry_module_result_and_code() {
        assert_eq!(
            counter_name("content_type", Outcome::Denied, "content_type.missing"),
            "portcullis_requests_total.module.content_type.result.denied.code.content_type.missing"
        );
    }
}
