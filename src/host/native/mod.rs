//! The Envoy dynamic module adapter (`libportcullis.so`): one shared library serving every
//! control, selected by the filter's `filter_name`, with the same JSON policy as the wasm module
//! in `filter_config`.
//!
//! - [`abi`]: the C ABI (the only `unsafe` of the crate) and the exported hooks;
//! - [`config`]: one filter configuration: policy, counter, background ticks and callouts;
//! - [`instances`]: the controls themselves, one per thread (controls are not `Sync`);
//! - [`stream`]: one HTTP stream: Envoy's callbacks as [`Primitives`] for the shared driver;
//! - [`store`]: the state every worker shares (replay cache, alert windows), in process memory;
//! - [`log`]: the `log` crate onto Envoy's `[dynamic_modules]` logger.
//!
//! Threads: Envoy runs each stream on one worker thread and config hooks on the main thread.
//! Each thread builds its own instance of a configuration's control, as each wasm VM does. The
//! main thread's instance runs the background ticks (a timer thread schedules them) and makes
//! their callouts through Envoy; every answer is published to the configuration and each
//! worker's instance takes the answers it has not seen when its next stream starts.
//!
//! A panic in any hook is caught at the hook: that stream gets a 500 problem, the error is
//! logged and counted, and Envoy keeps serving (a panic unwinding into Envoy would abort it).
//!
//! [`Primitives`]: super::primitives::Primitives

mod abi;
mod config;
mod instances;
mod log;
mod store;
mod stream;

use std::panic::{catch_unwind, AssertUnwindSafe};

pub use abi::ABI_VERSION;
use instances::{Kind, Typed};

use crate::controls;

/// The control a `filter_name` selects: the same names as the wasm modules.
fn kind(filter_name: &str) -> Option<&'static dyn Kind> {
    Some(match filter_name {
        "api-key" => &Typed::<controls::api_key::ApiKey>::KIND,
        "api-schema" => &Typed::<controls::api_schema::ApiSchema>::KIND,
        "content-type" => &Typed::<controls::content_type::ContentType>::KIND,
        "csrf" => &Typed::<controls::csrf::Csrf>::KIND,
        "error-shield" => &Typed::<controls::error_shield::ErrorShield>::KIND,
        "guard" => &Typed::<controls::guard::Guard>::KIND,
        "header-guard" => &Typed::<controls::header_guard::HeaderGuard>::KIND,
        "jwt-auth" => &Typed::<controls::jwt_auth::JwtAuth>::KIND,
        "noop" => &Typed::<controls::noop::Noop>::KIND,
        "payload-crypto" => &Typed::<controls::payload_crypto::PayloadCrypto>::KIND,
        "request-signing" => &Typed::<controls::request_signing::RequestSigning>::KIND,
        _ => return None,
    })
}

/// The names `kind` knows, for the error that lists them.
const FILTER_NAMES: &str = "api-key, api-schema, content-type, csrf, error-shield, guard, \
                            header-guard, jwt-auth, noop, payload-crypto, request-signing";

/// Run one hook's work; a panic becomes `None`, logged (the panic message itself goes to
/// Envoy's stderr through the default panic hook).
fn guarded<T>(hook: &str, f: impl FnOnce() -> T) -> Option<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => Some(v),
        Err(_) => {
            ::log::error!("portcullis: internal error: a panic in {hook}");
            None
        }
    }
}
