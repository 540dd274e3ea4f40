//! Where a request carries its bearer token, and whether it carries more than one.
//!
//! RFC 6750 §3.1: a request that "uses more than one method for including an access token"
//! or "repeats the same parameter" is `invalid_request` (400). More than one credential is
//! refused, never resolved by picking one: the upstream may read the other.

use crate::request::RequestView;

/// One place a token may be.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Source {
    Header {
        name: String,
        prefix: Option<String>,
    },
    Cookie(String),
    Query(String),
}

impl Source {
    /// Sources reading the same header, cookie or query parameter are one place.
    fn same_place(&self, other: &Source) -> bool {
        match (self, other) {
            (Source::Header { name: a, .. }, Source::Header { name: b, .. }) => a == b,
            (Source::Cookie(a), Source::Cookie(b)) | (Source::Query(a), Source::Query(b)) => a == b,
            _ => false,
        }
    }
}

/// Why no single token could be taken from the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Problem {
    /// Two credentials: in one place (a repeated or joined field, a repeated parameter) or in
    /// two places, the same token twice included.
    Multiple,
    /// The credential's bytes are not text.
    NotText,
}

/// The one token of a request and the providers that read it where it was.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Found {
    pub token: String,
    pub readers: Vec<usize>,
}

/// The token at the places `sources` (provider index, place) name. Several providers reading
/// the same place share its token; a token anywhere else is a second credential.
pub(super) fn find<'a>(
    req: &RequestView,
    sources: impl IntoIterator<Item = (usize, &'a Source)>,
) -> Result<Option<Found>, Problem> {
    let mut found: Option<(Found, &Source)> = None;
    for (provider, src) in sources {
        let Some(token) = extract(req, src)? else {
            continue;
        };
        match &mut found {
            None => {
                let readers = vec![provider];
                found = Some((Found { token, readers }, src));
            }
            Some((f, place)) if place.same_place(src) && f.token == token => {
                if !f.readers.contains(&provider) {
                    f.readers.push(provider);
                }
            }
            Some(_) => return Err(Problem::Multiple),
        }
    }
    Ok(found.map(|(f, _)| f))
}

/// The token at one place, if any.
fn extract(req: &RequestView, src: &Source) -> Result<Option<String>, Problem> {
    match src {
        Source::Header { name, prefix } => {
            let mut values = req.header_values(name);
            let Some(first) = values.next() else {
                return Ok(None);
            };
            if values.next().is_some() {
                return Err(Problem::Multiple);
            }
            let v = std::str::from_utf8(first).map_err(|_| Problem::NotText)?;
            from_field(v.trim_matches(is_ows), prefix.as_deref())
        }
        // Cookies and query parameters are read as upstream frameworks read them (names
        // trimmed, query names percent-decoded): a second copy is ambiguous, never skipped.
        Source::Cookie(name) => single(&crate::params::cookie_values(req, name)),
        Source::Query(name) => {
            let query = req.query.as_deref().unwrap_or("");
            let values: Vec<&[u8]> = crate::params::query_values(query, name)
                .into_iter()
                .map(str::as_bytes)
                .collect();
            single(&values)
        }
    }
}

/// The token in one field value. Envoy joins repeated field lines with a comma (RFC 9110
/// §5.3), and neither a b64token (RFC 6750 §2.1) nor a compact JWS has one: a comma after our
/// scheme's token, or a credential of our scheme after a comma, is a second credential.
fn from_field(v: &str, prefix: Option<&str>) -> Result<Option<String>, Problem> {
    let Some(scheme) = prefix else {
        return match v {
            _ if v.contains(',') => Err(Problem::Multiple),
            "" => Ok(None),
            t => Ok(Some(t.to_string())),
        };
    };
    match token_of(v, scheme) {
        Some(t) if t.contains(',') => Err(Problem::Multiple),
        Some("") => Ok(None),
        Some(t) => Ok(Some(t.to_string())),
        // Another scheme first (`Basic …, Bearer …`): ours may follow it.
        None if elements(v)
            .skip(1)
            .any(|e| token_of(e.trim_matches(is_ows), scheme).is_some()) =>
        {
            Err(Problem::Multiple)
        }
        None => Ok(None),
    }
}

/// The part after `scheme` and 1*SP, when `v` is a credential of that scheme (RFC 7235 §2.1:
/// the auth-scheme is case-insensitive).
fn token_of<'v>(v: &'v str, scheme: &str) -> Option<&'v str> {
    let (s, rest) = v.split_once(' ')?;
    s.eq_ignore_ascii_case(scheme)
        .then(|| rest.trim_start_matches(' '))
}

/// The comma-separated elements of a field value, commas inside quoted strings (an
/// auth-param's value) left alone.
fn elements(v: &str) -> impl Iterator<Item = &str> {
    let (mut quoted, mut escaped) = (false, false);
    v.split(move |c| {
        match (quoted, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (_, false, '"') => quoted = !quoted,
            (false, _, ',') => return true,
            _ => {}
        }
        false
    })
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// The one credential among `values`: none, or exactly one that is text and not empty.
fn single(values: &[&[u8]]) -> Result<Option<String>, Problem> {
    match values {
        [] => Ok(None),
        [v] => match std::str::from_utf8(v) {
            Ok(t) => Ok((!t.is_empty()).then(|| t.to_string())),
            Err(_) => Err(Problem::NotText),
        },
        _ => Err(Problem::Multiple),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(v: &str) -> Result<Option<String>, Problem> {
        from_field(v, Some("Bearer"))
    }

    #[test]
    fn rfc6750_2_1_one_bearer_credential_is_its_token() {
        assert_eq!(bearer("Bearer abc.def.ghi"), Ok(Some("abc.def.ghi".into())));
        assert_eq!(bearer("bEaReR   abc"), Ok(Some("abc".into())));
        assert_eq!(bearer("Basic dXNlcjpwYXNz"), Ok(None));
        assert_eq!(bearer("Bearer"), Ok(None));
        // A comma inside an auth-param's quoted value is not a second credential.
        assert_eq!(
            bearer(r#"Digest username="a, Bearer x", realm="r""#),
            Ok(None)
        );
    }

    #[test]
    fn rfc6750_3_1_joined_field_lines_are_several_credentials() {
        for joined in [
            "Bearer a.b.c,Bearer d.e.f",
            "Bearer a.b.c, Bearer d.e.f",
            "Bearer a.b.c, Basic dXNlcjpwYXNz",
            "Basic dXNlcjpwYXNz, Bearer a.b.c",
            "Basic dXNlcjpwYXNz,bearer a.b.c",
            "Bearer a.b.c,",
        ] {
            assert_eq!(bearer(joined), Err(Problem::Multiple), "{joined}");
        }
        // A header read without a scheme: a compact JWS has no comma.
        assert_eq!(from_field("a.b.c,d.e.f", None), Err(Problem::Multiple));
        assert_eq!(from_field("a.b.c", None), Ok(Some("a.b.c".into())));
    }

    #[test]
    fn rfc6750_3_1_the_same_token_in_two_places_is_two_credentials() {
        let header = Source::Header {
            name: "authorization".into(),
            prefix: Some("Bearer".into()),
        };
        let query = Source::Query("access_token".into());
        let req = RequestView::new(
            "GET",
            "/x?access_token=a.b.c",
            &[("authorization", "Bearer a.b.c")],
        )
        .unwrap();
        assert_eq!(
            find(&req, [(0, &header), (0, &query)]),
            Err(Problem::Multiple)
        );
        // Two providers reading the same place share its one token.
        let found = find(&req, [(0, &header), (1, &header)]).unwrap().unwrap();
        assert_eq!(found.readers, vec![0, 1]);
        assert_eq!(found.token, "a.b.c");
    }
}
