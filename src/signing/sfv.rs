//! Structured Field Values for HTTP (RFC 8941): the parts HTTP Message Signatures need.
//!
//! Parsing follows §4.2 (strict: any deviation is an error, as the RFC requires), serialising
//! follows §4.1 (canonical), so a value parsed and re-serialised is the form signatures cover.

use std::fmt::Write as _;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// Longest field value the parser accepts (bounded work per request).
pub const MAX_INPUT: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BareItem {
    Integer(i64),
    /// In thousandths: `1.5` is `1500`.
    Decimal(i64),
    String(String),
    Token(String),
    Bytes(Vec<u8>),
    Boolean(bool),
}

pub type Params = Vec<(String, BareItem)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub bare: BareItem,
    pub params: Params,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    Item(Item),
    InnerList(Vec<Item>, Params),
}

pub type List = Vec<Member>;
pub type Dictionary = Vec<(String, Member)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SfvError(pub &'static str);

impl std::fmt::Display for SfvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

type R<T> = Result<T, SfvError>;

/// Look a parameter up by name.
pub fn param<'a>(params: &'a Params, name: &str) -> Option<&'a BareItem> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> R<Self> {
        if input.len() > MAX_INPUT {
            return Err(SfvError("field value too long"));
        }
        Ok(Parser {
            s: input.as_bytes(),
            i: 0,
        })
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn skip_sp(&mut self) {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn done(&mut self) -> R<()> {
        self.skip_sp();
        if self.peek().is_some() {
            return Err(SfvError("trailing characters"));
        }
        Ok(())
    }

    /// After a member: end of input, or a comma and another member.
    fn next_member(&mut self) -> R<bool> {
        self.skip_ows();
        match self.bump() {
            None => Ok(false),
            Some(b',') => {
                self.skip_ows();
                if self.peek().is_none() {
                    return Err(SfvError("trailing comma"));
                }
                Ok(true)
            }
            Some(_) => Err(SfvError("expected a comma between members")),
        }
    }

    fn list(&mut self) -> R<List> {
        self.skip_sp();
        let mut out = Vec::new();
        if self.peek().is_none() {
            return Ok(out);
        }
        loop {
            out.push(self.member()?);
            if !self.next_member()? {
                return Ok(out);
            }
        }
    }

    fn dictionary(&mut self) -> R<Dictionary> {
        self.skip_sp();
        let mut out: Dictionary = Vec::new();
        if self.peek().is_none() {
            return Ok(out);
        }
        loop {
            let key = self.key()?;
            let member = if self.peek() == Some(b'=') {
                self.i += 1;
                self.member()?
            } else {
                Member::Item(Item {
                    bare: BareItem::Boolean(true),
                    params: self.params()?,
                })
            };
            // §4.2.2: a repeated key overwrites the earlier value in place.
            match out.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = member,
                None => out.push((key, member)),
            }
            if !self.next_member()? {
                return Ok(out);
            }
        }
    }

    fn member(&mut self) -> R<Member> {
        if self.peek() == Some(b'(') {
            self.inner_list()
        } else {
            Ok(Member::Item(self.item()?))
        }
    }

    fn inner_list(&mut self) -> R<Member> {
        if self.bump() != Some(b'(') {
            return Err(SfvError("expected '('"));
        }
        let mut items = Vec::new();
        loop {
            self.skip_sp();
            if self.peek() == Some(b')') {
                self.i += 1;
                return Ok(Member::InnerList(items, self.params()?));
            }
            items.push(self.item()?);
            match self.peek() {
                Some(b' ' | b')') => {}
                _ => return Err(SfvError("expected a space or ')' in an inner list")),
            }
        }
    }

    fn item(&mut self) -> R<Item> {
        let bare = self.bare_item()?;
        Ok(Item {
            bare,
            params: self.params()?,
        })
    }

    fn params(&mut self) -> R<Params> {
        let mut out: Params = Vec::new();
        while self.peek() == Some(b';') {
            self.i += 1;
            self.skip_sp();
            let key = self.key()?;
            let value = if self.peek() == Some(b'=') {
                self.i += 1;
                self.bare_item()?
            } else {
                BareItem::Boolean(true)
            };
            match out.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => out.push((key, value)),
            }
        }
        Ok(out)
    }

    fn key(&mut self) -> R<String> {
        let start = self.i;
        match self.peek() {
            Some(c) if c.is_ascii_lowercase() || c == b'*' => self.i += 1,
            _ => return Err(SfvError("expected a key")),
        }
        while let Some(c) = self.peek() {
            if c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || matches!(c, b'_' | b'-' | b'.' | b'*')
            {
                self.i += 1;
            } else {
                break;
            }
        }
        Ok(self.slice(start))
    }

    fn slice(&self, start: usize) -> String {
        self.s
            .get(start..self.i)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    }

    fn bare_item(&mut self) -> R<BareItem> {
        match self.peek() {
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'"') => self.string(),
            Some(b':') => self.bytes(),
            Some(b'?') => self.boolean(),
            Some(c) if c.is_ascii_alphabetic() || c == b'*' => self.token(),
            _ => Err(SfvError("expected an item")),
        }
    }

    fn number(&mut self) -> R<BareItem> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        let (mut int, mut int_digits) = (0i64, 0usize);
        while let Some(c @ b'0'..=b'9') = self.peek() {
            self.i += 1;
            int_digits += 1;
            if int_digits > 15 {
                return Err(SfvError("integer too long"));
            }
            int = int * 10 + i64::from(c - b'0');
        }
        if int_digits == 0 {
            return Err(SfvError("expected a digit"));
        }
        let sign = if negative { -1 } else { 1 };
        if self.peek() != Some(b'.') {
            return Ok(BareItem::Integer(sign * int));
        }
        if int_digits > 12 {
            return Err(SfvError("decimal too long"));
        }
        self.i += 1;
        let (mut frac, mut frac_digits) = (0i64, 0u32);
        while let Some(c @ b'0'..=b'9') = self.peek() {
            self.i += 1;
            frac_digits += 1;
            if frac_digits > 3 {
                return Err(SfvError("decimal has more than 3 fraction digits"));
            }
            frac = frac * 10 + i64::from(c - b'0');
        }
        if frac_digits == 0 {
            return Err(SfvError("decimal ends in '.'"));
        }
        let frac = frac * 10i64.pow(3 - frac_digits);
        Ok(BareItem::Decimal(sign * (int * 1000 + frac)))
    }

    fn string(&mut self) -> R<BareItem> {
        self.i += 1;
        let mut out = String::new();
        loop {
            // A run of plain characters at once; escapes and the end one by one below.
            let start = self.i;
            while matches!(self.peek(), Some(c) if (0x20..=0x7e).contains(&c) && c != b'"' && c != b'\\')
            {
                self.i += 1;
            }
            let run = self.s.get(start..self.i).unwrap_or_default();
            out.push_str(&String::from_utf8_lossy(run));
            match self.bump() {
                None => return Err(SfvError("unterminated string")),
                Some(b'"') => return Ok(BareItem::String(out)),
                Some(b'\\') => match self.bump() {
                    Some(c @ (b'"' | b'\\')) => out.push(char::from(c)),
                    _ => return Err(SfvError("bad escape in string")),
                },
                // The run above took every other printable character.
                Some(_) => return Err(SfvError("invalid character in string")),
            }
        }
    }

    fn token(&mut self) -> R<BareItem> {
        let start = self.i;
        self.i += 1;
        while let Some(c) = self.peek() {
            if is_tchar(c) || c == b':' || c == b'/' {
                self.i += 1;
            } else {
                break;
            }
        }
        Ok(BareItem::Token(self.slice(start)))
    }

    fn bytes(&mut self) -> R<BareItem> {
        self.i += 1;
        let start = self.i;
        loop {
            match self.bump() {
                Some(b':') => break,
                Some(c) if c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=') => {}
                _ => return Err(SfvError("bad byte sequence")),
            }
        }
        let b64 = self.s.get(start..self.i - 1).unwrap_or_default();
        STANDARD
            .decode(b64)
            .map(BareItem::Bytes)
            .map_err(|_| SfvError("bad base64 in byte sequence"))
    }

    fn boolean(&mut self) -> R<BareItem> {
        self.i += 1;
        match self.bump() {
            Some(b'0') => Ok(BareItem::Boolean(false)),
            Some(b'1') => Ok(BareItem::Boolean(true)),
            _ => Err(SfvError("bad boolean")),
        }
    }
}

/// RFC 9110 §5.6.2 `tchar`.
pub fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

pub fn parse_list(input: &str) -> R<List> {
    let mut p = Parser::new(input)?;
    let l = p.list()?;
    p.done()?;
    Ok(l)
}

pub fn parse_dictionary(input: &str) -> R<Dictionary> {
    let mut p = Parser::new(input)?;
    let d = p.dictionary()?;
    p.done()?;
    Ok(d)
}

pub fn parse_item(input: &str) -> R<Item> {
    let mut p = Parser::new(input)?;
    p.skip_sp();
    let i = p.item()?;
    p.done()?;
    Ok(i)
}

/// Serialise a bare item (§4.1.3). Fails only on values no parser could have produced
/// (a string with a control character, a malformed token or an out-of-range number).
pub fn write_bare(out: &mut String, b: &BareItem) -> R<()> {
    match b {
        BareItem::Integer(n) => {
            if n.unsigned_abs() > 999_999_999_999_999 {
                return Err(SfvError("integer out of range"));
            }
            let _ = write!(out, "{n}");
        }
        BareItem::Decimal(n) => {
            let abs = n.unsigned_abs();
            if abs / 1000 > 999_999_999_999 {
                return Err(SfvError("decimal out of range"));
            }
            let sign = if *n < 0 { "-" } else { "" };
            let frac = format!("{:03}", abs % 1000);
            let frac = frac.trim_end_matches('0');
            let frac = if frac.is_empty() { "0" } else { frac };
            let _ = write!(out, "{sign}{}.{frac}", abs / 1000);
        }
        // Nothing to escape (the usual case): one copy instead of a push per character.
        BareItem::String(s)
            if s.bytes()
                .all(|c| (b' '..=b'~').contains(&c) && c != b'"' && c != b'\\') =>
        {
            out.push('"');
            out.push_str(s);
            out.push('"');
        }
        BareItem::String(s) => {
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' | '\\' => {
                        out.push('\\');
                        out.push(c);
                    }
                    ' '..='~' => out.push(c),
                    _ => return Err(SfvError("string with a non-printable character")),
                }
            }
            out.push('"');
        }
        BareItem::Token(t) => {
            let mut bytes = t.bytes();
            let first_ok = bytes
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == b'*');
            if !first_ok || !bytes.all(|c| is_tchar(c) || c == b':' || c == b'/') {
                return Err(SfvError("invalid token"));
            }
            out.push_str(t);
        }
        BareItem::Bytes(b) => {
            out.push(':');
            out.push_str(&STANDARD.encode(b));
            out.push(':');
        }
        BareItem::Boolean(v) => out.push_str(if *v { "?1" } else { "?0" }),
    }
    Ok(())
}

/// A dictionary key or parameter name (RFC 8941 §3.1.2: lower case, digits, `_-.*`).
pub fn valid_key(k: &str) -> bool {
    let mut b = k.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == b'*')
        && b.all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-' | b'.' | b'*')
        })
}

pub fn write_params(out: &mut String, params: &Params) -> R<()> {
    for (k, v) in params {
        if !valid_key(k) {
            return Err(SfvError("invalid parameter key"));
        }
        out.push(';');
        out.push_str(k);
        if *v != BareItem::Boolean(true) {
            out.push('=');
            write_bare(out, v)?;
        }
    }
    Ok(())
}

pub fn write_item(out: &mut String, item: &Item) -> R<()> {
    write_bare(out, &item.bare)?;
    write_params(out, &item.params)
}

pub fn write_inner_list(out: &mut String, items: &[Item], params: &Params) -> R<()> {
    out.push('(');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_item(out, item)?;
    }
    out.push(')');
    write_params(out, params)
}

pub fn write_member(out: &mut String, m: &Member) -> R<()> {
    match m {
        Member::Item(i) => write_item(out, i),
        Member::InnerList(items, params) => write_inner_list(out, items, params),
    }
}

pub fn serialize_list(list: &List) -> R<String> {
    let mut out = String::new();
    for (i, m) in list.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_member(&mut out, m)?;
    }
    Ok(out)
}

pub fn serialize_dictionary(dict: &Dictionary) -> R<String> {
    let mut out = String::new();
    for (i, (k, m)) in dict.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        if !valid_key(k) {
            return Err(SfvError("invalid dictionary key"));
        }
        out.push_str(k);
        match m {
            Member::Item(Item {
                bare: BareItem::Boolean(true),
                params,
            }) => write_params(&mut out, params)?,
            m => {
                out.push('=');
                write_member(&mut out, m)?;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_with_and_without_escapes_round_trip() {
        let text = r#"a="x\"y\\z", b="plain text", c="""#;
        let dict = parse_dictionary(text).unwrap();
        let strings: Vec<&BareItem> = dict
            .iter()
            .filter_map(|(_, m)| match m {
                Member::Item(i) => Some(&i.bare),
                Member::InnerList(..) => None,
            })
            .collect();
        assert_eq!(
            strings,
            [
                &BareItem::String(r#"x"y\z"#.into()),
                &BareItem::String("plain text".into()),
                &BareItem::String(String::new()),
            ]
        );
        assert_eq!(serialize_dictionary(&dict).unwrap(), text);
        for bad in [r#"a="x\q""#, r#"a="open"#, "a=\"tab\there\""] {
            assert!(parse_dictionary(bad).is_err(), "{bad}");
        }
        let mut out = String::new();
        assert!(write_bare(&mut out, &BareItem::String("caf\u{e9}".into())).is_err());
    }

    #[test]
    fn rfc8941_dictionary_round_trips_canonically() {
        let d = parse_dictionary("a=?0,   b, c; foo=bar, d=(1 2);x=1.50").unwrap();
        assert_eq!(
            serialize_dictionary(&d).unwrap(),
            "a=?0, b, c;foo=bar, d=(1 2);x=1.5"
        );
    }

    #[test]
    fn rfc8941_items() {
        let i = parse_item(r#""he said \"hi\"";a=:aGVsbG8=:;b=-12.345"#).unwrap();
        assert_eq!(i.bare, BareItem::String(r#"he said "hi""#.into()));
        assert_eq!(
            param(&i.params, "a"),
            Some(&BareItem::Bytes(b"hello".to_vec()))
        );
        assert_eq!(param(&i.params, "b"), Some(&BareItem::Decimal(-12345)));
        let mut s = String::new();
        write_item(&mut s, &i).unwrap();
        assert_eq!(s, r#""he said \"hi\"";a=:aGVsbG8=:;b=-12.345"#);
    }

    #[test]
    fn rfc8941_strict_parsing_rejects_malformed_values() {
        for bad in [
            "a=(1 2",
            "a=1,",
            "a=\"x",
            "A=1",
            "a=1 b=2",
            "a=:not base64:",
            "a=1234567890123456",
            "a=1.2345",
            "a=?2",
            "a=\"\u{7f}\"",
            "a=\"\\n\"",
            "a=(1)x",
        ] {
            assert!(parse_dictionary(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn repeated_dictionary_key_overwrites_in_place() {
        let d = parse_dictionary("a=1, b=2, a=3").unwrap();
        assert_eq!(serialize_dictionary(&d).unwrap(), "a=3, b=2");
    }

    #[test]
    fn list_of_inner_lists_and_tokens() {
        let l = parse_list("sugar, tea;q=0.5, (rum \"x\"), *foo/bar:baz").unwrap();
        assert_eq!(
            serialize_list(&l).unwrap(),
            "sugar, tea;q=0.5, (rum \"x\"), *foo/bar:baz"
        );
        assert_eq!(parse_list("").unwrap(), Vec::new());
    }
}
