//! The HTTP context: one per request. Builds the views, asks the control, applies the verdicts.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType, Status};

use super::root::Shared;
use super::store::ProxyStore;
use super::writes::{self, Refused};
use crate::alert;
use crate::callout::{CalloutFailure, MAX_ASKS_PER_REQUEST};
use crate::control::{Control, Env};
use crate::inflight::Pending;
use crate::reject::Rejection;
use crate::request::{RequestView, ResponseView};
use crate::telemetry::{denial_log_line, Outcome};
use crate::verdict::{HeaderOp, Verdict};

pub struct Http<C> {
    /// `None` only if Envoy created a context without a loaded policy: then deny everything.
    shared: Option<Rc<Shared<C>>>,
    req: Option<RequestView>,
    resp: Option<ResponseView>,
    /// Set while buffering the request body for the control.
    req_body_limit: Option<usize>,
    /// Set while buffering the response body for the control.
    resp_body_limit: Option<usize>,
    /// Body bytes Envoy said it holds (last body callback): trailers must find them all.
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Request,
    Response,
}

fn internal(detail: &str) -> Rejection {
    log::error!("portcullis: internal error: {detail}");
    Rejection::new(500, "internal", "the request could not be checked")
}

/// A panic traps the VM (panic = abort): what any bug reachable from a request would do.
#[cfg(feature = "fault-injection")]
#[allow(clippy::panic)]
fn fault_trap() -> ! {
    panic!("portcullis: fault injection: trap")
}

fn unconfigured() -> Rejection {
    Rejection::new(503, "internal.unconfigured", "the filter has no policy")
}

impl<C: Control> Http<C> {
    pub fn new(shared: Option<Rc<Shared<C>>>) -> Self {
        Http {
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

    /// Apply a verdict. `held`: the size of the body buffer Envoy holds for this phase right
    /// now (inside a body callback, or at trailers after body bytes were buffered); `None` when
    /// there is none (headers phase, a bodiless message). Envoy refuses to write a body it does
    /// not hold, and the SDK turns that refusal into a trap: a `ReplaceBody` without one becomes
    /// a local reply (response) or a fail-closed internal error (request), never that call.
    fn apply(&mut self, verdict: Verdict, phase: Phase, held: Option<usize>) -> Action {
        let Some(shared) = self.shared.clone() else {
            return self.deny(unconfigured());
        };
        let count_allowed = |s: &Shared<C>| {
            if phase == Phase::Request {
                s.metrics.count(C::NAME, Outcome::Allowed, "ok");
            }
        };
        match verdict {
            Verdict::Continue => {
                count_allowed(&shared);
                Action::Continue
            }
            Verdict::Mutate(ops) => {
                if let Err(e) = self.apply_ops(&ops, phase) {
                    return self.refused(e);
                }
                count_allowed(&shared);
                Action::Continue
            }
            Verdict::NeedBody { max_bytes } => self.need_body(max_bytes, phase),
            Verdict::ReplaceBody {
                code,
                headers,
                body,
            } => {
                let Some(body_len) = held else {
                    return match phase {
                        Phase::Response => {
                            self.replace_with_local_reply(&shared, code, &headers, &body)
                        }
                        Phase::Request => self.deny(internal(
                            "a control replaced a request body Envoy does not hold",
                        )),
                    };
                };
                let buffer = match phase {
                    Phase::Request => BufferType::HttpRequestBody,
                    Phase::Response => BufferType::HttpResponseBody,
                };
                let len = HeaderOp::Set("content-length".into(), body.len().to_string());
                let written = writes::set_body(buffer, 0, body_len, &body)
                    .and_then(|()| self.apply_ops(&headers, phase))
                    .and_then(|()| self.apply_ops(&[len], phase));
                if let Err(e) = written {
                    return self.refused(e);
                }
                shared.metrics.count(C::NAME, Outcome::Replaced, code);
                Action::Continue
            }
            Verdict::Deny(r) => self.deny(r),
            // Request verdicts reach here through `decide`, which runs an `Ask`; one from a
            // response phase cannot be run (the request is gone): fail closed, never a pass.
            Verdict::Ask(_) => self.deny(internal(
                "a control asked for callouts while answering the response",
            )),
            Verdict::Report(r) => {
                self.report(&shared, &r);
                Action::Continue
            }
            Verdict::Pass { ops, reports } => {
                if let Err(e) = self.apply_ops(&ops, phase) {
                    return self.refused(e);
                }
                for r in &reports {
                    self.report(&shared, r);
                }
                if reports.is_empty() {
                    count_allowed(&shared);
                }
                Action::Continue
            }
        }
    }

    /// A bodiless response (a 504 with `Content-Length: 0`, an answer to HEAD, a 204 or 304)
    /// whose body a control replaces: there is no body buffer to write, so the new body and
    /// headers go out as a local reply with the same status. No body for HEAD, 204 and 304
    /// (RFC 9110 §9.3.2, §15.3.5, §15.4.5): their status and headers only.
    fn replace_with_local_reply(
        &mut self,
        shared: &Shared<C>,
        code: &'static str,
        ops: &[HeaderOp],
        body: &[u8],
    ) -> Action {
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
        if let Err(e) =
            writes::send_response(u32::from(status), &headers, (!bodiless).then_some(body))
        {
            return self.refused(e);
        }
        self.replied = true;
        shared.metrics.count(C::NAME, Outcome::Replaced, code);
        Action::Pause
    }

    /// Envoy refused a write in this stream state: an internal error, failing closed (the
    /// request is denied, the response replaced by the problem), never a trap.
    fn refused(&mut self, e: Refused) -> Action {
        self.deny(internal(&e.to_string()))
    }

    fn need_body(&mut self, max_bytes: usize, phase: Phase) -> Action {
        match phase {
            // The body arrived whole while the request waited for callouts: read it now.
            Phase::Request if self.req_body_ended => {
                let seen = self.req_body_seen;
                if seen > max_bytes {
                    return self.deny(Rejection::new(
                        413,
                        "body.too_large",
                        format!("the body is larger than {max_bytes} bytes"),
                    ));
                }
                if seen == 0 {
                    return self.request_body_verdict(&[], None);
                }
                match self.get_http_request_body(0, seen) {
                    Some(body) => self.request_body_verdict(&body, Some(seen)),
                    None => self.deny(internal("the buffered body could not be read")),
                }
            }
            Phase::Request if self.req.as_ref().is_some_and(|r| r.has_body) => {
                self.req_body_limit = Some(max_bytes);
                Action::Pause
            }
            // The headers ended the stream: the control sees the empty body now, and Envoy
            // holds no body buffer for it.
            Phase::Request => self.request_body_verdict(&[], None),
            Phase::Response => {
                self.resp_body_limit = Some(max_bytes);
                Action::Pause
            }
        }
    }

    fn apply_ops(&self, ops: &[HeaderOp], phase: Phase) -> Result<(), Refused> {
        let map = match phase {
            Phase::Request => MapType::HttpRequestHeaders,
            Phase::Response => MapType::HttpResponseHeaders,
        };
        for op in ops {
            match op {
                HeaderOp::Set(k, v) => writes::set_header(map, k, Some(v))?,
                HeaderOp::Add(k, v) => writes::add_header(map, k, v)?,
                HeaderOp::Remove(k) => writes::set_header(map, k, None)?,
            }
        }
        Ok(())
    }

    fn report(&self, shared: &Shared<C>, r: &Rejection) {
        self.log_denial(Outcome::Reported, r);
        shared.metrics.count(C::NAME, Outcome::Reported, r.code);
    }

    fn log_denial(&self, outcome: Outcome, r: &Rejection) {
        let client = self
            .get_property(vec!["source", "address"])
            .and_then(|b| String::from_utf8(b).ok());
        let line = denial_log_line(C::NAME, outcome, r, self.req.as_ref(), client.as_deref());
        log::info!("{line}");
        if outcome == Outcome::Denied {
            alert::record_denial(
                &ProxyStore,
                self.get_current_time(),
                r.code,
                client.as_deref(),
            );
        }
    }

    fn deny(&mut self, r: Rejection) -> Action {
        self.log_denial(Outcome::Denied, &r);
        if let Some(shared) = &self.shared {
            shared.metrics.count(C::NAME, Outcome::Denied, r.code);
        }
        let body = r.problem_body(self.req.as_ref().and_then(RequestView::request_id));
        self.replied = true;
        let sent = writes::send_response(
            u32::from(r.status),
            &r.response_headers(),
            Some(body.as_bytes()),
        );
        // Not even a local reply is possible: reset the stream rather than let it continue;
        // if that is refused too, the stream stays paused (nothing passes) until Envoy's
        // timeouts end it.
        if let Err(e) = sent {
            log::error!(
                "portcullis {}: internal error: {e}; resetting the stream",
                C::NAME
            );
            if let Err(e) = writes::reset_stream() {
                log::error!("portcullis {}: internal error: {e}", C::NAME);
            }
        }
        Action::Pause
    }

    fn env(&self) -> Env<'static> {
        Env {
            now: self.get_current_time(),
            store: &ProxyStore,
        }
    }

    /// `held`: the body buffer Envoy holds (see [`Self::apply`]).
    fn request_body_verdict(&mut self, body: &[u8], held: Option<usize>) -> Action {
        self.req_body_limit = None;
        let (Some(shared), Some(req)) = (self.shared.clone(), self.req.take()) else {
            return self.deny(internal("request state lost"));
        };
        let verdict = shared.control.on_request_body(&req, body, &self.env());
        self.req = Some(req);
        match verdict {
            Verdict::NeedBody { .. } => self.deny(internal("the control asked for the body twice")),
            v => self.decide(v, Some((body, held))),
        }
    }

    /// A request verdict: an `Ask` pauses the request while Envoy makes its calls (the answers
    /// come to `on_http_call_response`); any other verdict is applied. `body`: what the control
    /// decided on in `on_request_body`, and the buffer Envoy holds.
    fn decide(&mut self, verdict: Verdict, body: Option<(&[u8], Option<usize>)>) -> Action {
        let Verdict::Ask(ask) = verdict else {
            return self.apply(verdict, Phase::Request, body.and_then(|(_, held)| held));
        };
        self.asks += 1;
        if self.asks > MAX_ASKS_PER_REQUEST {
            return self.deny(internal(
                "a control asked for more rounds of request-time callouts than a request may make",
            ));
        }
        let pending = Pending::start(&ask, body.map(|(b, held)| (b.to_vec(), held)), |d| {
            self.dispatch_http_call(d.cluster, d.headers, d.body, vec![], d.timeout)
                .map_err(|status| match status {
                    // What Envoy answers for a cluster it does not know.
                    Status::BadArgument => CalloutFailure::NoCluster,
                    _ => CalloutFailure::Refused,
                })
        });
        if pending.done() {
            // Nothing could be sent: the control decides on the failures now.
            return self.answered(pending);
        }
        self.pending = Some(pending);
        Action::Pause
    }

    /// Every call of an ask answered: the control decides on the answers.
    fn answered(&mut self, pending: Pending) -> Action {
        let (Some(shared), Some(req)) = (self.shared.clone(), self.req.take()) else {
            return self.deny(internal("request state lost"));
        };
        let answers = pending.answers();
        let body = pending.body.as_ref().map(|(b, _)| b.as_slice());
        let verdict = shared
            .control
            .on_answers(&req, body, &pending.state, &answers, &self.env());
        self.req = Some(req);
        match (verdict, &pending.body) {
            (Verdict::NeedBody { max_bytes }, None) => self.need_body(max_bytes, Phase::Request),
            (Verdict::NeedBody { .. }, Some(_)) => {
                self.deny(internal("the control asked for the body twice"))
            }
            (v, body) => self.decide(v, body.as_ref().map(|(b, held)| (b.as_slice(), *held))),
        }
    }

    fn response_body_verdict(&mut self, body: RespBody) -> Action {
        self.resp_body_limit = None;
        let (Some(shared), Some(req), Some(resp)) =
            (self.shared.clone(), self.req.take(), self.resp.take())
        else {
            return Action::Continue;
        };
        let env = self.env();
        let verdict = match body {
            RespBody::Whole(b, _) => shared.control.on_response_body(&req, &resp, Some(b), &env),
            RespBody::Prefix(p) => shared.control.on_response_body_prefix(&req, &resp, p, &env),
            RespBody::Unreadable => shared.control.on_response_body(&req, &resp, None, &env),
        };
        self.req = Some(req);
        self.resp = Some(resp);
        match (verdict, body) {
            (Verdict::NeedBody { .. }, _) => {
                self.deny(internal("the control asked for the response body twice"))
            }
            (v, RespBody::Whole(_, held)) => self.apply(v, Phase::Response, held),
            // Not held whole, and the control must not let it pass (an error page being hidden,
            // a body it has to encrypt, a leak in the part it saw): replaced by the denial.
            (Verdict::Deny(r), _) => self.deny(r),
            // No callouts in a response phase: fail closed.
            (Verdict::Ask(_), _) => self.deny(internal(
                "a control asked for callouts while answering the response",
            )),
            // A body the host does not hold whole cannot be replaced, and must not pass as it is.
            (Verdict::ReplaceBody { .. }, _) => self.deny(internal(
                "a control replaced a response body too large to hold",
            )),
            // Too large to inspect whole: it passes unchanged (never truncated) and is counted;
            // the control may still edit headers and report.
            (v, _) => {
                let r = Rejection::new(200, "response.too_large_to_inspect", "");
                self.report(&shared, &r);
                match v.into_pass() {
                    v @ Verdict::Pass { .. } => self.apply(v, Phase::Response, None),
                    _ => Action::Continue,
                }
            }
        }
    }
}

/// What the host could hand the control of a response body.
#[derive(Clone, Copy)]
enum RespBody<'a> {
    /// All of it, and the body buffer Envoy holds (see [`Http::apply`]).
    Whole(&'a [u8], Option<usize>),
    /// The first `max_bytes` of a larger body.
    Prefix(&'a [u8]),
    /// Buffered by Envoy but not handed over.
    Unreadable,
}

impl<C: Control> Context for Http<C> {
    /// The answer (or failure) of one request-time callout. Once every call of the ask is
    /// answered the control decides, and a request it lets through is resumed.
    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let Some(mut pending) = self.pending.take() else {
            return;
        };
        let status = self
            .get_http_call_response_header(":status")
            .and_then(|s| s.parse::<u16>().ok());
        let body = if body_size == 0 {
            Vec::new()
        } else {
            self.get_http_call_response_body(0, body_size)
                .unwrap_or_default()
        };
        if !pending.answer(token, status, body) || !pending.done() {
            self.pending = Some(pending);
            return;
        }
        let action = self.answered(pending);
        // Still waiting (another ask, or the body being buffered), or answered locally.
        if action != Action::Continue || self.replied || self.pending.is_some() {
            return;
        }
        if let Err(e) = writes::resume_request() {
            // Denied with a local reply instead: the request stays paused, nothing passes.
            let _ = self.refused(e);
        }
    }
}

impl<C: Control> HttpContext for Http<C> {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else {
            return self.deny(unconfigured());
        };
        let mut req = match RequestView::from_headers(self.get_http_request_headers_bytes()) {
            Ok(r) => r,
            Err(e) => return self.deny(Rejection::new(400, "request.bad_path", e.to_string())),
        };
        req.has_body = !end_of_stream;
        req.connection = super::connection::read(self);
        // Before any rule is matched on the method: the upstream must act on the same one.
        match shared.method_override.decide(&req) {
            Err(r) => return self.deny(r),
            Ok(strip) => {
                // Removed from what the upstream gets; the view keeps it (no control acts on it).
                for name in strip {
                    if let Err(e) = writes::set_header(MapType::HttpRequestHeaders, name, None) {
                        return self.refused(e);
                    }
                }
            }
        }
        #[cfg(feature = "fault-injection")]
        match req.header("x-portcullis-fault") {
            Some("trap") => fault_trap(),
            Some("internal") => return self.deny(internal("fault injection")),
            // A write Envoy refuses in this state (no request body is held at the headers of
            // a GET): what replacing a bodiless response's body was before #23.
            Some("refused-write") => {
                if let Err(e) = writes::set_body(BufferType::HttpRequestBody, 0, 0, b"x") {
                    return self.refused(e);
                }
            }
            _ => {}
        }
        let verdict = shared.control.on_request(&req, &self.env());
        self.req = Some(req);
        self.decide(verdict, None)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.replied {
            return Action::Pause;
        }
        // Waiting for callout answers: Envoy buffers the body; nothing goes upstream yet.
        if self.pending.is_some() {
            self.req_body_seen = body_size;
            self.req_body_ended |= end_of_stream;
            return Action::Pause;
        }
        let Some(max) = self.req_body_limit else {
            return Action::Continue;
        };
        self.req_body_seen = body_size;
        if body_size > max {
            let r = Rejection::new(
                413,
                "body.too_large",
                format!("the body is larger than {max} bytes"),
            );
            return self.deny(r);
        }
        if !end_of_stream {
            return Action::Pause;
        }
        let body = if body_size == 0 {
            Some(Vec::new())
        } else {
            self.get_http_request_body(0, body_size)
        };
        match body {
            // Inside a body callback Envoy always holds a buffer (maybe an empty one).
            Some(body) => self.request_body_verdict(&body, Some(body_size)),
            None => self.deny(internal("the buffered body could not be read")),
        }
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        if self.pending.is_some() {
            self.req_body_ended = true;
            return Action::Pause;
        }
        // Trailers end the stream while we still buffer: check what arrived.
        if self.replied || self.req_body_limit.is_none() {
            return Action::Continue;
        }
        // No body bytes came before the trailers: Envoy buffers nothing, ask for nothing.
        if self.req_body_seen == 0 {
            return self.request_body_verdict(&[], None);
        }
        match self.get_http_request_body(0, usize::MAX) {
            Some(body) => {
                let held = Some(body.len());
                self.request_body_verdict(&body, held)
            }
            None => self.deny(internal("the buffered body could not be read")),
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else {
            return Action::Continue;
        };
        let req = self.req.take().unwrap_or_default();
        // `:status` is among the pairs: no second host call for it.
        let headers = self.get_http_response_headers_bytes();
        let status = headers
            .iter()
            .find(|(k, _)| k == ":status")
            .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse().ok())
            .unwrap_or(0);
        let resp = ResponseView { status, headers };
        let verdict = shared.control.on_response(&req, &resp, &self.env());
        self.req = Some(req);
        self.resp = Some(resp);
        if self.replied {
            // Our own local reply: only header edits apply (no second denial, no body rewrite);
            // a chain's come as `Pass`.
            if let Verdict::Pass { ops, .. } = verdict.into_pass() {
                if let Err(e) = self.apply_ops(&ops, Phase::Response) {
                    log::error!("portcullis {}: internal error: {e}", C::NAME);
                }
            }
            return Action::Continue;
        }
        match verdict {
            // No body follows (a bodiless 5xx, HEAD, 204, 304): the control sees an empty one
            // now, and Envoy holds no body buffer for it.
            Verdict::NeedBody { .. } if end_of_stream => {
                self.response_body_verdict(RespBody::Whole(&[], None))
            }
            v => self.apply(v, Phase::Response, None),
        }
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(max) = self.resp_body_limit else {
            return Action::Continue;
        };
        self.resp_body_seen = body_size;
        if body_size > max {
            // The control sees the first `max` bytes; the rest passes unseen.
            return match self.get_http_response_body(0, max) {
                Some(prefix) => self.response_body_verdict(RespBody::Prefix(&prefix)),
                None => self.response_body_verdict(RespBody::Unreadable),
            };
        }
        if !end_of_stream {
            return Action::Pause;
        }
        match self.get_http_response_body(0, body_size) {
            // Inside a body callback Envoy always holds a buffer (maybe an empty one).
            Some(body) => self.response_body_verdict(RespBody::Whole(&body, Some(body_size))),
            None if body_size == 0 => self.response_body_verdict(RespBody::Whole(&[], Some(0))),
            // A buffered body the host cannot hand over is treated as one too large to inspect
            // (a control that must not let it pass denies it), never as an empty one.
            None => self.response_body_verdict(RespBody::Unreadable),
        }
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        // Trailers end the stream while we still buffer (gRPC, HTTP/2): the last body callback
        // never had `end_of_stream`, so check what arrived now, or it would pass unchecked.
        if self.replied || self.resp_body_limit.is_none() {
            return Action::Continue;
        }
        // No body bytes came before the trailers: Envoy buffers nothing, ask for nothing.
        if self.resp_body_seen == 0 {
            return self.response_body_verdict(RespBody::Whole(&[], None));
        }
        match self.get_http_response_body(0, usize::MAX) {
            Some(body) => {
                let held = Some(body.len());
                self.response_body_verdict(RespBody::Whole(&body, held))
            }
            // As in the body callback: a body that cannot be handed over is never an empty one.
            None => self.response_body_verdict(RespBody::Unreadable),
        }
    }
}
