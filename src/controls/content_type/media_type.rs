//! Media types (RFC 9110 §8.3.1) and the ranges a policy allows.

use std::fmt;

/// A parsed `Content-Type` value. Type, subtype and parameter names are lower-cased (they are
/// case-insensitive); parameter values keep their case, except `charset`, which is
/// case-insensitive too (RFC 9110 §8.3.2) and is lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    pub type_: String,
    pub subtype: String,
    pub params: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaTypeError {
    Empty,
    NotTypeSlashSubtype,
    BadParameter,
    UnterminatedQuote,
    DuplicateParameter,
}

impl fmt::Display for MediaTypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MediaTypeError::Empty => "the Content-Type is empty",
            MediaTypeError::NotTypeSlashSubtype => {
                "the Content-Type is not of the form type/subtype"
            }
            MediaTypeError::BadParameter => {
                "a Content-Type parameter is not of the form name=value"
            }
            MediaTypeError::UnterminatedQuote => {
                "a quoted Content-Type parameter is not terminated"
            }
            MediaTypeError::DuplicateParameter => "a Content-Type parameter is repeated",
        })
    }
}

/// `tchar` of RFC 9110 §5.6.2.
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

fn trim_ows(s: &str) -> &str {
    s.trim_matches(|c| c == ' ' || c == '\t')
}

impl MediaType {
    /// media-type = type "/" subtype parameters ; parameters = *( OWS ";" OWS [ parameter ] )
    pub fn parse(input: &str) -> Result<Self, MediaTypeError> {
        let input = trim_ows(input);
        if input.is_empty() {
            return Err(MediaTypeError::Empty);
        }
        let (essence, mut rest) = match input.find(';') {
            Some(i) => (input.get(..i).unwrap_or(""), input.get(i..).unwrap_or("")),
            None => (input, ""),
        };
        let essence = trim_ows(essence);
        let (t, s) = essence
            .split_once('/')
            .ok_or(MediaTypeError::NotTypeSlashSubtype)?;
        if !is_token(t) || !is_token(s) {
            return Err(MediaTypeError::NotTypeSlashSubtype);
        }
        let mut params: Vec<(String, String)> = Vec::new();
        while let Some(after) = rest.strip_prefix(';') {
            let after = trim_ows(after);
            // An empty parameter (`;;` or a trailing `;`) is allowed by the grammar.
            if after.is_empty() || after.starts_with(';') {
                rest = after;
                continue;
            }
            let eq = after.find('=').ok_or(MediaTypeError::BadParameter)?;
            let name = after.get(..eq).unwrap_or("");
            if !is_token(name) {
                return Err(MediaTypeError::BadParameter);
            }
            let (value, remaining) = parse_param_value(after.get(eq + 1..).unwrap_or(""))?;
            let name = name.to_ascii_lowercase();
            if params.iter().any(|(n, _)| *n == name) {
                return Err(MediaTypeError::DuplicateParameter);
            }
            let value = if name == "charset" {
                value.to_ascii_lowercase()
            } else {
                value
            };
            params.push((name, value));
            rest = trim_ows(remaining);
            if !rest.is_empty() && !rest.starts_with(';') {
                return Err(MediaTypeError::BadParameter);
            }
        }
        if !rest.is_empty() {
            return Err(MediaTypeError::BadParameter);
        }
        Ok(MediaType {
            type_: t.to_ascii_lowercase(),
            subtype: s.to_ascii_lowercase(),
            params,
        })
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn essence(&self) -> String {
        format!("{}/{}", self.type_, self.subtype)
    }

    /// `application/*+json` and `application/json` are JSON (RFC 6839 §3.1).
    pub fn is_json(&self) -> bool {
        self.type_ == "application" && (self.subtype == "json" || self.subtype.ends_with("+json"))
    }
}

/// value = token / quoted-string (§5.6.4). Returns the unquoted value and what follows it.
fn parse_param_value(s: &str) -> Result<(String, &str), MediaTypeError> {
    if let Some(q) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = q.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return Ok((out, q.get(i + 1..).unwrap_or(""))),
                '\\' => match chars.next() {
                    Some((_, e)) if e == '\t' || (' '..='~').contains(&e) => out.push(e),
                    _ => return Err(MediaTypeError::UnterminatedQuote),
                },
                c if c == '\t' || (' '..='~').contains(&c) => out.push(c),
                _ => return Err(MediaTypeError::BadParameter),
            }
        }
        Err(MediaTypeError::UnterminatedQuote)
    } else {
        let end = s
            .find(|c: char| !c.is_ascii() || !is_tchar(c as u8))
            .unwrap_or(s.len());
        let v = s.get(..end).unwrap_or("");
        if v.is_empty() {
            return Err(MediaTypeError::BadParameter);
        }
        Ok((v.to_string(), s.get(end..).unwrap_or("")))
    }
}

/// What a policy allows: `application/json`, `application/*+json`, `text/*` or `*/*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRange {
    type_: String,
    subtype: Subtype,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Subtype {
    Exact(String),
    Any,
    /// `*+json`: any subtype with this structured-syntax suffix (RFC 6838 §4.2.8).
    Suffix(String),
}

impl MediaRange {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (t, st) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not type/subtype"))?;
        let (t, st) = (t.to_ascii_lowercase(), st.to_ascii_lowercase());
        let subtype = if st == "*" {
            Subtype::Any
        } else if let Some(suffix) = st.strip_prefix("*+") {
            if !is_token(suffix) {
                return Err(format!("`{s}` has an invalid suffix"));
            }
            Subtype::Suffix(format!("+{suffix}"))
        } else if is_token(&st) && !st.contains('*') {
            Subtype::Exact(st)
        } else {
            return Err(format!(
                "`{s}` has an invalid subtype (parameters go in `charsets`)"
            ));
        };
        if !(t == "*" && subtype == Subtype::Any) && (!is_token(&t) || t.contains('*')) {
            return Err(format!("`{s}` has an invalid type"));
        }
        Ok(MediaRange {
            type_: t,
            subtype,
            text: s.to_ascii_lowercase(),
        })
    }

    pub fn matches(&self, m: &MediaType) -> bool {
        if self.type_ == "*" {
            return true;
        }
        self.type_ == m.type_
            && match &self.subtype {
                Subtype::Any => true,
                Subtype::Exact(s) => *s == m.subtype,
                Subtype::Suffix(sfx) => {
                    m.subtype.ends_with(sfx.as_str()) && m.subtype.len() > sfx.len()
                }
            }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9110_8_3_1_parses_type_subtype_and_parameters() {
        // (input, type/subtype, params)
        type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);
        let cases: &[Case] = &[
            ("application/json", "application/json", &[]),
            ("Application/JSON", "application/json", &[]),
            (
                "text/html;charset=utf-8",
                "text/html",
                &[("charset", "utf-8")],
            ),
            // §8.3.1: these are equivalent
            (
                "text/html;charset=UTF-8",
                "text/html",
                &[("charset", "utf-8")],
            ),
            (
                "Text/HTML;Charset=\"utf-8\"",
                "text/html",
                &[("charset", "utf-8")],
            ),
            (
                "text/html; charset=\"utf-8\"",
                "text/html",
                &[("charset", "utf-8")],
            ),
            (
                "text/plain ; format=flowed",
                "text/plain",
                &[("format", "flowed")],
            ),
            (
                "multipart/form-data; boundary=\"a b;c\"",
                "multipart/form-data",
                &[("boundary", "a b;c")],
            ),
            ("a/b; q=\"x\\\"y\"", "a/b", &[("q", "x\"y")]),
            ("a/b;", "a/b", &[]),
            ("a/b;;x=1", "a/b", &[("x", "1")]),
            ("application/vnd.api+json", "application/vnd.api+json", &[]),
        ];
        for (input, essence, params) in cases {
            let m = MediaType::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(m.essence(), *essence, "{input}");
            let got: Vec<(&str, &str)> = m
                .params
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            assert_eq!(got, *params, "{input}");
        }
    }

    #[test]
    fn malformed_media_types_are_refused() {
        let cases = [
            ("", MediaTypeError::Empty),
            ("   ", MediaTypeError::Empty),
            ("json", MediaTypeError::NotTypeSlashSubtype),
            ("application/", MediaTypeError::NotTypeSlashSubtype),
            ("/json", MediaTypeError::NotTypeSlashSubtype),
            (
                "application/json, text/plain",
                MediaTypeError::NotTypeSlashSubtype,
            ),
            ("application/json;charset", MediaTypeError::BadParameter),
            ("application/json;charset=", MediaTypeError::BadParameter),
            (
                "application/json;charset=\"utf-8",
                MediaTypeError::UnterminatedQuote,
            ),
            (
                "application/json;charset=utf-8 x",
                MediaTypeError::BadParameter,
            ),
            (
                "application/json;charset=utf-8;charset=utf-7",
                MediaTypeError::DuplicateParameter,
            ),
            ("appl ication/json", MediaTypeError::NotTypeSlashSubtype),
            ("application/json\0", MediaTypeError::NotTypeSlashSubtype),
        ];
        for (input, want) in cases {
            assert_eq!(MediaType::parse(input), Err(want), "{input:?}");
        }
    }

    #[test]
    fn ranges_match_exact_wildcard_and_structured_suffix() {
        let m = |s| MediaType::parse(s).unwrap();
        let json = MediaRange::parse("application/json").unwrap();
        assert!(json.matches(&m("Application/Json; charset=utf-8")));
        assert!(!json.matches(&m("application/jsonx")));
        let plus_json = MediaRange::parse("application/*+json").unwrap();
        assert!(plus_json.matches(&m("application/problem+json")));
        assert!(!plus_json.matches(&m("application/json")));
        assert!(!plus_json.matches(&m("application/+json")));
        assert!(!plus_json.matches(&m("text/x+json")));
        assert!(MediaRange::parse("text/*").unwrap().matches(&m("text/csv")));
        assert!(MediaRange::parse("*/*").unwrap().matches(&m("image/png")));
    }

    #[test]
    fn invalid_ranges_are_refused() {
        for r in [
            "json",
            "*/json",
            "application/js*n",
            "application/json;charset=utf-8",
            "app lication/json",
        ] {
            assert!(MediaRange::parse(r).is_err(), "{r}");
        }
    }

    #[test]
    fn rfc6839_json_suffix() {
        assert!(MediaType::parse("application/ld+json").unwrap().is_json());
        assert!(!MediaType::parse("text/json").unwrap().is_json());
    }
}
