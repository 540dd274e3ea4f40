//! The only code that touches a runtime: the shared stream driver, written once, and one
//! adapter per runtime that supplies its primitives.
//!
//! - [`driver`]: the per-stream state machine (views, verdicts, bodies, callouts, metrics, log
//!   lines), over [`primitives::Primitives`];
//! - `wasm` (feature `host`): proxy-wasm (Envoy's wasm filter, Istio);
//! - `native` (feature `native`): Envoy dynamic modules (`libportcullis.so`).

pub mod driver;
pub mod primitives;

#[cfg(feature = "host")]
mod wasm;
#[cfg(feature = "host")]
pub use wasm::register;

#[cfg(feature = "native")]
pub mod native;
