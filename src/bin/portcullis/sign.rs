//! `portcullis sign`: the header fields that sign a request (RFC 9421, hmac-sha256), one
//! `Name: value` per line, for curl or any client.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use portcullis::signing::{self, Message, SignRequest};

use crate::values::{self, BytesFile};

/// The header fields that sign a request (RFC 9421, hmac-sha256)
///
/// Content-Digest (with --body), Signature-Input and Signature, one `Name: value` per line.
#[derive(clap::Args)]
pub struct Args {
    /// The key's id (`keyid`), as the verifier's policy names it.
    #[arg(long)]
    key_id: String,
    /// The environment variable holding the base64 secret (never the command line, which
    /// other users can read).
    #[arg(long, value_name = "VAR", value_parser = secret_env)]
    secret_env: Secret,
    /// The request's method.
    #[arg(long, default_value = "GET", value_parser = values::method)]
    method: String,
    /// The request's URL (`http://host:port/path?query`).
    #[arg(long, value_parser = url)]
    url: Url,
    /// The file holding the request body (adds Content-Digest, RFC 9530).
    #[arg(long, value_name = "FILE", value_parser = values::bytes_file)]
    body: Option<BytesFile>,
    /// A request header to sign; repeat for more.
    #[arg(long = "header", value_name = "'NAME: VALUE'", value_parser = values::header)]
    headers: Vec<(String, String)>,
    /// The components to sign, space- or comma-separated (default: @method @authority @path
    /// @query, every --header, and content-digest with --body).
    #[arg(long, value_name = "'C1 C2 …'", value_parser = components)]
    components: Option<Components>,
    /// The signature's label.
    #[arg(long, default_value = "sig1")]
    label: String,
    /// Add `expires` this long after `created`: seconds, or a duration (`5m`).
    #[arg(long, value_name = "SECS", value_parser = values::seconds)]
    expires_in: Option<u64>,
    /// Sign without a nonce (the verifier must not require one).
    #[arg(long)]
    no_nonce: bool,
}

/// The decoded secret (zeroed on drop); its Debug never shows it.
#[derive(Clone)]
struct Secret(portcullis::secret::Secret);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

fn secret_env(var: &str) -> Result<Secret, String> {
    let text = values::env_var(var)?;
    signing::decode_secret(&text)
        .map(Secret)
        .ok_or_else(|| format!("{var} does not hold a base64 secret"))
}

#[derive(Clone, Debug)]
struct Url {
    scheme: String,
    authority: String,
    target: String,
}

fn url(s: &str) -> Result<Url, String> {
    let (scheme, authority, target) =
        split_url(s).ok_or_else(|| format!("`{s}` is not an http(s) URL"))?;
    Ok(Url {
        scheme,
        authority,
        target,
    })
}

#[derive(Clone, Debug)]
struct Components(Vec<String>);

fn components(s: &str) -> Result<Components, String> {
    let c: Vec<String> = s
        .split([' ', ','])
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect();
    if c.is_empty() {
        return Err("no component named".into());
    }
    Ok(Components(c))
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

pub fn run(a: Args) -> ExitCode {
    match sign(&a) {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("portcullis sign: {e}");
            ExitCode::from(crate::FAILED)
        }
    }
}

fn sign(a: &Args) -> Result<Vec<String>, String> {
    let body = a.body.as_ref().map(|b| b.bytes.as_slice());
    let headers: Vec<(String, Vec<u8>)> = a
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
        .collect();
    let components = a.components.clone().map(|c| c.0).unwrap_or_else(|| {
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
    let nonce = if !a.no_nonce {
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
        scheme: &a.url.scheme,
        authority: &a.url.authority,
        target: &a.url.target,
        headers: &headers,
    };
    let signed = signing::sign(&msg, body, &a.secret_env.0, &req).map_err(|e| e.to_string())?;
    Ok(signed
        .headers()
        .into_iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// `portcullis sign ARGV…` as the command line parses it.
    fn args(argv: &[&str]) -> Result<Args, clap::Error> {
        let argv = ["portcullis", "sign"].iter().chain(argv);
        match crate::Cli::try_parse_from(argv)?.command {
            crate::Command::Sign(a) => Ok(a),
            _ => unreachable!("parsed as another command"),
        }
    }

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
        let lines = sign(
            &args(&[
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
            .unwrap(),
        )
        .unwrap();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with(
            r#"Signature-Input: sig1=("@method" "@authority" "@path" "@query" "accept");created="#
        ));
        assert!(lines[1].starts_with("Signature: sig1=:"), "{lines:?}");
        assert!(
            args(&["--key-id", "k1"]).is_err(),
            "--secret-env and --url are required"
        );
    }

    #[test]
    fn components_split_on_spaces_and_commas() {
        let c = components("@method, @path content-digest").unwrap().0;
        assert_eq!(c, ["@method", "@path", "content-digest"]);
        assert!(components(" , ").is_err());
    }

    #[test]
    fn an_unset_or_non_base64_secret_env_is_an_error_naming_the_argument() {
        let url = ["--key-id", "k1", "--url", "http://localhost/"];
        let unset = [&url[..], &["--secret-env", "PORTCULLIS_CLI_TEST_UNSET"]].concat();
        let e = args(&unset).err().unwrap().to_string();
        assert!(
            e.contains("--secret-env") && e.contains("is not set"),
            "{e}"
        );
        std::env::set_var("PORTCULLIS_CLI_TEST_NOT_B64", "not base64!");
        let bad = [&url[..], &["--secret-env", "PORTCULLIS_CLI_TEST_NOT_B64"]].concat();
        let e = args(&bad).err().unwrap().to_string();
        assert!(e.contains("--secret-env") && e.contains("base64"), "{e}");
        assert!(
            !e.contains("not base64!"),
            "the value is never printed: {e}"
        );
    }
}
