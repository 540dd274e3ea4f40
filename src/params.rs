//! Where clients put credentials besides headers: cookies (RFC 6265 §5.4) and query parameters,
//! read as upstream frameworks read them, so that a control never checks one value while the
//! upstream uses another. Shared by jwt-auth, api-key and csrf.

/// Every value of cookie `name` in the request's `Cookie` field(s), in order. Names are
/// case-sensitive and compared trimmed; a value in double quotes loses them (RFC 6265 §4.1.1).
pub fn cookie_values<'a>(req: &'a crate::RequestView, name: &str) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    for field in req.header_values("cookie") {
        out.extend(cookie_values_in(field, name));
    }
    out
}

/// The values of cookie `name` in one `Cookie` field value.
pub fn cookie_values_in<'a>(field: &'a [u8], name: &str) -> Vec<&'a [u8]> {
    field
        .split(|b| *b == b';')
        .filter_map(|pair| {
            let pair = trim(pair);
            let eq = pair.iter().position(|b| *b == b'=')?;
            let (k, v) = (pair.get(..eq)?, pair.get(eq + 1..)?);
            (trim(k) == name.as_bytes()).then(|| unquote(trim(v)))
        })
        .collect()
}

/// `v` without leading and trailing spaces and tabs.
pub fn trim(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

fn unquote(v: &[u8]) -> &[u8] {
    match v {
        [b'"', inner @ .., b'"'] => inner,
        _ => v,
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// `%XX` decoding (a malformed escape stays as it is; `+` is not a space in a credential).
pub fn percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        if b == b'%' {
            if let (Some(h), Some(l)) = (
                s.get(i + 1).copied().and_then(hex),
                s.get(i + 2).copied().and_then(hex),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

/// Whether a query pair's name is `name`, as frameworks decode it (`acc%65ss_token` is
/// `access_token` to them, so it must be to us).
fn names(pair: &str, name: &str) -> bool {
    let k = pair.split_once('=').map_or(pair, |(k, _)| k);
    k == name || (k.contains('%') && percent_decode(k.as_bytes()) == name.as_bytes())
}

/// The values (still percent-encoded) of query parameter `name`.
pub fn query_values<'a>(query: &'a str, name: &str) -> Vec<&'a str> {
    query
        .split('&')
        .filter(|pair| names(pair, name))
        .map(|pair| pair.split_once('=').map_or("", |(_, v)| v))
        .collect()
}

/// The raw `:path` without parameter `name` (the rest of the query kept as it was).
pub fn path_without_param(raw_path: &str, name: &str) -> String {
    let Some((path, query)) = raw_path.split_once('?') else {
        return raw_path.to_string();
    };
    let kept: Vec<&str> = query.split('&').filter(|pair| !names(pair, name)).collect();
    if kept.iter().all(|p| p.is_empty()) {
        path.to_string()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_names_are_compared_decoded() {
        assert_eq!(query_values("a=1&k=2&k", "k"), vec!["2", ""]);
        assert_eq!(
            query_values("access_token=a&acc%65ss_token=b", "access_token"),
            vec!["a", "b"]
        );
        assert_eq!(path_without_param("/a?k=1", "k"), "/a");
        assert_eq!(path_without_param("/a?k", "k"), "/a");
        assert_eq!(path_without_param("/a?kk=1&k=2", "k"), "/a?kk=1");
        assert_eq!(path_without_param("/a?%6B=1&x=2", "k"), "/a?x=2");
        assert_eq!(path_without_param("/a", "k"), "/a");
        assert_eq!(percent_decode(b"a%2Fb%zz%4"), b"a/b%zz%4".to_vec());
    }

    #[test]
    fn cookies_rfc6265_5_4_trimmed_and_unquoted_in_every_field() {
        let field = b"a=1; session =x;session=\"y\" ;b=2";
        assert_eq!(
            cookie_values_in(field, "session"),
            vec![b"x".as_slice(), b"y".as_slice()]
        );
        assert!(cookie_values_in(b"sessionx=1", "session").is_empty());
        assert_eq!(
            cookie_values_in(b"a=1;b=2; c = 3 ;a=4", "a"),
            vec![&b"1"[..], &b"4"[..]]
        );
        assert!(cookie_values_in(b"novalue; =x", "novalue").is_empty());
        let r =
            crate::RequestView::new("GET", "/", &[("cookie", "x=1"), ("cookie", "k=t")]).unwrap();
        assert_eq!(cookie_values(&r, "k"), vec![&b"t"[..]]);
    }
}
