//! csrf: Cross-Site Request Forgery defence for state-changing requests.
//!
//! Per route: the `Origin` (or, without one, the `Referer`) must be the request's own host or
//! an allowed origin; `Sec-Fetch-Site: cross-site` is refused; optionally a double-submit
//! token (cookie == header, compared in constant time), with the cookie issued on safe
//! requests. `mode: report` only logs and counts, like the shadow mode of Envoy's csrf filter.

mod origin;
mod token;

pub use origin::{parse_origin, parse_referer, Origin, OriginError, OriginPattern};
pub use token::{fresh_token, set_cookie, MAX_TOKEN_LEN};

use serde::Deserialize;

use crate::config::{MatchSpec, RouteTable, Routed};
use crate::control::{ConfigError, Control, Env};
use crate::params::cookie_values;
use crate::reject::Rejection;
use crate::request::{RequestView, ResponseView};
use crate::secret::ct_eq;
use crate::verdict::{HeaderOp, Verdict};

/// The note a safe request leaves when its response should issue the token cookie.
const ISSUE_NOTE: &str = "csrf.issue";

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Refuse with 403.
    #[default]
    Enforce,
    /// Log and count (`result="reported"`), let the request through.
    Report,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Missing {
    #[default]
    Deny,
    Allow,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    #[serde(rename = "match", default)]
    pub matcher: Option<MatchSpec>,
    /// `false`: requests of this rule are not checked at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub mode: Mode,
    /// State-changing methods: the ones checked. Others are safe (they may get the cookie).
    #[serde(default = "default_methods")]
    pub methods: Vec<String>,
    /// Origins allowed besides the request's own host: `https://app.example.com`, or
    /// `https://*.example.com` for its subdomains.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// A state-changing request with neither `Origin` nor `Referer`.
    #[serde(default)]
    pub missing_origin: Missing,
    /// Accept `Origin: null` (sandboxed iframes, `file:` pages). Rarely what you want.
    #[serde(default)]
    pub allow_null_origin: bool,
    /// Refuse `Sec-Fetch-Site: cross-site` unless the Origin is in `allowed_origins`.
    #[serde(default = "yes")]
    pub fetch_metadata: bool,
    /// Require a double-submit token as well.
    #[serde(default)]
    pub token: Option<TokenSpec>,
    /// Schemes the site is served on (`["https"]`): an Origin with the request's own host is
    /// its own origin only with one of them (RFC 6454 compares the scheme). Empty: the scheme
    /// the request arrived with, from `own_scheme`.
    #[serde(default)]
    pub site_schemes: Vec<String>,
    /// Where the request's own scheme comes from when `site_schemes` is empty.
    #[serde(default)]
    pub own_scheme: OwnScheme,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum OwnScheme {
    /// The downstream connection: `https` over TLS, `http` otherwise.
    #[default]
    Connection,
    /// `x-forwarded-proto` (one `http` or `https`; otherwise the connection): only where it is
    /// true, made so by header-guard's `forwarding` or by Envoy at the edge, e.g. behind a
    /// load balancer that ends TLS.
    XForwardedProto,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    #[serde(default = "default_cookie")]
    pub cookie: String,
    /// Request header that must repeat the cookie's value (lower case).
    #[serde(default = "default_header")]
    pub header: String,
    /// Issue the cookie on safe requests that come without one (and send the token in the
    /// `header` response header, for pages that cannot read an HttpOnly cookie).
    #[serde(default = "yes")]
    pub issue: bool,
    #[serde(default = "yes")]
    pub http_only: bool,
}

fn yes() -> bool {
    true
}
fn default_methods() -> Vec<String> {
    ["POST", "PUT", "PATCH", "DELETE"]
        .map(String::from)
        .to_vec()
}
fn default_cookie() -> String {
    "__Host-csrf".into()
}
fn default_header() -> String {
    "x-csrf-token".into()
}

impl Default for RuleSpec {
    fn default() -> Self {
        RuleSpec {
            matcher: None,
            enabled: true,
            mode: Mode::Enforce,
            methods: default_methods(),
            allowed_origins: Vec::new(),
            missing_origin: Missing::Deny,
            allow_null_origin: false,
            fetch_metadata: true,
            token: None,
            site_schemes: Vec::new(),
            own_scheme: OwnScheme::Connection,
        }
    }
}

impl Routed for RuleSpec {
    fn matcher(&self) -> Option<&MatchSpec> {
        self.matcher.as_ref()
    }
}

#[derive(Debug)]
struct TokenRule {
    cookie: String,
    header: String,
    issue: bool,
    http_only: bool,
}

#[derive(Debug)]
struct Rule {
    enabled: bool,
    report: bool,
    methods: Vec<String>,
    allowed: Vec<OriginPattern>,
    allow_missing: bool,
    allow_null: bool,
    fetch_metadata: bool,
    token: Option<TokenRule>,
    site_schemes: Vec<String>,
    own_scheme: OwnScheme,
}

#[derive(Debug)]
pub struct Csrf {
    routes: RouteTable<Rule>,
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn compile_token(t: &TokenSpec) -> Result<TokenRule, ConfigError> {
    if !is_token(&t.cookie) {
        return Err(ConfigError::new(
            "token.cookie",
            "not a cookie name (RFC 6265 token)",
        ));
    }
    if !is_token(&t.header) || t.header.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ConfigError::new(
            "token.header",
            "not a lower-case header field name",
        ));
    }
    Ok(TokenRule {
        cookie: t.cookie.clone(),
        header: t.header.clone(),
        issue: t.issue,
        http_only: t.http_only,
    })
}

fn compile_rule(spec: &RuleSpec) -> Result<Rule, ConfigError> {
    for (i, m) in spec.methods.iter().enumerate() {
        if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(ConfigError::new(
                format!("methods[{i}]"),
                format!("`{m}` is not an upper-case method"),
            ));
        }
    }
    let allowed = spec
        .allowed_origins
        .iter()
        .enumerate()
        .map(|(i, o)| {
            OriginPattern::parse(o)
                .map_err(|e| ConfigError::new(format!("allowed_origins[{i}]"), e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let token = spec.token.as_ref().map(compile_token).transpose()?;
    let mut site_schemes = Vec::new();
    for (i, sch) in spec.site_schemes.iter().enumerate() {
        let lower = sch.to_ascii_lowercase();
        if !matches!(lower.as_str(), "http" | "https") {
            return Err(ConfigError::new(
                format!("site_schemes[{i}]"),
                format!("`{sch}` is not `http` or `https`"),
            ));
        }
        site_schemes.push(lower);
    }
    Ok(Rule {
        site_schemes,
        own_scheme: spec.own_scheme,
        enabled: spec.enabled,
        report: spec.mode == Mode::Report,
        methods: spec.methods.clone(),
        allowed,
        allow_missing: spec.missing_origin == Missing::Allow,
        allow_null: spec.allow_null_origin,
        fetch_metadata: spec.fetch_metadata,
        token,
    })
}

fn origin_denied(detail: &str) -> Rejection {
    Rejection::new(403, "csrf.origin", detail)
}

fn token_denied(detail: &str) -> Rejection {
    Rejection::new(403, "csrf.token", detail)
}

impl Rule {
    fn allowed_origin(&self, o: &Origin) -> bool {
        self.allowed.iter().any(|p| p.matches(o))
    }

    /// Where the request comes from, checked against where it goes.
    fn check_origin(&self, req: &RequestView) -> Result<(), Rejection> {
        let mut origins = req.header_values("origin");
        let (first, second) = (origins.next(), origins.next());
        if second.is_some() {
            return Err(origin_denied("the request has more than one Origin"));
        }
        let source = match first {
            Some(v) => std::str::from_utf8(v)
                .map_err(|_| OriginError::Malformed)
                .and_then(parse_origin),
            None => {
                let mut referers = req.header_values("referer");
                match (referers.next(), referers.next()) {
                    (Some(_), Some(_)) => {
                        return Err(origin_denied("the request has more than one Referer"))
                    }
                    (Some(v), None) => std::str::from_utf8(v)
                        .map_err(|_| OriginError::Malformed)
                        .and_then(parse_referer),
                    (None, _) if self.allow_missing => return Ok(()),
                    (None, _) => {
                        return Err(origin_denied(
                            "a state-changing request needs an Origin or a Referer",
                        ))
                    }
                }
            }
        };
        let allowed_null = self.allow_null;
        let source = match source {
            Ok(o) => o,
            Err(OriginError::Null) if allowed_null => return self.check_fetch_site(req, false),
            Err(OriginError::Null) => return Err(origin_denied("Origin `null` is not allowed")),
            Err(OriginError::Malformed) => {
                return Err(origin_denied("the Origin (or Referer) is malformed"))
            }
        };
        let listed = self.allowed_origin(&source);
        self.check_fetch_site(req, listed)?;
        if listed {
            return Ok(());
        }
        if !source.is_host(&req.authority) {
            return Err(origin_denied(
                "cross-origin request from an origin that is not allowed",
            ));
        }
        if self.own_scheme_is(&source.scheme, req) {
            Ok(())
        } else {
            Err(origin_denied(
                "the Origin (or Referer) has the request's host but not the site's scheme",
            ))
        }
    }

    /// RFC 6454 §5: the scheme is part of the origin.
    fn own_scheme_is(&self, scheme: &str, req: &RequestView) -> bool {
        if !self.site_schemes.is_empty() {
            return self.site_schemes.iter().any(|s| s == scheme);
        }
        let forwarded = match self.own_scheme {
            OwnScheme::Connection => None,
            OwnScheme::XForwardedProto => {
                let mut v = req.header_values("x-forwarded-proto");
                match (v.next(), v.next()) {
                    (Some(one), None) if one.eq_ignore_ascii_case(b"https") => Some("https"),
                    (Some(one), None) if one.eq_ignore_ascii_case(b"http") => Some("http"),
                    _ => None,
                }
            }
        };
        forwarded.unwrap_or(req.connection.scheme()) == scheme
    }

    /// Fetch Metadata (W3C): a browser that says `cross-site` is believed.
    fn check_fetch_site(&self, req: &RequestView, listed: bool) -> Result<(), Rejection> {
        let cross_site = req
            .header_values("sec-fetch-site")
            .any(|v| v.eq_ignore_ascii_case(b"cross-site"));
        if self.fetch_metadata && cross_site && !listed {
            return Err(origin_denied(
                "cross-site request refused (Sec-Fetch-Site: cross-site)",
            ));
        }
        Ok(())
    }
}

impl TokenRule {
    fn check(&self, req: &RequestView) -> Result<(), Rejection> {
        let cookies = cookie_values(req, &self.cookie);
        let cookie = match cookies.as_slice() {
            [] | [[]] => return Err(token_denied("the CSRF cookie is missing")),
            [one] => *one,
            _ => return Err(token_denied("the request has more than one CSRF cookie")),
        };
        let mut headers = req.header_values(&self.header);
        let header = match (headers.next(), headers.next()) {
            (None, _) | (Some([]), None) => {
                return Err(token_denied("the CSRF token header is missing"))
            }
            (Some(h), None) => h,
            (Some(_), Some(_)) => {
                return Err(token_denied(
                    "the request has more than one CSRF token header",
                ))
            }
        };
        if header.len() > MAX_TOKEN_LEN || cookie.len() > MAX_TOKEN_LEN {
            let which = if header.len() > MAX_TOKEN_LEN {
                "token header"
            } else {
                "cookie"
            };
            return Err(token_denied(&format!(
                "the CSRF {which} is longer than {MAX_TOKEN_LEN} bytes"
            )));
        }
        if !ct_eq(header, cookie) {
            return Err(token_denied("the CSRF token does not match its cookie"));
        }
        Ok(())
    }
}

impl Control for Csrf {
    type Policy = Policy;
    const NAME: &'static str = "csrf";

    fn build(policy: Policy) -> Result<Self, ConfigError> {
        let routes = RouteTable::compile(&policy.routes, &policy.default, compile_rule)?;
        Ok(Csrf { routes })
    }

    fn on_request(&self, req: &RequestView, _env: &Env) -> Verdict {
        let (rule, _) = self.routes.select(req);
        if !rule.enabled {
            return Verdict::Continue;
        }
        if !rule.methods.contains(&req.method) {
            if let Some(t) = rule.token.as_ref().filter(|t| t.issue) {
                if cookie_values(req, &t.cookie).is_empty() {
                    req.note(ISSUE_NOTE, 1);
                }
            }
            return Verdict::Continue;
        }
        let mut findings = Vec::new();
        if let Err(r) = rule.check_origin(req) {
            findings.push(r);
        }
        if let Some(Err(r)) = rule.token.as_ref().map(|t| t.check(req)) {
            findings.push(r);
        }
        if rule.report {
            if findings.is_empty() {
                return Verdict::Continue;
            }
            // Every finding is reported, not only the first.
            return Verdict::Pass {
                ops: Vec::new(),
                reports: findings,
            };
        }
        match findings.into_iter().next() {
            None => Verdict::Continue,
            Some(first) => Verdict::Deny(first),
        }
    }

    fn on_response(&self, req: &RequestView, resp: &ResponseView, _env: &Env) -> Verdict {
        if req.noted(ISSUE_NOTE) != Some(1) {
            return Verdict::Continue;
        }
        let (rule, _) = self.routes.select(req);
        let Some(t) = rule.token.as_ref() else {
            return Verdict::Continue;
        };
        // The application set the cookie itself.
        let prefix = format!("{}=", t.cookie);
        if resp
            .headers
            .iter()
            .any(|(k, v)| k == "set-cookie" && v.starts_with(prefix.as_bytes()))
        {
            return Verdict::Continue;
        }
        let Some(token) = fresh_token() else {
            log::warn!("portcullis csrf: no randomness available; no token cookie issued");
            return Verdict::Continue;
        };
        Verdict::Mutate(vec![
            HeaderOp::Add(
                "set-cookie".into(),
                set_cookie(&t.cookie, &token, t.http_only),
            ),
            HeaderOp::Set(t.header.clone(), token),
        ])
    }
}

#[cfg(test)]
mod tests;
