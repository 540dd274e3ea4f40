//! jwt-auth: JWT / OpenID Connect bearer-token authentication (RFC 7519, RFC 6750) with
//! per-route OAuth 2.0 scope checks.
//!
//! Providers name an issuer, audiences, the allowed algorithms and their keys (inline JWKS,
//! a remote JWKS, or OIDC discovery). Routes say which providers they accept and which scopes
//! they need. Verified tokens are cached (bounded, keyed by SHA-256 of the token, never past
//! `exp`). Forwarded claim headers are always removed from the incoming request first.

mod cache;
mod credentials;
pub mod introspection;
mod keys;
mod remote;
mod token;

pub use keys::ALGORITHMS;
pub use token::{parse as parse_token, parse_strict, TokenError};

use std::rc::Rc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use self::cache::{Cache, Verified};
use self::credentials::{Problem, Source};
use self::introspection::{Introspection, NegativeCache, Said};
use self::keys::{compile_jwks, KeySet, SigError};
use self::remote::{parse_uri, Remote, Update};
use crate::callout::{
    Answer, Ask, Callout, CalloutResponse, HostCapabilities, Resume, NEEDS_REQUEST_CALLOUTS,
};
use crate::config::{
    is_header_name, MatchSpec, RequiredScopes, RouteTable, Routed, ScopeShortfall,
};
use crate::control::{ConfigError, Control, Env};
use crate::reject::Rejection;
use crate::request::RequestView;
use crate::verdict::{HeaderOp, Verdict};

/// Largest `max_token_bytes` a policy may set.
pub const MAX_TOKEN_LIMIT: usize = 64 * 1024;
/// Largest verified-token cache a policy may set.
pub const MAX_CACHE_ENTRIES: usize = 100_000;
/// A cached token without `exp` is re-verified after this long.
const CACHE_TTL_NO_EXP: i64 = 300;

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Token issuers this module trusts.
    pub providers: Vec<ProviderSpec>,
    /// Tried in order; the first whose `match` fits the request applies.
    #[serde(default)]
    pub routes: Vec<RuleSpec>,
    /// Applies when no route matches. Absent: such requests are denied (403 `jwt.no_route`).
    #[serde(default = "deny_rule")]
    pub default: RuleSpec,
    /// The `realm` of `WWW-Authenticate` challenges.
    #[serde(default = "default_realm")]
    pub realm: String,
    /// Longer tokens are refused unparsed (401 `jwt.too_large`).
    #[serde(default = "default_max_token_bytes")]
    pub max_token_bytes: usize,
    /// Verified tokens kept so that a repeated token is not verified again; 0 turns it off.
    #[serde(default = "default_cache_entries")]
    pub cache_entries: usize,
    /// Status while a provider's remote keys have never loaded: 503 (default) or 401.
    #[serde(default = "default_keys_unavailable_status")]
    pub keys_unavailable_status: u16,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    /// Referenced by routes.
    pub name: String,
    /// Exact match with the token's `iss`.
    pub issuer: String,
    /// The token's `aud` must contain one of these; empty: `aud` is not checked.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Accepted `alg` values (RS256 … PS512, ES256, ES384, EdDSA, HS256 … HS512); required for
    /// JWT providers, none for `introspection`.
    #[serde(default)]
    pub algorithms: Vec<String>,
    /// Inline keys: a JWKS object (or that object as a JSON string).
    #[serde(default)]
    pub jwks: Option<Value>,
    /// Keys fetched through an Envoy cluster.
    #[serde(default)]
    pub remote_jwks: Option<RemoteSpec>,
    /// Opaque (non-JWT) access tokens, validated by OAuth 2.0 Token Introspection (RFC 7662)
    /// at this endpoint instead of by keys: exactly one of `jwks`, `remote_jwks` and
    /// `introspection` makes the provider's kind.
    #[serde(default)]
    pub introspection: Option<IntrospectionSpec>,
    /// Tolerance for `exp`, `nbf` and `iat`.
    #[serde(default = "default_skew")]
    pub clock_skew_secs: u64,
    /// Refuse tokens without `exp`.
    #[serde(default = "yes")]
    pub require_exp: bool,
    /// Refuse tokens whose `exp - iat` exceeds this (such tokens then need `iat`).
    #[serde(default)]
    pub max_lifetime_secs: Option<u64>,
    /// Where the token is read; default `Authorization: Bearer`.
    #[serde(default = "default_from")]
    pub from: Vec<FromSpec>,
    #[serde(default)]
    pub forward: ForwardSpec,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RemoteSpec {
    /// The Envoy cluster the fetch goes through.
    pub cluster: String,
    /// The JWKS URI (`https://idp.example.com/.well-known/jwks.json`).
    #[serde(default)]
    pub uri: Option<String>,
    /// Find the JWKS URI in `{issuer}/.well-known/openid-configuration` instead.
    #[serde(default)]
    pub discovery: bool,
    #[serde(default = "default_refresh")]
    pub refresh_secs: u64,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Least time between two early fetches asked for by tokens naming an unknown `kid`.
    #[serde(default = "default_refetch_gap")]
    pub unknown_kid_refetch_secs: u64,
}

/// An RFC 7662 introspection endpoint. The answer's `active`, `iss`, `aud`, `exp`, `nbf` and
/// `scope` meet the same provider and route rules as a JWT's claims; its members (`sub`,
/// `client_id`, …) are forwarded as claims are.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct IntrospectionSpec {
    /// The Envoy cluster the calls go through.
    pub cluster: String,
    /// The introspection endpoint (`https://idp.example.com/oauth2/introspect`).
    pub uri: String,
    /// This gateway's client id at the authorization server (HTTP Basic, RFC 6749 §2.3.1).
    pub client_id: String,
    /// The environment variable of the VM (`vm_config.environment_variables`) holding the
    /// client secret: it stays out of the filter configuration.
    pub client_secret_env: String,
    /// How long one call may take, in milliseconds (1 to 10000).
    #[serde(default = "default_introspection_timeout_ms")]
    pub timeout_ms: u64,
    /// Send `token_type_hint=access_token`.
    #[serde(default = "yes")]
    pub token_type_hint: bool,
    /// Longest an active answer is cached (never past its `exp`), in seconds; 0: not cached.
    /// Bounded by the policy's `cache_entries`, shared with verified JWTs.
    #[serde(default = "default_introspection_cache_secs")]
    pub cache_max_secs: u64,
    /// How long an inactive (or refused) token is refused without a call, in seconds.
    #[serde(default = "default_negative_secs")]
    pub negative_cache_secs: u64,
    /// Status when the endpoint gives no usable answer (down, slow, refusing our client):
    /// 503 (default) or 401. Never a pass.
    #[serde(default = "default_keys_unavailable_status")]
    pub unavailable_status: u16,
}

fn default_introspection_timeout_ms() -> u64 {
    1000
}
fn default_introspection_cache_secs() -> u64 {
    300
}
fn default_negative_secs() -> u64 {
    10
}

/// One place a token may be: exactly one of `header`, `cookie`, `query`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct FromSpec {
    #[serde(default)]
    pub header: Option<String>,
    /// The auth-scheme before the token (case-insensitive); `Bearer` for `authorization`.
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub cookie: Option<String>,
    #[serde(default)]
    pub query: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ForwardSpec {
    /// Claims sent upstream: `"sub"` (as `x-jwt-sub`) or `{"claim": "sub", "header": "x-user"}`.
    #[serde(default)]
    pub claims: Vec<ClaimSpec>,
    /// Send the whole payload (base64url) in `x-jwt-payload`.
    #[serde(default)]
    pub payload: bool,
    /// Remove `Authorization` before the request goes upstream.
    #[serde(default)]
    pub strip_authorization: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum ClaimSpec {
    Name(String),
    Mapped { claim: String, header: String },
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    #[serde(rename = "match", default)]
    pub matcher: Option<MatchSpec>,
    /// Provider names accepted here; empty: every provider.
    #[serde(default)]
    pub providers: Vec<String>,
    /// Every one of these scopes is needed.
    #[serde(default)]
    pub scopes_all: Vec<String>,
    /// At least one of these scopes is needed.
    #[serde(default)]
    pub scopes_any: Vec<String>,
    /// A request without a token passes (a token that is present must still be valid).
    #[serde(default)]
    pub allow_anonymous: bool,
    /// Refuse every request here (403 `jwt.no_route`).
    #[serde(default)]
    pub deny: bool,
}

impl Routed for RuleSpec {
    fn matcher(&self) -> Option<&MatchSpec> {
        self.matcher.as_ref()
    }
}

fn deny_rule() -> RuleSpec {
    RuleSpec {
        deny: true,
        ..RuleSpec::default()
    }
}
fn default_realm() -> String {
    "api".into()
}
fn default_max_token_bytes() -> usize {
    8192
}
fn default_cache_entries() -> usize {
    1024
}
fn default_keys_unavailable_status() -> u16 {
    503
}
fn default_skew() -> u64 {
    60
}
fn yes() -> bool {
    true
}
fn default_from() -> Vec<FromSpec> {
    vec![FromSpec {
        header: Some("authorization".into()),
        prefix: Some("Bearer".into()),
        ..FromSpec::default()
    }]
}
fn default_refresh() -> u64 {
    300
}
fn default_timeout_ms() -> u64 {
    5000
}
fn default_refetch_gap() -> u64 {
    30
}

#[derive(Debug)]
enum Keys {
    Inline(Rc<KeySet>),
    Remote(Box<Remote>),
    /// No keys: opaque tokens, asked about.
    Introspection(Box<Introspection>),
}

#[derive(Debug)]
struct Provider {
    name: String,
    issuer: String,
    audiences: Vec<String>,
    algorithms: Vec<&'static str>,
    keys: Keys,
    skew: i64,
    require_exp: bool,
    max_lifetime: Option<i64>,
    from: Vec<Source>,
    claims: Vec<(String, String)>,
    payload: bool,
    strip_authorization: bool,
}

#[derive(Debug)]
struct Rule {
    providers: Vec<usize>,
    scopes: RequiredScopes,
    anonymous: bool,
    deny: bool,
}

#[derive(Debug)]
pub struct JwtAuth {
    providers: Vec<Provider>,
    routes: RouteTable<Rule>,
    realm: String,
    max_token_bytes: usize,
    cache: Cache,
    /// Introspected tokens found inactive or refused, for a short while.
    negative: NegativeCache,
    keys_unavailable_status: u16,
    /// Every header this module may forward: removed from every incoming request.
    forwarded: Vec<String>,
}

pub const PAYLOAD_HEADER: &str = "x-jwt-payload";

fn is_param_name(n: &str) -> bool {
    !n.is_empty()
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn secs(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn compile_source(f: &FromSpec) -> Result<Source, ConfigError> {
    let s =
        match (&f.header, &f.cookie, &f.query) {
            (Some(h), None, None) => {
                if !is_header_name(h) {
                    return Err(ConfigError::new(
                        "header",
                        "a lower-case header name is required",
                    ));
                }
                let prefix = match &f.prefix {
                    Some(p) if p.is_empty() || !p.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                        return Err(ConfigError::new(
                            "prefix",
                            "an auth-scheme name is required",
                        ))
                    }
                    Some(p) => Some(p.clone()),
                    None if h == "authorization" => Some("Bearer".into()),
                    None => None,
                };
                Source::Header {
                    name: h.clone(),
                    prefix,
                }
            }
            (None, Some(c), None) if f.prefix.is_none() => {
                if !is_param_name(c) {
                    return Err(ConfigError::new("cookie", "a cookie name is required"));
                }
                Source::Cookie(c.clone())
            }
            (None, None, Some(q)) if f.prefix.is_none() => {
                if !is_param_name(q) {
                    return Err(ConfigError::new("query", "a parameter name is required"));
                }
                Source::Query(q.clone())
            }
            _ => return Err(ConfigError::new(
                "",
                "exactly one of `header`, `cookie` or `query` (and `prefix` only with `header`)",
            )),
        };
    Ok(s)
}

fn compile_provider(p: &ProviderSpec) -> Result<Provider, ConfigError> {
    if p.name.is_empty() {
        return Err(ConfigError::new("name", "must not be empty"));
    }
    if p.issuer.is_empty() {
        return Err(ConfigError::new("issuer", "must not be empty"));
    }
    if let Some(spec) = &p.introspection {
        return compile_introspection_provider(p, spec);
    }
    if p.algorithms.is_empty() {
        return Err(ConfigError::new(
            "algorithms",
            "list the accepted algorithms explicitly",
        ));
    }
    let mut algorithms = Vec::new();
    for (i, a) in p.algorithms.iter().enumerate() {
        let Some(known) = ALGORITHMS.iter().find(|k| *k == a) else {
            return Err(ConfigError::new(
                format!("algorithms[{i}]"),
                format!(
                    "`{a}` is not an accepted algorithm (one of {})",
                    ALGORITHMS.join(", ")
                ),
            ));
        };
        algorithms.push(*known);
    }
    let keys = match (&p.jwks, &p.remote_jwks) {
        (Some(j), None) => {
            let doc = match j {
                Value::String(s) => serde_json::from_str(s)
                    .map_err(|e| ConfigError::new("jwks", format!("not a JSON document: {e}")))?,
                v => v.clone(),
            };
            let set = compile_jwks(&doc, &algorithms, true)
                .map_err(|(at, why)| ConfigError::new(format!("jwks.{at}"), why))?;
            Keys::Inline(Rc::new(set))
        }
        (None, Some(r)) => Keys::Remote(Box::new(
            compile_remote(r, &p.issuer).map_err(|e| e.within("remote_jwks"))?,
        )),
        _ => {
            return Err(ConfigError::new(
                "",
                "exactly one of `jwks` (inline keys), `remote_jwks` or `introspection` is required",
            ))
        }
    };
    provider_with_keys(p, algorithms, keys)
}

/// A provider of opaque tokens: no algorithms, no keys.
fn compile_introspection_provider(
    p: &ProviderSpec,
    spec: &IntrospectionSpec,
) -> Result<Provider, ConfigError> {
    if p.jwks.is_some() || p.remote_jwks.is_some() {
        return Err(ConfigError::new(
            "",
            "exactly one of `jwks` (inline keys), `remote_jwks` or `introspection` is required",
        ));
    }
    if !p.algorithms.is_empty() {
        return Err(ConfigError::new(
            "algorithms",
            "an introspection provider takes no algorithms (its tokens are opaque)",
        ));
    }
    let at = |f: &str| format!("introspection.{f}");
    if spec.cluster.is_empty() {
        return Err(ConfigError::new(at("cluster"), "must not be empty"));
    }
    let target = parse_uri(&spec.uri)
        .ok_or_else(|| ConfigError::new(at("uri"), "an http:// or https:// URI is required"))?;
    if spec.client_id.is_empty() || spec.client_id.len() > 256 {
        return Err(ConfigError::new(at("client_id"), "1 to 256 characters"));
    }
    let secret = zeroize::Zeroizing::new(std::env::var(&spec.client_secret_env).map_err(|_| {
        ConfigError::new(
            at("client_secret_env"),
            format!(
                "environment variable `{}` is not set (vm_config.environment_variables)",
                spec.client_secret_env
            ),
        )
    })?);
    if secret.is_empty() {
        return Err(ConfigError::new(
            at("client_secret_env"),
            "the client secret is empty",
        ));
    }
    if !(1..=10_000).contains(&spec.timeout_ms) {
        return Err(ConfigError::new(
            at("timeout_ms"),
            "must be between 1 and 10000",
        ));
    }
    if spec.cache_max_secs > 86_400 {
        return Err(ConfigError::new(
            at("cache_max_secs"),
            "must be at most 86400",
        ));
    }
    if spec.negative_cache_secs > 300 {
        return Err(ConfigError::new(
            at("negative_cache_secs"),
            "must be at most 300",
        ));
    }
    if !matches!(spec.unavailable_status, 401 | 503) {
        return Err(ConfigError::new(
            at("unavailable_status"),
            "must be 401 or 503",
        ));
    }
    let endpoint = Introspection::new(
        spec.cluster.clone(),
        target,
        Duration::from_millis(spec.timeout_ms),
        &spec.client_id,
        &secret,
        spec.token_type_hint,
        secs(spec.cache_max_secs),
        secs(spec.negative_cache_secs),
        spec.unavailable_status,
    );
    provider_with_keys(p, Vec::new(), Keys::Introspection(Box::new(endpoint)))
}

/// What every provider kind shares: where tokens are read, what is forwarded.
fn provider_with_keys(
    p: &ProviderSpec,
    algorithms: Vec<&'static str>,
    keys: Keys,
) -> Result<Provider, ConfigError> {
    if p.from.is_empty() {
        return Err(ConfigError::new("from", "name at least one place"));
    }
    let from = p
        .from
        .iter()
        .enumerate()
        .map(|(i, f)| compile_source(f).map_err(|e| e.within(&format!("from[{i}]"))))
        .collect::<Result<Vec<_>, _>>()?;
    let mut claims = Vec::new();
    for (i, c) in p.forward.claims.iter().enumerate() {
        let (claim, header) = match c {
            ClaimSpec::Name(n) => (n.clone(), format!("x-jwt-{}", n.to_ascii_lowercase())),
            ClaimSpec::Mapped { claim, header } => (claim.clone(), header.clone()),
        };
        if claim.is_empty() || !is_header_name(&header) {
            return Err(ConfigError::new(
                format!("forward.claims[{i}]"),
                format!("`{header}` is not a lower-case header name"),
            ));
        }
        claims.push((claim, header));
    }
    Ok(Provider {
        name: p.name.clone(),
        issuer: p.issuer.clone(),
        audiences: p.audiences.clone(),
        algorithms,
        keys,
        skew: secs(p.clock_skew_secs),
        require_exp: p.require_exp,
        max_lifetime: p.max_lifetime_secs.map(secs),
        from,
        claims,
        payload: p.forward.payload,
        strip_authorization: p.forward.strip_authorization,
    })
}

fn compile_remote(r: &RemoteSpec, issuer: &str) -> Result<Remote, ConfigError> {
    if r.cluster.is_empty() {
        return Err(ConfigError::new("cluster", "must not be empty"));
    }
    let (jwks, discovery) = match (&r.uri, r.discovery) {
        (Some(u), false) => {
            let t = parse_uri(u)
                .ok_or_else(|| ConfigError::new("uri", "an http:// or https:// URI is required"))?;
            (Some(t), None)
        }
        (None, true) => {
            let uri = format!(
                "{}/.well-known/openid-configuration",
                issuer.trim_end_matches('/')
            );
            let t = parse_uri(&uri).ok_or_else(|| {
                ConfigError::new("discovery", "needs an http:// or https:// issuer")
            })?;
            (None, Some(t))
        }
        _ => {
            return Err(ConfigError::new(
                "",
                "exactly one of `uri` or `discovery: true` is required",
            ))
        }
    };
    if r.refresh_secs == 0 || r.refresh_secs > 86_400 {
        return Err(ConfigError::new(
            "refresh_secs",
            "must be between 1 and 86400",
        ));
    }
    if r.timeout_ms == 0 || r.timeout_ms > 60_000 {
        return Err(ConfigError::new(
            "timeout_ms",
            "must be between 1 and 60000",
        ));
    }
    if r.unknown_kid_refetch_secs == 0 {
        return Err(ConfigError::new(
            "unknown_kid_refetch_secs",
            "must be at least 1",
        ));
    }
    Ok(Remote::new(
        r.cluster.clone(),
        jwks,
        discovery,
        issuer.to_string(),
        r.refresh_secs,
        Duration::from_millis(r.timeout_ms),
        r.unknown_kid_refetch_secs,
    ))
}

fn compile_rule(spec: &RuleSpec, names: &[String]) -> Result<Rule, ConfigError> {
    let providers = if spec.providers.is_empty() {
        (0..names.len()).collect()
    } else {
        spec.providers
            .iter()
            .enumerate()
            .map(|(i, n)| {
                names.iter().position(|m| m == n).ok_or_else(|| {
                    ConfigError::new(
                        format!("providers[{i}]"),
                        format!("no provider named `{n}`"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    let scopes = RequiredScopes::compile(&spec.scopes_all, &spec.scopes_any)?;
    if spec.deny && (spec.allow_anonymous || !scopes.is_empty()) {
        return Err(ConfigError::new(
            "deny",
            "a denying rule takes no scopes and no allow_anonymous",
        ));
    }
    Ok(Rule {
        providers,
        scopes,
        anonymous: spec.allow_anonymous,
        deny: spec.deny,
    })
}

/// Why a token was refused: code, status and RFC 6750 description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Malformed(&'static str),
    TooLarge,
    Algorithm,
    Issuer,
    Audience,
    Expired,
    ExpRequired,
    NotYetValid,
    IssuedInFuture,
    Lifetime,
    UnknownKid,
    BadSignature,
    KeysUnavailable,
    /// Introspection: the authorization server says the token is not active.
    Inactive,
    /// Introspection: no usable answer from the endpoint.
    IntrospectionUnavailable,
}

impl Failure {
    pub fn code(self) -> &'static str {
        match self {
            Failure::Malformed(_) => "jwt.malformed",
            Failure::TooLarge => "jwt.too_large",
            Failure::Algorithm => "jwt.algorithm",
            Failure::Issuer => "jwt.issuer",
            Failure::Audience => "jwt.audience",
            Failure::Expired => "jwt.expired",
            Failure::ExpRequired => "jwt.exp_required",
            Failure::NotYetValid => "jwt.not_yet_valid",
            Failure::IssuedInFuture => "jwt.issued_in_future",
            Failure::Lifetime => "jwt.lifetime",
            Failure::UnknownKid => "jwt.unknown_kid",
            Failure::BadSignature => "jwt.bad_signature",
            Failure::KeysUnavailable => "jwt.keys_unavailable",
            Failure::Inactive => "jwt.inactive",
            Failure::IntrospectionUnavailable => "jwt.introspection_unavailable",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Failure::Malformed(why) => why,
            Failure::TooLarge => "the token is too large",
            Failure::Algorithm => "the token's algorithm is not accepted",
            Failure::Issuer => "the token's issuer is not accepted here",
            Failure::Audience => "the token is not meant for this audience",
            Failure::Expired => "the token has expired",
            Failure::ExpRequired => "the token has no expiry",
            Failure::NotYetValid => "the token is not valid yet",
            Failure::IssuedInFuture => "the token is issued in the future",
            Failure::Lifetime => "the token's lifetime is longer than allowed",
            Failure::UnknownKid => "the token's key is not known",
            Failure::BadSignature => "the token's signature is not valid",
            Failure::KeysUnavailable => "the issuer's keys are not available yet",
            Failure::Inactive => "the token is not active",
            Failure::IntrospectionUnavailable => "the token could not be checked",
        }
    }
}

impl From<TokenError> for Failure {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Malformed(why) => Failure::Malformed(why),
            TokenError::Algorithm => Failure::Algorithm,
        }
    }
}

fn unix(env: &Env) -> i64 {
    crate::time::unix(env.now)
}

/// A claim as a header value: strings as they are, numbers and booleans in JSON, arrays
/// comma-joined, objects as compact JSON. `None` when it cannot be a header value.
fn header_value(v: &Value) -> Option<String> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
        Value::Null => return None,
        other => other.to_string(),
    };
    let ok = s.len() <= 8192 && !s.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f);
    ok.then_some(s)
}

impl JwtAuth {
    /// The introspection provider among `readers` to ask, when a token failed as a JWT in a
    /// way an opaque token does (it is not a JWT, or not one of a JWT provider's).
    fn introspector(&self, readers: &[usize], f: Failure) -> Option<usize> {
        if !matches!(f, Failure::Malformed(_) | Failure::Issuer) {
            return None;
        }
        readers.iter().copied().find(|&i| {
            self.providers
                .get(i)
                .is_some_and(|p| matches!(p.keys, Keys::Introspection(_)))
        })
    }

    /// Ask the provider's endpoint about an opaque token, unless it was found bad just now.
    fn introspect(&self, index: usize, raw: &str, ops: Vec<HeaderOp>, now: i64) -> Verdict {
        let Some(Keys::Introspection(endpoint)) = self.providers.get(index).map(|p| &p.keys) else {
            return Verdict::Deny(self.reject(Failure::Issuer));
        };
        let key = cache::digest(raw);
        if let Some(f) = self.negative.get(&key, now) {
            return Verdict::Deny(self.reject(f));
        }
        let call = endpoint.request(index as u64, raw);
        let state = Introspecting {
            provider: index,
            key,
            ops,
        };
        match Ask::new(vec![call], Resume::new(state)) {
            Some(ask) => Verdict::Ask(ask),
            None => Verdict::Deny(self.introspection_unavailable(endpoint)),
        }
    }

    /// A token the endpoint or the checks refused: denied, and refused without a call for the
    /// provider's `negative_cache_secs`.
    fn refuse_introspected(
        &self,
        endpoint: &Introspection,
        key: cache::Digest32,
        f: Failure,
        now: i64,
    ) -> Verdict {
        if endpoint.negative_secs > 0 {
            self.negative
                .insert(key, f, now.saturating_add(endpoint.negative_secs));
        }
        Verdict::Deny(self.reject(f))
    }

    fn introspection_unavailable(&self, endpoint: &Introspection) -> Rejection {
        let f = Failure::IntrospectionUnavailable;
        if endpoint.unavailable_status == 503 {
            return Rejection::new(503, f.code(), f.description());
        }
        self.reject(f)
    }

    /// The route's scope rules and the provider's forwarding, for a verified token.
    fn grant(&self, rule: &Rule, verified: &Verified, mut ops: Vec<HeaderOp>) -> Verdict {
        let shortfall = rule
            .scopes
            .shortfall(|s| verified.scopes.iter().any(|g| g == s));
        if let Some(missing) = shortfall {
            let (scope, detail) = match missing {
                ScopeShortfall::All(l) => (l.join(" "), "these scopes are required"),
                ScopeShortfall::Any(l) => (l.join(" "), "one of these scopes is required"),
            };
            let detail = format!("{detail}: {scope}");
            return Verdict::Deny(Rejection::new(403, "jwt.scope", detail).with_header(
                "www-authenticate",
                self.challenge(
                    Some(("insufficient_scope", "the token lacks a required scope")),
                    Some(&scope),
                ),
            ));
        }
        let Some(p) = self.providers.get(verified.provider) else {
            return Verdict::Deny(self.reject(Failure::Issuer));
        };
        for (claim, header) in &p.claims {
            if let Some(v) = verified.claims.get(claim).and_then(header_value) {
                ops.push(HeaderOp::Set(header.clone(), v));
            }
        }
        if p.payload {
            ops.push(HeaderOp::Set(
                PAYLOAD_HEADER.into(),
                verified.payload_b64.clone(),
            ));
        }
        if p.strip_authorization {
            ops.push(HeaderOp::Remove("authorization".into()));
        }
        pass(ops)
    }

    fn challenge(&self, error: Option<(&str, &str)>, scope: Option<&str>) -> String {
        let mut h = format!("Bearer realm=\"{}\"", self.realm);
        if let Some((e, d)) = error {
            h.push_str(&format!(", error=\"{e}\", error_description=\"{d}\""));
        }
        if let Some(s) = scope {
            h.push_str(&format!(", scope=\"{s}\""));
        }
        h
    }

    fn reject(&self, f: Failure) -> Rejection {
        if f == Failure::KeysUnavailable && self.keys_unavailable_status == 503 {
            return Rejection::new(503, f.code(), f.description());
        }
        Rejection::new(401, f.code(), f.description()).with_header(
            "www-authenticate",
            self.challenge(Some(("invalid_token", f.description())), None),
        )
    }

    /// RFC 6750 §3.1: more than one credential, or one method used twice, is
    /// `invalid_request`, status 400.
    fn multiple_credentials(&self) -> Rejection {
        let why = "the request carries more than one credential";
        Rejection::new(400, "jwt.multiple_credentials", why).with_header(
            "www-authenticate",
            self.challenge(Some(("invalid_request", why)), None),
        )
    }

    fn keys_of(&self, p: &Provider) -> Option<Rc<KeySet>> {
        match &p.keys {
            Keys::Inline(k) => Some(k.clone()),
            Keys::Remote(r) => r.keys(),
            Keys::Introspection(_) => None,
        }
    }

    /// Verify a token for one of `accepted` providers.
    fn verify(&self, raw: &str, accepted: &[usize], now: i64) -> Result<Rc<Verified>, Failure> {
        if raw.len() > self.max_token_bytes {
            return Err(Failure::TooLarge);
        }
        let key = cache::digest(raw);
        if self.cache.enabled() {
            if let Some(hit) = self.cache.get(&key, now) {
                if !accepted.contains(&hit.provider) {
                    return Err(Failure::Issuer);
                }
                return Ok(hit);
            }
        }
        let parsed = token::parse(raw)?;
        let iss = parsed.claims.get("iss").and_then(Value::as_str);
        let (index, p) = accepted
            .iter()
            .filter_map(|&i| self.providers.get(i).map(|p| (i, p)))
            .filter(|(_, p)| !matches!(p.keys, Keys::Introspection(_)))
            .find(|(_, p)| Some(p.issuer.as_str()) == iss)
            .ok_or(Failure::Issuer)?;
        if !p.algorithms.iter().any(|a| *a == parsed.alg) {
            return Err(Failure::Algorithm);
        }
        let valid_until = check_claims(p, &parsed.claims, now)?;
        let keys = self.keys_of(p).ok_or(Failure::KeysUnavailable)?;
        match keys.verify(raw, &parsed.alg, parsed.kid.as_deref()) {
            Ok(()) => {}
            Err(SigError::UnknownKid) => {
                if let (Keys::Remote(r), Some(_)) = (&p.keys, &parsed.kid) {
                    r.wish_refetch();
                }
                return Err(Failure::UnknownKid);
            }
            Err(SigError::BadSignature) => return Err(Failure::BadSignature),
        }
        let verified = Rc::new(Verified {
            provider: index,
            valid_until,
            scopes: token::scopes(&parsed.claims),
            payload_b64: parsed.payload_b64.to_string(),
            claims: parsed.claims,
        });
        self.cache.insert(key, verified.clone(), now);
        Ok(verified)
    }

    /// The verified-token cache's size (for tests and the bench).
    pub fn cached_tokens(&self) -> usize {
        self.cache.len()
    }
}

/// What a request waits on the introspection endpoint with.
struct Introspecting {
    provider: usize,
    key: cache::Digest32,
    /// The header edits made before asking (forwarded headers removed).
    ops: Vec<HeaderOp>,
}

/// The time claims, audience and lifetime (RFC 7519 §4.1). Returns the last second the token
/// may be accepted at.
fn check_claims(p: &Provider, claims: &Map<String, Value>, now: i64) -> Result<i64, Failure> {
    let date = |name: &str| {
        token::numeric_date(claims, name)
            .map_err(|()| Failure::Malformed("a time claim is not a valid NumericDate"))
    };
    let (exp, nbf, iat) = (date("exp")?, date("nbf")?, date("iat")?);
    if !token::registered_claims_well_typed(claims) {
        return Err(Failure::Malformed(
            "a registered claim does not have its type (RFC 7519 section 4.1)",
        ));
    }
    let late = now.saturating_sub(p.skew);
    let early = now.saturating_add(p.skew);
    let valid_until = match exp {
        Some(e) if e < late => return Err(Failure::Expired),
        Some(e) => e.saturating_add(p.skew),
        None if p.require_exp => return Err(Failure::ExpRequired),
        None => now.saturating_add(CACHE_TTL_NO_EXP),
    };
    if nbf.is_some_and(|n| n > early) {
        return Err(Failure::NotYetValid);
    }
    if iat.is_some_and(|i| i > early) {
        return Err(Failure::IssuedInFuture);
    }
    if let Some(max) = p.max_lifetime {
        match (iat.or(nbf), exp) {
            (Some(start), Some(end)) if end.saturating_sub(start) <= max => {}
            _ => return Err(Failure::Lifetime),
        }
    }
    if !p.audiences.is_empty() {
        let ok = match claims.get("aud") {
            Some(Value::String(a)) => p.audiences.contains(a),
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(Value::as_str)
                .any(|a| p.audiences.iter().any(|x| x == a)),
            _ => false,
        };
        if !ok {
            return Err(Failure::Audience);
        }
    }
    Ok(valid_until)
}

impl JwtAuth {
    /// [`Control::build`] for a host with these capabilities (an `introspection` provider
    /// needs request-time callouts).
    pub fn build_with(policy: Policy, caps: HostCapabilities) -> Result<Self, ConfigError> {
        if policy.providers.is_empty() {
            return Err(ConfigError::new("providers", "name at least one provider"));
        }
        let mut providers = Vec::new();
        for (i, p) in policy.providers.iter().enumerate() {
            if policy.providers.iter().take(i).any(|q| q.name == p.name) {
                return Err(ConfigError::new(
                    format!("providers[{i}].name"),
                    format!("`{}` is used twice", p.name),
                ));
            }
            providers.push(compile_provider(p).map_err(|e| e.within(&format!("providers[{i}]")))?);
        }
        if !caps.request_callouts {
            if let Some(i) = policy
                .providers
                .iter()
                .position(|p| p.introspection.is_some())
            {
                return Err(ConfigError::new(
                    format!("providers[{i}].introspection"),
                    NEEDS_REQUEST_CALLOUTS,
                ));
            }
        }
        let names: Vec<String> = policy.providers.iter().map(|p| p.name.clone()).collect();
        let routes =
            RouteTable::compile(&policy.routes, &policy.default, |r| compile_rule(r, &names))?;
        if policy.realm.is_empty()
            || !policy
                .realm
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\' || b == b' ')
        {
            return Err(ConfigError::new(
                "realm",
                "printable ASCII without quotes or backslashes",
            ));
        }
        if policy.max_token_bytes < 64 || policy.max_token_bytes > MAX_TOKEN_LIMIT {
            return Err(ConfigError::new(
                "max_token_bytes",
                format!("must be between 64 and {MAX_TOKEN_LIMIT}"),
            ));
        }
        if policy.cache_entries > MAX_CACHE_ENTRIES {
            return Err(ConfigError::new(
                "cache_entries",
                format!("must be at most {MAX_CACHE_ENTRIES}"),
            ));
        }
        if !matches!(policy.keys_unavailable_status, 401 | 503) {
            return Err(ConfigError::new(
                "keys_unavailable_status",
                "must be 401 or 503",
            ));
        }
        let mut forwarded: Vec<String> = Vec::new();
        for p in &providers {
            let names = p.claims.iter().map(|(_, h)| h.clone());
            let payload = p.payload.then(|| PAYLOAD_HEADER.to_string());
            for h in names.chain(payload) {
                if !forwarded.contains(&h) {
                    forwarded.push(h);
                }
            }
        }
        Ok(JwtAuth {
            providers,
            routes,
            realm: policy.realm,
            max_token_bytes: policy.max_token_bytes,
            cache: Cache::new(policy.cache_entries),
            negative: NegativeCache::new(policy.cache_entries),
            keys_unavailable_status: policy.keys_unavailable_status,
            forwarded,
        })
    }
}

impl Control for JwtAuth {
    type Policy = Policy;
    const NAME: &'static str = "jwt_auth";

    fn build(policy: Policy) -> Result<Self, ConfigError> {
        Self::build_with(policy, HostCapabilities::CURRENT)
    }

    fn on_request(&self, req: &RequestView, env: &Env) -> Verdict {
        let (rule, _) = self.routes.select(req);
        if rule.deny {
            return Verdict::Deny(Rejection::new(
                403,
                "jwt.no_route",
                "no rule allows this request",
            ));
        }
        // The one token at the places the accepted providers read, and the providers that read
        // it where it was (a token is only matched to a provider that looks there).
        let sources = rule.providers.iter().flat_map(|&i| {
            self.providers
                .get(i)
                .into_iter()
                .flat_map(move |p| p.from.iter().map(move |s| (i, s)))
        });
        let (token, readers) = match credentials::find(req, sources) {
            Ok(Some(found)) => (Some(found.token), found.readers),
            Ok(None) => (None, Vec::new()),
            Err(Problem::Multiple) => return Verdict::Deny(self.multiple_credentials()),
            Err(Problem::NotText) => {
                return Verdict::Deny(self.reject(Failure::Malformed("the credential is not text")))
            }
        };
        let mut ops: Vec<HeaderOp> = self
            .forwarded
            .iter()
            .map(|h| HeaderOp::Remove(h.clone()))
            .collect();
        // CGI, PHP, WSGI and Rack read `x_jwt_sub` as `x-jwt-sub`: strip that spelling too.
        for (k, _) in req.fields() {
            if k.contains('_') && self.forwarded.contains(&k.replace('_', "-")) {
                ops.push(HeaderOp::Remove(k.clone()));
            }
        }
        let Some(raw) = token else {
            if rule.anonymous {
                return pass(ops);
            }
            return Verdict::Deny(
                Rejection::new(401, "jwt.missing", "a bearer token is required")
                    .with_header("www-authenticate", self.challenge(None, None)),
            );
        };
        let now = unix(env);
        let verified = match self.verify(&raw, &readers, now) {
            Ok(v) => v,
            Err(f) => match self.introspector(&readers, f) {
                Some(index) => return self.introspect(index, &raw, ops, now),
                None => return Verdict::Deny(self.reject(f)),
            },
        };
        self.grant(rule, &verified, ops)
    }

    fn on_answers(
        &self,
        req: &RequestView,
        _body: Option<&[u8]>,
        state: &Resume,
        answers: &[Answer],
        env: &Env,
    ) -> Verdict {
        let Some(asked) = state.get::<Introspecting>() else {
            return Verdict::Deny(crate::control::unhandled_answers());
        };
        let Some((p, endpoint)) = self
            .providers
            .get(asked.provider)
            .and_then(|p| match &p.keys {
                Keys::Introspection(e) => Some((p, e)),
                _ => None,
            })
        else {
            return Verdict::Deny(crate::control::unhandled_answers());
        };
        let now = unix(env);
        let said = match answers.first() {
            Some(a) => introspection::parse_answer(a),
            None => Said::Unavailable("no answer"),
        };
        let (members, payload_b64) = match said {
            Said::Active(members, b64) => (members, b64),
            Said::Inactive => {
                return self.refuse_introspected(endpoint, asked.key, Failure::Inactive, now)
            }
            Said::Unavailable(why) => {
                log::warn!(
                    "portcullis jwt_auth: provider {}: introspection failed: {why}",
                    p.name
                );
                return Verdict::Deny(self.introspection_unavailable(endpoint));
            }
        };
        let checked = introspection::check(
            &members,
            &p.issuer,
            &p.audiences,
            p.skew,
            p.require_exp,
            now,
        );
        let valid_until = match checked {
            Ok(v) => v,
            Err(f) => return self.refuse_introspected(endpoint, asked.key, f, now),
        };
        let verified = Rc::new(Verified {
            provider: asked.provider,
            // Cached until `exp` (with the skew), never longer than the provider allows.
            valid_until: valid_until.min(now.saturating_add(endpoint.cache_max_secs)),
            scopes: token::scopes(&members),
            payload_b64,
            claims: members,
        });
        if endpoint.cache_max_secs > 0 {
            self.cache.insert(asked.key, verified.clone(), now);
        }
        let (rule, _) = self.routes.select(req);
        self.grant(rule, &verified, asked.ops.clone())
    }

    fn tick_period(&self) -> Option<Duration> {
        self.providers
            .iter()
            .any(|p| matches!(p.keys, Keys::Remote(_)))
            .then_some(Duration::from_secs(1))
    }

    fn on_tick(&self, env: &Env) -> Vec<Callout> {
        let now = unix(env);
        self.providers
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match &p.keys {
                Keys::Remote(r) => r.on_tick(now, (i as u64) * 2),
                Keys::Inline(_) | Keys::Introspection(_) => None,
            })
            .collect()
    }

    fn on_callout_response(&self, tag: u64, resp: Option<CalloutResponse>, env: &Env) {
        let index = usize::try_from(tag / 2).unwrap_or(usize::MAX);
        let Some(p) = self.providers.get(index) else {
            return;
        };
        if let Keys::Remote(r) = &p.keys {
            let update = r.on_response(tag % 2 == 1, resp, &p.algorithms, unix(env), &p.name);
            if update == Update::KeysChanged {
                self.cache.forget_provider(index);
            }
        }
    }
}

fn pass(ops: Vec<HeaderOp>) -> Verdict {
    if ops.is_empty() {
        Verdict::Continue
    } else {
        Verdict::Mutate(ops)
    }
}

#[cfg(test)]
mod tests;
