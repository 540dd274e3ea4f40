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

pub const USAGE: &str =
    "  portcullis encrypt (--key-env VAR | --key-file F) --alg ALG [--enc ENC] [--kid K] [--cty T]
                                        stdin -> compact JWE (ALG: dir, A128KW, A256KW,
                                        ECDH-ES+A256KW; ENC: A256GCM (default), A128GCM)
  portcullis decrypt (--key-env VAR | --key-file F)
                                        compact JWE on stdin -> plaintext (header on stderr)";

struct Args {
    key: String,
    alg: Option<String>,
    enc: Option<String>,
    kid: Option<String>,
    cty: Option<String>,
}

fn parse_args(rest: &[&str]) -> Result<Args, String> {
    let (mut key, mut alg, mut enc, mut kid, mut cty) = (None, None, None, None, None);
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match *flag {
            "--key-env" => {
                key = Some(std::env::var(value).map_err(|_| format!("`{value}` is not set"))?)
            }
            "--key-file" => {
                key = Some(std::fs::read_to_string(value).map_err(|e| format!("{value}: {e}"))?)
            }
            "--alg" => alg = Some(value.to_string()),
            "--enc" => enc = Some(value.to_string()),
            "--kid" => kid = Some(value.to_string()),
            "--cty" => cty = Some(value.to_string()),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(Args {
        key: key.ok_or("--key-env or --key-file is required")?,
        alg,
        enc,
        kid,
        cty,
    })
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
            ExitCode::FAILURE
        }
    }
}

pub fn encrypt(rest: &[&str]) -> ExitCode {
    finish((|| {
        let a = parse_args(rest)?;
        let alg_name = a.alg.as_deref().ok_or("--alg is required")?;
        let spec = key_spec(&a.key, alg_name, a.kid.as_deref())?;
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

pub fn decrypt(rest: &[&str]) -> ExitCode {
    finish((|| {
        let a = parse_args(rest)?;
        let input = stdin()?;
        let text = std::str::from_utf8(&input)
            .map_err(|_| "the input is not a compact JWE".to_string())?
            .trim();
        let parsed = jwe::parse(text).map_err(|e| e.detail().to_string())?;
        let spec = key_spec(&a.key, parsed.alg.name(), parsed.kid())?;
        let key = compile_key(&spec).map_err(|e| format!("key: {e}"))?;
        let plain = jwe::decrypt(&parsed, &key.material).map_err(|e| e.detail().to_string())?;
        eprintln!("{}", Value::Object(parsed.header.clone()));
        std::io::stdout()
            .write_all(&plain)
            .map_err(|e| format!("stdout: {e}"))?;
        Ok(())
    })())
}
