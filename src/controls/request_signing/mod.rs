//! request-signing: HTTP Message Signatures (RFC 9421, `hmac-sha256`) with Content-Digest
//! (RFC 9530), replay protection and key rotation.
//!
//! - `verify` mode (ingress): a request must carry a signature by an accepted, currently valid
//!   key, covering what the route requires, created within the window, with a nonce not seen
//!   before; a covered `Content-Digest` must match the body.
//! - `sign` mode (egress): the request leaves with `Content-Digest`, `Signature-Input` and
//!   `Signature` by the newest valid key.
//!
//! The RFC logic lives in [`crate::signing`], shared with the CLI and Rust clients.

mod keys;
mod nonce;

pub use keys::KeySpec;
pub use nonce::{NonceCache, Outcome as NonceOutcome};

use serde::Deserialize;

use crate::config::{MatchSpec, RouteTable, Routed};
use crate::control::{ConfigError, Control, Env};
use crate::reject::Rejection;
use crate::request::RequestView;
use crate::signing::{self, base, sfv, Key, Message, SigError, SignRequest, VerifyOptions};
use crate::verdict::{HeaderOp, Verdict};

/// Largest body a policy may let us buffer for its digest.
pub const MAX_BODY_LIMIT: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Ingress: check signatures.
    #[default]
    Verify,
    /// Egress: sign outgoing requests.
    Sign,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub mode: Mode,
    /// The shared secrets. Several may be valid at once (rotation).
    pub keys: Vec<KeySpec>,
    /// verify: the signature label to check (default: the only signature); sign: the label
    /// written (default `sig1`).
    #[serde(default)]
    pub label: Option<String>,
    /// verify: how old `created` may be, in seconds.
    #[serde(default = "default_window")]
    pub window_secs: u64,
    /// verify: tolerated clock difference either way, in seconds.
    #[serde(default = "default_skew")]
    pub clock_skew_secs: u64,
    /// verify: a `nonce` is required and each is accepted once. sign: add one.
    #[serde(default = "yes")]
    pub require_nonce: bool,
    /// verify: about how many nonces are remembered at once (per Envoy instance).
    #[serde(default = "default_capacity")]
    pub nonce_capacity: usize,
    /// Largest body buffered for its digest (413 beyond).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
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
    /// false: requests on this route are neither checked nor signed.
    #[serde(default = "yes")]
    pub required: bool,
    /// verify: components a signature must cover; sign: components covered (header fields the
    /// request lacks are left out). `@method`, `@authority`, `@path`, `@query`, `@target-uri`,
    /// `@request-target`, `@scheme`, any lower-case field name (with `;sf`, `;key="k"`, `;bs`).
    #[serde(default = "default_components")]
    pub components: Vec<String>,
    /// A request with a body must cover `content-digest` (sign: add and cover it).
    #[serde(default = "yes")]
    pub require_digest: bool,
    /// verify: key ids accepted on this route; empty: every key.
    #[serde(default)]
    pub key_ids: Vec<String>,
}

fn default_window() -> u64 {
    300
}
fn default_skew() -> u64 {
    30
}
fn default_capacity() -> usize {
    100_000
}
fn default_max_body() -> usize {
    1024 * 1024
}
fn yes() -> bool {
    true
}
fn default_components() -> Vec<String> {
    ["@method", "@authority", "@path", "@query"]
        .map(String::from)
        .to_vec()
}

impl Default for RuleSpec {
    fn default() -> Self {
        RuleSpec {
            matcher: None,
            required: true,
            components: default_components(),
            require_digest: true,
            key_ids: Vec::new(),
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
    required: bool,
    components: Vec<sfv::Item>,
    /// The same, as written (for signing).
    component_specs: Vec<String>,
    require_digest: bool,
    key_ids: Vec<String>,
}

#[derive(Debug)]
pub struct RequestSigning {
    mode: Mode,
    keys: Vec<Key>,
    label: Option<String>,
    window_secs: u64,
    skew_secs: u64,
    require_nonce: bool,
    max_body_bytes: usize,
    nonces: NonceCache,
    routes: RouteTable<Rule>,
}

fn compile_rule(spec: &RuleSpec, keys: &[Key]) -> Result<Rule, ConfigError> {
    if spec.components.is_empty() {
        // A signature over nothing but its own parameters could be moved to any request.
        return Err(ConfigError::new(
            "components",
            "name at least one component (e.g. @method, @path)",
        ));
    }
    let mut components = Vec::with_capacity(spec.components.len());
    for (i, c) in spec.components.iter().enumerate() {
        let item = base::parse_component(c)
            .map_err(|e| ConfigError::new(format!("components[{i}]"), e.to_string()))?;
        if components.contains(&item) {
            return Err(ConfigError::new(
                format!("components[{i}]"),
                format!("`{c}` is listed twice"),
            ));
        }
        if base::component_name(&item).is_some_and(|n| n == "signature" || n == "signature-input") {
            return Err(ConfigError::new(
                format!("components[{i}]"),
                "a signature cannot cover its own fields",
            ));
        }
        components.push(item);
    }
    for (i, k) in spec.key_ids.iter().enumerate() {
        if !keys.iter().any(|key| key.keyid == *k) {
            return Err(ConfigError::new(
                format!("key_ids[{i}]"),
                format!("`{k}` is not in `keys`"),
            ));
        }
    }
    Ok(Rule {
        required: spec.required,
        components,
        component_specs: spec.components.clone(),
        require_digest: spec.require_digest,
        key_ids: spec.key_ids.clone(),
    })
}

use crate::time::unix_secs as secs;

/// A signature denial: 401 problem+json (replay-cache failures are answered in `remember`).
fn reject(e: &SigError) -> Rejection {
    Rejection::new(401, e.code(), e.to_string()).with_header("www-authenticate", "Signature")
}

impl Rule {
    fn covers_digest(&self) -> bool {
        self.component_specs.iter().any(|c| c == "content-digest")
    }
}

impl RequestSigning {
    fn verify_options(&self, rule: &Rule, now: u64) -> VerifyOptions {
        VerifyOptions {
            label: self.label.clone(),
            required: rule.components.clone(),
            require_digest: rule.require_digest,
            key_ids: rule.key_ids.clone(),
            window_secs: self.window_secs,
            skew_secs: self.skew_secs,
            require_nonce: self.require_nonce,
            now,
        }
    }

    /// The replay check, last: only a signature that verified may take a place in the cache.
    /// Other signatures the request carried that were skipped are reported (counted, logged).
    fn remember(&self, v: &signing::Verified, env: &Env) -> Verdict {
        match self.spend(v, env) {
            Verdict::Continue if !v.skipped.is_empty() => Verdict::Report(Rejection::new(
                400,
                "signature.skipped",
                format!(
                    "`{}` verified; skipped: {}",
                    v.label,
                    v.skipped
                        .iter()
                        .map(|(label, why)| format!("`{label}` ({why})"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
            verdict => verdict,
        }
    }

    fn spend(&self, v: &signing::Verified, env: &Env) -> Verdict {
        let id = match &v.nonce {
            Some(n) => n.as_bytes(),
            // No nonce (allowed by the policy): the signature itself is single-use.
            None => v.signature.as_slice(),
        };
        let created = u64::try_from(v.created).unwrap_or(0);
        match self
            .nonces
            .check_and_remember(env.store, &v.keyid, id, created, secs(env.now))
        {
            NonceOutcome::Fresh => Verdict::Continue,
            NonceOutcome::Replayed => Verdict::Deny(
                Rejection::new(401, "signature.replayed", "this signature was already used")
                    .with_header("www-authenticate", "Signature"),
            ),
            NonceOutcome::Full => Verdict::Deny(
                Rejection::new(
                    503,
                    "signature.replay_cache_full",
                    "too many signed requests in the replay window; retry later",
                )
                .with_header("retry-after", "10"),
            ),
            NonceOutcome::Unavailable => Verdict::Deny(Rejection::new(
                503,
                "signature.replay_cache_unavailable",
                "the replay cache is unavailable",
            )),
        }
    }

    fn verify_headers(
        &self,
        req: &RequestView,
        rule: &Rule,
        env: &Env,
    ) -> Result<signing::Verified, Rejection> {
        let opts = self.verify_options(rule, secs(env.now));
        signing::verify_headers(&Message::from_view(req), req.has_body, &self.keys, &opts)
            .map_err(|e| reject(&e))
    }

    fn sign(&self, req: &RequestView, rule: &Rule, body: &[u8], env: &Env) -> Verdict {
        let now = secs(env.now);
        let Some(key) = signing::newest_key(&self.keys, now) else {
            return Verdict::Deny(Rejection::new(
                503,
                "signature.no_signing_key",
                "no signing key is valid now",
            ));
        };
        let msg = Message::from_view(req);
        let mut components: Vec<String> = rule
            .components
            .iter()
            .zip(&rule.component_specs)
            .filter(|(c, _)| match base::component_name(c) {
                // Fields the request lacks are left out; content-digest is ours to add.
                Some(n) if !n.starts_with('@') && n != "content-digest" => msg.field(n).is_some(),
                _ => true,
            })
            .map(|(_, s)| s.clone())
            .collect();
        // A listed content-digest is covered with or without a body (then the digest of the
        // empty body), as verify requires; `require_digest` adds it to requests with a body.
        let has_body = req.has_body || !body.is_empty();
        if rule.require_digest && has_body && !components.iter().any(|c| c == "content-digest") {
            components.push("content-digest".into());
        }
        let nonce = if self.require_nonce {
            match signing::random_nonce() {
                Some(n) => Some(n),
                None => {
                    return Verdict::Deny(Rejection::new(
                        500,
                        "signature.no_randomness",
                        "no random source for a nonce",
                    ))
                }
            }
        } else {
            None
        };
        let sign_req = SignRequest {
            label: self.label.clone().unwrap_or_else(|| "sig1".into()),
            components,
            keyid: key.keyid.clone(),
            created: now,
            expires: None,
            nonce,
            alg: false,
        };
        match signing::sign(&msg, Some(body), &key.secret, &sign_req) {
            Ok(s) => Verdict::Mutate(
                s.headers()
                    .into_iter()
                    .map(|(k, v)| HeaderOp::Set(k.to_ascii_lowercase(), v))
                    .collect(),
            ),
            Err(e) => Verdict::Deny(Rejection::new(500, "signature.sign_failed", e.to_string())),
        }
    }
}

impl Control for RequestSigning {
    type Policy = Policy;
    const NAME: &'static str = "request_signing";

    fn build(policy: Policy) -> Result<Self, ConfigError> {
        let keys = keys::compile(&policy.keys)?;
        if let Some(l) = &policy.label {
            if !sfv::valid_key(l) {
                return Err(ConfigError::new(
                    "label",
                    format!("`{l}` is not a structured-field key (lower case, digits, _-.*)"),
                ));
            }
        }
        if !(1..=86_400).contains(&policy.window_secs) {
            return Err(ConfigError::new(
                "window_secs",
                "must be between 1 and 86400",
            ));
        }
        if policy.clock_skew_secs > 3600 {
            return Err(ConfigError::new("clock_skew_secs", "must be at most 3600"));
        }
        if !(1..=10_000_000).contains(&policy.nonce_capacity) {
            return Err(ConfigError::new(
                "nonce_capacity",
                "must be between 1 and 10000000",
            ));
        }
        if policy.max_body_bytes == 0 || policy.max_body_bytes > MAX_BODY_LIMIT {
            return Err(ConfigError::new(
                "max_body_bytes",
                format!("must be between 1 and {MAX_BODY_LIMIT}"),
            ));
        }
        let routes =
            RouteTable::compile(&policy.routes, &policy.default, |r| compile_rule(r, &keys))?;
        Ok(RequestSigning {
            mode: policy.mode,
            nonces: NonceCache::new(
                policy.window_secs,
                policy.clock_skew_secs,
                policy.nonce_capacity,
            ),
            keys,
            label: policy.label,
            window_secs: policy.window_secs,
            skew_secs: policy.clock_skew_secs,
            require_nonce: policy.require_nonce,
            max_body_bytes: policy.max_body_bytes,
            routes,
        })
    }

    fn on_request(&self, req: &RequestView, env: &Env) -> Verdict {
        let (rule, _) = self.routes.select(req);
        if !rule.required {
            return Verdict::Continue;
        }
        match self.mode {
            Mode::Sign if req.has_body && (rule.require_digest || rule.covers_digest()) => {
                Verdict::NeedBody {
                    max_bytes: self.max_body_bytes,
                }
            }
            Mode::Sign => self.sign(req, rule, &[], env),
            Mode::Verify => match self.verify_headers(req, rule, env) {
                Err(r) => Verdict::Deny(r),
                // The digest is checked against the body before the nonce is spent.
                Ok(v) if v.covers_digest => Verdict::NeedBody {
                    max_bytes: self.max_body_bytes,
                },
                Ok(v) => self.remember(&v, env),
            },
        }
    }

    fn on_request_body(&self, req: &RequestView, body: &[u8], env: &Env) -> Verdict {
        let (rule, _) = self.routes.select(req);
        if !rule.required {
            return Verdict::Continue;
        }
        match self.mode {
            Mode::Sign => self.sign(req, rule, body, env),
            Mode::Verify => {
                // Stateless between phases: check the headers again (cheap), then the body.
                let v = match self.verify_headers(req, rule, env) {
                    Ok(v) => v,
                    Err(r) => return Verdict::Deny(r),
                };
                if v.covers_digest {
                    if let Err(e) = signing::check_digest(&Message::from_view(req), body) {
                        return Verdict::Deny(reject(&e));
                    }
                }
                self.remember(&v, env)
            }
        }
    }
}

#[cfg(test)]
mod tests;
