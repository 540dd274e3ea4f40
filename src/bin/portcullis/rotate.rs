//! `portcullis rotate POLICY_FILE --client C [--overlap 7d] [--id ID]`: the policy with a new
//! key for the client and its current keys' `not_after` brought to now + overlap, so both work
//! during the overlap (with Deprecation/Sunset headers on the old ones inside `grace`). The
//! policy goes to stdout; the new plaintext key to stderr, once.
//!
//! POLICY_FILE is an api-key policy, or a guard policy with an `api_key` member.

use std::process::ExitCode;

use portcullis::controls::build_module;
use portcullis::time::{format_rfc3339, parse_duration, parse_rfc3339};
use serde_json::{json, Value};

use crate::keygen::{key_id, new_key, now_unix};

fn fail(msg: &str) -> ExitCode {
    eprintln!("rotate: {msg}");
    ExitCode::FAILURE
}

pub fn run(file: &str, args: &[&str]) -> ExitCode {
    let (mut client, mut overlap, mut id) = (None, "7d".to_string(), None);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        match (*flag, it.next()) {
            ("--client", Some(c)) => client = Some(c.to_string()),
            ("--overlap", Some(o)) => overlap = o.to_string(),
            ("--id", Some(i)) => id = Some(i.to_string()),
            _ => client = None,
        }
    }
    let Some(client) = client else {
        eprintln!("usage: portcullis rotate POLICY_FILE --client C [--overlap 7d] [--id ID]");
        return ExitCode::from(2);
    };
    let overlap = match parse_duration(&overlap) {
        Ok(s) => s as i64,
        Err(e) => return fail(&format!("--overlap: {e}")),
    };
    let mut doc: Value = match std::fs::read_to_string(file)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
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
