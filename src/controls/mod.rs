//! The security controls: pure decisions, no proxy-wasm types.

pub mod content_type;
pub mod error_shield;
