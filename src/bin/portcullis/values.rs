//! Value parsers shared by the subcommands. Each turns one argument into what the command
//! needs, or an error that clap prints next to the argument's name
//! (`invalid value 'x' for '--header <'NAME: VALUE'>': expected 'name: value'`), exit status 2.

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use portcullis::controls::{NAMES, STANDALONE};
use portcullis::time::parse_duration;

/// A file named on the command line, read when the arguments are parsed.
#[derive(Clone, Debug)]
pub struct TextFile {
    pub path: String,
    pub text: String,
}

pub fn text_file(path: &str) -> Result<TextFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    Ok(TextFile {
        path: path.to_string(),
        text,
    })
}

/// A file's bytes (a request body, a wasm module).
#[derive(Clone, Debug)]
pub struct BytesFile {
    pub path: String,
    pub bytes: Vec<u8>,
}

pub fn bytes_file(path: &str) -> Result<BytesFile, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    Ok(BytesFile {
        path: path.to_string(),
        bytes,
    })
}

/// The value of the environment variable the argument names (never a secret on the command
/// line, which other users can read).
pub fn env_var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("environment variable {name} is not set"))
}

/// An HTTP method (RFC 9110 §9: a token), in upper case as the filters see it.
pub fn method(s: &str) -> Result<String, String> {
    if s.is_empty() || !s.bytes().all(is_tchar) {
        return Err(format!("`{s}` is not an HTTP method (GET, POST, …)"));
    }
    Ok(s.to_ascii_uppercase())
}

/// `'name: value'` -> (lower-case name, trimmed value), as Envoy hands headers to a filter.
pub fn header(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once(':')
        .ok_or("expected 'name: value'".to_string())?;
    let name = name.trim().to_ascii_lowercase();
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return Err(format!("`{name}` is not a header name (RFC 9110 token)"));
    }
    let value = value.trim();
    if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err("a header value cannot hold CR, LF or NUL".into());
    }
    Ok((name, value.to_string()))
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A duration in seconds: `90s`, `15m`, `12h`, `7d` (the policies' syntax).
pub fn duration(s: &str) -> Result<u64, String> {
    parse_duration(s)
}

/// Seconds as a bare number (`300`), or a duration (`5m`).
pub fn seconds(s: &str) -> Result<u64, String> {
    s.parse().or_else(|_| parse_duration(s))
}

/// Module names with dashes: the guard, every chainable control and the standalone ones.
pub fn modules() -> Vec<String> {
    let mut m = vec!["guard".to_string()];
    m.extend(NAMES.iter().chain(STANDALONE).map(|n| n.replace('_', "-")));
    m
}

/// A module name (`content-type`; the policy spelling `content_type` is accepted too), with
/// `extra` names beyond [`modules`]. Completions and `--help` list the names.
pub fn module(extra: &[&str]) -> impl TypedValueParser<Value = String> {
    let names = modules()
        .into_iter()
        .chain(extra.iter().map(|e| e.to_string()))
        .map(|m| {
            let alias = m.replace('-', "_");
            PossibleValue::new(m).alias(alias)
        });
    PossibleValuesParser::new(names).map(|m| m.replace('_', "-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_is_name_colon_value_with_the_name_lower_cased() {
        assert_eq!(
            header("Content-Type:  application/json "),
            Ok(("content-type".into(), "application/json".into()))
        );
        assert_eq!(header("x-empty:"), Ok(("x-empty".into(), String::new())));
        assert!(header("no colon").is_err());
        assert!(header(": value").is_err());
        assert!(header("bad name: v").is_err());
        assert!(header("x: a\r\nb").is_err());
    }

    #[test]
    fn a_method_is_a_token_in_upper_case() {
        assert_eq!(method("post"), Ok("POST".into()));
        assert_eq!(method("M-SEARCH"), Ok("M-SEARCH".into()));
        assert!(method("").is_err());
        assert!(method("GET /").is_err());
    }

    #[test]
    fn seconds_are_a_number_or_a_duration() {
        assert_eq!(seconds("300"), Ok(300));
        assert_eq!(seconds("5m"), Ok(300));
        assert!(seconds("soon").is_err());
        assert_eq!(duration("7d"), Ok(7 * 86_400));
        assert!(duration("7").is_err());
    }

    #[test]
    fn modules_are_named_with_dashes_and_cover_every_control() {
        let m = modules();
        assert!(m.contains(&"guard".to_string()));
        assert!(m.contains(&"payload-crypto".to_string()));
        assert_eq!(m.len(), 1 + NAMES.len() + STANDALONE.len());
        assert!(m.iter().all(|n| !n.contains('_')));
    }
}
