//! `portcullis rotate POLICY_FILE --client C [--overlap 7d] [--id ID]`: the policy with a new
//! key for the client and its current keys' `not_after` brought to now + overlap, so both work
//! during the overlap (with Deprecation/Sunset headers on the old ones inside `grace`). The
//! policy goes to stdout; the new plaintext key to stderr, once.
//!
//! POLICY_FILE is an api-key policy, or a guard policy with an `api_key` member.

use std::process::ExitCode;

use portcullis::controls::build_module;
use portcullis::time::{format_rfc3339, parse_rfc3339};
use serde_json::{json, Value};

use crate::keygen::{key_id, new_key, now_unix};
use crate::values::{self, TextFile};

/// An api-key policy with a new key for CLIENT and its old keys ending after the overlap
///
/// CLIENT's current keys get `not_after` = now + overlap, so old and new keys both work
/// meanwhile. The policy goes to stdout, the new plaintext key to stderr, once.
#[derive(clap::Args)]
pub struct Args {
    /// An api-key policy JSON, or a guard policy with an `api_key` member.
    #[arg(value_name = "POLICY_FILE", value_parser = values::text_file)]
    file: TextFile,
    /// The client whose key is rotated (it must have a key already; else use `keygen`).
    #[arg(long)]
    client: String,
    /// How long the old keys keep working (`90s`, `15m`, `12h`, `7d`).
    #[arg(long, default_value = "7d", value_parser = values::duration)]
    overlap: u64,
    /// The new key's id (default: CLIENT-<UTC time>).
    #[arg(long)]
    id: Option<String>,
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("rotate: {msg}");
    ExitCode::from(crate::FAILED)
}

pub fn run(a: Args) -> ExitCode {
    let Args {
        file,
        client,
        overlap,
        id,
    } = a;
    let overlap = overlap as i64;
    let (file, text) = (file.path, file.text);
    let mut doc: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return fail(&format!("{file}: {e}")),
    };
    let module = if doc.get("chain").is_some() {
        "guard"
    } else {
        "api-key"
    };
    let now = now_unix();
    let (key, hash) = match new_key() {
        Ok(k) => k,
        Err(e) => return fail(&e),
    };
    let new_id = id.unwrap_or_else(|| key_id(&client, now));
    let policy = if module == "guard" {
        doc.get_mut("api_key")
    } else {
        Some(&mut doc)
    };
    let Some(keys) = policy
        .and_then(|p| p.as_object_mut())
        .map(|p| p.entry("keys").or_insert_with(|| json!([])))
        .and_then(Value::as_array_mut)
    else {
        return fail(&format!("{file}: no api-key policy with a `keys` array"));
    };
    let sunset = now.saturating_add(overlap);
    let mut scopes = None;
    let mut old = 0;
    for k in keys.iter_mut().filter(|k| k["client"] == client.as_str()) {
        old += 1;
        scopes = k.get("scopes").cloned().or(scopes);
        let later = match k.get("not_after").and_then(Value::as_str) {
            None => true,
            Some(t) => parse_rfc3339(t).map_or(true, |t| t > sunset),
        };
        if later {
            k["not_after"] = json!(format_rfc3339(sunset));
        }
    }
    if old == 0 {
        return fail(&format!(
            "{file}: client `{client}` has no key to rotate (use keygen)"
        ));
    }
    let mut entry = json!({"id": new_id, "client": client, "sha256": hash});
    if let Some(s) = scopes {
        entry["scopes"] = s;
    }
    keys.push(entry);
    match build_module(module, &doc) {
        Some(Ok(_)) => {}
        Some(Err(e)) => return fail(&format!("the rotated policy is invalid: {e}")),
        None => return fail("unknown module"),
    }
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    eprintln!(
        "new key for client `{client}` (id {new_id}); the old keys stop working at {}. \
         Store the key now, it is not shown again:\n{key}",
        format_rfc3339(sunset)
    );
    ExitCode::SUCCESS
}
