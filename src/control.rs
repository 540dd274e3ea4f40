//! The contract between a control and the host.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;

use crate::callout::{Answer, Callout, CalloutResponse, Resume};
use crate::method_override::{self, MethodOverride};
use crate::reject::Rejection;
use crate::request::{RequestView, ResponseView};
use crate::store::SharedStore;
use crate::verdict::Verdict;

/// What a control sees of the world besides the request: the clock and the store shared by all
/// worker threads. Passed in, so that tests drive time and storage explicitly.
pub struct Env<'a> {
    pub now: SystemTime,
    pub store: &'a dyn SharedStore,
}

/// One security control. Built once per configuration, then asked about each request.
pub trait Control: Sized + 'static {
    /// The policy as it appears in the filter configuration JSON.
    type Policy: DeserializeOwned;
    /// Module name: used in metrics, logs and problem bodies (`content_type`).
    const NAME: &'static str;

    /// Validate and compile the policy. Everything expensive happens here, never per request.
    fn build(policy: Self::Policy) -> Result<Self, ConfigError>;

    /// Called with the request headers.
    fn on_request(&self, req: &RequestView, env: &Env) -> Verdict;

    /// Called with the whole buffered body, only after `on_request` returned `NeedBody`.
    fn on_request_body(&self, _req: &RequestView, _body: &[u8], _env: &Env) -> Verdict {
        Verdict::Continue
    }

    /// The answers to the calls of a [`Verdict::Ask`] this control returned for this request,
    /// in the order asked (each one the response, or why there is none: timeout, reset, no
    /// cluster). `req` is the view the control asked with; `body` the buffered body when it
    /// asked from `on_request_body`; `state` the [`Resume`] of its ask. Returns the verdict of
    /// the phase it asked in (it may ask again, up to
    /// [`MAX_ASKS_PER_REQUEST`](crate::callout::MAX_ASKS_PER_REQUEST) rounds per request).
    ///
    /// By default it denies (500 `internal.unhandled_answers`): a control that asks and does not
    /// handle the answers fails closed.
    fn on_answers(
        &self,
        _req: &RequestView,
        _body: Option<&[u8]>,
        _state: &Resume,
        _answers: &[Answer],
        _env: &Env,
    ) -> Verdict {
        Verdict::Deny(unhandled_answers())
    }

    /// Called with the response headers. `Mutate` edits them; `Deny` replaces the response.
    fn on_response(&self, _req: &RequestView, _resp: &ResponseView, _env: &Env) -> Verdict {
        Verdict::Continue
    }

    /// Called with the whole buffered response body, only after `on_response` returned
    /// `NeedBody`. `None`: the body was larger than asked for; it passes unchanged (it is never
    /// truncated) and the control may only count it (`Report`), or `Deny` it: then the whole
    /// response is replaced by the denial (a body that must not pass as it is).
    fn on_response_body(
        &self,
        _req: &RequestView,
        _resp: &ResponseView,
        _body: Option<&[u8]>,
        _env: &Env,
    ) -> Verdict {
        Verdict::Continue
    }

    /// Called instead of `on_response_body` when the body is larger than the `max_bytes` the
    /// control asked for, with its first `max_bytes` bytes; the rest passes unseen. The body
    /// cannot be replaced here (the host answers a `ReplaceBody` with a 500 problem, fail
    /// closed): `Deny` replaces the whole response, `Pass`/`Report` let it through. By default
    /// the control is told the body was too large (`None`).
    fn on_response_body_prefix(
        &self,
        req: &RequestView,
        resp: &ResponseView,
        _prefix: &[u8],
        env: &Env,
    ) -> Verdict {
        self.on_response_body(req, resp, None, env)
    }

    /// How often the host calls `on_tick`; `None` for controls with no background work.
    fn tick_period(&self) -> Option<Duration> {
        None
    }

    /// Background work: the callouts to make now.
    fn on_tick(&self, _env: &Env) -> Vec<Callout> {
        Vec::new()
    }

    /// The answer to a callout from `on_tick` (`None`: it failed).
    fn on_callout_response(&self, _tag: u64, _resp: Option<CalloutResponse>, _env: &Env) {}
}

/// The denial of answers nobody handles (the default [`Control::on_answers`]).
pub fn unhandled_answers() -> Rejection {
    Rejection::new(
        500,
        "internal.unhandled_answers",
        "the request could not be checked",
    )
}

/// Parse a policy document and build the control from it.
pub fn configure<C: Control>(json: &[u8]) -> Result<C, ConfigError> {
    configure_module::<C>(json).map(|(control, _)| control)
}

/// [`configure`], with the settings every module's policy takes at its top
/// ([`crate::method_override`]).
pub fn configure_module<C: Control>(json: &[u8]) -> Result<(C, MethodOverride), ConfigError> {
    let (method_override, rest) = method_override::split(json)?;
    let policy = match rest {
        None => parse_policy::<C::Policy>(json)?,
        Some(doc) => parse_policy_value::<C::Policy>(doc)?,
    };
    Ok((C::build(policy)?, method_override))
}

/// [`parse_policy`] for a document already parsed.
pub fn parse_policy_value<P: DeserializeOwned>(doc: serde_json::Value) -> Result<P, ConfigError> {
    serde_path_to_error::deserialize(doc).map_err(|e| {
        let path = e.path().to_string();
        ConfigError::new(
            if path == "." { "" } else { &path },
            e.into_inner().to_string(),
        )
    })
}

/// Deserialize a policy, naming the JSON path of the first offending field.
pub fn parse_policy<P: DeserializeOwned>(json: &[u8]) -> Result<P, ConfigError> {
    let de = &mut serde_json::Deserializer::from_slice(json);
    let parsed: Result<P, _> = serde_path_to_error::deserialize(de);
    let policy = parsed.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // serde's messages end in " at line 1 column 42": keep the column only when the JSON
        // itself is broken, where the path alone would not say where.
        let reason = if inner.is_syntax() || inner.is_eof() {
            inner.to_string()
        } else {
            strip_position(&inner.to_string())
        };
        ConfigError::new(if path == "." { "" } else { &path }, reason)
    })?;
    Ok(policy)
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg.get(..i).unwrap_or(msg).to_string(),
        None => msg.to_string(),
    }
}

/// A policy the module refuses to run with: where (JSON path) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// Prefix the path with the field that contains it (`routes[1]` + `allow[0]`).
    pub fn within(mut self, outer: &str) -> Self {
        self.path = join_path(outer, &self.path);
        self
    }
}

/// Join JSON path segments: `a` + `b` = `a.b`, `a` + `[2]` = `a[2]`.
pub fn join_path(outer: &str, inner: &str) -> String {
    match (outer.is_empty(), inner.is_empty()) {
        (true, _) => inner.to_string(),
        (_, true) => outer.to_string(),
        _ if inner.starts_with('[') => format!("{outer}{inner}"),
        _ => format!("{outer}.{inner}"),
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "policy: {}", self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct P {
        routes: Vec<R>,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct R {
        scopes: Vec<String>,
    }

    #[test]
    fn type_error_names_the_json_path() {
        let e = parse_policy::<P>(br#"{"routes":[{"scopes":[]},{"scopes":"a"}]}"#).unwrap_err();
        assert_eq!(e.path, "routes[1].scopes");
        assert!(
            e.reason
                .starts_with("invalid type: string \"a\", expected a sequence"),
            "{e}"
        );
        assert!(!e.reason.contains("line"), "{e}");
    }

    #[test]
    fn unknown_field_is_rejected_with_its_path() {
        let e = parse_policy::<P>(br#"{"routes":[{"scopes":[],"scope":[]}]}"#).unwrap_err();
        assert_eq!(e.path, "routes[0].scope");
        assert!(e.reason.contains("unknown field `scope`"), "{e}");
    }

    #[test]
    fn broken_json_keeps_the_position() {
        let e = parse_policy::<P>(br#"{"routes": [}"#).unwrap_err();
        assert!(e.reason.contains("line 1"), "{e}");
        let e = parse_policy::<P>(b"").unwrap_err();
        assert!(e.reason.contains("EOF"), "{e}");
    }

    #[test]
    fn join_path_handles_indexes() {
        assert_eq!(join_path("routes[1]", "allow[0]"), "routes[1].allow[0]");
        assert_eq!(join_path("routes", "[1]"), "routes[1]");
        assert_eq!(join_path("", "x"), "x");
        assert_eq!(
            ConfigError::new("allow", "bad")
                .within("default")
                .to_string(),
            "default.allow: bad"
        );
    }
}
