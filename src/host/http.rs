//! The HTTP context: one per request. Builds the view, asks the control, applies the verdict.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::root::Shared;
use super::store::ProxyStore;
use crate::control::{Control, Env};
use crate::reject::Rejection;
use crate::request::{RequestView, ResponseView};
use crate::telemetry::{denial_log_line, Outcome};
use crate::verdict::{HeaderOp, Verdict};

pub struct Http<C> {
    /// `None` only if Envoy created a context without a loaded policy: then deny everything.
    shared: Option<Rc<Shared<C>>>,
    req: Option<RequestView>,
    /// Set while buffering the request body for the control.
    body_limit: Option<usize>,
    /// We answered locally: ignore the rest of this stream.
    replied: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Request,
    Response,
}

impl<C: Control> Http<C> {
    pub fn new(shared: Option<Rc<Shared<C>>>) -> Self {
        Http {
            shared,
            req: None,
            body_limit: None,
            replied: false,
        }
    }

    fn apply(&mut self, verdict: Verdict, phase: Phase) -> Action {
        let Some(shared) = self.shared.clone() else {
            return self.deny(Rejection::new(
                503,
                "internal.unconfigured",
                "the filter has no policy",
            ));
        };
        match verdict {
            Verdict::Continue => {
                if phase == Phase::Request {
                    shared.metrics.count(C::NAME, Outcome::Allowed, "ok");
                }
                Action::Continue
            }
            Verdict::Mutate(ops) => {
                self.apply_ops(&ops, phase);
                if phase == Phase::Request {
                    shared.metrics.count(C::NAME, Outcome::Allowed, "ok");
                }
                Action::Continue
            }
            Verdict::NeedBody { max_bytes } => {
                let has_body = self.req.as_ref().is_some_and(|r| r.has_body);
                if phase == Phase::Response {
                    // Response bodies are not buffered yet: fail closed rather than skip the check.
                    return self.deny(internal("response body inspection is not supported"));
                }
                if has_body {
                    self.body_limit = Some(max_bytes);
                    Action::Pause
                } else {
                    self.check_body(&[])
                }
            }
            Verdict::Deny(r) => self.deny(r),
            Verdict::Report(r) => {
                self.log_denial(Outcome::Reported, &r);
                shared.metrics.count(C::NAME, Outcome::Reported, r.code);
                Action::Continue
            }
        }
    }

    fn apply_ops(&self, ops: &[HeaderOp], phase: Phase) {
        for op in ops {
            match (op, phase) {
                (HeaderOp::Set(k, v), Phase::Request) => self.set_http_request_header(k, Some(v)),
                (HeaderOp::Add(k, v), Phase::Request) => self.add_http_request_header(k, v),
                (HeaderOp::Remove(k), Phase::Request) => self.set_http_request_header(k, None),
                (HeaderOp::Set(k, v), Phase::Response) => self.set_http_response_header(k, Some(v)),
                (HeaderOp::Add(k, v), Phase::Response) => self.add_http_response_header(k, v),
                (HeaderOp::Remove(k), Phase::Response) => self.set_http_response_header(k, None),
            }
        }
    }

    fn log_denial(&self, outcome: Outcome, r: &Rejection) {
        let client = self
            .get_property(vec!["source", "address"])
            .and_then(|b| String::from_utf8(b).ok());
        let line = denial_log_line(C::NAME, outcome, r, self.req.as_ref(), client.as_deref());
        log::info!("{line}");
    }

    fn deny(&mut self, r: Rejection) -> Action {
        self.log_denial(Outcome::Denied, &r);
        if let Some(shared) = &self.shared {
            shared.metrics.count(C::NAME, Outcome::Denied, r.code);
        }
        let body = r.problem_body(self.req.as_ref().and_then(RequestView::request_id));
        self.replied = true;
        self.send_http_response(
            u32::from(r.status),
            r.response_headers(),
            Some(body.as_bytes()),
        );
        Action::Pause
    }

    fn env(&self) -> Env<'static> {
        Env {
            now: self.get_current_time(),
            store: &ProxyStore,
        }
    }

    fn check_body(&mut self, body: &[u8]) -> Action {
        self.body_limit = None;
        let (Some(shared), Some(req)) = (self.shared.clone(), self.req.take()) else {
            return self.deny(internal("request state lost"));
        };
        let verdict = shared.control.on_request_body(&req, body, &self.env());
        self.req = Some(req);
        match verdict {
            Verdict::NeedBody { .. } => self.deny(internal("the control asked for the body twice")),
            v => self.apply(v, Phase::Request),
        }
    }
}

fn internal(detail: &str) -> Rejection {
    log::error!("portcullis: internal error: {detail}");
    Rejection::new(500, "internal", "the request could not be checked")
}

impl<C: Control> Context for Http<C> {}

impl<C: Control> HttpContext for Http<C> {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else {
            return self.deny(Rejection::new(
                503,
                "internal.unconfigured",
                "the filter has no policy",
            ));
        };
        let mut req = match RequestView::from_headers(self.get_http_request_headers_bytes()) {
            Ok(r) => r,
            Err(e) => return self.deny(Rejection::new(400, "request.bad_path", e.to_string())),
        };
        req.has_body = !end_of_stream;
        let verdict = shared.control.on_request(&req, &self.env());
        self.req = Some(req);
        self.apply(verdict, Phase::Request)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.replied {
            return Action::Pause;
        }
        let Some(max) = self.body_limit else {
            return Action::Continue;
        };
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
            Some(body) => self.check_body(&body),
            None => self.deny(internal("the buffered body could not be read")),
        }
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        // Trailers end the stream while we still buffer: check what arrived.
        if self.replied || self.body_limit.is_none() {
            return Action::Continue;
        }
        let size = self
            .get_http_request_body(0, usize::MAX)
            .map_or(0, |b| b.len());
        match self.get_http_request_body(0, size) {
            Some(body) => self.check_body(&body),
            None => self.check_body(&[]),
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else {
            return Action::Continue;
        };
        let Some(req) = self.req.take() else {
            return Action::Continue;
        };
        let status = self
            .get_http_response_header(":status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let resp = ResponseView {
            status,
            headers: self.get_http_response_headers_bytes(),
        };
        let verdict = shared.control.on_response(&req, &resp, &self.env());
        self.req = Some(req);
        if self.replied {
            // Our own local reply: only header edits apply (no second denial).
            if let Verdict::Mutate(ops) = verdict {
                self.apply_ops(&ops, Phase::Response);
            }
            return Action::Continue;
        }
        self.apply(verdict, Phase::Response)
    }
}
