//! error-shield: upstream error responses and leaky bodies never reach the client as they are.
//!
//! - Responses with configured statuses (default: every 5xx) get their body replaced by the
//!   shared problem+json, with the request id; the status is kept or mapped (`502` -> `503`).
//! - Responses of the listed content types (default: every textual one, and untyped ones),
//!   gzip/deflate decoded, and every response header value are scanned for leaks (`leaks.rs`):
//!   per class `scrub` (replace the body; remove the header), `report` or `off`.
//! - Headers that fingerprint the stack (`Server`, `X-Powered-By`, `X-Debug-*` …) are removed.
//!
//! Of a body beyond `max_scan_bytes` the first `max_scan_bytes` are scanned: a leak to scrub
//! there, or a replaced status, answers with the generic problem; otherwise the whole body
//! passes unchanged (never truncated), the rest unseen, and it is counted.

/// Also api-schema's, to read encoded JSON responses.
pub(crate) mod decode;
mod leaks;
mod media;

pub use leaks::{unescape_for_scan, Detector, LeakClass, Scan, DEFAULT_INTERNAL_SUFFIXES};

use std::collections::BTreeMap;

use serde::Deserialize;

use decode::Decoded;
use media::MediaRanges;

use crate::alert::{AlertPolicy, AlertSpec, Alerts};
use crate::callout::{Callout, CalloutResponse};
use crate::config::{HeaderNames, MatchSpec, RouteTable, Routed};
use crate::control::{ConfigError, Control, Env};
use crate::reject::{Rejection, PROBLEM_JSON};
use crate::request::{RequestView, ResponseView};
use crate::verdict::{HeaderOp, Verdict};

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub routes: Vec<RuleSpec>,
    #[serde(default)]
    pub default: RuleSpec,
    /// Post an alert to a webhook when denials (of every portcullis module) spike.
    #[serde(default)]
    pub alerts: Option<AlertSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum LeakAction {
    Scrub,
    Report,
    Off,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    #[serde(rename = "match", default)]
    pub matcher: Option<MatchSpec>,
    /// Statuses whose body is replaced: `"5xx"`, `"4xx"` or a code such as `"404"`.
    #[serde(default = "default_statuses")]
    pub replace_statuses: Vec<String>,
    /// Statuses sent instead of others, e.g. `{"501": 500, "502": 503}`.
    #[serde(default)]
    pub status_map: BTreeMap<String, u16>,
    /// Per leak class: `scrub`, `report` or `off`. A class not named keeps its default.
    #[serde(default)]
    pub leaks: BTreeMap<String, LeakAction>,
    /// Host-name suffixes `internal_host` looks for (whole DNS labels, lower case).
    #[serde(default = "default_internal_host_suffixes")]
    pub internal_host_suffixes: Vec<String>,
    /// Content types whose bodies are scanned: `type/subtype`, `type/*`, `+suffix`, `*/*`.
    #[serde(default = "media::default_scan_content_types")]
    pub scan_content_types: Vec<String>,
    /// Scan bodies without a `content-type`.
    #[serde(default = "default_true")]
    pub scan_untyped: bool,
    /// A body whose `content-encoding` cannot be decoded (`br`, `zstd`, a corrupt stream):
    /// `scrub` replaces it, `report` counts it, `off` lets it pass silently.
    #[serde(default = "default_undecodable")]
    pub undecodable: LeakAction,
    /// Bytes of a body scanned (after decoding); of a larger body, its first `max_scan_bytes`.
    #[serde(default = "default_max_scan_bytes")]
    pub max_scan_bytes: usize,
    /// Response headers removed; a trailing `*` removes every header with that prefix.
    #[serde(default = "default_remove_headers")]
    pub remove_headers: Vec<String>,
}

fn default_statuses() -> Vec<String> {
    vec!["5xx".into()]
}
/// Each class's action when the policy does not name it.
fn default_action(class: LeakClass) -> LeakAction {
    match class {
        LeakClass::StackTrace
        | LeakClass::SqlError
        | LeakClass::Secret
        | LeakClass::CompressionBomb => LeakAction::Scrub,
        LeakClass::InternalIp
        | LeakClass::InternalHost
        | LeakClass::FilePath
        | LeakClass::VersionBanner => LeakAction::Report,
    }
}
fn default_internal_host_suffixes() -> Vec<String> {
    DEFAULT_INTERNAL_SUFFIXES.map(String::from).to_vec()
}
fn default_true() -> bool {
    true
}
fn default_undecodable() -> LeakAction {
    LeakAction::Report
}
fn default_max_scan_bytes() -> usize {
    256 * 1024
}
fn default_remove_headers() -> Vec<String> {
    [
        "server",
        "x-powered-by",
        "x-aspnet-version",
        "x-aspnetmvc-version",
        "x-runtime",
        "x-debug-*",
    ]
    .map(String::from)
    .to_vec()
}

impl Default for RuleSpec {
    fn default() -> Self {
        RuleSpec {
            matcher: None,
            replace_statuses: default_statuses(),
            status_map: BTreeMap::new(),
            leaks: BTreeMap::new(),
            internal_host_suffixes: default_internal_host_suffixes(),
            scan_content_types: media::default_scan_content_types(),
            scan_untyped: true,
            undecodable: default_undecodable(),
            max_scan_bytes: default_max_scan_bytes(),
            remove_headers: default_remove_headers(),
        }
    }
}

impl Routed for RuleSpec {
    fn matcher(&self) -> Option<&MatchSpec> {
        self.matcher.as_ref()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusSet {
    Class(u16),
    Exact(u16),
}

#[derive(Debug)]
struct Rule {
    statuses: Vec<StatusSet>,
    status_map: Vec<(u16, u16)>,
    /// The classes not `off`, with their detectors (the pattern classes only).
    leaks: Vec<(LeakClass, LeakAction, Detector)>,
    compression_bomb: LeakAction,
    undecodable: LeakAction,
    scan_types: MediaRanges,
    scan_untyped: bool,
    max_scan_bytes: usize,
    remove: HeaderNames,
}

#[derive(Debug)]
pub struct ErrorShield {
    routes: RouteTable<Rule>,
    alerts: Option<Alerts>,
}

fn parse_status(s: &str, at: &str) -> Result<u16, ConfigError> {
    s.parse::<u16>()
        .ok()
        .filter(|c| (100..=599).contains(c))
        .ok_or_else(|| ConfigError::new(at, format!("`{s}` is not an HTTP status")))
}

fn compile_rule(spec: &RuleSpec) -> Result<Rule, ConfigError> {
    let mut statuses = Vec::new();
    for (i, s) in spec.replace_statuses.iter().enumerate() {
        let at = format!("replace_statuses[{i}]");
        statuses.push(match s.as_str() {
            "4xx" => StatusSet::Class(4),
            "5xx" => StatusSet::Class(5),
            code => StatusSet::Exact(parse_status(code, &at)?),
        });
    }
    let mut status_map = Vec::new();
    for (from, to) in &spec.status_map {
        let at = format!("status_map.{from}");
        let from = parse_status(from, &at)?;
        if !(400..=599).contains(to) {
            return Err(ConfigError::new(
                at,
                format!("maps to {to}, which is not an error status"),
            ));
        }
        status_map.push((from, *to));
    }
    for name in spec.leaks.keys() {
        if !LeakClass::ALL.iter().any(|c| c.name() == name) {
            let known: Vec<&str> = LeakClass::ALL.iter().map(|c| c.name()).collect();
            return Err(ConfigError::new(
                format!("leaks.{name}"),
                format!("unknown leak class (known: {})", known.join(", ")),
            ));
        }
    }
    for (i, s) in spec.internal_host_suffixes.iter().enumerate() {
        if !leaks::valid_suffix(s) {
            return Err(ConfigError::new(
                format!("internal_host_suffixes[{i}]"),
                format!("`{s}` is not a lower-case DNS suffix such as `svc.cluster.local`"),
            ));
        }
    }
    let action = |class: LeakClass| {
        spec.leaks
            .get(class.name())
            .copied()
            .unwrap_or_else(|| default_action(class))
    };
    let mut leaks = Vec::new();
    for class in LeakClass::ALL {
        let act = action(class);
        if act == LeakAction::Off || class == LeakClass::CompressionBomb {
            continue;
        }
        if class == LeakClass::InternalHost && spec.internal_host_suffixes.is_empty() {
            return Err(ConfigError::new(
                "internal_host_suffixes",
                "is empty while internal_host is on (set leaks.internal_host to off instead)",
            ));
        }
        let detector = Detector::compile(class, &spec.internal_host_suffixes)
            .map_err(|e| ConfigError::new(format!("leaks.{}", class.name()), e.to_string()))?;
        leaks.push((class, act, detector));
    }
    if spec.max_scan_bytes == 0 || spec.max_scan_bytes > 16 * 1024 * 1024 {
        return Err(ConfigError::new(
            "max_scan_bytes",
            "must be between 1 and 16777216",
        ));
    }
    let remove = HeaderNames::compile(&spec.remove_headers, "remove_headers")?;
    let scan_types = MediaRanges::compile(&spec.scan_content_types, "scan_content_types")?;
    Ok(Rule {
        statuses,
        status_map,
        leaks,
        compression_bomb: action(LeakClass::CompressionBomb),
        undecodable: spec.undecodable,
        scan_types,
        scan_untyped: spec.scan_untyped,
        max_scan_bytes: spec.max_scan_bytes,
        remove,
    })
}

impl Rule {
    fn replaces(&self, status: u16) -> bool {
        self.statuses.iter().any(|s| match s {
            StatusSet::Class(c) => status / 100 == *c,
            StatusSet::Exact(e) => status == *e,
        })
    }

    fn mapped(&self, status: u16) -> u16 {
        self.status_map
            .iter()
            .find(|(f, _)| *f == status)
            .map_or(status, |(_, t)| *t)
    }

    /// The header edits and reports for the response headers: headers removed by name, and
    /// every other value scanned; a leak to scrub removes the header it is in.
    fn header_findings(&self, resp: &ResponseView) -> (Vec<HeaderOp>, Vec<Rejection>) {
        let mut ops = self.remove.removals(&resp.headers);
        let mut reports = Vec::new();
        for (name, value) in &resp.headers {
            let removed = ops
                .iter()
                .any(|op| matches!(op, HeaderOp::Remove(n) if n == name));
            if name.starts_with(':') || removed {
                continue;
            }
            let value = String::from_utf8_lossy(value);
            let scan = Scan::new(&value);
            for (class, action, detector) in &self.leaks {
                if !detector.is_match_in(&scan) {
                    continue;
                }
                let detail = if *action == LeakAction::Scrub {
                    ops.push(HeaderOp::Remove(name.clone()));
                    "a response header matched a leak pattern and was removed"
                } else {
                    "a response header matched a leak pattern"
                };
                reports.push(Rejection::new(resp.status, class.code(), detail));
                if *action == LeakAction::Scrub {
                    break;
                }
            }
        }
        (ops, reports)
    }

    /// Is the body of this content type scanned?
    fn scans_type(&self, resp: &ResponseView) -> bool {
        match resp.header("content-type") {
            Some(ct) => self.scan_types.contains(ct),
            None => self.scan_untyped,
        }
    }

    fn scans_body(&self, resp: &ResponseView) -> bool {
        let acts = !self.leaks.is_empty()
            || self.compression_bomb != LeakAction::Off
            || self.undecodable != LeakAction::Off;
        acts && self.scans_type(resp)
    }

    /// The status a scrubbed response is sent with: a 2xx or 3xx page that leaks is not a
    /// success we can vouch for.
    fn scrubbed_status(&self, status: u16) -> u16 {
        if status >= 400 {
            self.mapped(status)
        } else {
            500
        }
    }

    /// The first finding to scrub in the body, and the findings to report.
    fn scan_body(
        &self,
        resp: &ResponseView,
        body: &[u8],
    ) -> (Option<&'static str>, Vec<Rejection>) {
        let mut reports = Vec::new();
        let report = |code: &'static str, reports: &mut Vec<Rejection>| {
            reports.push(Rejection::new(
                resp.status,
                code,
                "the response matched a leak pattern",
            ));
        };
        let encoding = resp.header("content-encoding");
        let (action, code) = match decode::decode(encoding, body, self.max_scan_bytes) {
            Decoded::Text { bytes, .. } => {
                let text = unescape_for_scan(&String::from_utf8_lossy(&bytes));
                let scan = Scan::new(&text);
                for (class, action, detector) in &self.leaks {
                    if !detector.is_match_in(&scan) {
                        continue;
                    }
                    if *action == LeakAction::Scrub {
                        return (Some(class.code()), reports);
                    }
                    report(class.code(), &mut reports);
                }
                return (None, reports);
            }
            Decoded::Bomb => (self.compression_bomb, LeakClass::CompressionBomb.code()),
            Decoded::Undecodable => (self.undecodable, "error_shield.undecodable"),
        };
        match action {
            LeakAction::Scrub => return (Some(code), reports),
            LeakAction::Report => report(code, &mut reports),
            LeakAction::Off => {}
        }
        (None, reports)
    }
}

const GENERIC_DETAIL: &str = "The service could not complete the request; details were withheld.";

/// What the control was handed of a response body.
#[derive(Clone, Copy)]
enum Body<'a> {
    /// All of it: a finding to scrub replaces it in place.
    Whole(&'a [u8]),
    /// Its first `max_scan_bytes`: a finding to scrub replaces the whole response.
    Prefix(&'a [u8]),
    /// Nothing (too large, or not readable).
    Unseen,
}

impl ErrorShield {
    fn judge(&self, rule: &Rule, req: &RequestView, resp: &ResponseView, body: Body) -> Verdict {
        let (ops, mut reports) = rule.header_findings(resp);
        let deny = |status, code| Verdict::Deny(Rejection::new(status, code, GENERIC_DETAIL));
        if rule.replaces(resp.status) {
            return match body {
                Body::Whole(_) => {
                    replace(req, rule.mapped(resp.status), "error_shield.status", ops)
                }
                // Not held whole: it cannot be replaced in place, and it must not pass (it is
                // the error page being hidden). The host answers with the problem instead.
                _ => deny(rule.mapped(resp.status), "error_shield.status"),
            };
        }
        let seen = match body {
            Body::Whole(b) | Body::Prefix(b) => Some(b),
            Body::Unseen => None,
        };
        if let Some(b) = seen.filter(|_| rule.scans_type(resp)) {
            let (scrub, found) = rule.scan_body(resp, b);
            reports.extend(found);
            if let Some(code) = scrub {
                let status = rule.scrubbed_status(resp.status);
                return match body {
                    Body::Whole(_) => replace(req, status, code, ops),
                    _ => deny(status, code),
                };
            }
        }
        Verdict::Pass { ops, reports }
    }
}

/// The response, with its body replaced by a generic problem.
fn replace(req: &RequestView, status: u16, code: &'static str, mut ops: Vec<HeaderOp>) -> Verdict {
    let body = Rejection::new(status, code, GENERIC_DETAIL)
        .problem_body(req.request_id())
        .into_bytes();
    ops.push(HeaderOp::Set(":status".into(), status.to_string()));
    ops.push(HeaderOp::Set("content-type".into(), PROBLEM_JSON.into()));
    ops.push(HeaderOp::Remove("content-encoding".into()));
    ops.push(HeaderOp::Set("cache-control".into(), "no-store".into()));
    Verdict::ReplaceBody {
        code,
        headers: ops,
        body,
    }
}

impl Control for ErrorShield {
    type Policy = Policy;
    const NAME: &'static str = "error_shield";

    fn build(policy: Policy) -> Result<Self, ConfigError> {
        let routes = RouteTable::compile(&policy.routes, &policy.default, compile_rule)?;
        let alerts = match &policy.alerts {
            Some(spec) => Some(Alerts::new(
                AlertPolicy::compile(spec).map_err(|e| e.within("alerts"))?,
            )),
            None => None,
        };
        Ok(ErrorShield { routes, alerts })
    }

    fn on_request(&self, _req: &RequestView, _env: &Env) -> Verdict {
        Verdict::Continue
    }

    fn on_response(&self, req: &RequestView, resp: &ResponseView, _env: &Env) -> Verdict {
        let (rule, _) = self.routes.select(req);
        if rule.replaces(resp.status) || rule.scans_body(resp) {
            return Verdict::NeedBody {
                max_bytes: rule.max_scan_bytes,
            };
        }
        let (ops, reports) = rule.header_findings(resp);
        Verdict::Pass { ops, reports }
    }

    fn on_response_body(
        &self,
        req: &RequestView,
        resp: &ResponseView,
        body: Option<&[u8]>,
        _env: &Env,
    ) -> Verdict {
        let (rule, _) = self.routes.select(req);
        let body = body.map_or(Body::Unseen, Body::Whole);
        self.judge(rule, req, resp, body)
    }

    fn on_response_body_prefix(
        &self,
        req: &RequestView,
        resp: &ResponseView,
        prefix: &[u8],
        _env: &Env,
    ) -> Verdict {
        let (rule, _) = self.routes.select(req);
        self.judge(rule, req, resp, Body::Prefix(prefix))
    }

    fn tick_period(&self) -> Option<std::time::Duration> {
        self.alerts.as_ref().map(Alerts::tick_period)
    }

    fn on_tick(&self, env: &Env) -> Vec<Callout> {
        self.alerts
            .as_ref()
            .map(|a| a.on_tick(env))
            .unwrap_or_default()
    }

    fn on_callout_response(&self, tag: u64, resp: Option<CalloutResponse>, env: &Env) {
        if let Some(a) = &self.alerts {
            a.on_callout_response(tag, resp, env);
        }
    }
}

#[cfg(test)]
mod tests;
