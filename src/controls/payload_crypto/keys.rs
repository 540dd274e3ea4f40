//! The key set: JWK-ish entries with `kid`, `alg`, validity, secrets inline or from the VM's
//! environment variables.

use std::time::SystemTime;

use serde::Deserialize;

use super::jwe::{b64d, ec_public_from_xy, Alg, JweError, KeyMaterial};
use zeroize::Zeroizing;

use crate::control::ConfigError;
use crate::secret::Secret;
use crate::time::{check_key_window, key_window, KeyWindow};

/// One key, as written in the policy.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    pub kid: String,
    /// `dir`, `A128KW`, `A256KW` or `ECDH-ES+A256KW`.
    pub alg: String,
    /// Symmetric key (base64url), for `dir` / `A128KW` / `A256KW`.
    #[serde(default)]
    pub k: Option<String>,
    /// Name of a VM environment variable holding `k`.
    #[serde(default)]
    pub k_env: Option<String>,
    /// `P-256` for `ECDH-ES+A256KW`.
    #[serde(default)]
    pub crv: Option<String>,
    /// Public point coordinates (base64url).
    #[serde(default)]
    pub x: Option<String>,
    #[serde(default)]
    pub y: Option<String>,
    /// Private scalar (base64url): present on our own keys (decryption), absent on clients'.
    #[serde(default)]
    pub d: Option<String>,
    /// Name of a VM environment variable holding `d`.
    #[serde(default)]
    pub d_env: Option<String>,
    /// Unix seconds before which the key is not used.
    #[serde(default)]
    pub not_before: Option<u64>,
    /// Unix seconds from which the key is no longer used (exclusive: the key's last second is
    /// `not_after - 1`, as in the other modules).
    #[serde(default)]
    pub not_after: Option<u64>,
}

#[derive(Debug)]
pub struct Key {
    pub kid: String,
    pub alg: Alg,
    pub material: KeyMaterial,
    not_before: Option<u64>,
    not_after: Option<u64>,
}

impl Key {
    /// `not_after` is exclusive: see [`crate::time::key_window`].
    pub fn valid_at(&self, now: SystemTime) -> bool {
        let secs = |t: u64| i64::try_from(t).unwrap_or(i64::MAX);
        key_window(
            crate::time::unix(now),
            self.not_before.map(secs),
            self.not_after.map(secs),
        ) == KeyWindow::Valid
    }

    pub fn can_decrypt(&self) -> bool {
        !matches!(self.material, KeyMaterial::EcPublic(_))
    }
}

#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<Key>,
}

fn secret(
    inline: &Option<String>,
    env: &Option<String>,
    name: &str,
) -> Result<Option<Secret>, ConfigError> {
    let text = Zeroizing::new(match (inline, env) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                name,
                format!("give `{name}` or `{name}_env`, not both"),
            ))
        }
        (Some(v), None) => v.clone(),
        (None, Some(var)) => std::env::var(var).map_err(|_| {
            ConfigError::new(
                format!("{name}_env"),
                format!("environment variable `{var}` is not set in the VM"),
            )
        })?,
        (None, None) => return Ok(None),
    });
    let bytes = b64d(text.trim()).map_err(|_| {
        ConfigError::new(
            if inline.is_some() {
                name.to_string()
            } else {
                format!("{name}_env")
            },
            "not base64url (RFC 4648 §5, no padding)",
        )
    })?;
    Ok(Some(Secret::new(bytes)))
}

pub fn compile_key(spec: &KeySpec) -> Result<Key, ConfigError> {
    if spec.kid.is_empty() || spec.kid.len() > 256 {
        return Err(ConfigError::new("kid", "must be 1 to 256 characters"));
    }
    let alg = Alg::parse(&spec.alg).ok_or_else(|| {
        ConfigError::new(
            "alg",
            format!(
                "`{}` is not supported (dir, A128KW, A256KW, ECDH-ES+A256KW)",
                spec.alg
            ),
        )
    })?;
    let material = match alg {
        Alg::Dir | Alg::A128Kw | Alg::A256Kw => {
            if spec.crv.is_some() || spec.x.is_some() || spec.y.is_some() || spec.d.is_some() {
                return Err(ConfigError::new(
                    "",
                    "a symmetric key takes `k` (or `k_env`), not `crv`/`x`/`y`/`d`",
                ));
            }
            let k = secret(&spec.k, &spec.k_env, "k")?
                .ok_or_else(|| ConfigError::new("k", "a symmetric key needs `k` or `k_env`"))?;
            let ok = match alg {
                Alg::Dir => k.len() == 16 || k.len() == 32,
                Alg::A128Kw => k.len() == 16,
                _ => k.len() == 32,
            };
            if !ok {
                return Err(ConfigError::new(
                    "k",
                    format!(
                        "{} bytes is the wrong size for {} (A128KW: 16, A256KW: 32, dir: 16 or 32)",
                        k.len(),
                        alg.name()
                    ),
                ));
            }
            KeyMaterial::Oct(k)
        }
        Alg::EcdhEsA256Kw => {
            if spec.k.is_some() || spec.k_env.is_some() {
                return Err(ConfigError::new("k", "an EC key takes `x`, `y`, `d`"));
            }
            if spec.crv.as_deref() != Some("P-256") {
                return Err(ConfigError::new("crv", "must be `P-256`"));
            }
            let d = secret(&spec.d, &spec.d_env, "d")?;
            let coord = |v: &Option<String>, n: &str| -> Result<Option<Vec<u8>>, ConfigError> {
                v.as_deref()
                    .map(|s| b64d(s).map_err(|_| ConfigError::new(n, "not base64url")))
                    .transpose()
            };
            let (x, y) = (coord(&spec.x, "x")?, coord(&spec.y, "y")?);
            match d {
                Some(d) => {
                    let sk = p256::SecretKey::from_slice(&d)
                        .map_err(|_| ConfigError::new("d", "not a P-256 private key"))?;
                    if let (Some(x), Some(y)) = (&x, &y) {
                        let given = ec_public_from_xy(x, y).ok_or_else(|| {
                            ConfigError::new("x", "`x`/`y` are not a point on P-256")
                        })?;
                        if given != sk.public_key() {
                            return Err(ConfigError::new(
                                "x",
                                "`x`/`y` are not the public key of `d`",
                            ));
                        }
                    }
                    KeyMaterial::EcPrivate(sk)
                }
                None => {
                    let (Some(x), Some(y)) = (x, y) else {
                        return Err(ConfigError::new("x", "an EC public key needs `x` and `y`"));
                    };
                    KeyMaterial::EcPublic(
                        ec_public_from_xy(&x, &y).ok_or_else(|| {
                            ConfigError::new("x", "`x`/`y` are not a point on P-256")
                        })?,
                    )
                }
            }
        }
    };
    let secs = |t: Option<u64>| t.map(|t| i64::try_from(t).unwrap_or(i64::MAX));
    check_key_window(secs(spec.not_before), secs(spec.not_after))
        .map_err(|e| ConfigError::new("not_after", e))?;
    Ok(Key {
        kid: spec.kid.clone(),
        alg,
        material,
        not_before: spec.not_before,
        not_after: spec.not_after,
    })
}

impl KeySet {
    pub fn compile(specs: &[KeySpec]) -> Result<Self, ConfigError> {
        let mut keys: Vec<Key> = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let key = compile_key(spec).map_err(|e| e.within(&format!("keys[{i}]")))?;
            if keys.iter().any(|k| k.kid == key.kid) {
                return Err(ConfigError::new(
                    format!("keys[{i}].kid"),
                    format!("`{}` appears twice", key.kid),
                ));
            }
            keys.push(key);
        }
        Ok(KeySet { keys })
    }

    pub fn position(&self, kid: &str) -> Option<usize> {
        self.keys.iter().position(|k| k.kid == kid)
    }

    pub fn get(&self, i: usize) -> Option<&Key> {
        self.keys.get(i)
    }

    /// The key to decrypt a JWE with this `kid` (or, without one, the only decryption key for
    /// this `alg` valid now) and `alg`.
    pub fn for_decrypt(
        &self,
        kid: Option<&str>,
        alg: Alg,
        now: SystemTime,
    ) -> Result<&Key, JweError> {
        let key = match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid == kid && k.alg == alg && k.can_decrypt())
                .ok_or(JweError::UnknownKey)?,
            None => {
                let mut candidates = self
                    .keys
                    .iter()
                    .filter(|k| k.alg == alg && k.can_decrypt() && k.valid_at(now));
                match (candidates.next(), candidates.next()) {
                    (Some(k), None) => k,
                    _ => return Err(JweError::UnknownKey),
                }
            }
        };
        if !key.valid_at(now) {
            return Err(JweError::KeyNotValid);
        }
        Ok(key)
    }
}
