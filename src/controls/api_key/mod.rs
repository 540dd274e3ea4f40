//! api-key: API keys, stored in the policy only as SHA-256 hashes, with rotation.
//!
//! Each key has an `id`, a `client`, scopes and an optional validity window. Several keys per
//! client may be valid at once; inside the `grace` period before its `not_after` a key still
//! works but responses carry `Deprecation` (RFC 9745) and `Sunset` (RFC 8594). The key never
//! reaches the upstream; the client, key id and scopes do, in headers whose incoming copies are
//! always stripped.

mod keys;

pub use keys::{KeyError, Locations, Source, MAX_KEY_LEN};

use std::collections::HashMap;

use serde::Deserialize;

use crate::config::{
    check_scope_tokens, is_header_name, MatchSpec, RequiredScopes, RouteTable, Routed,
    ScopeShortfall,
};
use crate::control::{ConfigError, Control, Env};
use crate::params::path_without_param;
use crate::reject::Rejection;
use crate::request::{RequestView, ResponseView};
use crate::time::{
    check_key_window, http_date, key_window, parse_duration, parse_rfc3339, KeyWindow,
};
use crate::verdict::{HeaderOp, Verdict};

/// The note a request in its key's grace period leaves for the response: key index + 1.
const GRACE_NOTE: &str = "api_key.grace";

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The accepted keys, as hashes.
    #[serde(default)]
    pub keys: Vec<KeySpec>,
    /// Before `not_after`, how long a key is announced as deprecated (`7d`, `12h`, `0`).
    #[serde(default = "default_grace")]
    pub grace: String,
    /// Request header carrying the key; `null` to not look there.
    #[serde(default = "default_header")]
    pub header: Option<String>,
    /// Also accept `Authorization: ApiKey <key>`.
    #[serde(default)]
    pub authorization: bool,
    /// Also accept the key in this query parameter (removed from the path before the
    /// upstream). Off unless set: URLs end up in logs and browser histories.
    #[serde(default)]
    pub query_param: Option<String>,
    /// Upstream header with the client of the key.
    #[serde(default = "default_client_header")]
    pub client_header: String,
    /// Upstream header with the key's scopes, space-separated.
    #[serde(default = "default_scopes_header")]
    pub scopes_header: String,
    /// Upstream header with the key's id.
    #[serde(default = "default_id_header")]
    pub id_header: String,
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
pub struct KeySpec {
    /// Unique; names the key in logs and in the `id_header`.
    pub id: String,
    pub client: String,
    /// SHA-256 of the key, 64 hex digits (`portcullis keygen` prints it).
    pub sha256: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// RFC 3339 (`2026-03-01T00:00:00Z`): not valid before.
    #[serde(default)]
    pub not_before: Option<String>,
    /// RFC 3339: not valid from this instant on.
    #[serde(default)]
    pub not_after: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    #[serde(rename = "match", default)]
    pub matcher: Option<MatchSpec>,
    /// The key must have every one of these scopes.
    #[serde(default)]
    pub scopes_all: Vec<String>,
    /// The key must have at least one of these scopes (when not empty).
    #[serde(default)]
    pub scopes_any: Vec<String>,
    /// A request without a key passes (anonymously); a key that is present is still checked.
    #[serde(default)]
    pub optional: bool,
}

fn default_grace() -> String {
    "7d".into()
}
fn default_header() -> Option<String> {
    Some("x-api-key".into())
}
fn default_client_header() -> String {
    "x-apikey-client".into()
}
fn default_scopes_header() -> String {
    "x-apikey-scopes".into()
}
fn default_id_header() -> String {
    "x-apikey-id".into()
}

impl Routed for RuleSpec {
    fn matcher(&self) -> Option<&MatchSpec> {
        self.matcher.as_ref()
    }
}

#[derive(Debug)]
struct Key {
    id: String,
    client: String,
    scopes: Vec<String>,
    /// Space-separated, for the upstream header.
    scopes_value: String,
    not_before: Option<i64>,
    not_after: Option<i64>,
}

#[derive(Debug)]
struct Rule {
    scopes: RequiredScopes,
    optional: bool,
}

#[derive(Debug)]
pub struct ApiKey {
    keys: Vec<Key>,
    /// SHA-256 of the key -> index in `keys`. Looking the presented key up by its hash leaks
    /// nothing useful through timing: the hash of a high-entropy key is unpredictable, so how
    /// far a lookup gets says nothing about any stored key (and the key itself is never
    /// compared byte by byte).
    by_hash: HashMap<[u8; 32], usize>,
    grace: i64,
    locations: Locations,
    client_header: String,
    scopes_header: String,
    id_header: String,
    routes: RouteTable<Rule>,
}

/// SHA-256 of a key, as the policy stores it (lower-case hex).
pub fn sha256_hex(key: &[u8]) -> String {
    crate::crypto::sha256(key)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn parse_hash(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Names that travel in headers: visible ASCII, no separators that would split a list.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:/@+~".contains(&b))
}

fn compile_key(k: &KeySpec) -> Result<(Key, [u8; 32]), ConfigError> {
    if !is_name(&k.id) {
        return Err(ConfigError::new(
            "id",
            "must be a non-empty name without spaces",
        ));
    }
    if !is_name(&k.client) {
        return Err(ConfigError::new(
            "client",
            "must be a non-empty name without spaces",
        ));
    }
    let hash = parse_hash(&k.sha256).ok_or_else(|| {
        ConfigError::new(
            "sha256",
            "must be the SHA-256 of the key as 64 hex digits (never the key itself)",
        )
    })?;
    check_scope_tokens("scopes", &k.scopes)?;
    let when = |field: &str, v: &Option<String>| {
        v.as_deref()
            .map(parse_rfc3339)
            .transpose()
            .map_err(|e| ConfigError::new(field, e))
    };
    let (not_before, not_after) = (
        when("not_before", &k.not_before)?,
        when("not_after", &k.not_after)?,
    );
    check_key_window(not_before, not_after).map_err(|e| ConfigError::new("not_after", e))?;
    Ok((
        Key {
            id: k.id.clone(),
            client: k.client.clone(),
            scopes: k.scopes.clone(),
            scopes_value: k.scopes.join(" "),
            not_before,
            not_after,
        },
        hash,
    ))
}

fn compile_rule(spec: &RuleSpec) -> Result<Rule, ConfigError> {
    Ok(Rule {
        scopes: RequiredScopes::compile(&spec.scopes_all, &spec.scopes_any)?,
        optional: spec.optional,
    })
}

fn unauthorized(code: &'static str, detail: &str) -> Rejection {
    Rejection::new(401, code, detail).with_header("www-authenticate", "ApiKey")
}

fn unix(env: &Env) -> i64 {
    crate::time::unix(env.now)
}

impl ApiKey {
    /// Remove the key and any incoming copy of the identity headers.
    fn strip(&self, source: Option<Source>, req: &RequestView) -> Vec<HeaderOp> {
        let mut ops = Vec::new();
        if let Some(h) = &self.locations.header {
            ops.push(HeaderOp::Remove(h.clone()));
        }
        if source == Some(Source::Authorization) {
            ops.push(HeaderOp::Remove("authorization".into()));
        }
        if let (Some(Source::Query), Some(p)) = (source, &self.locations.query_param) {
            ops.push(HeaderOp::Set(
                ":path".into(),
                path_without_param(&req.raw_path, p),
            ));
        }
        let identity = [&self.client_header, &self.scopes_header, &self.id_header];
        for h in identity {
            ops.push(HeaderOp::Remove(h.clone()));
        }
        // CGI, PHP, WSGI and Rack read `x_apikey_id` as `x-apikey-id`: strip that spelling too.
        for (k, _) in req.fields() {
            if k.contains('_') && identity.contains(&&k.replace('_', "-")) {
                ops.push(HeaderOp::Remove(k.clone()));
            }
        }
        ops
    }
}

impl Control for ApiKey {
    type Policy = Policy;
    const NAME: &'static str = "api_key";

    fn build(policy: Policy) -> Result<Self, ConfigError> {
        let mut keys = Vec::with_capacity(policy.keys.len());
        let mut by_hash = HashMap::with_capacity(policy.keys.len());
        for (i, spec) in policy.keys.iter().enumerate() {
            let at = format!("keys[{i}]");
            let (key, hash) = compile_key(spec).map_err(|e| e.within(&at))?;
            if keys.iter().any(|k: &Key| k.id == key.id) {
                return Err(ConfigError::new(
                    format!("{at}.id"),
                    format!("duplicate id `{}`", key.id),
                ));
            }
            if by_hash.insert(hash, i).is_some() {
                return Err(ConfigError::new(
                    format!("{at}.sha256"),
                    "the same key hash appears twice",
                ));
            }
            keys.push(key);
        }
        let grace = parse_duration(&policy.grace).map_err(|e| ConfigError::new("grace", e))?;
        for (field, h) in [
            ("header", policy.header.as_deref()),
            ("client_header", Some(policy.client_header.as_str())),
            ("scopes_header", Some(policy.scopes_header.as_str())),
            ("id_header", Some(policy.id_header.as_str())),
        ] {
            if let Some(h) = h.filter(|h| !is_header_name(h) || *h == "authorization") {
                return Err(ConfigError::new(
                    field,
                    format!("`{h}` is not a lower-case header name portcullis may set"),
                ));
            }
        }
        if let Some(q) = &policy.query_param {
            if q.is_empty()
                || !q
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(ConfigError::new(
                    "query_param",
                    "not a plain parameter name",
                ));
            }
        }
        if policy.header.is_none() && !policy.authorization && policy.query_param.is_none() {
            return Err(ConfigError::new(
                "header",
                "no key location: set `header`, `authorization` or `query_param`",
            ));
        }
        let routes = RouteTable::compile(&policy.routes, &policy.default, compile_rule)?;
        Ok(ApiKey {
            keys,
            by_hash,
            grace: i64::try_from(grace).unwrap_or(i64::MAX),
            locations: Locations {
                header: policy.header,
                authorization: policy.authorization,
                query_param: policy.query_param,
            },
            client_header: policy.client_header,
            scopes_header: policy.scopes_header,
            id_header: policy.id_header,
            routes,
        })
    }

    fn on_request(&self, req: &RequestView, env: &Env) -> Verdict {
        let (rule, _) = self.routes.select(req);
        let (presented, source) = match self.locations.extract(req) {
            Ok(Some(found)) => found,
            Ok(None) if rule.optional => return Verdict::Mutate(self.strip(None, req)),
            Ok(None) => {
                return Verdict::Deny(unauthorized(
                    "api_key.missing",
                    "this endpoint needs an API key",
                ))
            }
            Err(e) => return Verdict::Deny(unauthorized("api_key.malformed", e.detail())),
        };
        let hash = crate::crypto::sha256(&presented);
        let Some((index, key)) = self
            .by_hash
            .get(&hash)
            .and_then(|&i| self.keys.get(i).map(|k| (i, k)))
        else {
            return Verdict::Deny(unauthorized(
                "api_key.unknown",
                "the API key is not recognised",
            ));
        };
        let now = unix(env);
        match key_window(now, key.not_before, key.not_after) {
            KeyWindow::Valid => {}
            KeyWindow::NotYetValid => {
                return Verdict::Deny(unauthorized(
                    "api_key.not_yet_valid",
                    "the API key is not valid yet",
                ))
            }
            KeyWindow::Expired => {
                return Verdict::Deny(unauthorized("api_key.expired", "the API key has expired"))
            }
        }
        if let Some(na) = key.not_after {
            if now >= na.saturating_sub(self.grace) {
                req.note(GRACE_NOTE, index as u64 + 1);
            }
        }
        let shortfall = rule.scopes.shortfall(|s| key.scopes.iter().any(|k| k == s));
        if let Some(missing) = shortfall {
            let need = match missing {
                ScopeShortfall::All(l) => format!("all of: {}", l.join(" ")),
                ScopeShortfall::Any(l) => format!("one of: {}", l.join(" ")),
            };
            return Verdict::Deny(Rejection::new(
                403,
                "api_key.scope",
                format!("the API key lacks a required scope ({need})"),
            ));
        }
        let mut ops = self.strip(Some(source), req);
        ops.push(HeaderOp::Set(
            self.client_header.clone(),
            key.client.clone(),
        ));
        ops.push(HeaderOp::Set(self.id_header.clone(), key.id.clone()));
        if !key.scopes.is_empty() {
            ops.push(HeaderOp::Set(
                self.scopes_header.clone(),
                key.scopes_value.clone(),
            ));
        }
        Verdict::Mutate(ops)
    }

    fn on_response(&self, req: &RequestView, _resp: &ResponseView, _env: &Env) -> Verdict {
        let Some(key) = req
            .noted(GRACE_NOTE)
            .and_then(|n| usize::try_from(n).ok()?.checked_sub(1))
            .and_then(|i| self.keys.get(i))
        else {
            return Verdict::Continue;
        };
        let Some(not_after) = key.not_after else {
            return Verdict::Continue;
        };
        let deprecated_at = not_after.saturating_sub(self.grace);
        Verdict::Mutate(vec![
            HeaderOp::Set("deprecation".into(), format!("@{deprecated_at}")),
            HeaderOp::Set("sunset".into(), http_date(not_after)),
        ])
    }
}

#[cfg(test)]
mod tests;
