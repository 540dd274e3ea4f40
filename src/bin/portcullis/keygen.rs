//! `portcullis keygen [--client C] [--id ID]`: a new random API key and its SHA-256, with the
//! policy entry ready to paste into an api-key policy's `keys`.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use portcullis::controls::api_key::sha256_hex;
use portcullis::time::format_rfc3339;
use serde_json::json;

/// Keys start with a recognisable prefix, so secret scanners and people can spot a leaked one.
pub const PREFIX: &str = "pk_";

/// A new key (`pk_` + 32 random bytes, base64url) and its SHA-256 (hex).
pub fn new_key() -> Result<(String, String), String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness available: {e}"))?;
    let key = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = sha256_hex(key.as_bytes());
    Ok((key, hash))
}

pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `acme-20260301T120000Z`: a key id that says when it was made.
pub fn key_id(client: &str, unix: i64) -> String {
    let stamp: String = format_rfc3339(unix)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    format!("{client}-{stamp}")
}

/// A new API key and its SHA-256 policy entry (JSON on stdout)
///
/// The policy keeps only the hash; the key is shown once.
#[derive(clap::Args)]
pub struct Args {
    /// The client the key is for (the entry's `client`).
    #[arg(long, default_value = "client")]
    client: String,
    /// The key's id (default: CLIENT-<UTC time>, e.g. `acme-20260301T120000Z`).
    #[arg(long)]
    id: Option<String>,
}

pub fn run(a: Args) -> ExitCode {
    let Args { client, id } = a;
    let (key, hash) = match new_key() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("keygen: {e}");
            return ExitCode::from(crate::FAILED);
        }
    };
    let id = id.unwrap_or_else(|| key_id(&client, now_unix()));
    let out = json!({
        "key": key,
        "sha256": hash,
        "policy_key": {"id": id, "client": client, "sha256": hash}
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    ExitCode::SUCCESS
}
