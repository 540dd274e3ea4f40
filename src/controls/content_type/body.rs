//! Does the body agree with its declared media type?

use std::fmt;

use super::media_type::MediaType;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    JsonTooDeep(usize),
    JsonInvalid,
    FormInvalid,
    MultipartInvalid,
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::JsonTooDeep(d) => write!(f, "the JSON body nests deeper than {d} levels"),
            BodyError::JsonInvalid => f.write_str("the body is not valid JSON"),
            BodyError::FormInvalid => {
                f.write_str("the body is not valid application/x-www-form-urlencoded")
            }
            BodyError::MultipartInvalid => {
                f.write_str("the body is not valid multipart for its boundary")
            }
        }
    }
}

/// Check the body against the media type. Types without a check pass.
pub fn check(media: &MediaType, body: &[u8], json_max_depth: usize) -> Result<(), BodyError> {
    if media.is_json() {
        check_json(body, json_max_depth)
    } else if media.essence() == "application/x-www-form-urlencoded" {
        check_form(body)
    } else if media.type_ == "multipart" {
        check_multipart(body, media.param("boundary").unwrap_or(""))
    } else {
        Ok(())
    }
}

/// RFC 8259 JSON in UTF-8, at most `max_depth` nested arrays/objects. The depth is measured by
/// a scan first, so a hostile document never drives the parser's recursion.
pub fn check_json(body: &[u8], max_depth: usize) -> Result<(), BodyError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    return Err(BodyError::JsonTooDeep(max_depth));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    // serde skips over ignored strings without validating them: check UTF-8 first (§8.1).
    let text = std::str::from_utf8(body).map_err(|_| BodyError::JsonInvalid)?;
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map(|_| ())
        .map_err(|_| BodyError::JsonInvalid)
}

/// WHATWG URL §5.1 `application/x-www-form-urlencoded`, strictly: only URL code points, every
/// `%` followed by two hex digits, and the decoded bytes valid UTF-8.
pub fn check_form(body: &[u8]) -> Result<(), BodyError> {
    let mut decoded = Vec::with_capacity(body.len());
    let mut i = 0;
    while let Some(&b) = body.get(i) {
        match b {
            b'%' => {
                let hex = body
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                let v = hex
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or(BodyError::FormInvalid)?;
                decoded.push(v);
                i += 3;
            }
            b'+' => {
                decoded.push(b' ');
                i += 1;
            }
            0x21..=0x7e => {
                decoded.push(b);
                i += 1;
            }
            _ => return Err(BodyError::FormInvalid),
        }
    }
    std::str::from_utf8(&decoded)
        .map(|_| ())
        .map_err(|_| BodyError::FormInvalid)
}

/// RFC 2046 §5.1.1: the body holds a delimiter line `--boundary` and ends with the close
/// delimiter `--boundary--`.
pub fn check_multipart(body: &[u8], boundary: &str) -> Result<(), BodyError> {
    if boundary.is_empty() || boundary.len() > 70 {
        return Err(BodyError::MultipartInvalid);
    }
    let delimiter = format!("--{boundary}");
    let close = format!("--{boundary}--");
    let starts = body.starts_with(delimiter.as_bytes())
        || contains(body, format!("\r\n{delimiter}").as_bytes());
    let trimmed = trim_trailing_whitespace(body);
    if starts && trimmed.ends_with(close.as_bytes()) {
        Ok(())
    } else {
        Err(BodyError::MultipartInvalid)
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn trim_trailing_whitespace(b: &[u8]) -> &[u8] {
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(0, |p| p + 1);
    b.get(..end).unwrap_or(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8259_json_must_parse() {
        assert_eq!(check_json(br#"{"a":[1,2,{"b":null}]}"#, 8), Ok(()));
        assert_eq!(check_json(b"\"just a string\"", 8), Ok(()));
        assert_eq!(check_json(b"{\"a\":", 8), Err(BodyError::JsonInvalid));
        assert_eq!(check_json(b"{'a':1}", 8), Err(BodyError::JsonInvalid));
        assert_eq!(check_json(b"", 8), Err(BodyError::JsonInvalid));
        assert_eq!(check_json(b"{} {}", 8), Err(BodyError::JsonInvalid));
        // RFC 8259 §8.1: no byte order mark, UTF-8 only
        assert_eq!(
            check_json(b"\xef\xbb\xbf{}", 8),
            Err(BodyError::JsonInvalid)
        );
        assert_eq!(check_json(b"\"\xff\"", 8), Err(BodyError::JsonInvalid));
    }

    #[test]
    fn json_depth_is_limited_without_recursion() {
        assert_eq!(check_json(b"[[[1]]]", 3), Ok(()));
        assert_eq!(check_json(b"[[[[1]]]]", 3), Err(BodyError::JsonTooDeep(3)));
        // Brackets inside strings do not count, escaped quotes do not end the string.
        assert_eq!(check_json(br#"{"a":"[[[[\"[[[["}"#, 1), Ok(()));
        // A hostile document far deeper than serde's own limit is refused by the scan.
        let deep = "[".repeat(100_000);
        assert_eq!(
            check_json(deep.as_bytes(), 64),
            Err(BodyError::JsonTooDeep(64))
        );
    }

    #[test]
    fn form_urlencoded_must_decode() {
        assert_eq!(check_form(b"a=1&b=hello+world&c=%C3%A9"), Ok(()));
        assert_eq!(check_form(b""), Ok(()));
        assert_eq!(check_form(b"a=%zz"), Err(BodyError::FormInvalid));
        assert_eq!(check_form(b"a=%4"), Err(BodyError::FormInvalid));
        assert_eq!(check_form(b"a=%FF"), Err(BodyError::FormInvalid));
        assert_eq!(check_form(b"a=b c"), Err(BodyError::FormInvalid));
        assert_eq!(
            check_form(b"{\"json\":1}"),
            Ok(()),
            "printable ASCII is a valid form"
        );
        assert_eq!(check_form(b"a=\n"), Err(BodyError::FormInvalid));
    }

    #[test]
    fn rfc2046_multipart_needs_its_boundary() {
        let body = b"--xyz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--xyz--\r\n";
        assert_eq!(check_multipart(body, "xyz"), Ok(()));
        assert_eq!(
            check_multipart(body, "abc"),
            Err(BodyError::MultipartInvalid)
        );
        assert_eq!(
            check_multipart(b"--xyz\r\n1", "xyz"),
            Err(BodyError::MultipartInvalid)
        );
        assert_eq!(check_multipart(body, ""), Err(BodyError::MultipartInvalid));
    }
}
