//! The per-stream state machine, written once for every runtime: builds the views, asks the
//! control, applies the verdicts, buffers bodies, runs request-time callouts, counts and logs.
//! It touches the proxy only through [`Primitives`]; each runtime adapter forwards its stream
//! callbacks here and maps [`Flow`] onto its own status codes.

use std::rc::Rc;

use super::primitives::{Flow, Part, Primitives, Refused};
use crate::alert;
use crate::callout::MAX_ASKS_PER_REQUEST;
use crate::control::{Control, Env};
use crate::inflight::Pending;
use crate::method_override::MethodOverride;
use crate::reject::Rejection;
use crate::request::{RequestView, ResponseView};
use crate::telemetry::{denial_log_line, Outcome};
use crate::verdict::{HeaderOp, Verdict};

/// What every stream of one loaded policy shares (one per wasm VM; one per worker thread in the
/// native module).
pub struct Shared<C> {
    pub control: C,
    /// What to do with `X-HTTP-Method-Override` and its kin (the policy's top level).
    pub method_override: MethodOverride,
}

pub struct Stream<C> {
    /// `None` only if the proxy created a stream without a loaded policy: then deny everything.
    shared: Option<Rc<Shared<C>>>,
    req: Option<RequestView>,
    resp: Option<ResponseView>,
    /// Set while buffering the request body for the control.
    req_body_limit: Option<usize>,
    /// Set while buffering the response body for the control.
    resp_body_limit: Option<usize>,
    /// Body bytes the proxy said it holds (last body callback): trailers must find them all.
    req_body_seen: usize,
    resp_body_seen: usize,
    /// We answered locally: ignore the rest of this stream.
    replied: bool,
    /// A control's request-time callouts in flight: the request waits for their answers.
    pending: Option<Pending>,
    /// Asks made for this request so far (at most `MAX_ASKS_PER_REQUEST`).
    asks: usize,
    /// The request body ended (body or trailers with end of stream) while it waited.
    req_body_ended: bool,
}

/// Log an internal error and build its fail-closed denial.
pub fn internal(detail: &str) -> Rejection {
    log::error!("portcullis: internal error: {detail}");
    Rejection::new(500, "internal", "the request could not be checked")
}

/// A panic: what any bug reachable from a request would do (a wasm trap; in the native module,
/// a panic the hook boundary catches).
#[cfg(feature = "fault-injection")]
#[allow(clippy::panic)]
fn fault_trap() -> ! {
    panic!("portcullis: fault injection: trap")
}

fn unconfigured() -> Rejection {
    Rejection::new(503, "internal.unconfigured", "the filter has no policy")
}

fn too_large(max: usize) -> Rejection {
    Rejection::new(
        413,
        "body.too_large",
        format!("the body is larger than {max} bytes"),
    )
}

/// What the host could hand the control of a response body.
#[derive(Clone, Copy)]
enum RespBody<'a> {
    /// All of it, and the body buffer the proxy holds (see [`Stream::apply`]).
    Whole(&'a [u8], Option<usize>),
    /// The first `max_bytes` of a larger body.
    Prefix(&'a [u8]),
    /// Buffered by the proxy but not handed over.
    Unreadable,
}

impl<C: Control> Stream<C> {
    pub fn new(shared: Option<Rc<Shared<C>>>) -> Self {
        Stream {
            shared,
            req: None,
            resp: None,
            req_body_limit: None,
            resp_body_limit: None,
            req_body_seen: 0,
            resp_body_seen: 0,
            replied: false,
            pending: None,
            asks: 0,
            req_body_ended: false,
        }
    }

    fn env<'p, P: Primitives + ?Sized>(p: &'p P) -> Env<'p> {
        Env {
            now: p.now(),
            store: p.store(),
        }
    }

    // ----- stream callbacks (each runtime forwards its own here) -----

    pub fn on_request_headers<P: Primitives + ?Sized>(&mut self, p: &mut P, end: bool) -> Flow {
        let Some(shared) = self.shared.clone() else {
            return self.deny(p, unconfigured());
        };
        let mut req = match RequestView::from_headers(p.request_headers()) {
            Ok(r) => r,
            Err(e) => return self.deny(p, Rejection::new(400, "request.bad_path", e.to_string())),
        };
        req.has_body = !end;
        req.connection = p.connection();
        // Before any rule is matched on the method: the upstream must act on the same one.
        match shared.method_override.decide(&req) {
            Err(r) => return self.deny(p, r),
            Ok(strip) => {
                // Removed from what the upstream gets; the view keeps it (no control acts on it).
                for name in strip {
                    if let Err(e) = p.set_header(Part::Request, name, None) {
                        return self.refused(p, e);
                    }
                }
            }
        }
        #[cfg(feature = "fault-injection")]
        match req.header("x-portcullis-fault") {
            Some("trap") => fault_trap(),
            Some("internal") => return self.deny(p, internal("fault injection")),
            // A write the proxy refuses in this state, under either runtime: there are no
            // response headers yet while the request's are checked.
            Some("refused-write") => {
                if let Err(e) = p.set_header(Part::Response, "x-portcullis-fault", Some("x")) {
                    return self.refused(p, e);
                }
            }
            _ => {}
        }
        let verdict = shared.control.on_request(&req, &Self::env(p));
        self.req = Some(req);
        self.decide(p, verdict, None)
    }

    /// `size`: the body bytes the proxy holds now (this callback's data included).
    pub fn on_request_body<P: Primitives + ?Sized>(
        &mut self,
        p: &mut P,
        size: usize,
        end: bool,
    ) -> Flow {
        if self.replied {
            return Flow::Pause;
        }
        // Waiting for callout answers: the proxy buffers the body; nothing goes upstream yet.
        if self.pending.is_some() {
            self.req_body_seen = size;
            self.req_body_ended |= end;
            return Flow::Pause;
        }
        let Some(max) = self.req_body_limit else {
            return Flow::Continue;
        };
        self.req_body_seen = size;
        if size > max {
            return self.deny(p, too_large(max));
        }
        if !end {
            return Flow::Pause;
        }
        let body = if size == 0 {
            Some(Vec::new())
        } else {
            p.body(Part::Request, size)
        };
        match body {
            // Inside a body callback the proxy always holds a buffer (maybe an empty one).
            Some(body) => self.request_body_verdict(p, &body, Some(size)),
            None => self.deny(p, internal("the buffered body could not be read")),
        }
    }

    pub fn on_request_trailers<P: Primitives + ?Sized>(&mut self, p: &mut P) -> Flow {
        if self.pending.is_some() {
            self.req_body_ended = true;
            return Flow::Pause;
        }
        // Trailers end the stream while we still buffer: check what arrived.
        if self.replied || self.req_body_limit.is_none() {
            return Flow::Continue;
        }
        // No body bytes came before the trailers: the proxy buffers nothing, ask for nothing.
        if self.req_body_seen == 0 {
            return self.request_body_verdict(p, &[], None);
        }
        match p.body(Part::Request, usize::MAX) {
            Some(body) => {
                let held = Some(body.len());
                self.request_body_verdict(p, &body, held)
            }
            None => self.deny(p, internal("the buffered body could not be read")),
        }
    }

    pub fn on_response_headers<P: Primitives + ?Sized>(&mut self, p: &mut P, end: bool) -> Flow {
        let Some(shared) = self.shared.clone() else {
            return Flow::Continue;
        };
        let req = self.req.take().unwrap_or_default();
        // `:status` is among the pairs: no second host call for it.
        let headers = p.response_headers();
        let status = headers
            .iter()
            .find(|(k, _)| k == ":status")
            .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse().ok())
            .unwrap_or(0);
        let resp = ResponseView { status, headers };
        let verdict = shared.control.on_response(&req, &resp, &Self::env(p));
        self.req = Some(req);
        self.resp = Some(resp);
        if self.replied {
            // Our own local reply: only header edits apply (no second denial, no body rewrite);
            // a chain's come as `Pass`.
            if let Verdict::Pass { ops, .. } = verdict.into_pass() {
                if let Err(e) = apply_ops(p, &ops, Part::Response) {
                    log::error!("portcullis {}: internal error: {e}", C::NAME);
                }
            }
            return Flow::Continue;
        }
        match verdict {
            // No body follows (a bodiless 5xx, HEAD, 204, 304): the control sees an empty one
            // now, and the proxy holds no body buffer for it.
            Verdict::NeedBody { .. } if end => {
                self.response_body_verdict(p, RespBody::Whole(&[], None))
            }
            v => self.apply(p, v, Part::Response, None),
        }
    }

    /// `size`: the body bytes the proxy holds now (this callback's data included).
    pub fn on_response_body<P: Primitives + ?Sized>(
        &mut self,
        p: &mut P,
        size: usize,
        end: bool,
    ) -> Flow {
        let Some(max) = self.resp_body_limit else {
            return Flow::Continue;
        };
        self.resp_body_seen = size;
        if size > max {
            // The control sees the first `max` bytes; the rest passes unseen.
            return match p.body(Part::Response, max) {
                Some(prefix) => self.response_body_verdict(p, RespBody::Prefix(&prefix)),
                None => self.response_body_verdict(p, RespBody::Unreadable),
            };
        }
        if !end {
            return Flow::Pause;
        }
        match p.body(Part::Response, size) {
            // Inside a body callback the proxy always holds a buffer (maybe an empty one).
            Some(body) => self.response_body_verdict(p, RespBody::Whole(&body, Some(size))),
            None if size == 0 => self.response_body_verdict(p, RespBody::Whole(&[], Some(0))),
            // A buffered body the host cannot hand over is treated as one too large to inspect
            // (a control that must not let it pass denies it), never as an empty one.
            None => self.response_body_verdict(p, RespBody::Unreadable),
        }
    }

    pub fn on_response_trailers<P: Primitives + ?Sized>(&mut self, p: &mut P) -> Flow {
        // Trailers end the stream while we still buffer (gRPC, HTTP/2): the last body callback
        // never had `end`, so check what arrived now, or it would pass unchecked.
        if self.replied || self.resp_body_limit.is_none() {
            return Flow::Continue;
        }
        // No body bytes came before the trailers: the proxy buffers nothing, ask for nothing.
        if self.resp_body_seen == 0 {
            return self.response_body_verdict(p, RespBody::Whole(&[], None));
        }
        match p.body(Part::Response, usize::MAX) {
            Some(body) => {
                let held = Some(body.len());
                self.response_body_verdict(p, RespBody::Whole(&body, held))
            }
            // As in the body callback: a body that cannot be handed over is never an empty one.
            None => self.response_body_verdict(p, RespBody::Unreadable),
        }
    }

    /// The answer (or failure: no `status`) of one request-time callout. Once every call of the
    /// ask is answered the control decides, and a request it lets through is resumed.
    pub fn on_answer<P: Primitives + ?Sized>(
        &mut self,
        p: &mut P,
        token: u64,
        status: Option<u16>,
        body: Vec<u8>,
    ) {
        let Some(mut pending) = self.pending.take() else {
            return;
        };
        if !pending.answer(token, status, body) || !pending.done() {
            self.pending = Some(pending);
            return;
        }
        let flow = self.answered(p, pending);
        // Still waiting (another ask, or the body being buffered), or answered locally.
        if flow != Flow::Continue || self.replied || self.pending.is_some() {
            return;
        }
        if let Err(e) = p.resume_request() {
            // Denied with a local reply instead: the request stays paused, nothing passes.
            let _ = self.refused(p, e);
        }
    }

    // ----- verdicts -----

    /// Apply a verdict. `held`: the size of the body buffer the proxy holds for this phase right
    /// now (inside a body callback, or at trailers after body bytes were buffered); `None` when
    /// there is none (headers phase, a bodiless message). Envoy refuses to write a body it does
    /// not hold: a `ReplaceBody` without one becomes a local reply (response) or a fail-closed
    /// internal error (request), never that call.
    fn apply<P: Primitives + ?Sized>(
        &mut self,
        p: &mut P,
        verdict: Verdict,
        phase: Part,
        held: Option<usize>,
    ) -> Flow {
        if self.shared.is_none() {
            return self.deny(p, unconfigured());
        }
        let count_allowed = |p: &P| {
            if phase == Part::Request {
                p.count(C::NAME, Outcome::Allowed, "ok");
            }
        };
        match verdict {
            Verdict::Continue => {
                count_allowed(p);
                Flow::Continue
            }
            Verdict::Mutate(ops) => {
                if let Err(e) = apply_ops(p, &ops, phase) {
                    return self.refused(p, e);
                }
                count_allowed(p);
                Flow::Continue
            }
            Verdict::NeedBody { max_bytes } => self.need_body(p, max_bytes, phase),
            Verdict::ReplaceBody {
                code,
                headers,
                body,
            } => {
                let Some(body_len) = held else {
                    return match phase {
                        Part::Response => self.replace_with_local_reply(p, code, &headers, &body),
                        Part::Request => self.deny(
                            p,
                            internal("a control replaced a request body the proxy does not hold"),
                        ),
                    };
                };
                let len = HeaderOp::Set("content-length".into(), body.len().to_string());
                let written = p
                    .replace_body(phase, body_len, &body)
                    .and_then(|()| apply_ops(p, &headers, phase))
                    .and_then(|()| apply_ops(p, &[len], phase));
                if let Err(e) = written {
                    return self.refused(p, e);
                }
                p.count(C::NAME, Outcome::Replaced, code);
                Flow::Continue
            }
            Verdict::Deny(r) => self.deny(p, r),
            // Request verdicts reach here through `decide`, which runs an `Ask`; one from a
            // response phase cannot be run (the request is gone): fail closed, never a pass.
            Verdict::Ask(_) => self.deny(
                p,
                internal("a control asked for callouts while answering the response"),
            ),
            Verdict::Report(r) => {
                self.report(p, &r);
                Flow::Continue
            }
            Verdict::Pass { ops, reports } => {
                if let Err(e) = apply_ops(p, &ops, phase) {
                    return self.refused(p, e);
                }
                for r in &reports {
                    self.report(p, r);
                }
                if reports.is_empty() {
                    count_allowed(p);
                }
                Flow::Continue
            }
        }
    }

    /// A bodiless response (a 504 with `Content-Length: 0`, an answer to HEAD, a 204 or 304)
    /// whose body a control replaces: there is no body buffer to write, so the new body and
    /// headers go out as a local reply with the same status. No body for HEAD, 204 and 304
    /// (RFC 9110 §9.3.2, §15.3.5, §15.4.5): their status and headers only.
    fn replace_with_local_reply<P: Primitives + ?Sized>(
        &mut self,
        p: &mut P,
        code: &'static str,
        ops: &[HeaderOp],
        body: &[u8],
    ) -> Flow {
        let status = ops
            .iter()
            .rev()
            .find_map(|op| match op {
                HeaderOp::Set(k, v) if k == ":status" => v.parse::<u16>().ok(),
                _ => None,
            })
            .or(self.resp.as_ref().map(|r| r.status))
            .filter(|s| (200..=599).contains(s))
            .unwrap_or(500);
        let headers: Vec<(&str, &str)> = ops
            .iter()
            .filter_map(|op| match op {
                HeaderOp::Set(k, v) | HeaderOp::Add(k, v) => Some((k.as_str(), v.as_str())),
                HeaderOp::Remove(_) => None,
            })
            .filter(|(k, _)| !k.starts_with(':') && *k != "content-length")
            .collect();
        // Envoy drops the body of a local reply to HEAD itself and keeps its headers
        // (content-type, content-length); 204 and 304 never carry one (RFC 9110 §15.3.5, §15.4.5).
        let bodiless = status == 204 || status == 304;
        if let Err(e) = p.send_response(status, &headers, (!bodiless).then_some(body)) {
            return self.refused(p, e);
        }
        self.replied = true;
        p.count(C::NAME, Outcome::Replaced, code);
        Flow::Pause
    }

    /// The proxy refused a write in this stream state: an internal error, failing closed (the
    /// request is denied, the response replaced by the problem), never a trap.
    fn refused<P: Primitives + ?Sized>(&mut self, p: &mut P, e: Refused) -> Flow {
        self.deny(p, internal(&e.to_string()))
    }

    fn need_body<P: Primitives + ?Sized>(&mut self, p: &mut P, max: usize, phase: Part) -> Flow {
        match phase {
            // The body arrived whole while the request waited for callouts: read it now.
            Part::Request if self.req_body_ended => {
                let seen = self.req_body_seen;
                if seen > max {
                    return self.deny(p, too_large(max));
                }
                if seen == 0 {
                    return self.request_body_verdict(p, &[], None);
                }
                match p.body(Part::Request, seen) {
                    Some(body) => self.request_body_verdict(p, &body, Some(seen)),
                    None => self.deny(p, internal("the buffered body could not be read")),
                }
            }
            Part::Request if self.req.as_ref().is_some_and(|r| r.has_body) => {
                self.req_body_limit = Some(max);
                Flow::Pause
            }
            // The headers ended the stream: the control sees the empty body now, and the proxy
            // holds no body buffer for it.
            Part::Request => self.request_body_verdict(p, &[], None),
            Part::Response => {
                self.resp_body_limit = Some(max);
                Flow::Pause
            }
        }
    }

    fn report<P: Primitives + ?Sized>(&self, p: &P, r: &Rejection) {
        self.log_denial(p, Outcome::Reported, r);
        count(p, C::NAME, Outcome::Reported, r);
    }

    fn log_denial<P: Primitives + ?Sized>(&self, p: &P, outcome: Outcome, r: &Rejection) {
        let client = p.client();
        let line = denial_log_line(C::NAME, outcome, r, self.req.as_ref(), client.as_deref());
        log::info!("{line}");
        if outcome == Outcome::Denied {
            alert::record_denial(p.store(), p.now(), r.code, client.as_deref());
        }
    }

    fn deny<P: Primitives + ?Sized>(&mut self, p: &mut P, r: Rejection) -> Flow {
        self.log_denial(p, Outcome::Denied, &r);
        if self.shared.is_some() {
            count(p, C::NAME, Outcome::Denied, &r);
        }
        let body = r.problem_body(self.req.as_ref().and_then(RequestView::request_id));
        self.replied = true;
        let mut headers: Vec<(String, String)> = r
            .response_headers()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if !p.own_reply_runs_response_hooks() {
            self.own_reply_headers(p, r.status, &mut headers);
        }
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let sent = p.send_response(r.status, &headers, Some(body.as_bytes()));
        // Not even a local reply is possible: reset the stream rather than let it continue;
        // if that is refused too, the stream stays paused (nothing passes) until the proxy's
        // timeouts end it.
        if let Err(e) = sent {
            log::error!(
                "portcullis {}: internal error: {e}; resetting the stream",
                C::NAME
            );
            if let Err(e) = p.reset_stream() {
                log::error!("portcullis {}: internal error: {e}", C::NAME);
            }
        }
        Flow::Pause
    }

    /// The header edits the control makes to its own local reply (header-guard's security
    /// headers), for a runtime that does not pass that reply through the filter's response
    /// hooks: asked now and written into the reply's headers.
    fn own_reply_headers<P: Primitives + ?Sized>(
        &mut self,
        p: &P,
        status: u16,
        headers: &mut Vec<(String, String)>,
    ) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        let req = self.req.take().unwrap_or_default();
        let resp = ResponseView {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
                .collect(),
        };
        let verdict = shared.control.on_response(&req, &resp, &Self::env(p));
        self.req = Some(req);
        let Verdict::Pass { ops, .. } = verdict.into_pass() else {
            return;
        };
        for op in ops {
            match op {
                HeaderOp::Set(k, _) | HeaderOp::Add(k, _) if k.starts_with(':') => {}
                HeaderOp::Set(k, v) => {
                    headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&k));
                    headers.push((k, v));
                }
                HeaderOp::Add(k, v) => headers.push((k, v)),
                HeaderOp::Remove(k) => headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&k)),
            }
        }
    }

    /// `held`: the body buffer the proxy holds (see [`Self::apply`]).
    fn request_body_verdict<P: Primitives + ?Sized>(
        &mut self,
        p: &mut P,
        body: &[u8],
        held: Option<usize>,
    ) -> Flow {
        self.req_body_limit = None;
        let (Some(shared), Some(req)) = (self.shared.clone(), self.req.take()) else {
            return self.deny(p, internal("request state lost"));
        };
        let verdict = shared.control.on_request_body(&req, body, &Self::env(p));
        self.req = Some(req);
        match verdict {
            Verdict::NeedBody { .. } => {
                self.deny(p, internal("the control asked for the body twice"))
            }
            v => self.decide(p, v, Some((body, held))),
        }
    }

    /// A request verdict: an `Ask` pauses the request while the proxy makes its calls (the
    /// answers come to `on_answer`); any other verdict is applied. `body`: what the control
    /// decided on in `on_request_body`, and the buffer the proxy holds.
    fn decide<P: Primitives + ?Sized>(
        &mut self,
        p: &mut P,
        verdict: Verdict,
        body: Option<(&[u8], Option<usize>)>,
    ) -> Flow {
        let Verdict::Ask(ask) = verdict else {
            return self.apply(p, verdict, Part::Request, body.and_then(|(_, held)| held));
        };
        self.asks += 1;
        if self.asks > MAX_ASKS_PER_REQUEST {
            return self.deny(
                p,
                internal(
                    "a control asked for more rounds of request-time callouts than a request may make",
                ),
            );
        }
        let pending = Pending::start(&ask, body.map(|(b, held)| (b.to_vec(), held)), |d| {
            p.dispatch(d)
        });
        if pending.done() {
            // Nothing could be sent: the control decides on the failures now.
            return self.answered(p, pending);
        }
        self.pending = Some(pending);
        Flow::Pause
    }

    /// Every call of an ask answered: the control decides on the answers.
    fn answered<P: Primitives + ?Sized>(&mut self, p: &mut P, pending: Pending) -> Flow {
        let (Some(shared), Some(req)) = (self.shared.clone(), self.req.take()) else {
            return self.deny(p, internal("request state lost"));
        };
        let answers = pending.answers();
        let body = pending.body.as_ref().map(|(b, _)| b.as_slice());
        let verdict =
            shared
                .control
                .on_answers(&req, body, &pending.state, &answers, &Self::env(p));
        self.req = Some(req);
        match (verdict, &pending.body) {
            (Verdict::NeedBody { max_bytes }, None) => self.need_body(p, max_bytes, Part::Request),
            (Verdict::NeedBody { .. }, Some(_)) => {
                self.deny(p, internal("the control asked for the body twice"))
            }
            (v, body) => self.decide(p, v, body.as_ref().map(|(b, held)| (b.as_slice(), *held))),
        }
    }

    fn response_body_verdict<P: Primitives + ?Sized>(&mut self, p: &mut P, body: RespBody) -> Flow {
        self.resp_body_limit = None;
        let (Some(shared), Some(req), Some(resp)) =
            (self.shared.clone(), self.req.take(), self.resp.take())
        else {
            return Flow::Continue;
        };
        let env = Self::env(p);
        let verdict = match body {
            RespBody::Whole(b, _) => shared.control.on_response_body(&req, &resp, Some(b), &env),
            RespBody::Prefix(b) => shared.control.on_response_body_prefix(&req, &resp, b, &env),
            RespBody::Unreadable => shared.control.on_response_body(&req, &resp, None, &env),
        };
        self.req = Some(req);
        self.resp = Some(resp);
        match (verdict, body) {
            (Verdict::NeedBody { .. }, _) => {
                self.deny(p, internal("the control asked for the response body twice"))
            }
            (v, RespBody::Whole(_, held)) => self.apply(p, v, Part::Response, held),
            // Not held whole, and the control must not let it pass (an error page being hidden,
            // a body it has to encrypt, a leak in the part it saw): replaced by the denial.
            (Verdict::Deny(r), _) => self.deny(p, r),
            // No callouts in a response phase: fail closed.
            (Verdict::Ask(_), _) => self.deny(
                p,
                internal("a control asked for callouts while answering the response"),
            ),
            // A body the host does not hold whole cannot be replaced, and must not pass as it is.
            (Verdict::ReplaceBody { .. }, _) => self.deny(
                p,
                internal("a control replaced a response body too large to hold"),
            ),
            // Too large to inspect whole: it passes unchanged (never truncated) and is counted;
            // the control may still edit headers and report.
            (v, _) => {
                let r = Rejection::new(200, "response.too_large_to_inspect", "");
                self.report(p, &r);
                match v.into_pass() {
                    v @ Verdict::Pass { .. } => self.apply(p, v, Part::Response, None),
                    _ => Flow::Continue,
                }
            }
        }
    }
}

/// A denial or report: the request counter, and the operation's when the control named one.
fn count<P: Primitives + ?Sized>(p: &P, module: &'static str, outcome: Outcome, r: &Rejection) {
    p.count(module, outcome, r.code);
    if let Some(op) = &r.operation {
        p.count_operation(module, outcome, r.code, op);
    }
}

fn apply_ops<P: Primitives + ?Sized>(
    p: &mut P,
    ops: &[HeaderOp],
    part: Part,
) -> Result<(), Refused> {
    for op in ops {
        match op {
            HeaderOp::Set(k, v) => p.set_header(part, k, Some(v))?,
            HeaderOp::Add(k, v) => p.add_header(part, k, v)?,
            HeaderOp::Remove(k) => p.set_header(part, k, None)?,
        }
    }
    Ok(())
}
