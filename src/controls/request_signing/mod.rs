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

pub mod etcd;
mod keys;
mod nonce;

pub use keys::KeySpec;
pub use nonce::{NonceCache, Outcome as NonceOutcome};

use std::time::Duration;

use serde::Deserialize;

use self::etcd::{Endpoint, Insert, Leases};
use crate::callout::{
    Answer, Ask, Callout, CalloutResponse, HostCapabilities, Resume, NEEDS_REQUEST_CALLOUTS,
};
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
    /// verify: where nonces are spent. `local` (default): this Envoy's replay cache only (a
    /// replay to another replica is accepted there once). `etcd`: an etcd v3 cluster shared by
    /// every replica, the local cache in front.
    #[serde(default)]
    pub replay_store: ReplayStoreSpec,
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

/// Where nonces are spent: `{"kind": "local"}` (the default) or
/// `{"kind": "etcd", "cluster": …, "prefix": …}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ReplayStoreSpec {
    #[serde(default)]
    pub kind: StoreKind,
    /// etcd: the Envoy cluster of the etcd members' client port (TLS and etcd authentication
    /// are the cluster's: its `transport_socket`, and the credentials it adds).
    #[serde(default)]
    pub cluster: Option<String>,
    /// etcd: the `:authority` of the calls; default: the cluster name.
    #[serde(default)]
    pub authority: Option<String>,
    /// etcd: every key is this prefix and 64 hex digits. The same for every replica running
    /// this policy, and for no other policy (`/portcullis/request_signing/orders/`).
    #[serde(default)]
    pub prefix: Option<String>,
    /// etcd: how long one insert may take, in milliseconds (1 to 5000; default 250).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// etcd: store unreachable, slow or erroring: `deny` (default: 503
    /// `signature.replay_store_unavailable`) or `allow` (this Envoy's cache alone decides; the
    /// request is counted and logged as reported with that code).
    #[serde(default)]
    pub on_unavailable: Option<OnUnavailable>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// This Envoy's replay cache (shared data) alone: a replay to another replica is accepted
    /// there once.
    #[default]
    Local,
    /// An etcd v3 cluster (its JSON gateway, etcd 3.4 or later) shared by every replica, this
    /// Envoy's cache in front: one atomic insert-if-absent per signed request.
    Etcd,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum OnUnavailable {
    #[default]
    Deny,
    Allow,
}

fn default_etcd_timeout_ms() -> u64 {
    250
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
    /// The fleet-wide store (`replay_store: etcd`).
    fleet: Option<Fleet>,
}

#[derive(Debug)]
struct Fleet {
    endpoint: Endpoint,
    prefix: String,
    leases: Leases,
    allow_on_unavailable: bool,
}

/// What a signed request waits on the store with.
struct Pending {
    keyid: String,
    id: Vec<u8>,
    created: u64,
    lease: i64,
    /// What passes with the request once the nonce is spent (skipped signatures).
    report: Option<Rejection>,
}

/// The tag of lease grants (this control's only background call).
const LEASE_TAG: u64 = 0;

fn replayed() -> Rejection {
    Rejection::new(401, "signature.replayed", "this signature was already used")
        .with_header("www-authenticate", "Signature")
}

fn compile_fleet(
    spec: &ReplayStoreSpec,
    ttl_secs: u64,
    skew_secs: u64,
) -> Result<Fleet, ConfigError> {
    let at = |f: &str| format!("replay_store.{f}");
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.len() <= 255
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:[]".contains(&b))
    };
    let cluster = spec.cluster.as_deref().unwrap_or("");
    if !name_ok(cluster) {
        return Err(ConfigError::new(
            at("cluster"),
            "an Envoy cluster name is required with `kind: etcd`",
        ));
    }
    if let Some(a) = &spec.authority {
        if !name_ok(a) {
            return Err(ConfigError::new(
                at("authority"),
                "a host[:port] is required",
            ));
        }
    }
    let prefix = spec.prefix.as_deref().unwrap_or("");
    if prefix.is_empty() || prefix.len() > 128 || !prefix.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::new(
            at("prefix"),
            "required with `kind: etcd`: 1 to 128 printable ASCII characters, no spaces",
        ));
    }
    let timeout_ms = spec.timeout_ms.unwrap_or_else(default_etcd_timeout_ms);
    if !(1..=5000).contains(&timeout_ms) {
        return Err(ConfigError::new(
            at("timeout_ms"),
            "must be between 1 and 5000",
        ));
    }
    let timeout = Duration::from_millis(timeout_ms);
    Ok(Fleet {
        endpoint: Endpoint {
            cluster: cluster.to_string(),
            authority: spec
                .authority
                .clone()
                .unwrap_or_else(|| cluster.to_string()),
            timeout,
        },
        prefix: prefix.to_string(),
        leases: Leases::new(ttl_secs, skew_secs, timeout),
        allow_on_unavailable: spec.on_unavailable == Some(OnUnavailable::Allow),
    })
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

/// What is single-use: the nonce, or (no nonce, allowed by the policy) the signature itself.
fn nonce_id(v: &signing::Verified) -> &[u8] {
    match &v.nonce {
        Some(n) => n.as_bytes(),
        None => v.signature.as_slice(),
    }
}

fn nonce_verdict(outcome: NonceOutcome) -> Verdict {
    match outcome {
        NonceOutcome::Fresh => Verdict::Continue,
        NonceOutcome::Replayed => Verdict::Deny(replayed()),
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
        let report = (!v.skipped.is_empty()).then(|| {
            Rejection::new(
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
            )
        });
        if let Some(fleet) = &self.fleet {
            return self.ask_fleet(fleet, v, report, env);
        }
        match (self.spend(v, env), report) {
            (Verdict::Continue, Some(r)) => Verdict::Report(r),
            (verdict, _) => verdict,
        }
    }

    /// `replay_store: etcd`: refused at once if this Envoy saw the nonce; otherwise one atomic
    /// insert-if-absent in the store decides (in `on_answers`).
    fn ask_fleet(
        &self,
        fleet: &Fleet,
        v: &signing::Verified,
        report: Option<Rejection>,
        env: &Env,
    ) -> Verdict {
        let id = nonce_id(v).to_vec();
        let now = secs(env.now);
        if self.nonces.seen(env.store, &v.keyid, &id, now) {
            return Verdict::Deny(replayed());
        }
        let pending = Pending {
            keyid: v.keyid.clone(),
            id,
            created: u64::try_from(v.created).unwrap_or(0),
            lease: 0,
            report,
        };
        let Some(lease) = fleet.leases.current(i64::try_from(now).unwrap_or(i64::MAX)) else {
            return self.store_unavailable(fleet, &pending, "no lease granted yet", env);
        };
        let key = etcd::nonce_key(&fleet.prefix, &pending.keyid, &pending.id);
        // The value: when the nonce may be forgotten (for whoever reads the store).
        let until = pending
            .created
            .max(now)
            .saturating_add(self.nonces.ttl_secs())
            .to_string();
        let call = fleet.endpoint.txn_insert(0, &key, until.as_bytes(), lease);
        match Ask::new(vec![call], Resume::new(Pending { lease, ..pending })) {
            Some(ask) => Verdict::Ask(ask),
            None => Verdict::Deny(Rejection::new(
                500,
                "internal",
                "the request could not be checked",
            )),
        }
    }

    /// No decision from the store: the policy's `on_unavailable`, never a silent pass.
    fn store_unavailable(&self, fleet: &Fleet, p: &Pending, why: &str, env: &Env) -> Verdict {
        log::warn!("portcullis request_signing: replay store unavailable: {why}");
        let r = Rejection::new(
            503,
            "signature.replay_store_unavailable",
            "the replay store is unavailable; retry later, signed anew",
        )
        .with_header("retry-after", "1");
        if !fleet.allow_on_unavailable {
            return Verdict::Deny(r);
        }
        // Fail open, counted: this Envoy's cache alone decides.
        match self.spend_local(p, env) {
            Verdict::Continue => Verdict::Pass {
                ops: Vec::new(),
                reports: std::iter::once(Rejection {
                    detail: "the replay store is unavailable; accepted on this Envoy's cache alone"
                        .into(),
                    ..r
                })
                .chain(p.report.clone())
                .collect(),
            },
            verdict => verdict,
        }
    }

    /// Remember a nonce in this Envoy's cache.
    fn spend_local(&self, p: &Pending, env: &Env) -> Verdict {
        let outcome =
            self.nonces
                .check_and_remember(env.store, &p.keyid, &p.id, p.created, secs(env.now));
        nonce_verdict(outcome)
    }

    fn spend(&self, v: &signing::Verified, env: &Env) -> Verdict {
        let created = u64::try_from(v.created).unwrap_or(0);
        nonce_verdict(self.nonces.check_and_remember(
            env.store,
            &v.keyid,
            nonce_id(v),
            created,
            secs(env.now),
        ))
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

impl RequestSigning {
    /// [`Control::build`] for a host with these capabilities (`replay_store: etcd` needs
    /// request-time callouts).
    pub fn build_with(policy: Policy, caps: HostCapabilities) -> Result<Self, ConfigError> {
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
        let nonces = NonceCache::new(
            policy.window_secs,
            policy.clock_skew_secs,
            policy.nonce_capacity,
        );
        let store = &policy.replay_store;
        let fleet = match store.kind {
            StoreKind::Local => {
                let etcd_only = [
                    ("cluster", store.cluster.is_some()),
                    ("authority", store.authority.is_some()),
                    ("prefix", store.prefix.is_some()),
                    ("timeout_ms", store.timeout_ms.is_some()),
                    ("on_unavailable", store.on_unavailable.is_some()),
                ];
                if let Some((f, _)) = etcd_only.iter().find(|(_, set)| *set) {
                    return Err(ConfigError::new(
                        format!("replay_store.{f}"),
                        "only with `kind: etcd`",
                    ));
                }
                None
            }
            StoreKind::Etcd if !caps.request_callouts => {
                return Err(ConfigError::new(
                    "replay_store.kind",
                    format!("`etcd` {NEEDS_REQUEST_CALLOUTS}"),
                ))
            }
            StoreKind::Etcd if policy.mode == Mode::Sign => {
                return Err(ConfigError::new(
                    "replay_store",
                    "a replay store is for `mode: verify` only",
                ))
            }
            StoreKind::Etcd => Some(compile_fleet(
                store,
                nonces.ttl_secs(),
                policy.clock_skew_secs,
            )?),
        };
        Ok(RequestSigning {
            mode: policy.mode,
            nonces,
            fleet,
            keys,
            label: policy.label,
            window_secs: policy.window_secs,
            skew_secs: policy.clock_skew_secs,
            require_nonce: policy.require_nonce,
            max_body_bytes: policy.max_body_bytes,
            routes,
        })
    }
}

impl Control for RequestSigning {
    type Policy = Policy;
    const NAME: &'static str = "request_signing";

    fn build(policy: Policy) -> Result<Self, ConfigError> {
        Self::build_with(policy, HostCapabilities::CURRENT)
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

    fn on_answers(
        &self,
        _req: &RequestView,
        _body: Option<&[u8]>,
        state: &Resume,
        answers: &[Answer],
        env: &Env,
    ) -> Verdict {
        let (Some(fleet), Some(p)) = (&self.fleet, state.get::<Pending>()) else {
            return Verdict::Deny(crate::control::unhandled_answers());
        };
        let outcome = match answers.first() {
            Some(a) => etcd::parse_txn(a),
            None => Insert::Unavailable("no answer"),
        };
        match outcome {
            Insert::Inserted => {
                // First use fleet-wide; remembered here too, so a replay to this Envoy is
                // refused without a round trip. The store decided: the local outcome is moot.
                let _ = self.spend_local(p, env);
                match &p.report {
                    Some(r) => Verdict::Report(r.clone()),
                    None => Verdict::Continue,
                }
            }
            Insert::Exists => {
                let _ = self.spend_local(p, env);
                Verdict::Deny(replayed())
            }
            Insert::LeaseGone => {
                fleet.leases.forget(p.lease);
                self.store_unavailable(fleet, p, "the lease is gone", env)
            }
            Insert::Unavailable(why) => self.store_unavailable(fleet, p, why, env),
        }
    }

    fn tick_period(&self) -> Option<Duration> {
        self.fleet.as_ref().map(|_| Duration::from_secs(1))
    }

    fn on_tick(&self, env: &Env) -> Vec<Callout> {
        let Some(fleet) = &self.fleet else {
            return Vec::new();
        };
        let now = i64::try_from(secs(env.now)).unwrap_or(i64::MAX);
        fleet
            .leases
            .on_tick(&fleet.endpoint, LEASE_TAG, now)
            .into_iter()
            .collect()
    }

    fn on_callout_response(&self, tag: u64, resp: Option<CalloutResponse>, env: &Env) {
        let Some(fleet) = &self.fleet else {
            return;
        };
        if tag == LEASE_TAG {
            let now = i64::try_from(secs(env.now)).unwrap_or(i64::MAX);
            if fleet.leases.on_response(resp.as_ref(), now).is_none() {
                log::warn!("portcullis request_signing: etcd lease grant failed");
            }
        }
    }
}

#[cfg(test)]
mod tests;
