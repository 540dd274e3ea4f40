//! Field-level paths: a small JSONPath subset. `$` then `.name` (`[A-Za-z0-9_-]+`), `[index]`
//! (decimal) or `[*]` (every element of an array) steps: `$.card.number`, `$.items[0].sku`,
//! `$.patients[*].ssn`. No quoted names, filters, slices or recursive descent.

use serde_json::Value;

use crate::control::ConfigError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
    All,
}

/// A compiled path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    pub text: String,
    segs: Vec<Seg>,
}

fn bad(p: &str, why: &str) -> ConfigError {
    ConfigError::new("", format!("`{p}` is not a supported JSON path: {why}"))
}

impl JsonPath {
    pub fn parse(p: &str) -> Result<Self, ConfigError> {
        let rest = p
            .strip_prefix('$')
            .ok_or_else(|| bad(p, "must start with `$`"))?;
        let b = rest.as_bytes();
        let mut segs = Vec::new();
        let mut i = 0;
        while let Some(&c) = b.get(i) {
            match c {
                b'.' => {
                    let start = i + 1;
                    let mut end = start;
                    while b
                        .get(end)
                        .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'))
                    {
                        end += 1;
                    }
                    let name = rest.get(start..end).unwrap_or("");
                    if name.is_empty() {
                        return Err(bad(p, "empty member name"));
                    }
                    segs.push(Seg::Key(name.to_string()));
                    i = end;
                }
                b'[' if b.get(i + 1) == Some(&b'*') && b.get(i + 2) == Some(&b']') => {
                    segs.push(Seg::All);
                    i += 3;
                }
                b'[' => {
                    let start = i + 1;
                    let mut end = start;
                    while b.get(end).is_some_and(u8::is_ascii_digit) {
                        end += 1;
                    }
                    if b.get(end) != Some(&b']') {
                        return Err(bad(p, "an index is `[` digits `]`"));
                    }
                    let idx: usize = rest
                        .get(start..end)
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| bad(p, "an index is `[` digits `]`"))?;
                    segs.push(Seg::Index(idx));
                    i = end + 1;
                }
                _ => return Err(bad(p, "expected `.name` or `[index]`")),
            }
        }
        if segs.is_empty() {
            return Err(bad(p, "names no member"));
        }
        if segs.len() > 32 {
            return Err(bad(p, "deeper than 32"));
        }
        Ok(JsonPath {
            text: p.to_string(),
            segs,
        })
    }

    /// Call `f` on every value at this path (none when the document has no such member).
    pub fn for_each<E>(
        &self,
        doc: &mut Value,
        f: &mut dyn FnMut(&mut Value) -> Result<(), E>,
    ) -> Result<(), E> {
        visit(doc, &self.segs, f)
    }
}

fn visit<E>(
    v: &mut Value,
    segs: &[Seg],
    f: &mut dyn FnMut(&mut Value) -> Result<(), E>,
) -> Result<(), E> {
    let Some((first, rest)) = segs.split_first() else {
        return f(v);
    };
    match (first, v) {
        (Seg::Key(k), Value::Object(m)) => match m.get_mut(k) {
            Some(v) => visit(v, rest, f),
            None => Ok(()),
        },
        (Seg::Index(i), Value::Array(a)) => match a.get_mut(*i) {
            Some(v) => visit(v, rest, f),
            None => Ok(()),
        },
        (Seg::All, Value::Array(a)) => {
            for v in a.iter_mut() {
                visit(v, rest, f)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
