//! content-type: strict Content-Type validation for requests that carry a body.
//!
//! Per route: which media types are allowed (with `type/*` and `*+json` ranges), which charsets,
//! how large the body may be, and whether the body must agree with its declared type.

mod body;
mod media_type;

pub use body::{check as check_body, BodyError};
pub use media_type::{MediaRange, MediaType, MediaTypeError};

use serde::Deserialize;

use crate::config::{MatchSpec, RouteTable, Routed};
use crate::control::{ConfigError, Control, Env};
use crate::reject::Rejection;
use crate::request::RequestView;
use crate::verdict::Verdict;

/// Largest body a rule may allow us to buffer. Envoy's own buffer limit
/// (`per_connection_buffer_limit_bytes`, 1 MiB by default) must be raised to match.
pub const MAX_BODY_LIMIT: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Methods whose requests are checked; others pass untouched.
    #[serde(default = "default_methods")]
    pub methods: Vec<String>,
    /// Tried in order; the first whose `match` fits the request applies.
    #[serde(default)]
    pub routes: Vec<RuleSpec>,
    /// Applies when no route matches.
    #[serde(default)]
    pub default: RuleSpec,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    #[serde(rename = "match", default)]
    pub matcher: Option<MatchSpec>,
    /// Allowed media ranges: `application/json`, `application/*+json`, `text/*`, `*/*`.
    #[serde(default = "default_allow")]
    pub allow: Vec<String>,
    /// Allowed `charset` values when the Content-Type names one; empty allows any.
    #[serde(default = "default_charsets")]
    pub charsets: Vec<String>,
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// JSON bodies: deepest nesting of arrays and objects.
    #[serde(default = "default_json_max_depth")]
    pub json_max_depth: usize,
    /// Parse JSON, form and multipart bodies and refuse those that do not agree.
    #[serde(default = "yes")]
    pub check_body: bool,
    /// Let a request declare a checked type (JSON, form, multipart) with an empty or absent
    /// body, for endpoints that take none. Off: such a request is 400
    /// `content_type.body_mismatch`, however it is framed.
    #[serde(default)]
    pub allow_empty_body: bool,
}

fn default_methods() -> Vec<String> {
    ["POST", "PUT", "PATCH"].map(String::from).to_vec()
}
fn default_allow() -> Vec<String> {
    vec!["application/json".into(), "application/*+json".into()]
}
fn default_charsets() -> Vec<String> {
    vec!["utf-8".into()]
}
fn default_max_body_bytes() -> usize {
    1024 * 1024
}
fn default_json_max_depth() -> usize {
    64
}
fn yes() -> bool {
    true
}

impl Default for RuleSpec {
    fn default() -> Self {
        RuleSpec {
            matcher: None,
            allow: default_allow(),
            charsets: default_charsets(),
            max_body_bytes: default_max_body_bytes(),
            json_max_depth: default_json_max_depth(),
            check_body: true,
            allow_empty_body: false,
        }
    }
}

impl Routed for RuleSpec {
    fn matcher(&self) -> Option<&MatchSpec> {
        self.matcher.as_ref()
    }
}

#[derive(Debug)]
struct Rule {
    allow: Vec<MediaRange>,
    /// The `Accept-Post` / `Accept-Patch` value: the allowed ranges.
    accept: String,
    charsets: Vec<String>,
    max_body_bytes: usize,
    json_max_depth: usize,
    check_body: bool,
    allow_empty_body: bool,
}

#[derive(Debug)]
pub struct ContentType {
    methods: Vec<String>,
    routes: RouteTable<Rule>,
}

fn compile_rule(spec: &RuleSpec) -> Result<Rule, ConfigError> {
    if spec.allow.is_empty() {
        return Err(ConfigError::new(
            "allow",
            "must list at least one media type",
        ));
    }
    let allow = spec
        .allow
        .iter()
        .enumerate()
        .map(|(i, r)| MediaRange::parse(r).map_err(|e| ConfigError::new(format!("allow[{i}]"), e)))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, c) in spec.charsets.iter().enumerate() {
        if c.is_empty() || !c.bytes().all(media_type::is_tchar) {
            return Err(ConfigError::new(
                format!("charsets[{i}]"),
                format!("`{c}` is not a charset name"),
            ));
        }
    }
    if spec.max_body_bytes == 0 || spec.max_body_bytes > MAX_BODY_LIMIT {
        return Err(ConfigError::new(
            "max_body_bytes",
            format!("must be between 1 and {MAX_BODY_LIMIT}"),
        ));
    }
    if spec.json_max_depth == 0 || spec.json_max_depth > 512 {
        return Err(ConfigError::new(
            "json_max_depth",
            "must be between 1 and 512",
        ));
    }
    let accept = allow
        .iter()
        .map(MediaRange::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Rule {
        allow,
        accept,
        charsets: spec
            .charsets
            .iter()
            .map(|c| c.to_ascii_lowercase())
            .collect(),
        max_body_bytes: spec.max_body_bytes,
        json_max_depth: spec.json_max_depth,
        check_body: spec.check_body,
        allow_empty_body: spec.allow_empty_body,
    })
}

impl Control for ContentType {
    type Policy = Policy;
    const NAME: &'static str = "content_type";

    fn build(policy: Policy) -> Result<Self, ConfigError> {
        for (i, m) in policy.methods.iter().enumerate() {
            if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(ConfigError::new(
                    format!("methods[{i}]"),
                    format!("`{m}` is not an upper-case method"),
                ));
            }
        }
        let routes = RouteTable::compile(&policy.routes, &policy.default, compile_rule)?;
        Ok(ContentType {
            methods: policy.methods,
            routes,
        })
    }

    fn on_request(&self, req: &RequestView, _env: &Env) -> Verdict {
        if !self.methods.contains(&req.method) {
            return Verdict::Continue;
        }
        let (rule, _) = self.routes.select(req);
        let media = match declared_type(req, rule) {
            Ok(Some(m)) => m,
            Ok(None) => return Verdict::Continue,
            Err(r) => return Verdict::Deny(r),
        };
        if let Some(len) = content_length(req) {
            if len > rule.max_body_bytes {
                return Verdict::Deny(too_large(rule.max_body_bytes));
            }
        }
        // A checked type is always judged by its body, also when the headers ended the stream
        // (no body, `Content-Length: 0`): the host then hands over the empty body, so the
        // verdict does not depend on how the request was framed.
        if rule.check_body && is_checked(&media) {
            return Verdict::NeedBody {
                max_bytes: rule.max_body_bytes,
            };
        }
        // Otherwise buffer only to count a body whose size is not announced up front.
        if req.has_body && content_length(req).is_none() {
            return Verdict::NeedBody {
                max_bytes: rule.max_body_bytes,
            };
        }
        Verdict::Continue
    }

    fn on_request_body(&self, req: &RequestView, body: &[u8], _env: &Env) -> Verdict {
        let (rule, _) = self.routes.select(req);
        if body.len() > rule.max_body_bytes {
            return Verdict::Deny(too_large(rule.max_body_bytes));
        }
        let media = match declared_type(req, rule) {
            Ok(Some(m)) => m,
            Ok(None) => return Verdict::Continue,
            Err(r) => return Verdict::Deny(r),
        };
        if !rule.check_body || !is_checked(&media) {
            return Verdict::Continue;
        }
        if body.is_empty() {
            if rule.allow_empty_body {
                return Verdict::Continue;
            }
            let detail = format!("the body is empty, but {} was declared", media.essence());
            return Verdict::Deny(Rejection::new(400, "content_type.body_mismatch", detail));
        }
        match body::check(&media, body, rule.json_max_depth) {
            Ok(()) => Verdict::Continue,
            Err(e) => Verdict::Deny(Rejection::new(
                400,
                "content_type.body_mismatch",
                e.to_string(),
            )),
        }
    }
}

/// A comma outside a quoted string.
fn has_list_comma(value: &[u8]) -> bool {
    let (mut quoted, mut escaped) = (false, false);
    for &b in value {
        match (quoted, escaped, b) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (_, false, b'"') => quoted = !quoted,
            (false, _, b',') => return true,
            _ => {}
        }
    }
    false
}

fn is_form(m: &MediaType) -> bool {
    m.essence() == "application/x-www-form-urlencoded"
}

/// The media types whose bodies [`body::check`] validates.
fn is_checked(m: &MediaType) -> bool {
    m.is_json() || is_form(m) || m.type_ == "multipart"
}

/// The one allowed media type of the request; `None` when it has neither body nor type.
fn declared_type(req: &RequestView, rule: &Rule) -> Result<Option<MediaType>, Rejection> {
    let mut values = req.header_values("content-type");
    let first = values.next();
    // Envoy's HTTP/1 codec joins repeated fields with commas, and Content-Type's grammar has no
    // comma outside a quoted string: either way, more than one value.
    if values.next().is_some() || first.is_some_and(has_list_comma) {
        return Err(unsupported(
            req,
            rule,
            "content_type.duplicate",
            "the request has more than one Content-Type".into(),
        ));
    }
    let Some(raw) = first else {
        if req.has_body {
            return Err(unsupported(
                req,
                rule,
                "content_type.missing",
                "a request with a body needs a Content-Type".into(),
            ));
        }
        return Ok(None);
    };
    let parsed = std::str::from_utf8(raw)
        .map_err(|_| MediaTypeError::NotTypeSlashSubtype)
        .and_then(MediaType::parse);
    let media =
        parsed.map_err(|e| unsupported(req, rule, "content_type.malformed", e.to_string()))?;
    if !rule.allow.iter().any(|r| r.matches(&media)) {
        let detail = format!("{} is not accepted here", media.essence());
        return Err(unsupported(req, rule, "content_type.unsupported", detail));
    }
    if let Some(cs) = media.param("charset") {
        if !rule.charsets.is_empty() && !rule.charsets.iter().any(|c| c == cs) {
            let detail = format!(
                "charset {} is not accepted; use {}",
                sanitize(cs),
                rule.charsets.join(", ")
            );
            return Err(unsupported(req, rule, "content_type.charset", detail));
        }
    }
    Ok(Some(media))
}

/// 415, advertising what is accepted (RFC 9110 §15.5.16; `Accept-Post` from W3C LDP,
/// `Accept-Patch` from RFC 5789 §3.1).
fn unsupported(req: &RequestView, rule: &Rule, code: &'static str, detail: String) -> Rejection {
    let r = Rejection::new(415, code, detail);
    match req.method.as_str() {
        "POST" => r.with_header("accept-post", rule.accept.clone()),
        "PATCH" => r.with_header("accept-patch", rule.accept.clone()),
        _ => r,
    }
}

fn too_large(max: usize) -> Rejection {
    Rejection::new(
        413,
        "body.too_large",
        format!("the body is larger than {max} bytes"),
    )
}

/// The declared length, if there is exactly one valid Content-Length.
fn content_length(req: &RequestView) -> Option<usize> {
    req.header("content-length")
        .and_then(|v| v.trim().parse().ok())
}

/// Echo only token characters of client input.
fn sanitize(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .take(40)
        .collect()
}

#[cfg(test)]
mod tests;
