//! The key set: ids, secrets (inline or from the VM's environment) and validity periods.

use serde::Deserialize;

use crate::control::ConfigError;
use crate::signing::{self, Key};

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
    /// RFC 3339 UTC time (`2026-01-01T00:00:00Z`) from which the key is valid.
    #[serde(default)]
    pub not_before: Option<String>,
    /// RFC 3339 UTC time from which the key is no longer valid.
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
        let b64 = match (&s.secret, &s.secret_env) {
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
        };
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
                    parse_rfc3339(t).ok_or_else(|| {
                        ConfigError::new(
                            at(f),
                            format!("`{t}` is not an RFC 3339 UTC time like 2026-01-01T00:00:00Z"),
                        )
                    })
                })
                .transpose()
        };
        let not_before = time(&s.not_before, "not_before")?;
        let not_after = time(&s.not_after, "not_after")?;
        if let (Some(nb), Some(na)) = (not_before, not_after) {
            if na <= nb {
                return Err(ConfigError::new(
                    at("not_after"),
                    "must be later than `not_before`",
                ));
            }
        }
        out.push(Key {
            keyid: s.keyid.clone(),
            secret,
            not_before,
            not_after,
        });
    }
    Ok(out)
}

/// `YYYY-MM-DDTHH:MM:SSZ` (optionally with fractional seconds, ignored) as seconds since the
/// epoch.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let sep = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = b.get(19..)?;
    if let Some((b'.', frac)) = rest.split_first() {
        let digits = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        rest = frac.get(digits..)?;
    }
    if rest != b"Z" && rest != b"z" {
        return None;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if y < 1970 || d == 0 || d > days_in_month || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm), for years >= 1970.
    let (y, m) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_utc_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2021-04-20T02:07:53Z"), Some(1_618_884_473));
        assert_eq!(parse_rfc3339("2024-02-29T12:00:00.5Z"), Some(1_709_208_000));
        for bad in [
            "2023-02-29T00:00:00Z",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00+01:00",
            "2026-1-01T00:00:00Z",
            "2026-01-01 00:00:00Z",
            "1969-12-31T23:59:59Z",
            "",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
