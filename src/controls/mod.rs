//! The security controls: pure decisions, no proxy-wasm types.

pub mod content_type;
pub mod error_shield;
pub mod guard;
pub mod header_guard;
pub mod noop;

use serde_json::Value;

use crate::chain::{build_dyn, DynControl};
use crate::control::ConfigError;

/// Every control a `guard` chain (and `portcullis check`) can name, by its policy name.
pub const NAMES: &[&str] = &["content_type", "error_shield", "header_guard"];

/// Build a control from its name and policy; `None` for an unknown name.
pub fn build_by_name(
    name: &str,
    policy: &Value,
) -> Option<Result<Box<dyn DynControl>, ConfigError>> {
    Some(match name {
        "content_type" => build_dyn::<content_type::ContentType>(policy),
        "error_shield" => build_dyn::<error_shield::ErrorShield>(policy),
        "header_guard" => build_dyn::<header_guard::HeaderGuard>(policy),
        _ => return None,
    })
}

/// The JSON Schema of a control's policy, by its policy name.
#[cfg(feature = "schema")]
pub fn control_schema(name: &str) -> Option<Value> {
    // Inline subschemas: a member's schema must stand alone inside the guard's.
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let schema = match name {
        "content_type" => generator.into_root_schema_for::<content_type::Policy>(),
        "error_shield" => generator.into_root_schema_for::<error_shield::Policy>(),
        "header_guard" => generator.into_root_schema_for::<header_guard::Policy>(),
        _ => return None,
    };
    serde_json::to_value(schema).ok()
}

/// The JSON Schema of a module's policy (`content-type`, `guard`).
#[cfg(feature = "schema")]
pub fn module_schema(module: &str) -> Option<Value> {
    match module.replace('-', "_").as_str() {
        "guard" => Some(guard::schema()),
        name => control_schema(name),
    }
}

/// Build a whole module's control from its module name (`content-type`, `guard`) and policy.
pub fn build_module(
    module: &str,
    policy: &Value,
) -> Option<Result<Box<dyn DynControl>, ConfigError>> {
    match module.replace('-', "_").as_str() {
        "guard" => Some(build_dyn::<guard::Guard>(policy)),
        "noop" => Some(build_dyn::<noop::Noop>(policy)),
        name => build_by_name(name, policy),
    }
}
