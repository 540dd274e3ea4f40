//! One HTTP stream: Envoy's per-stream callbacks as the driver's [`Primitives`], and the stream
//! hooks run under `catch_unwind`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::SystemTime;

use super::abi::{FilterEnvoy, Half, ATTRIBUTE_SOURCE_ADDRESS, ATTRIBUTE_TLS_VERSION};
use super::config::Config;
use super::store::STORE;
use crate::callout::CalloutFailure;
use crate::control::Control;
use crate::host::driver::{internal, Stream};
use crate::host::primitives::{parse_addr, Flow, Part, Primitives, Refused};
use crate::inflight::Dispatch;
use crate::request::{Connection, Headers};
use crate::store::SharedStore;
use crate::telemetry::Outcome;

/// The driver's stream callbacks, whatever the control.
pub trait Hooks {
    fn request_headers(&mut self, h: &mut Host, end: bool) -> Flow;
    fn request_body(&mut self, h: &mut Host, size: usize, end: bool) -> Flow;
    fn request_trailers(&mut self, h: &mut Host) -> Flow;
    fn response_headers(&mut self, h: &mut Host, end: bool) -> Flow;
    fn response_body(&mut self, h: &mut Host, size: usize, end: bool) -> Flow;
    fn response_trailers(&mut self, h: &mut Host) -> Flow;
    fn answer(&mut self, h: &mut Host, id: u64, status: Option<u16>, body: Vec<u8>);
}

impl<C: Control> Hooks for Stream<C> {
    fn request_headers(&mut self, h: &mut Host, end: bool) -> Flow {
        self.on_request_headers(h, end)
    }
    fn request_body(&mut self, h: &mut Host, size: usize, end: bool) -> Flow {
        self.on_request_body(h, size, end)
    }
    fn request_trailers(&mut self, h: &mut Host) -> Flow {
        self.on_request_trailers(h)
    }
    fn response_headers(&mut self, h: &mut Host, end: bool) -> Flow {
        self.on_response_headers(h, end)
    }
    fn response_body(&mut self, h: &mut Host, size: usize, end: bool) -> Flow {
        self.on_response_body(h, size, end)
    }
    fn response_trailers(&mut self, h: &mut Host) -> Flow {
        self.on_response_trailers(h)
    }
    fn answer(&mut self, h: &mut Host, id: u64, status: Option<u16>, body: Vec<u8>) {
        self.on_answer(h, id, status, body)
    }
}

/// The module's side of one stream (`on_http_filter_new` … `on_http_filter_destroy`).
pub struct Filter {
    envoy: FilterEnvoy,
    cfg: Arc<Config>,
    hooks: Box<dyn Hooks>,
    /// A hook panicked and the stream was answered with a problem: nothing more is checked.
    failed: bool,
}

fn half(part: Part) -> Half {
    match part {
        Part::Request => Half::Request,
        Part::Response => Half::Response,
    }
}

impl Filter {
    pub fn new(cfg: &Arc<Config>, envoy: FilterEnvoy) -> Filter {
        Filter {
            envoy,
            hooks: cfg.kind().stream(cfg),
            cfg: cfg.clone(),
            failed: false,
        }
    }

    /// Run one driver callback. `body`: the half whose body hook this is.
    fn run(
        &mut self,
        part: Part,
        body: Option<Part>,
        f: impl FnOnce(&mut dyn Hooks, &mut Host) -> Flow,
    ) -> Flow {
        if self.failed {
            // Our own problem response must go out; the request stays stopped.
            return match part {
                Part::Request => Flow::Pause,
                Part::Response => Flow::Continue,
            };
        }
        let mut host = Host {
            envoy: self.envoy,
            cfg: &self.cfg,
            in_body: body,
        };
        let hooks = &mut *self.hooks;
        match catch_unwind(AssertUnwindSafe(|| f(hooks, &mut host))) {
            Ok(flow) => flow,
            Err(_) => {
                self.fail_closed();
                Flow::Pause
            }
        }
    }

    /// A panic in a hook: this stream gets the `internal` problem (500), logged and counted.
    fn fail_closed(&mut self) {
        self.failed = true;
        let r = internal("a panic in the filter");
        let host = Host {
            envoy: self.envoy,
            cfg: &self.cfg,
            in_body: None,
        };
        host.count(self.cfg.kind().name(), Outcome::Denied, r.code);
        let body = r.problem_body(None);
        self.envoy
            .send_response(r.status, &r.response_headers(), Some(body.as_bytes()));
    }

    pub fn request_headers(&mut self, end: bool) -> Flow {
        self.run(Part::Request, None, |s, h| s.request_headers(h, end))
    }

    pub fn request_body(&mut self, end: bool) -> Flow {
        let size = self.envoy.body_size(Half::Request, true);
        self.run(Part::Request, Some(Part::Request), |s, h| {
            s.request_body(h, size, end)
        })
    }

    pub fn request_trailers(&mut self) -> Flow {
        self.run(Part::Request, None, |s, h| s.request_trailers(h))
    }

    pub fn response_headers(&mut self, end: bool) -> Flow {
        self.run(Part::Response, None, |s, h| s.response_headers(h, end))
    }

    pub fn response_body(&mut self, end: bool) -> Flow {
        let size = self.envoy.body_size(Half::Response, true);
        self.run(Part::Response, Some(Part::Response), |s, h| {
            s.response_body(h, size, end)
        })
    }

    pub fn response_trailers(&mut self) -> Flow {
        self.run(Part::Response, None, |s, h| s.response_trailers(h))
    }

    pub fn answer(&mut self, id: u64, status: Option<u16>, body: Vec<u8>) {
        self.run(Part::Request, None, |s, h| {
            s.answer(h, id, status, body);
            Flow::Continue
        });
    }
}

/// The primitives of one stream, inside one of its hooks.
pub struct Host<'a> {
    envoy: FilterEnvoy,
    cfg: &'a Config,
    /// Inside this half's body hook (its data is part of the body held).
    in_body: Option<Part>,
}

fn refused(call: &'static str, ok: bool) -> Result<(), Refused> {
    if ok {
        Ok(())
    } else {
        Err(Refused { call, status: 0 })
    }
}

impl Primitives for Host<'_> {
    fn request_headers(&self) -> Headers {
        self.envoy.headers(Half::Request)
    }

    fn response_headers(&self) -> Headers {
        self.envoy.headers(Half::Response)
    }

    fn body(&self, part: Part, max: usize) -> Option<Vec<u8>> {
        self.envoy.body(half(part), self.in_body == Some(part), max)
    }

    fn set_header(&mut self, part: Part, name: &str, value: Option<&str>) -> Result<(), Refused> {
        refused("set_header", self.envoy.set_header(half(part), name, value))
    }

    fn add_header(&mut self, part: Part, name: &str, value: &str) -> Result<(), Refused> {
        refused("add_header", self.envoy.add_header(half(part), name, value))
    }

    fn replace_body(&mut self, part: Part, _held: usize, value: &[u8]) -> Result<(), Refused> {
        let in_body = self.in_body == Some(part);
        refused(
            "replace_body",
            self.envoy.replace_body(half(part), in_body, value),
        )
    }

    fn send_response(
        &mut self,
        status: u16,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<(), Refused> {
        self.envoy.send_response(status, headers, body);
        Ok(())
    }

    fn reset_stream(&mut self) -> Result<(), Refused> {
        // Never needed: a local reply is never refused here (`send_response` has no status).
        Err(Refused {
            call: "reset_stream",
            status: 0,
        })
    }

    fn resume_request(&mut self) -> Result<(), Refused> {
        self.envoy.continue_decoding();
        Ok(())
    }

    fn dispatch(&mut self, d: Dispatch) -> Result<u64, CalloutFailure> {
        self.envoy
            .callout(d.cluster, &d.headers, d.body, d.timeout)
            .map_err(|e| match e {
                super::abi::CalloutRefused::NoCluster => CalloutFailure::NoCluster,
                super::abi::CalloutRefused::Other(_) => CalloutFailure::Refused,
            })
    }

    fn connection(&self) -> Connection {
        Connection {
            peer: self.client().and_then(|a| parse_addr(&a)),
            tls: self
                .envoy
                .attribute(ATTRIBUTE_TLS_VERSION)
                .is_some_and(|v| !v.is_empty()),
        }
    }

    fn client(&self) -> Option<String> {
        self.envoy.attribute(ATTRIBUTE_SOURCE_ADDRESS)
    }

    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn store(&self) -> &dyn SharedStore {
        &*STORE
    }

    fn own_reply_runs_response_hooks(&self) -> bool {
        false
    }

    fn count(&self, module: &'static str, outcome: Outcome, code: &'static str) {
        if let Some(id) = self.cfg.counter() {
            self.envoy.count(id, [module, outcome.as_str(), code]);
        }
    }

    fn count_operation(
        &self,
        module: &'static str,
        outcome: Outcome,
        code: &'static str,
        operation: &str,
    ) {
        if let Some(id) = self.cfg.operation_counter() {
            self.envoy
                .count(id, [module, outcome.as_str(), code, operation]);
        }
    }
}
