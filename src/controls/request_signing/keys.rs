//! The key set: ids, secrets (inline or from the VM's environment) and validity periods.

use serde::Deserialize;

use crate::control::ConfigError;
use crate::signing::{self, Key};
use crate::time::{check_key_window, parse_rfc3339};

/// Shortest secret accepted: HMAC-SHA256 keys should be at least as long as its output.
pub const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    /// The `keyid` signatures name.
    pub keyid: String,
    /// The shared secret, base64 (at least 32 bytes decoded). Prefer `secret_env`.
    #[serde(default)]
    pub secret: Option<String>,
    /// The environment variable of the Wasm VM (`vm_config.environment_variables`) holding
    /// the base64 secret: the secret stays out of the filter configuration.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// RFC 3339 time (`2026-01-01T00:00:00Z`) from which the key is valid.
    #[serde(default)]
    pub not_before: Option<String>,
    /// RFC 3339 time from which the key is no longer valid.
    #[serde(default)]
    pub not_after: Option<String>,
}

pub fn compile(specs: &[KeySpec]) -> Result<Vec<Key>, ConfigError> {
    if specs.is_empty() {
        return Err(ConfigError::new("keys", "at least one key is required"));
    }
    let mut out: Vec<Key> = Vec::with_capacity(specs.len());
    for (i, s) in specs.iter().enumerate() {
        let at = |f: &str| format!("keys[{i}].{f}");
        let id_ok = !s.keyid.is_empty()
            && s.keyid.len() <= 256
            && s.keyid.bytes().all(|c| (0x20..=0x7e).contains(&c));
        if !id_ok {
            return Err(ConfigError::new(
                at("keyid"),
                "must be 1 to 256 printable ASCII characters",
            ));
        }
        if out.iter().any(|k| k.keyid == s.keyid) {
            return Err(ConfigError::new(
                at("keyid"),
                format!("`{}` is listed twice", s.keyid),
            ));
        }
        let b64 = zeroize::Zeroizing::new(match (&s.secret, &s.secret_env) {
            (Some(v), None) => v.clone(),
            (None, Some(var)) => std::env::var(var).map_err(|_| {
                ConfigError::new(
                    at("secret_env"),
                    format!(
                        "environment variable `{var}` is not set (vm_config.environment_variables)"
                    ),
                )
            })?,
            _ => {
                return Err(ConfigError::new(
                    format!("keys[{i}]"),
                    "exactly one of `secret` or `secret_env` is required",
                ))
            }
        });
        let field = if s.secret.is_some() {
            at("secret")
        } else {
            at("secret_env")
        };
        // Never echo the secret in the error.
        let secret = signing::decode_secret(&b64)
            .ok_or_else(|| ConfigError::new(&field, "the secret is not valid base64"))?;
        if secret.len() < MIN_SECRET_BYTES {
            return Err(ConfigError::new(
                &field,
                format!(
                    "the secret is {} bytes; at least {MIN_SECRET_BYTES} are required",
                    secret.len()
                ),
            ));
        }
        let time = |v: &Option<String>, f: &str| -> Result<Option<u64>, ConfigError> {
            v.as_deref()
                .map(|t| {
                    parse_rfc3339(t)
                        .map(|secs| u64::try_from(secs).unwrap_or(0))
                        .map_err(|e| ConfigError::new(at(f), e))
                })
                .transpose()
        };
        let not_before = time(&s.not_before, "not_before")?;
        let not_after = time(&s.not_after, "not_after")?;
        let signed = |t: Option<u64>| t.map(|t| i64::try_from(t).unwrap_or(i64::MAX));
        check_key_window(signed(not_before), signed(not_after))
            .map_err(|e| ConfigError::new(at("not_after"), e))?;
        out.push(Key {
            keyid: s.keyid.clone(),
            secret,
            not_before,
            not_after,
        });
    }
    Ok(out)
}
