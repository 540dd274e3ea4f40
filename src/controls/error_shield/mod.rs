//! error-shield: upstream error responses and leaky bodies never reach the client as they are.
//!
//! - Responses with configured statuses (default: every 5xx) get their body replaced by the
//!   shared problem+json, with the request id; the status is kept or mapped (`502` -> `503`).
//! - Any textual response is scanned, up to `max_scan_bytes`, for stack traces, SQL errors,
//!   internal addresses and file paths: per class `scrub` (replace the body), `report` or `off`.
//! - Headers that fingerprint the stack (`Server`, `X-Powered-By`, `X-Debug-*` …) are removed.
//!
//! Bodies beyond `max_scan_bytes` pass unchanged (never truncated) and are counted, except on a
//! replaced status: that error page is answered with the generic problem instead.

mod leaks;

pub use leaks::LeakClass;

use std::collections::BTreeMap;

use regex_lite::Regex;
use serde::Deserialize;

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
    /// Per leak class: `scrub`, `report` or `off`.
    #[serde(default = "default_leaks")]
    pub leaks: BTreeMap<String, LeakAction>,
    #[serde(default = "default_max_scan_bytes")]
    pub max_scan_bytes: usize,
    /// Response headers removed; a trailing `*` removes every header with that prefix.
    #[serde(default = "default_remove_headers")]
    pub remove_headers: Vec<String>,
}

fn default_statuses() -> Vec<String> {
    vec!["5xx".into()]
}
fn default_leaks() -> BTreeMap<String, LeakAction> {
    BTreeMap::from([
        ("stack_trace".into(), LeakAction::Scrub),
        ("sql_error".into(), LeakAction::Scrub),
        ("internal_ip".into(), LeakAction::Report),
        ("file_path".into(), LeakAction::Report),
    ])
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
            leaks: default_leaks(),
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
    leaks: Vec<(LeakClass, LeakAction, Regex)>,
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
    let mut leaks = Vec::new();
    for (name, action) in &spec.leaks {
        let class: LeakClass = serde_json::from_value(serde_json::Value::String(name.clone()))
            .map_err(|_| {
                ConfigError::new(
                    format!("leaks.{name}"),
                    "unknown leak class (stack_trace, sql_error, internal_ip, file_path)",
                )
            })?;
        if *action != LeakAction::Off {
            let re = leaks::compile(class)
                .map_err(|e| ConfigError::new(format!("leaks.{name}"), e.to_string()))?;
            leaks.push((class, *action, re));
        }
    }
    if spec.max_scan_bytes == 0 || spec.max_scan_bytes > 16 * 1024 * 1024 {
        return Err(ConfigError::new(
            "max_scan_bytes",
            "must be between 1 and 16777216",
        ));
    }
    let remove = HeaderNames::compile(&spec.remove_headers, "remove_headers")?;
    Ok(Rule {
        statuses,
        status_map,
        leaks,
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

    fn header_removals(&self, resp: &ResponseView) -> Vec<HeaderOp> {
        self.remove.removals(&resp.headers)
    }
}

/// Bodies we can scan: text, JSON, XML, JavaScript, and those that do not say; never compressed.
fn scannable(resp: &ResponseView) -> bool {
    if resp
        .header("content-encoding")
        .is_some_and(|e| !e.eq_ignore_ascii_case("identity"))
    {
        return false;
    }
    let Some(ct) = resp.header("content-type") else {
        return true;
    };
    let ct = ct.to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or("").trim();
    essence.starts_with("text/")
        || essence.ends_with("json")
        || essence.ends_with("xml")
        || essence.ends_with("javascript")
        || essence == "application/x-www-form-urlencoded"
}

const GENERIC_DETAIL: &str = "The service could not complete the request; details were withheld.";

impl ErrorShield {
    /// The verdict for a whole body (`None`: too large to scan).
    fn judge(
        &self,
        rule: &Rule,
        req: &RequestView,
        resp: &ResponseView,
        body: Option<&[u8]>,
    ) -> Verdict {
        let ops = rule.header_removals(resp);
        if rule.replaces(resp.status) {
            if body.is_none() {
                // Too large to hold: it cannot be replaced in place, and it must not pass (it
                // is the error page being hidden). The host answers with the problem instead.
                return Verdict::Deny(Rejection::new(
                    rule.mapped(resp.status),
                    "error_shield.status",
                    GENERIC_DETAIL,
                ));
            }
            return replace(req, rule.mapped(resp.status), "error_shield.status", ops);
        }
        let mut reports = Vec::new();
        if let Some(body) = body.filter(|_| scannable(resp)) {
            let text = unescape_for_scan(&String::from_utf8_lossy(body));
            for (class, action, re) in &rule.leaks {
                if !re.is_match(&text) {
                    continue;
                }
                if *action == LeakAction::Scrub {
                    // A 2xx or 3xx page that leaks is not a success we can vouch for.
                    let status = if resp.status >= 400 {
                        rule.mapped(resp.status)
                    } else {
                        500
                    };
                    return replace(req, status, class.code(), ops);
                }
                reports.push(Rejection::new(
                    resp.status,
                    class.code(),
                    "the response matched a leak pattern",
                ));
            }
        }
        Verdict::Pass { ops, reports }
    }
}

/// Traces embedded in JSON strings arrive escaped (`\\n\\tat com.…`): scan them as text.
fn unescape_for_scan(text: &str) -> String {
    text.replace("\\n", "\n")
        .replace("\\t", "\t")
        .replace("\\r", "\r")
        .replace("\\\"", "\"")
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
        if rule.replaces(resp.status) || (!rule.leaks.is_empty() && scannable(resp)) {
            return Verdict::NeedBody {
                max_bytes: rule.max_scan_bytes,
            };
        }
        Verdict::Mutate(rule.header_removals(resp))
    }

    fn on_response_body(
        &self,
        req: &RequestView,
        resp: &ResponseView,
        body: Option<&[u8]>,
        _env: &Env,
    ) -> Verdict {
        let (rule, _) = self.routes.select(req);
        self.judge(rule, req, resp, body)
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
