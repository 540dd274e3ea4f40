//! The security controls: pure decisions, no proxy-wasm types.

pub mod api_key;
pub mod api_schema;
pub mod content_type;
pub mod csrf;
pub mod error_shield;
pub mod guard;
pub mod header_guard;
pub mod jwt_auth;
pub mod noop;
pub mod payload_crypto;
pub mod request_signing;

use serde_json::Value;

use crate::chain::{build_dyn, DynControl};
use crate::control::ConfigError;

/// Every control a `guard` chain can name, by its policy name, in the order a chain usually
/// runs them.
pub const NAMES: &[&str] = &[
    "header_guard",
    "jwt_auth",
    "api_key",
    "csrf",
    "request_signing",
    "api_schema",
    "content_type",
    "error_shield",
];

/// Controls that run only as their own module, never in a guard chain.
/// payload_crypto rewrites bodies (a rewrite ends a chain's body phase, so later members would
/// not see it) and its ciphers would take guard.wasm past the 1 MiB budget.
pub const STANDALONE: &[&str] = &["payload_crypto"];

/// Build a chain member from its name and policy; `None` for a name not in [`NAMES`].
pub fn build_by_name(
    name: &str,
    policy: &Value,
) -> Option<Result<Box<dyn DynControl>, ConfigError>> {
    Some(match name {
        "content_type" => build_dyn::<content_type::ContentType>(policy),
        "error_shield" => build_dyn::<error_shield::ErrorShield>(policy),
        "csrf" => build_dyn::<csrf::Csrf>(policy),
        "api_key" => build_dyn::<api_key::ApiKey>(policy),
        "request_signing" => build_dyn::<request_signing::RequestSigning>(policy),
        "jwt_auth" => build_dyn::<jwt_auth::JwtAuth>(policy),
        "header_guard" => build_dyn::<header_guard::HeaderGuard>(policy),
        "api_schema" => build_dyn::<api_schema::ApiSchema>(policy),
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
        "csrf" => generator.into_root_schema_for::<csrf::Policy>(),
        "api_key" => generator.into_root_schema_for::<api_key::Policy>(),
        "payload_crypto" => generator.into_root_schema_for::<payload_crypto::Policy>(),
        "request_signing" => generator.into_root_schema_for::<request_signing::Policy>(),
        "jwt_auth" => generator.into_root_schema_for::<jwt_auth::Policy>(),
        "header_guard" => generator.into_root_schema_for::<header_guard::Policy>(),
        "api_schema" => generator.into_root_schema_for::<api_schema::Policy>(),
        _ => return None,
    };
    serde_json::to_value(schema).ok()
}

/// The JSON Schema of a module's policy (`content-type`, `guard`).
#[cfg(feature = "schema")]
pub fn module_schema(module: &str) -> Option<Value> {
    let mut schema = match module.replace('-', "_").as_str() {
        "guard" => guard::schema(),
        name => control_schema(name)?,
    };
    // The setting every module's policy takes at its top (crate::method_override).
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert(
            crate::method_override::KEY.into(),
            serde_json::json!({
                "description": "X-HTTP-Method-Override, X-HTTP-Method, X-Method-Override: `refuse` (400 request.method_override) or `strip` (removed before the upstream).",
                "enum": ["refuse", "strip"],
                "default": "refuse"
            }),
        );
    }
    Some(schema)
}

/// Build a whole module's control from its module name (`content-type`, `guard`) and policy.
pub fn build_module(
    module: &str,
    policy: &Value,
) -> Option<Result<Box<dyn DynControl>, ConfigError>> {
    // The settings every module takes at the top of its policy.
    let policy = match crate::method_override::split_value(policy) {
        Ok((_, rest)) => rest,
        Err(e) => return Some(Err(e)),
    };
    let policy = &*policy;
    match module.replace('-', "_").as_str() {
        "guard" => Some(build_dyn::<guard::Guard>(policy)),
        "noop" => Some(build_dyn::<noop::Noop>(policy)),
        "payload_crypto" => Some(build_dyn::<payload_crypto::PayloadCrypto>(policy)),
        "api_schema" => Some(build_dyn::<api_schema::ApiSchema>(policy)),
        name => build_by_name(name, policy),
    }
}
