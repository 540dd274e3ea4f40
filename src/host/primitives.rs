//! What the stream driver needs from a proxy runtime, and nothing else. Each runtime (proxy-wasm,
//! Envoy dynamic modules) implements [`Primitives`] for one stream; everything above it
//! ([`super::driver`]) is written once.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::SystemTime;

use crate::callout::CalloutFailure;
use crate::inflight::Dispatch;
use crate::request::{Connection, Headers};
use crate::store::SharedStore;
use crate::telemetry::Outcome;

/// Which half of the stream an operation is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Request,
    Response,
}

/// What a stream callback tells the proxy: go on with the stream, or hold it (buffering a body,
/// waiting for callouts, or after a local reply).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Pause,
}

/// The proxy refused a call: which one, and the status it answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub call: &'static str,
    pub status: u32,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Envoy refused {} (status {})", self.call, self.status)
    }
}

/// One stream's view of the proxy. Reads are made only in the callback where their map or buffer
/// exists; a write the proxy refuses in the stream's state comes back as [`Refused`], never as a
/// panic.
pub trait Primitives {
    /// Every request header, pseudo-headers included.
    fn request_headers(&self) -> Headers;
    /// Every response header, `:status` included.
    fn response_headers(&self) -> Headers;
    /// The body the proxy holds for `part` now (buffered so far, this callback's data
    /// included), at most `max` bytes of it; `None` when it cannot be handed over.
    fn body(&self, part: Part, max: usize) -> Option<Vec<u8>>;
    /// Set (`Some`) or remove (`None`) a header.
    fn set_header(&mut self, part: Part, name: &str, value: Option<&str>) -> Result<(), Refused>;
    fn add_header(&mut self, part: Part, name: &str, value: &str) -> Result<(), Refused>;
    /// Replace the `held` bytes of body the proxy holds for `part` with `value`.
    fn replace_body(&mut self, part: Part, held: usize, value: &[u8]) -> Result<(), Refused>;
    /// Answer the stream locally (Envoy's `sendLocalReply`).
    fn send_response(
        &mut self,
        status: u16,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<(), Refused>;
    /// Reset the stream: the last resort when even a local reply is refused.
    fn reset_stream(&mut self) -> Result<(), Refused>;
    /// Let a request paused for request-time callouts go on.
    fn resume_request(&mut self) -> Result<(), Refused>;
    /// Send one request-time callout; the answer comes back to the driver's `on_answer` with the
    /// token returned here.
    fn dispatch(&mut self, call: Dispatch) -> Result<u64, CalloutFailure>;
    /// The downstream connection's facts (client address, TLS).
    fn connection(&self) -> Connection;
    /// The client address as the log line shows it (`ip:port`), if the proxy reports one.
    fn client(&self) -> Option<String>;
    fn now(&self) -> SystemTime;
    /// State shared by every worker of this filter configuration.
    fn store(&self) -> &dyn SharedStore;
    /// Whether a local reply of this stream passes through its own response callbacks (proxy-wasm
    /// does; Envoy's dynamic module filter does not, so the driver adds the control's header
    /// edits to the reply itself).
    fn own_reply_runs_response_hooks(&self) -> bool {
        true
    }
    /// Count one outcome: `portcullis_requests_total{module, result, code}` (see `telemetry`).
    fn count(&self, module: &'static str, outcome: Outcome, code: &'static str);
    /// Count one rejection of an operation:
    /// `portcullis_operation_violations_total{module, result, code, operation}`.
    fn count_operation(
        &self,
        module: &'static str,
        outcome: Outcome,
        code: &'static str,
        operation: &str,
    );
}

/// A client address as runtimes report it: `1.2.3.4:80`, `[::1]:80`, or a bare address.
pub fn parse_addr(a: &str) -> Option<IpAddr> {
    a.parse::<SocketAddr>()
        .map(|s| s.ip())
        .or_else(|_| a.parse::<IpAddr>())
        .ok()
}
