//! The HTTP context: one per request. Forwards each proxy-wasm callback to the shared
//! [`Stream`] driver, with [`Host`] as its primitives.

use std::rc::Rc;
use std::time::SystemTime;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType, Status};

use super::metrics::Metrics;
use super::store::ProxyStore;
use super::writes;
use crate::callout::CalloutFailure;
use crate::control::Control;
use crate::host::driver::{Shared, Stream};
use crate::host::primitives::{Flow, Part, Primitives, Refused};
use crate::inflight::Dispatch;
use crate::request::{Connection, Headers};
use crate::store::SharedStore;
use crate::telemetry::Outcome;

pub struct Http<C> {
    stream: Stream<C>,
    metrics: Rc<Metrics>,
}

impl<C: Control> Http<C> {
    pub fn new(shared: Option<Rc<Shared<C>>>, metrics: Rc<Metrics>) -> Self {
        Http {
            stream: Stream::new(shared),
            metrics,
        }
    }

    fn host(&self) -> Host {
        Host {
            metrics: self.metrics.clone(),
        }
    }
}

fn action(flow: Flow) -> Action {
    match flow {
        Flow::Continue => Action::Continue,
        Flow::Pause => Action::Pause,
    }
}

/// The proxy-wasm primitives: host calls of the current stream (proxy-wasm has one at a time).
pub struct Host {
    metrics: Rc<Metrics>,
}

fn map(part: Part) -> MapType {
    match part {
        Part::Request => MapType::HttpRequestHeaders,
        Part::Response => MapType::HttpResponseHeaders,
    }
}

fn buffer(part: Part) -> BufferType {
    match part {
        Part::Request => BufferType::HttpRequestBody,
        Part::Response => BufferType::HttpResponseBody,
    }
}

impl Primitives for Host {
    fn request_headers(&self) -> Headers {
        hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default()
    }

    fn response_headers(&self) -> Headers {
        hostcalls::get_map_bytes(MapType::HttpResponseHeaders).unwrap_or_default()
    }

    fn body(&self, part: Part, max: usize) -> Option<Vec<u8>> {
        hostcalls::get_buffer(buffer(part), 0, max).ok().flatten()
    }

    fn set_header(&mut self, part: Part, name: &str, value: Option<&str>) -> Result<(), Refused> {
        writes::set_header(map(part), name, value)
    }

    fn add_header(&mut self, part: Part, name: &str, value: &str) -> Result<(), Refused> {
        writes::add_header(map(part), name, value)
    }

    fn replace_body(&mut self, part: Part, held: usize, value: &[u8]) -> Result<(), Refused> {
        writes::set_body(buffer(part), 0, held, value)
    }

    fn send_response(
        &mut self,
        status: u16,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<(), Refused> {
        writes::send_response(u32::from(status), headers, body)
    }

    fn reset_stream(&mut self) -> Result<(), Refused> {
        writes::reset_stream()
    }

    fn resume_request(&mut self) -> Result<(), Refused> {
        writes::resume_request()
    }

    fn dispatch(&mut self, d: Dispatch) -> Result<u64, CalloutFailure> {
        hostcalls::dispatch_http_call(d.cluster, d.headers, d.body, vec![], d.timeout)
            .map(u64::from)
            .map_err(|status| match status {
                // What Envoy answers for a cluster it does not know.
                Status::BadArgument => CalloutFailure::NoCluster,
                _ => CalloutFailure::Refused,
            })
    }

    fn connection(&self) -> Connection {
        super::connection::read()
    }

    fn client(&self) -> Option<String> {
        super::connection::property(&["source", "address"])
    }

    fn now(&self) -> SystemTime {
        hostcalls::get_current_time().unwrap_or(SystemTime::UNIX_EPOCH)
    }

    fn store(&self) -> &dyn SharedStore {
        &ProxyStore
    }

    fn count(&self, module: &'static str, outcome: Outcome, code: &'static str) {
        self.metrics.count(module, outcome, code);
    }

    fn count_operation(
        &self,
        module: &'static str,
        outcome: Outcome,
        code: &'static str,
        operation: &str,
    ) {
        self.metrics
            .count_operation(module, outcome, code, operation);
    }
}

impl<C: Control> Context for Http<C> {
    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let (status, body) = super::call_answer(self, body_size);
        let mut host = self.host();
        self.stream
            .on_answer(&mut host, u64::from(token), status, body);
    }
}

impl<C: Control> HttpContext for Http<C> {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let mut host = self.host();
        action(self.stream.on_request_headers(&mut host, end_of_stream))
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let mut host = self.host();
        action(
            self.stream
                .on_request_body(&mut host, body_size, end_of_stream),
        )
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        let mut host = self.host();
        action(self.stream.on_request_trailers(&mut host))
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let mut host = self.host();
        action(self.stream.on_response_headers(&mut host, end_of_stream))
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let mut host = self.host();
        action(
            self.stream
                .on_response_body(&mut host, body_size, end_of_stream),
        )
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        let mut host = self.host();
        action(self.stream.on_response_trailers(&mut host))
    }
}
