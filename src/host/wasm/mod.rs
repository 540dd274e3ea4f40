//! The proxy-wasm adapter: a root context and an HTTP context, generic over a [`Control`].
//!
//! - root: parses and validates the policy on `on_configure` (false on any error, so Envoy
//!   refuses the plugin), runs the control's background ticks and callouts;
//! - http: forwards each stream callback to the shared driver ([`crate::host::driver`]).

mod connection;
mod http;
mod metrics;
mod root;
mod store;
mod writes;

use proxy_wasm::traits::Context;
use proxy_wasm::types::LogLevel;

use crate::control::Control;

/// Register `C` as this wasm module's control. Call it from `proxy_wasm::main!`.
pub fn register<C: Control>() {
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| Box::new(root::Root::<C>::new()));
}

/// The answer Envoy holds for an HTTP call, from inside `on_http_call_response`: its status
/// (none when the call ended without a response: reset, closed) and body.
fn call_answer(ctx: &impl Context, body_size: usize) -> (Option<u16>, Vec<u8>) {
    let status = ctx
        .get_http_call_response_header(":status")
        .and_then(|s| s.parse::<u16>().ok());
    let body = if body_size == 0 {
        Vec::new()
    } else {
        ctx.get_http_call_response_body(0, body_size)
            .unwrap_or_default()
    };
    (status, body)
}
