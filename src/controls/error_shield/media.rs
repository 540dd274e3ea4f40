//! Which content types error-shield scans: `scan_content_types` entries are a media type
//! (`application/json`), a type wildcard (`text/*`), a structured-syntax suffix (`+json`, RFC
//! 6838 §4.2.8, matching `application/problem+json`) or `*/*` (everything typed).

use crate::control::ConfigError;

/// The default: every textual type (what carries a trace or an error message as text).
pub fn default_scan_content_types() -> Vec<String> {
    [
        "text/*",
        "application/json",
        "+json",
        "application/x-ndjson",
        "application/xml",
        "+xml",
        "application/javascript",
        "application/x-javascript",
        "application/x-www-form-urlencoded",
        "application/graphql",
        "application/x-yaml",
        "application/yaml",
    ]
    .map(String::from)
    .to_vec()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Range {
    Any,
    Type(String),
    Suffix(String),
    Exact(String),
}

#[derive(Debug)]
pub struct MediaRanges(Vec<Range>);

fn token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$&-^_.+".contains(&b))
}

impl MediaRanges {
    pub fn compile(entries: &[String], at: &str) -> Result<Self, ConfigError> {
        let mut ranges = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let range = if e == "*/*" {
                Some(Range::Any)
            } else if let Some(suffix) = e.strip_prefix('+') {
                token(suffix).then(|| Range::Suffix(format!("+{suffix}")))
            } else {
                match e.split_once('/') {
                    Some((t, "*")) if token(t) => Some(Range::Type(format!("{t}/"))),
                    Some((t, s)) if token(t) && token(s) => Some(Range::Exact(e.clone())),
                    _ => None,
                }
            };
            ranges.push(range.ok_or_else(|| {
                ConfigError::new(
                    format!("{at}[{i}]"),
                    format!("`{e}` is not a lower-case media type, `type/*`, `+suffix` or `*/*`"),
                )
            })?);
        }
        Ok(MediaRanges(ranges))
    }

    /// Does the `content-type` value (parameters and case ignored) fall in one of the ranges?
    pub fn contains(&self, content_type: &str) -> bool {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        self.0.iter().any(|r| match r {
            Range::Any => true,
            Range::Type(t) => essence.starts_with(t.as_str()),
            Range::Suffix(s) => essence.ends_with(s.as_str()),
            Range::Exact(e) => essence == *e,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(e: &[&str]) -> MediaRanges {
        let e: Vec<String> = e.iter().map(|s| s.to_string()).collect();
        MediaRanges::compile(&e, "scan_content_types").unwrap()
    }

    #[test]
    fn the_default_covers_textual_types_only() {
        let d = MediaRanges::compile(&default_scan_content_types(), "x").unwrap();
        for t in [
            "text/html; charset=utf-8",
            "Application/JSON",
            "application/problem+json",
            "application/soap+xml",
            "application/javascript",
        ] {
            assert!(d.contains(t), "{t}");
        }
        for t in ["image/png", "application/octet-stream", "application/pdf"] {
            assert!(!d.contains(t), "{t}");
        }
    }

    #[test]
    fn each_form_of_entry_matches_what_it_says() {
        assert!(ranges(&["application/octet-stream"]).contains("application/octet-stream"));
        assert!(!ranges(&["application/json"]).contains("application/problem+json"));
        assert!(ranges(&["+json"]).contains("application/problem+json"));
        assert!(ranges(&["image/*"]).contains("image/svg+xml"));
        assert!(ranges(&["*/*"]).contains("anything/at-all"));
    }

    #[test]
    fn a_bad_entry_is_refused_with_its_index() {
        for bad in ["json", "Text/*", "text/", "*/json", "+", "text/html; q=1"] {
            let e = MediaRanges::compile(&["text/*".into(), bad.into()], "scan_content_types")
                .unwrap_err();
            assert_eq!(e.path, "scan_content_types[1]", "{bad}");
        }
    }
}
