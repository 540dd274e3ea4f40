//! `portcullis sign`: the header fields that sign a request (RFC 9421, hmac-sha256), one
//! `Name: value` per line, for curl or any client.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use portcullis::signing::{self, Message, SignRequest};

struct Args {
    key_id: String,
    secret_env: String,
    method: String,
    url: String,
    body: Option<String>,
    headers: Vec<(String, String)>,
    components: Option<Vec<String>>,
    label: String,
    expires_in: Option<u64>,
    nonce: bool,
}

fn parse(rest: &[&str]) -> Result<Args, String> {
    let mut a = Args {
        key_id: String::new(),
        secret_env: String::new(),
        method: "GET".into(),
        url: String::new(),
        body: None,
        headers: Vec::new(),
        components: None,
        label: "sig1".into(),
        expires_in: None,
        nonce: true,
    };
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        if *flag == "--no-nonce" {
            a.nonce = false;
            continue;
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?
            .to_string();
        match *flag {
            "--key-id" => a.key_id = value,
            "--secret-env" => a.secret_env = value,
            "--method" => a.method = value.to_ascii_uppercase(),
            "--url" => a.url = value,
            "--body" => a.body = Some(value),
            "--label" => a.label = value,
            "--header" => {
                let (k, v) = value
                    .split_once(':')
                    .ok_or_else(|| format!("--header `{value}`: expected 'name: value'"))?;
                a.headers
                    .push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
            "--components" => {
                a.components = Some(
                    value
                        .split([' ', ','])
                        .filter(|c| !c.is_empty())
                        .map(String::from)
                        .collect(),
                )
            }
            "--expires-in" => {
                a.expires_in = Some(
                    value
                        .parse()
                        .map_err(|_| format!("--expires-in `{value}`: not a number"))?,
                )
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    if a.key_id.is_empty() || a.secret_env.is_empty() || a.url.is_empty() {
        return Err("--key-id, --secret-env and --url are required".into());
    }
    Ok(a)
}

/// `http://host:port/path?query` -> (scheme, authority, target).
fn split_url(url: &str) -> Option<(String, String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let (authority, target) = match rest.find(['/', '?']) {
        Some(i) => (rest.get(..i)?, rest.get(i..)?),
        None => (rest, "/"),
    };
    let target = if target.starts_with('?') {
        format!("/{target}")
    } else {
        target.to_string()
    };
    // A fragment is never sent.
    let target = target.split('#').next().unwrap_or("/").to_string();
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some((scheme.to_ascii_lowercase(), authority.to_string(), target))
}

pub fn run(rest: &[&str]) -> ExitCode {
    match sign(rest) {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("portcullis sign: {e}");
            ExitCode::from(2)
        }
    }
}

fn sign(rest: &[&str]) -> Result<Vec<String>, String> {
    let a = parse(rest)?;
    let secret = std::env::var(&a.secret_env)
        .map_err(|_| format!("environment variable {} is not set", a.secret_env))?;
    let secret = signing::decode_secret(&secret)
        .ok_or_else(|| format!("{} does not hold a base64 secret", a.secret_env))?;
    let (scheme, authority, target) =
        split_url(&a.url).ok_or_else(|| format!("`{}` is not an http(s) URL", a.url))?;
    let body = match &a.body {
        Some(f) => Some(std::fs::read(f).map_err(|e| format!("cannot read {f}: {e}"))?),
        None => None,
    };
    let headers: Vec<(String, Vec<u8>)> = a
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
        .collect();
    let components = a.components.clone().unwrap_or_else(|| {
        let mut c: Vec<String> = ["@method", "@authority", "@path", "@query"]
            .map(String::from)
            .to_vec();
        c.extend(a.headers.iter().map(|(k, _)| k.clone()));
        if body.is_some() {
            c.push("content-digest".into());
        }
        c.dedup();
        c
    });
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let nonce = if a.nonce {
        Some(signing::random_nonce().ok_or("no random source for the nonce")?)
    } else {
        None
    };
    let req = SignRequest {
        label: a.label.clone(),
        components,
        keyid: a.key_id.clone(),
        created: now,
        expires: a.expires_in.map(|s| now + s),
        nonce,
        alg: false,
    };
    let msg = Message {
        method: &a.method,
        scheme: &scheme,
        authority: &authority,
        target: &target,
        headers: &headers,
    };
    let signed = signing::sign(&msg, body.as_deref(), &secret, &req).map_err(|e| e.to_string())?;
    Ok(signed
        .headers()
        .into_iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_scheme_authority_target() {
        assert_eq!(
            split_url("http://127.0.0.1:10000/orders?id=1#x"),
            Some((
                "http".into(),
                "127.0.0.1:10000".into(),
                "/orders?id=1".into()
            ))
        );
        assert_eq!(
            split_url("https://api.example").map(|u| u.2),
            Some("/".into())
        );
        assert_eq!(
            split_url("https://api.example?q").map(|u| u.2),
            Some("/?q".into())
        );
        assert_eq!(split_url("api.example/x"), None);
        assert_eq!(split_url("http://user@host/"), None);
    }

    #[test]
    fn sign_prints_header_lines() {
        std::env::set_var(
            "PORTCULLIS_CLI_TEST_SECRET",
            "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE=",
        );
        let lines = sign(&[
            "--key-id",
            "k1",
            "--secret-env",
            "PORTCULLIS_CLI_TEST_SECRET",
            "--method",
            "get",
            "--url",
            "http://localhost/x?y=1",
            "--header",
            "Accept: application/json",
        ])
        .unwrap();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with(
            r#"Signature-Input: sig1=("@method" "@authority" "@path" "@query" "accept");created="#
        ));
        assert!(lines[1].starts_with("Signature: sig1=:"), "{lines:?}");
        assert!(sign(&["--key-id", "k1"]).is_err());
    }
}
