//! HTTP calls a control makes in the background (JWKS refresh, alert webhooks), through a named
//! Envoy cluster. The control asks for them from `on_tick`; the host dispatches them and hands
//! the response back to `on_callout_response`.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callout {
    /// Chosen by the control to recognise the answer.
    pub tag: u64,
    /// The Envoy cluster to send it through.
    pub cluster: String,
    pub method: String,
    pub authority: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout: Duration,
}

/// The answer to a callout. `None` in its place means it failed (no connection, timeout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalloutResponse {
    pub status: u16,
    pub body: Vec<u8>,
}
