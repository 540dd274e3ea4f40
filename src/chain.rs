//! Controls behind a trait object, and an ordered chain of them: the `guard` module runs
//! several controls in one VM with no copy of their logic.

use std::time::Duration;

use serde_json::Value;

use crate::callout::{Answer, Ask, Callout, CalloutResponse, Resume};
use crate::control::{parse_policy_value, ConfigError, Control, Env};
use crate::request::{RequestView, ResponseView};
use crate::verdict::{HeaderOp, Verdict};

/// [`Control`] without its associated items, so different controls can share a `Vec`.
pub trait DynControl {
    fn name(&self) -> &'static str;
    fn on_request(&self, req: &RequestView, env: &Env) -> Verdict;
    fn on_request_body(&self, req: &RequestView, body: &[u8], env: &Env) -> Verdict;
    fn on_answers(
        &self,
        req: &RequestView,
        body: Option<&[u8]>,
        state: &Resume,
        answers: &[Answer],
        env: &Env,
    ) -> Verdict;
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
    fn on_answers(
        &self,
        req: &RequestView,
        body: Option<&[u8]>,
        state: &Resume,
        answers: &[Answer],
        env: &Env,
    ) -> Verdict {
        Control::on_answers(self, req, body, state, answers, env)
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
#[derive(Default, Clone)]
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

/// What a member says first when a phase resumes after its ask.
type FirstVerdict<'a> = Box<dyn FnOnce(&dyn DynControl, &RequestView) -> Verdict + 'a>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Headers,
    Body,
}

/// The chain's state across a member's ask: who asked, in which phase, what the members before
/// it said, and the member's own state.
struct Paused {
    member: usize,
    stage: Stage,
    merged: Merged,
    inner: Resume,
}

/// Wrap member `i`'s ask in the chain's state.
fn pause(i: usize, stage: Stage, merged: Merged, ask: Ask) -> Verdict {
    Verdict::Ask(Ask {
        callouts: ask.callouts,
        state: Resume::new(Paused {
            member: i,
            stage,
            merged,
            inner: ask.state,
        }),
    })
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
        self.request_from(req, env, Merged::default(), 0, None)
    }

    /// The headers phase from member `start` on. `first`: what member `start` says, when it
    /// is not its `on_request` (its `on_answers` after an ask).
    fn request_from(
        &self,
        req: &RequestView,
        env: &Env,
        mut merged: Merged,
        start: usize,
        mut first: Option<FirstVerdict<'_>>,
    ) -> Verdict {
        // The request as edited by earlier members; a copy only once a member edits it.
        let mut edited: Option<RequestView> =
            (!merged.ops.is_empty()).then(|| req.with_ops(&merged.ops));
        for (i, m) in self.members.iter().enumerate().skip(start) {
            let before = merged.ops.len();
            let view = edited.as_ref().unwrap_or(req);
            let verdict = match first.take() {
                Some(f) => f(m.as_ref(), view),
                None => m.on_request(view, env),
            };
            if let Some(copy) = &edited {
                // Notes a member leaves on the copy are the request's, for its later phases.
                req.notes.replace(copy.notes.borrow().clone());
            }
            if let Verdict::Ask(ask) = verdict {
                return pause(i, Stage::Headers, merged, ask);
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
        let merged = Merged {
            ops,
            reports,
            asked,
            ..Merged::default()
        };
        self.body_from(req, body, env, merged, 0, None)
    }

    /// The request body phase from member `start` on, to the members that asked for the body
    /// (`merged.asked`).
    fn body_from(
        &self,
        req: &RequestView,
        body: &[u8],
        env: &Env,
        mut merged: Merged,
        start: usize,
        mut first: Option<FirstVerdict<'_>>,
    ) -> Verdict {
        let edited;
        let view = if merged.ops.is_empty() {
            req
        } else {
            edited = req.with_ops(&merged.ops);
            &edited
        };
        for (i, m) in self.members.iter().enumerate().skip(start) {
            if merged.asked & (1u64 << i) == 0 {
                continue;
            }
            let v = match first.take() {
                Some(f) => f(m.as_ref(), view),
                None => m.on_request_body(view, body, env),
            };
            if matches!(v, Verdict::NeedBody { .. }) {
                return Verdict::Deny(crate::reject::Rejection::new(
                    500,
                    "internal",
                    "a control asked for the body twice",
                ));
            }
            if let Verdict::Ask(ask) = v {
                return pause(i, Stage::Body, merged, ask);
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

    /// The answers to a member's ask: that member decides on them, then the rest of the chain
    /// runs the phase the member asked in. A state that is not the chain's fails closed.
    pub fn on_answers(
        &self,
        req: &RequestView,
        body: Option<&[u8]>,
        state: &Resume,
        answers: &[Answer],
        env: &Env,
    ) -> Verdict {
        let Some(paused) = state.get::<Paused>() else {
            return Verdict::Deny(crate::control::unhandled_answers());
        };
        let (member, inner) = (paused.member, &paused.inner);
        let first: FirstVerdict<'_> = Box::new(move |m: &dyn DynControl, view: &RequestView| {
            m.on_answers(view, body, inner, answers, env)
        });
        if member >= self.members.len() {
            return Verdict::Deny(crate::control::unhandled_answers());
        }
        let merged = paused.merged.clone();
        match (paused.stage, body) {
            (Stage::Headers, _) => self.request_from(req, env, merged, member, Some(first)),
            (Stage::Body, Some(body)) => {
                self.body_from(req, body, env, merged, member, Some(first))
            }
            // Asked from the body phase, answered without the body: the host lost it.
            (Stage::Body, None) => Verdict::Deny(crate::reject::Rejection::new(
                500,
                "internal",
                "the request body was lost during a callout",
            )),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callout::CalloutFailure;
    use crate::reject::Rejection;
    use crate::store::MemoryStore;
    use std::time::{Duration, SystemTime};

    /// Adds `x-<name>: seen` and remembers what it saw of earlier members' edits.
    struct Tagger(&'static str);
    /// Asks one call in the phase it is built for; allows on a 200, denies otherwise.
    struct Asker {
        in_body: bool,
    }
    /// Asks and leaves the default `on_answers`.
    struct Careless;

    impl Control for Tagger {
        type Policy = ();
        const NAME: &'static str = "tagger";
        fn build(_: ()) -> Result<Self, ConfigError> {
            Ok(Tagger("t"))
        }
        fn on_request(&self, req: &RequestView, _: &Env) -> Verdict {
            // Report what the earlier members' edits made visible.
            let seen = req.header("x-asker").unwrap_or("none").to_string();
            Verdict::Mutate(vec![
                HeaderOp::Set(format!("x-{}", self.0), "seen".into()),
                HeaderOp::Set(format!("x-{}-saw-asker", self.0), seen),
            ])
        }
    }

    fn call() -> Callout {
        Callout {
            tag: 7,
            cluster: "store".into(),
            method: "POST".into(),
            authority: "store".into(),
            path: "/check".into(),
            headers: vec![],
            body: Some(b"q".to_vec()),
            timeout: Duration::from_millis(200),
        }
    }

    impl Asker {
        fn ask(&self, req: &RequestView) -> Verdict {
            let who = req.header("x-user").unwrap_or("").to_string();
            match Ask::new(vec![call()], Resume::new(who)) {
                Some(a) => Verdict::Ask(a),
                None => Verdict::Deny(Rejection::new(500, "internal", "")),
            }
        }
    }

    impl Control for Asker {
        type Policy = ();
        const NAME: &'static str = "asker";
        fn build(_: ()) -> Result<Self, ConfigError> {
            Ok(Asker { in_body: false })
        }
        fn on_request(&self, req: &RequestView, _: &Env) -> Verdict {
            if self.in_body {
                Verdict::NeedBody { max_bytes: 64 }
            } else {
                self.ask(req)
            }
        }
        fn on_request_body(&self, req: &RequestView, _: &[u8], _: &Env) -> Verdict {
            self.ask(req)
        }
        fn on_answers(
            &self,
            _req: &RequestView,
            body: Option<&[u8]>,
            state: &Resume,
            answers: &[Answer],
            _: &Env,
        ) -> Verdict {
            if self.in_body != body.is_some() {
                return Verdict::Deny(Rejection::new(500, "test.wrong_phase", ""));
            }
            let who = state.get::<String>().cloned().unwrap_or_default();
            match answers {
                [Ok(r)] if r.status == 200 => {
                    Verdict::Mutate(vec![HeaderOp::Set("x-asker".into(), who)])
                }
                [Ok(_)] => Verdict::Deny(Rejection::new(403, "test.refused", "")),
                _ => Verdict::Deny(Rejection::new(503, "test.unavailable", "")),
            }
        }
    }

    impl Control for Careless {
        type Policy = ();
        const NAME: &'static str = "careless";
        fn build(_: ()) -> Result<Self, ConfigError> {
            Ok(Careless)
        }
        fn on_request(&self, _: &RequestView, _: &Env) -> Verdict {
            match Ask::new(vec![call()], Resume::new(())) {
                Some(a) => Verdict::Ask(a),
                None => Verdict::Continue,
            }
        }
    }

    fn chain(members: Vec<Box<dyn DynControl>>) -> Chain {
        Chain::new(members).unwrap()
    }

    fn ok(status: u16) -> Answer {
        Ok(CalloutResponse {
            status,
            body: Vec::new(),
        })
    }

    fn ask_of(v: Verdict) -> Ask {
        match v {
            Verdict::Ask(a) => a,
            other => panic!("expected an ask, got {other:?}"),
        }
    }

    fn ops_of(v: Verdict) -> Vec<HeaderOp> {
        match v.into_pass() {
            Verdict::Pass { ops, .. } => ops,
            other => panic!("expected a pass, got {other:?}"),
        }
    }

    fn set(k: &str, v: &str) -> HeaderOp {
        HeaderOp::Set(k.into(), v.into())
    }

    #[test]
    fn a_member_in_the_middle_asks_then_the_rest_of_the_chain_runs_on_its_verdict() {
        let c = chain(vec![
            Box::new(Tagger("a")),
            Box::new(Asker { in_body: false }),
            Box::new(Tagger("b")),
        ]);
        let store = MemoryStore::default();
        let env = Env {
            now: SystemTime::UNIX_EPOCH,
            store: &store,
        };
        let req = RequestView::new("GET", "/x", &[("x-user", "alice")]).unwrap();
        let ask = ask_of(c.on_request(&req, &env));
        assert_eq!(ask.callouts, vec![call()], "the member's calls, unchanged");
        let v = c.on_answers(&req, None, &ask.state, &[ok(200)], &env);
        assert_eq!(
            ops_of(v),
            vec![
                set("x-a", "seen"),
                set("x-a-saw-asker", "none"),
                set("x-asker", "alice"),
                set("x-b", "seen"),
                // The member after the asker sees the asker's edit.
                set("x-b-saw-asker", "alice"),
            ]
        );
    }

    #[test]
    fn a_denial_on_the_answers_ends_the_chain() {
        let c = chain(vec![
            Box::new(Asker { in_body: false }),
            Box::new(Tagger("b")),
        ]);
        let store = MemoryStore::default();
        let env = Env {
            now: SystemTime::UNIX_EPOCH,
            store: &store,
        };
        let req = RequestView::new("GET", "/x", &[]).unwrap();
        let ask = ask_of(c.on_request(&req, &env));
        let v = c.on_answers(&req, None, &ask.state, &[ok(500)], &env);
        assert!(
            matches!(v, Verdict::Deny(ref r) if r.code == "test.refused"),
            "{v:?}"
        );
        for failure in [
            CalloutFailure::Timeout,
            CalloutFailure::Reset,
            CalloutFailure::NoCluster,
        ] {
            let v = c.on_answers(&req, None, &ask.state, &[Err(failure)], &env);
            assert!(
                matches!(v, Verdict::Deny(ref r) if r.code == "test.unavailable"),
                "{failure:?}: {v:?}"
            );
        }
    }

    #[test]
    fn an_ask_from_the_body_phase_resumes_the_body_phase_with_the_held_edits() {
        let c = chain(vec![
            Box::new(Tagger("a")),
            Box::new(Asker { in_body: true }),
            Box::new(Tagger("b")),
        ]);
        let store = MemoryStore::default();
        let env = Env {
            now: SystemTime::UNIX_EPOCH,
            store: &store,
        };
        let req = RequestView::new("POST", "/x", &[("x-user", "bob")]).unwrap();
        assert_eq!(
            c.on_request(&req, &env),
            Verdict::NeedBody { max_bytes: 64 }
        );
        let ask = ask_of(c.on_request_body(&req, b"{}", &env));
        // Only the member that asked for the body sees it; Tagger b already spoke.
        let v = c.on_answers(&req, Some(b"{}"), &ask.state, &[ok(200)], &env);
        assert_eq!(
            ops_of(v),
            vec![
                set("x-a", "seen"),
                set("x-a-saw-asker", "none"),
                set("x-b", "seen"),
                set("x-b-saw-asker", "none"),
                set("x-asker", "bob"),
            ]
        );
        // Answers to a body-phase ask without the body: fail closed.
        let v = c.on_answers(&req, None, &ask.state, &[ok(200)], &env);
        assert!(v.is_deny(), "{v:?}");
    }

    #[test]
    fn a_body_request_made_before_an_ask_survives_it() {
        // The first member wants the body, the second asks in the headers phase: after the
        // answers the chain still asks for the body, with the edits held, and the first
        // member may ask again from the body phase.
        let c = chain(vec![
            Box::new(Asker { in_body: true }),
            Box::new(Asker { in_body: false }),
        ]);
        let store = MemoryStore::default();
        let env = Env {
            now: SystemTime::UNIX_EPOCH,
            store: &store,
        };
        let req = RequestView::new("POST", "/x", &[("x-user", "carol")]).unwrap();
        let ask = ask_of(c.on_request(&req, &env));
        let v = c.on_answers(&req, None, &ask.state, &[ok(200)], &env);
        assert_eq!(v, Verdict::NeedBody { max_bytes: 64 });
        let ask = ask_of(c.on_request_body(&req, b"{}", &env));
        let v = c.on_answers(&req, Some(b"{}"), &ask.state, &[ok(200)], &env);
        assert_eq!(
            ops_of(v),
            vec![set("x-asker", "carol"), set("x-asker", "carol")]
        );
    }

    #[test]
    fn unhandled_answers_and_foreign_state_fail_closed() {
        let c = chain(vec![Box::new(Careless), Box::new(Tagger("b"))]);
        let store = MemoryStore::default();
        let env = Env {
            now: SystemTime::UNIX_EPOCH,
            store: &store,
        };
        let req = RequestView::new("GET", "/x", &[]).unwrap();
        let ask = ask_of(c.on_request(&req, &env));
        let v = c.on_answers(&req, None, &ask.state, &[ok(200)], &env);
        assert!(
            matches!(v, Verdict::Deny(ref r) if r.status == 500 && r.code == "internal.unhandled_answers"),
            "{v:?}"
        );
        // A state the chain did not make (a bug in a host): denied, not passed.
        let v = c.on_answers(&req, None, &Resume::new(1u8), &[ok(200)], &env);
        assert!(v.is_deny(), "{v:?}");
    }
}
