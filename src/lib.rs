//! portcullis: API-security controls for Envoy.
//!
//! Every control is a pure decision `(policy, request view, clock) -> verdict`
//! ([`control::Control`]). The proxy-wasm glue in [`host`] is written once, generically, and each
//! wasm module under `filters/` only picks which control it runs.
// `unsafe` only where the ABI is declared by hand (src/host/wasm/writes.rs allows it, with a SAFETY
// comment per block); denied everywhere else.
#![deny(unsafe_code)]
// Request data must never reach a panic: a panic traps the VM and fails every later request.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod alert;
pub mod callout;
pub mod chain;
pub mod config;
pub mod control;
pub mod controls;
pub mod crypto;
#[cfg(not(target_arch = "wasm32"))]
pub mod echo;
pub mod inflight;
pub mod method_override;
pub mod params;
pub mod path;
pub mod reject;
pub mod request;
pub mod secret;
pub mod store;
pub mod telemetry;
pub mod time;
pub mod verdict;
// HTTP Message Signatures (RFC 9421) and Content-Digest (RFC 9530): request-signing, the CLI.
pub mod signing;

#[cfg(any(feature = "host", feature = "native"))]
pub mod host;

pub use control::{Control, Env};
pub use reject::Rejection;
pub use request::{Connection, RequestView, ResponseView};
pub use verdict::{HeaderOp, Verdict};
