//! Shared by the request-signing Envoy tests: the policy, the CLI, and verifying what the
//! upstream saw with the core library.
#![allow(dead_code)]

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use portcullis::echo::Seen;
use portcullis::signing::{self, Key, Message, SignRequest, Verified, VerifyOptions};

/// 32 bytes, base64 (`openssl rand -base64 32`).
pub const SECRET: &str = "q83vEjRWeJASNFZ4kBI0VniQEjRWeJASNFZ4kBI0Vng=";
pub const SECRET_ENV: &str = "ORDERS_CLIENT_KEY";
/// What `/orders` requires in [`verify_policy`].
pub const FULL: &[&str] = &[
    "@method",
    "@authority",
    "@path",
    "@query",
    "content-type",
    "content-digest",
];

/// Verify mode: key `client-1` from the VM environment; `/orders` must cover content-type and
/// the body digest; `/health` is unsigned.
pub fn verify_policy() -> String {
    format!(
        r#"{{
  "keys": [{{"keyid": "client-1", "secret_env": "{SECRET_ENV}"}}],
  "routes": [
    {{"match": {{"prefix": "/health"}}, "required": false}},
    {{"match": {{"prefix": "/orders"}},
      "components": ["@method", "@authority", "@path", "@query", "content-type", "content-digest"]}}
  ]
}}"#
    )
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `portcullis sign …` with the secret in SECRET_ENV: the header lines it prints.
pub fn cli_sign(args: &[&str]) -> Vec<(String, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("sign")
        .args(["--key-id", "client-1", "--secret-env", SECRET_ENV])
        .args(args)
        .env(SECRET_ENV, SECRET)
        .output()
        .expect("run portcullis sign");
    assert!(
        out.status.success(),
        "portcullis sign failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8 output")
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(": ").expect("Name: value");
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// Sign with the library (for requests the CLI would not make: an old `created`).
pub fn lib_sign(
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    created: u64,
    components: &[&str],
) -> Vec<(String, String)> {
    let mut req = SignRequest::new("client-1", created, components);
    req.nonce = signing::random_nonce();
    lib_sign_as(method, target, headers, body, SECRET, &req)
}

/// [`lib_sign`] with any signature parameters and secret.
pub fn lib_sign_as(
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    secret_b64: &str,
    req: &SignRequest,
) -> Vec<(String, String)> {
    let h: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec()))
        .collect();
    let msg = Message {
        method,
        scheme: "http",
        authority: "localhost",
        target,
        headers: &h,
    };
    let secret = signing::decode_secret(secret_b64).expect("base64");
    let s = signing::sign(&msg, Some(body), &secret, req).expect("sign");
    s.headers()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// Two signed header sets as one request carries them: one Content-Digest, each dictionary
/// field with both members (`a` first).
pub fn both(a: &[(String, String)], b: &[(String, String)]) -> Vec<(String, String)> {
    a.iter()
        .map(|(k, v)| match b.iter().find(|(n, _)| n == k) {
            Some((_, w)) if k != "Content-Digest" => (k.clone(), format!("{v}, {w}")),
            _ => (k.clone(), v.clone()),
        })
        .collect()
}

/// `headers` plus `extra`, as the harness takes them.
pub fn with<'a>(
    headers: &[(&'a str, &'a str)],
    extra: &'a [(String, String)],
) -> Vec<(&'a str, &'a str)> {
    let mut h = headers.to_vec();
    h.extend(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    h
}

/// Verify a request the echo upstream received, with the core library.
pub fn verify_seen(
    seen: &Seen,
    keyid: &str,
    secret_b64: &str,
    required: &[&str],
) -> Result<Verified, signing::SigError> {
    let headers: Vec<(String, Vec<u8>)> = seen
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
        .collect();
    let msg = Message {
        method: &seen.method,
        scheme: "http",
        authority: seen.header("host").unwrap_or_default(),
        target: &seen.path,
        headers: &headers,
    };
    let mut opts = VerifyOptions::at(now());
    opts.required = required
        .iter()
        .map(|c| signing::base::parse_component(c).expect("component"))
        .collect();
    opts.require_nonce = true;
    let keys = [Key::new(
        keyid,
        signing::decode_secret(secret_b64).expect("base64"),
    )];
    let body = seen.body.as_bytes();
    signing::verify(&msg, Some(body), &keys, &opts)
}
