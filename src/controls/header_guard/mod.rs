//! header-guard: malicious header injection and request-smuggling defence.
//!
//! Envoy's HTTP codecs refuse some malformed input before any filter runs; this is the policy
//! layer above them, and it holds for requests that arrived another way (HTTP/2, HTTP/3, a
//! filter that added headers). Per route:
//! - field names are RFC 9110 tokens, values carry no CR, LF, NUL or other control character
//!   but HTAB, no obs-fold; encoded line breaks (`%0d%0a`, `\r\n`, U+2028) in named headers;
//! - limits on header count, name and value length and total size (431);
//! - headers that must appear at most once (400), request smuggling through `Content-Length`
//!   and `Transfer-Encoding` (400), a `Host` / `:authority` allow-list (421 or 400);
//! - spoofable forwarding and override headers stripped or rejected, internal headers (those
//!   other portcullis modules forward upstream) stripped, a deny-list of value patterns;
//! - on responses: fingerprinting headers removed, security headers set.
//!
//! `mode: report` only logs and counts what enforce would deny or strip.

mod checks;
mod forwarding;
mod patterns;

pub use checks::{
    authority_host, authorization_joined, check_value, content_length_ok, has_encoded_line_break,
    is_field_name, split_list, transfer_encoding_ok, AuthorityError, HostPattern, ValueError,
};
pub use forwarding::{ForwardingMode, ForwardingSpec};
pub use patterns::{Builtin, BUILTINS};

use std::collections::BTreeMap;

use regex_lite::{Regex, RegexBuilder};
use serde::Deserialize;

use crate::config::{HeaderNames, MatchSpec, RouteTable, Routed};
use crate::control::{ConfigError, Control, Env};
use crate::reject::Rejection;
use crate::request::{RequestView, ResponseView};
use crate::verdict::{HeaderOp, Verdict};

/// In a list of header names, this entry stands for the list's defaults:
/// `["@default", "x-acme-*"]` extends them, a list without it replaces them.
pub const DEFAULTS: &str = "@default";

/// Headers that must appear at most once.
pub const DEFAULT_UNIQUE: &[&str] = &["host", "content-length", "content-type", "authorization"];

/// Forwarding and override headers a client can spoof. `x-forwarded-for` and
/// `x-forwarded-proto` are not here: Envoy itself edits them before filters run (see README).
pub const DEFAULT_STRIP: &[&str] = &[
    "forwarded",
    "x-forwarded-host",
    "x-forwarded-server",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-scheme",
    "x-real-ip",
    "x-client-ip",
    "true-client-ip",
    "x-cluster-client-ip",
    "x-original-url",
    "x-rewrite-url",
    "x-original-host",
    "x-host",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Headers portcullis modules forward upstream (jwt-auth claims, api-key client id and scopes,
/// portcullis' own), and the conventional `x-internal-` prefix: a client must never send them.
pub const DEFAULT_INTERNAL: &[&str] = &["x-internal-*", "x-jwt-*", "x-apikey-*", "x-portcullis-*"];

/// Headers whose values end up in responses (`Location`, CORS) or log lines.
pub const DEFAULT_ENCODED_CRLF: &[&str] = &[
    ":authority",
    "referer",
    "origin",
    "user-agent",
    "x-request-id",
    "x-correlation-id",
    "x-forwarded-host",
    "x-original-url",
    "x-rewrite-url",
];

/// Response headers that fingerprint the stack.
pub const DEFAULT_REMOVE: &[&str] = &[
    "server",
    "x-powered-by",
    "x-aspnet-version",
    "x-aspnetmvc-version",
];

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Tried in order; the first whose `match` fits the request applies.
    #[serde(default)]
    pub routes: Vec<RuleSpec>,
    /// Applies when no route matches.
    #[serde(default)]
    pub default: RuleSpec,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Deny and strip.
    #[default]
    Enforce,
    /// Only log and count what `enforce` would deny or strip; the request passes unchanged.
    Report,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Ordinary header fields (pseudo-headers not counted).
    #[serde(default = "default_max_headers")]
    pub max_headers: usize,
    #[serde(default = "default_max_name_bytes")]
    pub max_name_bytes: usize,
    #[serde(default = "default_max_value_bytes")]
    pub max_value_bytes: usize,
    /// Sum of name and value lengths of the ordinary fields.
    #[serde(default = "default_max_total_bytes")]
    pub max_total_bytes: usize,
}

fn default_max_headers() -> usize {
    100
}
fn default_max_name_bytes() -> usize {
    256
}
fn default_max_value_bytes() -> usize {
    8192
}
fn default_max_total_bytes() -> usize {
    32 * 1024
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_headers: default_max_headers(),
            max_name_bytes: default_max_name_bytes(),
            max_value_bytes: default_max_value_bytes(),
            max_total_bytes: default_max_total_bytes(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PatternSpec {
    /// Names the pattern in the problem detail and the log (never the matched value).
    pub name: String,
    /// Header names (`x-api-*` prefixes, `:path`, `:authority`), or `*` for every header.
    #[serde(default = "all_headers")]
    pub headers: Vec<String>,
    /// A regular expression (regex-lite syntax), searched in the value.
    pub pattern: String,
}

fn all_headers() -> Vec<String> {
    vec!["*".into()]
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ResponseSpec {
    /// Response headers removed; a trailing `*` is a prefix; `@default` stands for the defaults.
    #[serde(default = "defaults_entry")]
    pub remove_headers: Vec<String>,
    /// Response headers set (replacing any value the upstream sent).
    #[serde(default = "default_set_headers")]
    pub set_headers: BTreeMap<String, String>,
}

fn default_set_headers() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("x-content-type-options".into(), "nosniff".into()),
        (
            "strict-transport-security".into(),
            "max-age=31536000; includeSubDomains".into(),
        ),
        ("x-frame-options".into(), "DENY".into()),
        ("referrer-policy".into(), "no-referrer".into()),
    ])
}

impl Default for ResponseSpec {
    fn default() -> Self {
        ResponseSpec {
            remove_headers: defaults_entry(),
            set_headers: default_set_headers(),
        }
    }
}

fn defaults_entry() -> Vec<String> {
    vec![DEFAULTS.into()]
}
fn yes() -> bool {
    true
}
fn default_host_status() -> u16 {
    421
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    #[serde(rename = "match", default)]
    pub matcher: Option<MatchSpec>,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub limits: Limits,
    /// Allow bytes above 0x7F (`obs-text`, RFC 9110 §5.5) in values.
    #[serde(default = "yes")]
    pub allow_obs_text: bool,
    /// Headers that must appear at most once (400 `header_guard.duplicate`).
    #[serde(default = "defaults_entry")]
    pub unique_headers: Vec<String>,
    /// Allowed hosts (`api.example.com`, `*.example.com`); empty allows any.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Status for a host not in `hosts`: 421 (Misdirected Request) or 400.
    #[serde(default = "default_host_status")]
    pub host_status: u16,
    /// Spoofable headers removed before the request goes upstream.
    #[serde(default = "defaults_entry")]
    pub strip_headers: Vec<String>,
    /// Spoofable headers refused (400 `header_guard.spoofed_header`); wins over `strip_headers`.
    #[serde(default)]
    pub reject_headers: Vec<String>,
    /// Internal headers removed from inbound requests.
    #[serde(default = "defaults_entry")]
    pub internal_headers: Vec<String>,
    /// Headers checked for encoded line breaks (`*`: every header; `[]`: off).
    #[serde(default = "defaults_entry")]
    pub encoded_crlf_headers: Vec<String>,
    /// Apply the default deny patterns (`log4shell`, `shellshock`, `ognl`).
    #[serde(default = "yes")]
    pub default_deny_patterns: bool,
    /// More deny patterns, applied after the defaults.
    #[serde(default)]
    pub deny_patterns: Vec<PatternSpec>,
    #[serde(default)]
    pub response: ResponseSpec,
    /// What `x-forwarded-proto`, `x-forwarded-for`, `x-forwarded-host` and `x-envoy-*` may
    /// claim: by default they are rewritten to the connection's scheme and the client address
    /// Envoy settled on, and client-sent `x-forwarded-host` / `x-envoy-*` removed, unless
    /// `trusted_hops` says proxies in front are trusted.
    #[serde(default)]
    pub forwarding: ForwardingSpec,
}

impl Default for RuleSpec {
    fn default() -> Self {
        RuleSpec {
            matcher: None,
            mode: Mode::Enforce,
            limits: Limits::default(),
            allow_obs_text: true,
            unique_headers: defaults_entry(),
            hosts: Vec::new(),
            host_status: default_host_status(),
            strip_headers: defaults_entry(),
            reject_headers: Vec::new(),
            internal_headers: defaults_entry(),
            encoded_crlf_headers: defaults_entry(),
            default_deny_patterns: true,
            deny_patterns: Vec::new(),
            response: ResponseSpec::default(),
            forwarding: ForwardingSpec::default(),
        }
    }
}

impl Routed for RuleSpec {
    fn matcher(&self) -> Option<&MatchSpec> {
        self.matcher.as_ref()
    }
}

/// Which headers a check looks at: every one, or named ones (pseudo-headers included).
#[derive(Debug, Clone, Default)]
struct Fields {
    all: bool,
    pseudo: Vec<String>,
    names: HeaderNames,
}

impl Fields {
    fn compile(list: &[String], field: &str) -> Result<Self, ConfigError> {
        let mut f = Fields::default();
        let mut names = Vec::new();
        for (i, n) in list.iter().enumerate() {
            match n.as_str() {
                "*" => f.all = true,
                ":path" | ":authority" | ":method" | ":scheme" => f.pseudo.push(n.clone()),
                p if p.starts_with(':') => {
                    return Err(ConfigError::new(
                        format!("{field}[{i}]"),
                        format!("`{p}` is not a request pseudo-header"),
                    ))
                }
                _ => names.push(n.clone()),
            }
        }
        f.names = HeaderNames::compile(&names, field)?;
        Ok(f)
    }

    fn contains(&self, name: &str) -> bool {
        self.all || self.pseudo.iter().any(|p| p == name) || self.names.contains(name)
    }

    fn is_empty(&self) -> bool {
        !self.all && self.pseudo.is_empty() && self.names.is_empty()
    }
}

#[derive(Debug)]
enum Matcher {
    Builtin(Builtin),
    Regex(Regex),
}

#[derive(Debug)]
struct DenyPattern {
    name: String,
    fields: Fields,
    matcher: Matcher,
}

#[derive(Debug)]
struct Rule {
    report: bool,
    limits: Limits,
    allow_obs_text: bool,
    unique: HeaderNames,
    hosts: Vec<HostPattern>,
    host_status: u16,
    strip: HeaderNames,
    reject: HeaderNames,
    internal: HeaderNames,
    encoded_crlf: Fields,
    patterns: Vec<DenyPattern>,
    remove_response: HeaderNames,
    set_response: Vec<(String, String)>,
    forwarding: Option<forwarding::Forwarding>,
}

#[derive(Debug)]
pub struct HeaderGuard {
    routes: RouteTable<Rule>,
}

/// `@default` replaced by the defaults.
fn expand(list: &[String], defaults: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for n in list {
        if n == DEFAULTS {
            out.extend(defaults.iter().map(|d| d.to_string()));
        } else {
            out.push(n.to_ascii_lowercase());
        }
    }
    out
}

/// The list as written, `@default` standing in as a valid name: errors then point at the
/// policy's own entries (`internal_headers[1]`), not at positions after expansion.
fn as_written(list: &[String]) -> Vec<String> {
    list.iter()
        .map(|n| if n == DEFAULTS { "x".into() } else { n.clone() })
        .collect()
}

/// Headers Envoy needs to route: a filter that removes them breaks every request. Without
/// `x-forwarded-proto` the route table finds no route (Envoy's `VirtualHostImpl` answers "no
/// route" for a request without it, 404 `route_not_found`, and a header edit by a wasm filter
/// clears the route cache, so the route is looked up again after the removal); without
/// `host` / `:authority` no virtual host matches by its domains, and HTTP/1.1 requires it
/// (refusing it refuses every request).
pub const ENVOY_NEEDS: &[(&str, &str)] = &[
    (
        "x-forwarded-proto",
        "Envoy's router finds no route for a request without it (every request would be 404 \
         route_not_found); use `forwarding` to make it carry the connection's real scheme",
    ),
    (
        "host",
        "Envoy matches virtual hosts on it and HTTP/1.1 requires it; use `hosts` to allow-list it",
    ),
];

fn names(list: &[String], defaults: &[&str], field: &str) -> Result<HeaderNames, ConfigError> {
    HeaderNames::compile(&as_written(list), field)?;
    HeaderNames::compile(&expand(list, defaults), field)
}

/// A list of request headers to strip or refuse: none may cover a header Envoy needs.
fn removable(list: &[String], defaults: &[&str], field: &str) -> Result<HeaderNames, ConfigError> {
    HeaderNames::compile(&as_written(list), field)?;
    // Each entry alone, so the error names the one (`x-forwarded-*` covers the protected name).
    for (i, entry) in list.iter().enumerate() {
        let one = HeaderNames::compile(&expand(std::slice::from_ref(entry), defaults), field)?;
        if let Some((name, why)) = ENVOY_NEEDS.iter().find(|(n, _)| one.contains(n)) {
            return Err(ConfigError::new(
                format!("{field}[{i}]"),
                format!("`{entry}` would remove or refuse `{name}`, which Envoy needs: {why}"),
            ));
        }
    }
    HeaderNames::compile(&expand(list, defaults), field)
}

const MAX_PATTERN_LEN: usize = 1024;

fn compile_pattern(name: &str, pattern: &str, at: &str) -> Result<Regex, ConfigError> {
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(ConfigError::new(
            at,
            format!("longer than {MAX_PATTERN_LEN} characters"),
        ));
    }
    RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| ConfigError::new(at, format!("`{name}`: invalid regular expression: {e}")))
}

fn compile_rule(spec: &RuleSpec) -> Result<Rule, ConfigError> {
    let l = spec.limits;
    for (field, v) in [
        ("max_headers", l.max_headers),
        ("max_name_bytes", l.max_name_bytes),
        ("max_value_bytes", l.max_value_bytes),
        ("max_total_bytes", l.max_total_bytes),
    ] {
        if v == 0 || v > 1024 * 1024 {
            return Err(ConfigError::new(
                format!("limits.{field}"),
                "must be between 1 and 1048576",
            ));
        }
    }
    if !matches!(spec.host_status, 400 | 421) {
        return Err(ConfigError::new("host_status", "must be 421 or 400"));
    }
    let hosts = spec
        .hosts
        .iter()
        .enumerate()
        .map(|(i, h)| HostPattern::parse(h).map_err(|e| ConfigError::new(format!("hosts[{i}]"), e)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut patterns = Vec::new();
    if spec.default_deny_patterns {
        for (builtin, name, _) in BUILTINS {
            patterns.push(DenyPattern {
                name: (*name).into(),
                fields: Fields {
                    all: true,
                    ..Fields::default()
                },
                matcher: Matcher::Builtin(*builtin),
            });
        }
    }
    for (i, p) in spec.deny_patterns.iter().enumerate() {
        let at = format!("deny_patterns[{i}]");
        if p.name.is_empty() || !p.name.bytes().all(checks::is_tchar) {
            return Err(ConfigError::new(
                format!("{at}.name"),
                "must be a non-empty token (letters, digits, `-`, `_`, `.`)",
            ));
        }
        if p.headers.is_empty() {
            return Err(ConfigError::new(
                format!("{at}.headers"),
                "must name at least one header (or `*`)",
            ));
        }
        patterns.push(DenyPattern {
            name: p.name.clone(),
            fields: Fields::compile(&p.headers, "headers").map_err(|e| e.within(&at))?,
            matcher: Matcher::Regex(compile_pattern(
                &p.name,
                &p.pattern,
                &format!("{at}.pattern"),
            )?),
        });
    }
    let mut set_response = Vec::new();
    for (k, v) in &spec.response.set_headers {
        let at = format!("response.set_headers.{k}");
        let name = k.to_ascii_lowercase();
        if name.starts_with(':') || !is_field_name(name.as_bytes()) {
            return Err(ConfigError::new(at, "not a header name"));
        }
        if check_value(v.as_bytes(), false).is_err() {
            return Err(ConfigError::new(
                at,
                "the value must be printable ASCII (no control characters)",
            ));
        }
        set_response.push((name, v.clone()));
    }
    Ok(Rule {
        report: spec.mode == Mode::Report,
        limits: l,
        allow_obs_text: spec.allow_obs_text,
        unique: names(&spec.unique_headers, DEFAULT_UNIQUE, "unique_headers")?,
        hosts,
        host_status: spec.host_status,
        strip: removable(&spec.strip_headers, DEFAULT_STRIP, "strip_headers")?,
        reject: removable(&spec.reject_headers, DEFAULT_STRIP, "reject_headers")?,
        internal: removable(&spec.internal_headers, DEFAULT_INTERNAL, "internal_headers")?,
        encoded_crlf: {
            let field = "encoded_crlf_headers";
            Fields::compile(&as_written(&spec.encoded_crlf_headers), field)?;
            Fields::compile(
                &expand(&spec.encoded_crlf_headers, DEFAULT_ENCODED_CRLF),
                field,
            )?
        },
        patterns,
        remove_response: names(
            &spec.response.remove_headers,
            DEFAULT_REMOVE,
            "response.remove_headers",
        )?,
        set_response,
        forwarding: forwarding::Forwarding::compile(&spec.forwarding)?,
    })
}

/// A header name a detail may quote: a token (already checked), at most 64 bytes.
fn shown(name: &str) -> &str {
    if is_field_name(name.as_bytes()) {
        name.get(..64).unwrap_or(name)
    } else {
        "(invalid name)"
    }
}

fn bad(code: &'static str, detail: String) -> Option<Rejection> {
    Some(Rejection::new(400, code, detail))
}

fn too_large(code: &'static str, detail: String) -> Option<Rejection> {
    Some(Rejection::new(431, code, detail))
}

type Check = fn(&Rule, &RequestView) -> Option<Rejection>;

/// In this order; in enforce mode the first finding denies.
const CHECKS: &[Check] = &[
    check_limits,
    check_syntax,
    check_smuggling,
    check_unique,
    check_host,
    check_rejected,
    check_encoded_crlf,
    check_patterns,
];

/// RFC 6585 §5: too many or too large header fields -> 431.
fn check_limits(rule: &Rule, req: &RequestView) -> Option<Rejection> {
    let l = &rule.limits;
    let (mut count, mut total) = (0usize, 0usize);
    for (k, v) in req.fields() {
        count += 1;
        total += k.len() + v.len();
        if k.len() > l.max_name_bytes {
            let detail = format!("a header name is longer than {} bytes", l.max_name_bytes);
            return too_large("header_guard.name_too_long", detail);
        }
        if v.len() > l.max_value_bytes {
            let detail = format!(
                "header `{}` is longer than {} bytes",
                shown(k),
                l.max_value_bytes
            );
            return too_large("header_guard.value_too_long", detail);
        }
    }
    if count > l.max_headers {
        let detail = format!("more than {} header fields", l.max_headers);
        return too_large("header_guard.too_many_headers", detail);
    }
    if total > l.max_total_bytes {
        let detail = format!(
            "the header fields are larger than {} bytes",
            l.max_total_bytes
        );
        return too_large("header_guard.headers_too_large", detail);
    }
    None
}

/// RFC 9110 §5.1 (names are tokens), §5.5 (no CR, LF, NUL, CTL in values), RFC 9112 §5.2
/// (obs-fold).
fn check_syntax(rule: &Rule, req: &RequestView) -> Option<Rejection> {
    for (k, v) in &req.headers {
        if !is_field_name(k.as_bytes()) {
            return bad(
                "header_guard.invalid_name",
                "a header name is not an RFC 9110 token".into(),
            );
        }
        match check_value(v, rule.allow_obs_text) {
            Ok(()) => {}
            Err(ValueError::ObsFold) => {
                let detail = format!("header `{}` is folded over lines (obs-fold)", shown(k));
                return bad("header_guard.obs_fold", detail);
            }
            Err(ValueError::Control) => {
                let detail = format!("header `{}` contains a control character", shown(k));
                return bad("header_guard.invalid_value", detail);
            }
            Err(ValueError::NonAscii) => {
                let detail = format!("header `{}` contains a non-ASCII byte", shown(k));
                return bad("header_guard.invalid_value", detail);
            }
        }
    }
    None
}

/// RFC 9112 §6.1, §6.3 and RFC 9110 §8.6: CL.TE, TE.CL and TE.TE request smuggling.
fn check_smuggling(_rule: &Rule, req: &RequestView) -> Option<Rejection> {
    let has_te = req.header_values("transfer-encoding").next().is_some();
    let has_cl = req.header_values("content-length").next().is_some();
    if has_te && has_cl {
        return bad(
            "header_guard.cl_and_te",
            "the request has both Content-Length and Transfer-Encoding".into(),
        );
    }
    if !transfer_encoding_ok(req.header_values("transfer-encoding")) {
        return bad(
            "header_guard.bad_transfer_encoding",
            "the only accepted Transfer-Encoding is a single `chunked`".into(),
        );
    }
    if !content_length_ok(req.header_values("content-length")) {
        return bad(
            "header_guard.bad_content_length",
            "Content-Length must be one decimal number".into(),
        );
    }
    None
}

/// Headers that must appear once: repeated fields, and fields the codec joined with a comma.
fn check_unique(rule: &Rule, req: &RequestView) -> Option<Rejection> {
    let dup = |name: &str| {
        bad(
            "header_guard.duplicate",
            format!("header `{}` appears more than once", shown(name)),
        )
    };
    for (i, (k, v)) in req.fields().enumerate() {
        if !rule.unique.contains(k) {
            continue;
        }
        if req.fields().skip(i + 1).any(|(n, _)| n == k) {
            return dup(k);
        }
        let joined = match k.as_str() {
            "content-type" => split_list(v).len() > 1,
            "authorization" => authorization_joined(v),
            // RFC 9113 §8.3.1: `host` and `:authority` must agree.
            "host" => !req.authority.is_empty() && v.as_slice() != req.authority.as_bytes(),
            _ => false,
        };
        if joined {
            return dup(k);
        }
    }
    None
}

/// RFC 9110 §7.2 / §7.4: a host we serve, or 421 Misdirected Request.
fn check_host(rule: &Rule, req: &RequestView) -> Option<Rejection> {
    if req.authority.is_empty() {
        return (!rule.hosts.is_empty()).then(|| not_allowed(rule));
    }
    let host = match authority_host(&req.authority) {
        Ok(h) => h,
        Err(AuthorityError::Duplicate) if rule.unique.contains("host") => {
            return bad(
                "header_guard.duplicate",
                "header `host` appears more than once".into(),
            )
        }
        Err(_) => {
            return bad(
                "header_guard.bad_host",
                "the Host / :authority is not a valid host[:port]".into(),
            )
        }
    };
    if rule.hosts.is_empty() || rule.hosts.iter().any(|p| p.matches(&host)) {
        return None;
    }
    Some(not_allowed(rule))
}

fn not_allowed(rule: &Rule) -> Rejection {
    Rejection::new(
        rule.host_status,
        "header_guard.host_not_allowed",
        "this host is not served here",
    )
}

/// CGI, PHP, WSGI and Rack turn `-` into `_` (`HTTP_X_FORWARDED_HOST`): for them
/// `x_forwarded_host` is `x-forwarded-host`. Envoy forwards underscores by default
/// (`headers_with_underscores_action: ALLOW`), so the strip, reject and internal lists match
/// names with `_` read as `-`.
fn listed(set: &HeaderNames, name: &str) -> bool {
    if name.contains('_') {
        set.contains(&name.replace('_', "-"))
    } else {
        set.contains(name)
    }
}

/// A `Remove` for every field of the request on the list, each name once.
fn removals(set: &HeaderNames, req: &RequestView) -> Vec<HeaderOp> {
    let mut ops: Vec<HeaderOp> = Vec::new();
    for (k, _) in req.fields() {
        if listed(set, k)
            && !ops
                .iter()
                .any(|op| matches!(op, HeaderOp::Remove(n) if n == k))
        {
            ops.push(HeaderOp::Remove(k.clone()));
        }
    }
    ops
}

fn check_rejected(rule: &Rule, req: &RequestView) -> Option<Rejection> {
    let (k, _) = req.fields().find(|(k, _)| listed(&rule.reject, k))?;
    bad(
        "header_guard.spoofed_header",
        format!("header `{}` is not accepted from clients", shown(k)),
    )
}

fn check_encoded_crlf(rule: &Rule, req: &RequestView) -> Option<Rejection> {
    if rule.encoded_crlf.is_empty() {
        return None;
    }
    let (k, _) = req
        .headers
        .iter()
        .find(|(k, v)| rule.encoded_crlf.contains(k) && has_encoded_line_break(v))?;
    bad(
        "header_guard.encoded_crlf",
        format!("header `{}` contains an encoded line break", shown(k)),
    )
}

fn check_patterns(rule: &Rule, req: &RequestView) -> Option<Rejection> {
    for (k, v) in &req.headers {
        let (mut text, mut has_brace) = (None, None);
        for p in &rule.patterns {
            let hit = match &p.matcher {
                // Every built-in match contains a `{`: scan each value for it once.
                Matcher::Builtin(_) if !*has_brace.get_or_insert_with(|| v.contains(&b'{')) => {
                    continue
                }
                _ if !p.fields.contains(k) => continue,
                Matcher::Builtin(b) => b.matches(v),
                Matcher::Regex(re) => {
                    re.is_match(text.get_or_insert_with(|| String::from_utf8_lossy(v)))
                }
            };
            if hit {
                let detail = format!(
                    "header `{}` matches the deny pattern `{}`",
                    shown(k),
                    p.name
                );
                return bad("header_guard.denied_pattern", detail);
            }
        }
    }
    None
}

impl Control for HeaderGuard {
    type Policy = Policy;
    const NAME: &'static str = "header_guard";

    fn build(policy: Policy) -> Result<Self, ConfigError> {
        let routes = RouteTable::compile(&policy.routes, &policy.default, compile_rule)?;
        Ok(HeaderGuard { routes })
    }

    fn on_request(&self, req: &RequestView, _env: &Env) -> Verdict {
        let (rule, _) = self.routes.select(req);
        let mut reports = Vec::new();
        for check in CHECKS {
            if let Some(r) = check(rule, req) {
                if !rule.report {
                    return Verdict::Deny(r);
                }
                reports.push(r);
            }
        }
        let internal = removals(&rule.internal, req);
        let spoofed = removals(&rule.strip, req);
        let forwarded = rule
            .forwarding
            .as_ref()
            .map(|f| f.ops(req))
            .unwrap_or_default();
        if rule.report {
            if !forwarded.is_empty() {
                reports.push(Rejection::new(
                    400,
                    "header_guard.untrue_forwarding",
                    "the forwarding headers claim what the connection does not show (report \
                     mode: not rewritten)",
                ));
            }
            if !internal.is_empty() {
                reports.push(Rejection::new(
                    400,
                    "header_guard.internal_header",
                    "the request carries internal headers (report mode: not stripped)",
                ));
            }
            if !spoofed.is_empty() {
                reports.push(Rejection::new(
                    400,
                    "header_guard.spoofed_header",
                    "the request carries spoofable headers (report mode: not stripped)",
                ));
            }
            return Verdict::Pass {
                ops: Vec::new(),
                reports,
            };
        }
        let mut ops = internal;
        for op in spoofed.into_iter().chain(forwarded) {
            if !ops.contains(&op) {
                ops.push(op);
            }
        }
        Verdict::Mutate(ops)
    }

    fn on_response(&self, req: &RequestView, resp: &ResponseView, _env: &Env) -> Verdict {
        let (rule, _) = self.routes.select(req);
        let mut ops = rule.remove_response.removals(&resp.headers);
        ops.extend(
            rule.set_response
                .iter()
                .map(|(k, v)| HeaderOp::Set(k.clone(), v.clone())),
        );
        Verdict::Mutate(ops)
    }
}

#[cfg(test)]
mod tests;
