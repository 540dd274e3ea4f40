//! Controls behind a trait object, and an ordered chain of them: the `guard` module runs
//! several controls in one VM with no copy of their logic.

use std::time::Duration;

use serde_json::Value;

use crate::callout::{Callout, CalloutResponse};
use crate::control::{parse_policy_value, ConfigError, Control, Env};
use crate::request::{RequestView, ResponseView};
use crate::verdict::{HeaderOp, Verdict};

/// [`Control`] without its associated items, so different controls can share a `Vec`.
pub trait DynControl {
    fn name(&self) -> &'static str;
    fn on_request(&self, req: &RequestView, env: &Env) -> Verdict;
    fn on_request_body(&self, req: &RequestView, body: &[u8], env: &Env) -> Verdict;
    fn on_response(&self, req: &RequestView, resp: &ResponseView, env: &Env) -> Verdict;
    fn on_response_body(
        &self,
        req: &RequestView,
        resp: &ResponseView,
        body: Option<&[u8]>,
        env: &Env,
    ) -> Verdict;
    fn on_response_body_prefix(
        &self,
        req: &RequestView,
        resp: &ResponseView,
        prefix: &[u8],
        env: &Env,
    ) -> Verdict;
    fn tick_period(&self) -> Option<Duration>;
    fn on_tick(&self, env: &Env) -> Vec<Callout>;
    fn on_callout_response(&self, tag: u64, resp: Option<CalloutResponse>, env: &Env);
}

impl<C: Control> DynControl for C {
    fn name(&self) -> &'static str {
        C::NAME
    }
    fn on_request(&self, req: &RequestView, env: &Env) -> Verdict {
        Control::on_request(self, req, env)
    }
    fn on_request_body(&self, req: &RequestView, body: &[u8], env: &Env) -> Verdict {
        Control::on_request_body(self, req, body, env)
    }
    fn on_response(&self, req: &RequestView, resp: &ResponseView, env: &Env) -> Verdict {
        Control::on_response(self, req, resp, env)
    }
    fn on_response_body(
        &self,
        req: &RequestView,
        resp: &ResponseView,
        body: Option<&[u8]>,
        env: &Env,
    ) -> Verdict {
        Control::on_response_body(self, req, resp, body, env)
    }
    fn on_response_body_prefix(
        &self,
        req: &RequestView,
        resp: &ResponseView,
        prefix: &[u8],
        env: &Env,
    ) -> Verdict {
        Control::on_response_body_prefix(self, req, resp, prefix, env)
    }
    fn tick_period(&self) -> Option<Duration> {
        Control::tick_period(self)
    }
    fn on_tick(&self, env: &Env) -> Vec<Callout> {
        Control::on_tick(self, env)
    }
    fn on_callout_response(&self, tag: u64, resp: Option<CalloutResponse>, env: &Env) {
        Control::on_callout_response(self, tag, resp, env)
    }
}

/// Build a control from its policy as a JSON value, errors naming the JSON path.
pub fn build_dyn<C: Control>(policy: &Value) -> Result<Box<dyn DynControl>, ConfigError> {
    let policy = parse_policy_value::<C::Policy>(policy.clone())?;
    Ok(Box::new(C::build(policy)?))
}

/// Bits of the chain members' body requests, kept in the request's notes between phases.
const REQ_BODY_NOTE: &str = "chain.request_body";
const RESP_BODY_NOTE: &str = "chain.response_body";
/// Callout tags carry the member index in their top bits.
const TAG_SHIFT: u32 = 48;

/// An ordered chain: the first denial wins; header edits of earlier members are visible to later
/// ones; body requests are merged (the smallest limit), and only members that asked see the body.
pub struct Chain {
    members: Vec<Box<dyn DynControl>>,
}

/// What the members said so far: edits, reports, and whether one asked for the body.
#[derive(Default)]
struct Merged {
    ops: Vec<HeaderOp>,
    reports: Vec<crate::reject::Rejection>,
    body_limit: Option<usize>,
    asked: u64,
}

impl Merged {
    /// Fold one member's verdict in; `Some` when it ends the chain.
    fn add(&mut self, i: usize, v: Verdict) -> Option<Verdict> {
        match v.into_pass() {
            Verdict::Pass { ops, reports } => {
                self.ops.extend(ops);
                self.reports.extend(reports);
                None
            }
            Verdict::NeedBody { max_bytes } => {
                self.body_limit = Some(self.body_limit.map_or(max_bytes, |m| m.min(max_bytes)));
                self.asked |= 1u64 << i;
                None
            }
            Verdict::ReplaceBody {
                code,
                mut headers,
                body,
            } => {
                // The new body is final for this phase: earlier edits go along with it.
                let mut ops = std::mem::take(&mut self.ops);
                ops.append(&mut headers);
                Some(Verdict::ReplaceBody {
                    code,
                    headers: ops,
                    body,
                })
            }
            deny => Some(deny),
        }
    }

    /// The chain's verdict for a phase; edits made before a body request are held (in the
    /// request's `held`) and returned with the body verdict.
    fn finish(self) -> Verdict {
        match self.body_limit {
            Some(max_bytes) => Verdict::NeedBody { max_bytes },
            None => Verdict::Pass {
                ops: self.ops,
                reports: self.reports,
            },
        }
    }
}

impl Chain {
    pub fn new(members: Vec<Box<dyn DynControl>>) -> Result<Self, ConfigError> {
        if members.is_empty() {
            return Err(ConfigError::new("chain", "must name at least one control"));
        }
        if members.len() > 16 {
            return Err(ConfigError::new("chain", "at most 16 controls"));
        }
        Ok(Chain { members })
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.members.iter().map(|m| m.name()).collect()
    }

    pub fn on_request(&self, req: &RequestView, env: &Env) -> Verdict {
        let mut merged = Merged::default();
        // The request as edited by earlier members; a copy only once a member edits it.
        let mut edited: Option<RequestView> = None;
        for (i, m) in self.members.iter().enumerate() {
            let before = merged.ops.len();
            let view = edited.as_ref().unwrap_or(req);
            let verdict = m.on_request(view, env);
            if let Some(copy) = &edited {
                // Notes a member leaves on the copy are the request's, for its later phases.
                req.notes.replace(copy.notes.borrow().clone());
            }
            if let Some(end) = merged.add(i, verdict) {
                return end;
            }
            if merged.ops.len() > before {
                let next = view.with_ops(merged.ops.get(before..).unwrap_or_default());
                edited = Some(next);
            }
        }
        if merged.body_limit.is_some() {
            req.note(REQ_BODY_NOTE, merged.asked);
            // Header edits and reports wait for the body verdict.
            req.held
                .replace(Some((merged.ops.clone(), merged.reports.clone())));
        }
        merged.finish()
    }

    pub fn on_request_body(&self, req: &RequestView, body: &[u8], env: &Env) -> Verdict {
        let asked = req.noted(REQ_BODY_NOTE).unwrap_or(0);
        let (ops, reports) = req.held.take().unwrap_or_default();
        let mut merged = Merged {
            ops,
            reports,
            ..Merged::default()
        };
        let edited;
        let view = if merged.ops.is_empty() {
            req
        } else {
            edited = req.with_ops(&merged.ops);
            &edited
        };
        for (i, m) in self.members.iter().enumerate() {
            if asked & (1u64 << i) == 0 {
                continue;
            }
            let v = m.on_request_body(view, body, env);
            if matches!(v, Verdict::NeedBody { .. }) {
                return Verdict::Deny(crate::reject::Rejection::new(
                    500,
                    "internal",
                    "a control asked for the body twice",
                ));
            }
            if let Some(end) = merged.add(i, v) {
                return end;
            }
        }
        Verdict::Pass {
            ops: merged.ops,
            reports: merged.reports,
        }
    }

    /// Responses pass the members in reverse, as Envoy's encoder chain does.
    pub fn on_response(&self, req: &RequestView, resp: &ResponseView, env: &Env) -> Verdict {
        let mut merged = Merged::default();
        for (i, m) in self.members.iter().enumerate().rev() {
            if let Some(end) = merged.add(i, m.on_response(req, resp, env)) {
                return end;
            }
        }
        if merged.body_limit.is_some() {
            req.note(RESP_BODY_NOTE, merged.asked);
            req.held
                .replace(Some((merged.ops.clone(), merged.reports.clone())));
        }
        merged.finish()
    }

    pub fn on_response_body(
        &self,
        req: &RequestView,
        resp: &ResponseView,
        body: Option<&[u8]>,
        env: &Env,
    ) -> Verdict {
        self.response_body_members(req, |m| m.on_response_body(req, resp, body, env))
    }

    /// The first bytes of a body larger than the chain's (smallest) limit, to every member that
    /// asked for the body.
    pub fn on_response_body_prefix(
        &self,
        req: &RequestView,
        resp: &ResponseView,
        prefix: &[u8],
        env: &Env,
    ) -> Verdict {
        self.response_body_members(req, |m| m.on_response_body_prefix(req, resp, prefix, env))
    }

    /// Ask the members that wanted the response body (in reverse), with the held edits.
    fn response_body_members(
        &self,
        req: &RequestView,
        ask: impl Fn(&dyn DynControl) -> Verdict,
    ) -> Verdict {
        let asked = req.noted(RESP_BODY_NOTE).unwrap_or(0);
        let (ops, reports) = req.held.take().unwrap_or_default();
        let mut merged = Merged {
            ops,
            reports,
            ..Merged::default()
        };
        for (i, m) in self.members.iter().enumerate().rev() {
            if asked & (1u64 << i) == 0 {
                continue;
            }
            if let Some(end) = merged.add(i, ask(m.as_ref())) {
                return end;
            }
        }
        Verdict::Pass {
            ops: merged.ops,
            reports: merged.reports,
        }
    }

    pub fn tick_period(&self) -> Option<Duration> {
        self.members.iter().filter_map(|m| m.tick_period()).min()
    }

    pub fn on_tick(&self, env: &Env) -> Vec<Callout> {
        let mut out = Vec::new();
        for (i, m) in self.members.iter().enumerate() {
            for mut c in m.on_tick(env) {
                c.tag = ((i as u64) << TAG_SHIFT) | (c.tag & ((1u64 << TAG_SHIFT) - 1));
                out.push(c);
            }
        }
        out
    }

    pub fn on_callout_response(&self, tag: u64, resp: Option<CalloutResponse>, env: &Env) {
        let index = usize::try_from(tag >> TAG_SHIFT).unwrap_or(usize::MAX);
        if let Some(m) = self.members.get(index) {
            m.on_callout_response(tag & ((1u64 << TAG_SHIFT) - 1), resp, env);
        }
    }
}
