//! `portcullis encrypt` / `portcullis decrypt`: compact JWE by hand, with the code the
//! payload-crypto module runs (for testing a deployment with curl).
//!
//! Keys come from a file or an environment variable (never the command line, which other
//! users can read): a base64url symmetric key, or a JWK (`oct`, or `EC` P-256).

use std::io::{Read, Write};
use std::process::ExitCode;

use portcullis::controls::payload_crypto::jwe::{self, Alg, Enc, Recipient};
use portcullis::controls::payload_crypto::keys::{compile_key, KeySpec};
use serde_json::Value;

use crate::values::{self, TextFile};

/// The algorithms the module implements (a test checks each against `Alg::parse`/`Enc::parse`).
const ALGS: [&str; 4] = ["dir", "A128KW", "A256KW", "ECDH-ES+A256KW"];
const ENCS: [&str; 2] = ["A256GCM", "A128GCM"];

/// Where the key comes from: exactly one of the two.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
pub struct Key {
    /// The environment variable holding the key: base64url symmetric key, or a JWK (`oct`, or
    /// `EC` P-256).
    #[arg(long, value_name = "VAR", value_parser = values::env_var)]
    key_env: Option<String>,
    /// The file holding the key (as for --key-env).
    #[arg(long, value_name = "FILE", value_parser = values::text_file)]
    key_file: Option<TextFile>,
}

impl Key {
    fn text(&self) -> &str {
        match (&self.key_env, &self.key_file) {
            (Some(k), _) => k,
            (None, Some(f)) => &f.text,
            // The group is required: clap refuses the command line without one.
            (None, None) => "",
        }
    }
}

/// Standard input as a compact JWE (RFC 7516) on stdout
///
/// Encrypted with the payload-crypto module's own code.
#[derive(clap::Args)]
pub struct EncryptArgs {
    #[command(flatten)]
    key: Key,
    /// The key management algorithm.
    #[arg(long, value_parser = ALGS)]
    alg: String,
    /// The content encryption (default: A128GCM for a 16-byte `dir` key, else A256GCM).
    #[arg(long, value_parser = ENCS)]
    enc: Option<String>,
    /// The header's `kid` (default: the JWK's `kid`, else `cli`).
    #[arg(long)]
    kid: Option<String>,
    /// The header's `cty` (content type of the plaintext).
    #[arg(long)]
    cty: Option<String>,
}

/// A compact JWE on standard input decrypted to stdout (its protected header on stderr).
#[derive(clap::Args)]
pub struct DecryptArgs {
    #[command(flatten)]
    key: Key,
}

/// The key text (base64url `k`, or a JWK) as the module's key spec, for `alg`.
fn key_spec(text: &str, alg: &str, kid: Option<&str>) -> Result<KeySpec, String> {
    let text = text.trim();
    let mut spec = KeySpec {
        kid: kid.unwrap_or("cli").to_string(),
        alg: alg.to_string(),
        k: None,
        k_env: None,
        crv: None,
        x: None,
        y: None,
        d: None,
        d_env: None,
        not_before: None,
        not_after: None,
    };
    if !text.starts_with('{') {
        spec.k = Some(text.to_string());
        return Ok(spec);
    }
    let jwk: Value =
        serde_json::from_str(text).map_err(|e| format!("the key is not a JWK: {e}"))?;
    let s = |k: &str| jwk.get(k).and_then(Value::as_str).map(String::from);
    if kid.is_none() {
        if let Some(k) = s("kid") {
            spec.kid = k;
        }
    }
    match s("kty").as_deref() {
        Some("oct") => spec.k = s("k"),
        Some("EC") => (spec.crv, spec.x, spec.y, spec.d) = (s("crv"), s("x"), s("y"), s("d")),
        _ => return Err("the JWK must be kty oct or EC".into()),
    }
    Ok(spec)
}

fn stdin() -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    std::io::stdin()
        .read_to_end(&mut buf)
        .map_err(|e| format!("stdin: {e}"))?;
    Ok(buf)
}

fn finish(r: Result<(), String>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portcullis: {e}");
            ExitCode::from(crate::FAILED)
        }
    }
}

pub fn encrypt(a: EncryptArgs) -> ExitCode {
    finish((|| {
        let spec = key_spec(a.key.text(), &a.alg, a.kid.as_deref())?;
        let key = compile_key(&spec).map_err(|e| format!("key: {e}"))?;
        let enc = match (&a.enc, key.alg, &key.material) {
            (Some(e), _, _) => Enc::parse(e).ok_or_else(|| format!("--enc {e}: not supported"))?,
            (None, Alg::Dir, jwe::KeyMaterial::Oct(k)) if k.len() == 16 => Enc::A128Gcm,
            _ => Enc::A256Gcm,
        };
        let to = Recipient {
            kid: Some(&key.kid),
            alg: key.alg,
            enc,
            key: &key.material,
        };
        let out =
            jwe::encrypt(&stdin()?, &to, a.cty.as_deref()).map_err(|e| e.detail().to_string())?;
        println!("{out}");
        Ok(())
    })())
}

pub fn decrypt(a: DecryptArgs) -> ExitCode {
    finish((|| {
        let input = stdin()?;
        let text = std::str::from_utf8(&input)
            .map_err(|_| "the input is not a compact JWE".to_string())?
            .trim();
        let parsed = jwe::parse(text).map_err(|e| e.detail().to_string())?;
        let spec = key_spec(a.key.text(), parsed.alg.name(), parsed.kid())?;
        let key = compile_key(&spec).map_err(|e| format!("key: {e}"))?;
        let plain = jwe::decrypt(&parsed, &key.material).map_err(|e| e.detail().to_string())?;
        eprintln!("{}", Value::Object(parsed.header.clone()));
        std::io::stdout()
            .write_all(&plain)
            .map_err(|e| format!("stdout: {e}"))?;
        Ok(())
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_algorithms_offered_are_the_modules() {
        assert!(ALGS.iter().all(|a| Alg::parse(a).is_some()));
        assert!(ENCS.iter().all(|e| Enc::parse(e).is_some()));
    }
}
