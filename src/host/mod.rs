//! The only code that touches proxy-wasm: a root context and an HTTP context, generic over a
//! [`Control`], written once for every module.
//!
//! - root: parses and validates the policy on `on_configure` (false on any error, so Envoy
//!   refuses the plugin), runs the control's background ticks and callouts;
//! - http: builds a [`RequestView`](crate::RequestView), asks the control, applies the verdict.

mod connection;
mod http;
mod metrics;
mod root;
mod store;
mod writes;

use proxy_wasm::types::LogLevel;

use crate::control::Control;

/// Register `C` as this wasm module's control. Call it from `proxy_wasm::main!`.
pub fn register<C: Control>() {
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| Box::new(root::Root::<C>::new()));
}
