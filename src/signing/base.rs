//! The signature base (RFC 9421 §2.5): the covered components of a request, one per line, then
//! the signature parameters. Signing and verifying both build it here.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::sfv::{self, BareItem, Item, Member, Params};
use crate::request::RequestView;

/// The request as a signer or verifier sees it. `target` is the request target in origin form
/// (path and query) exactly as sent; `headers` are lower-case names with their raw values
/// (pseudo-headers, names starting with ':', are ignored).
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub method: &'a str,
    pub scheme: &'a str,
    pub authority: &'a str,
    pub target: &'a str,
    pub headers: &'a [(String, Vec<u8>)],
}

impl<'a> Message<'a> {
    /// The request as Envoy handed it over (`:path` as received, not normalised).
    pub fn from_view(req: &'a RequestView) -> Self {
        Message {
            method: &req.raw_method,
            scheme: &req.scheme,
            authority: &req.authority,
            target: &req.raw_path,
            headers: &req.headers,
        }
    }

    fn field_values<'n>(&self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
        let headers: &'a [(String, Vec<u8>)] = self.headers;
        headers
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Every value of a field, trimmed and joined with ", " (RFC 9421 §2.1); `None` if absent
    /// or not text.
    pub fn field(&self, name: &str) -> Option<String> {
        let mut out: Option<String> = None;
        for v in self.field_values(name) {
            let v = std::str::from_utf8(v).ok()?.trim_matches([' ', '\t']);
            match &mut out {
                Some(s) => {
                    s.push_str(", ");
                    s.push_str(v);
                }
                None => out = Some(v.to_string()),
            }
        }
        out
    }
}

/// Why a signature base could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseError {
    /// A covered header field is absent from the message.
    FieldMissing(String),
    /// A component identifier or parameter this implementation does not support, or one that
    /// does not apply to a request (`@status`, `;req`, `;tr`).
    Unsupported(String),
    /// A component listed twice, a non-string identifier, an `;sf`/`;key` field that does not
    /// parse, or a value with a character that cannot appear in a signature base.
    Invalid(String),
}

impl std::fmt::Display for BaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BaseError::FieldMissing(n) => write!(f, "covered field `{n}` is absent"),
            BaseError::Unsupported(n) => write!(f, "component `{n}` is not supported"),
            BaseError::Invalid(d) => f.write_str(d),
        }
    }
}

/// Derived components (§2.2) this implementation computes.
pub const DERIVED: &[&str] = &[
    "@method",
    "@target-uri",
    "@authority",
    "@scheme",
    "@request-target",
    "@path",
    "@query",
];

/// Fields whose structured type is a Dictionary (for `;sf` and `;key`).
const DICTIONARY_FIELDS: &[&str] = &[
    "content-digest",
    "repr-digest",
    "want-content-digest",
    "signature-input",
    "signature",
    "accept-signature",
    "cache-status",
    "priority",
];

/// A component identifier as written in a policy or on the command line: `@method`,
/// `content-type`, `example-dict;key="a"`, `example-dict;sf`.
pub fn parse_component(spec: &str) -> Result<Item, BaseError> {
    let (name, params) = match spec.find(';') {
        Some(i) => (spec.get(..i).unwrap_or(spec), spec.get(i..).unwrap_or("")),
        None => (spec, ""),
    };
    let item = sfv::parse_item(&format!("\"{name}\"{params}"))
        .map_err(|e| BaseError::Invalid(format!("component `{spec}`: {e}")))?;
    check_component(&item)?;
    Ok(item)
}

/// The name of a component identifier (its string value).
pub fn component_name(item: &Item) -> Option<&str> {
    match &item.bare {
        BareItem::String(s) => Some(s),
        _ => None,
    }
}

/// A component identifier is a lower-case string with parameters this implementation knows.
fn check_component(item: &Item) -> Result<&str, BaseError> {
    let name = component_name(item)
        .ok_or_else(|| BaseError::Invalid("a component identifier is not a string".into()))?;
    if name.is_empty() {
        return Err(BaseError::Invalid("empty component identifier".into()));
    }
    if let Some(derived) = name.strip_prefix('@') {
        if !DERIVED.contains(&name) || !item.params.is_empty() {
            return Err(BaseError::Unsupported(format!("@{derived}")));
        }
        return Ok(name);
    }
    if !name
        .bytes()
        .all(|c| sfv::is_tchar(c) && !c.is_ascii_uppercase())
    {
        return Err(BaseError::Invalid(format!(
            "`{name}` is not a lower-case field name"
        )));
    }
    let mut kinds = 0;
    for (k, v) in &item.params {
        match (k.as_str(), v) {
            ("sf" | "bs", BareItem::Boolean(true)) | ("key", BareItem::String(_)) => kinds += 1,
            _ => return Err(BaseError::Unsupported(format!("{name};{k}"))),
        }
    }
    if kinds > 1 {
        return Err(BaseError::Invalid(format!(
            "`{name}`: `sf`, `key` and `bs` exclude each other"
        )));
    }
    Ok(name)
}

/// The value of one covered component (§2.1, §2.2).
pub fn component_value(msg: &Message, item: &Item) -> Result<String, BaseError> {
    let name = check_component(item)?;
    let value = match name {
        "@method" => msg.method.to_string(),
        "@target-uri" => format!(
            "{}://{}{}",
            msg.scheme.to_ascii_lowercase(),
            authority(msg),
            msg.target
        ),
        "@authority" => authority(msg),
        "@scheme" => msg.scheme.to_ascii_lowercase(),
        "@request-target" => msg.target.to_string(),
        "@path" => {
            let path = msg.target.split('?').next().unwrap_or("");
            if path.is_empty() {
                "/".to_string()
            } else {
                path.to_string()
            }
        }
        "@query" => match msg.target.split_once('?') {
            Some((_, q)) => format!("?{q}"),
            None => "?".to_string(),
        },
        field => field_value(msg, field, &item.params)?,
    };
    if value.bytes().any(|b| b == b'\r' || b == b'\n') {
        return Err(BaseError::Invalid(format!(
            "component `{name}` contains a line break"
        )));
    }
    Ok(value)
}

/// `@authority`: lower case, without the scheme's default port (§2.2.3).
fn authority(msg: &Message) -> String {
    let a = msg.authority.to_ascii_lowercase();
    let default = match msg.scheme.to_ascii_lowercase().as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return a,
    };
    match a.strip_suffix(default) {
        Some(host) => host.to_string(),
        None => a,
    }
}

fn field_value(msg: &Message, name: &str, params: &Params) -> Result<String, BaseError> {
    let missing = || BaseError::FieldMissing(name.to_string());
    if sfv::param(params, "bs").is_some() {
        // §2.1.3: each value, trimmed, as a byte sequence.
        let values: Vec<String> = msg
            .field_values(name)
            .map(|v| {
                let v = trim(v);
                format!(":{}:", STANDARD.encode(v))
            })
            .collect();
        return if values.is_empty() {
            Err(missing())
        } else {
            Ok(values.join(", "))
        };
    }
    let combined = msg.field(name).ok_or_else(missing)?;
    let invalid = |e: sfv::SfvError| BaseError::Invalid(format!("field `{name}`: {e}"));
    if let Some(BareItem::String(key)) = sfv::param(params, "key") {
        // §2.1.2: one member of a Dictionary field.
        let dict = sfv::parse_dictionary(&combined).map_err(invalid)?;
        let member = dict
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, m)| m)
            .ok_or_else(|| BaseError::FieldMissing(format!("{name};key=\"{key}\"")))?;
        let mut out = String::new();
        sfv::write_member(&mut out, member).map_err(invalid)?;
        return Ok(out);
    }
    if sfv::param(params, "sf").is_some() {
        // §2.1.1: the strict serialisation of the structured field.
        return if DICTIONARY_FIELDS.contains(&name) {
            sfv::parse_dictionary(&combined).and_then(|d| sfv::serialize_dictionary(&d))
        } else {
            sfv::parse_list(&combined)
                .and_then(|l| sfv::serialize_list(&l))
                .or_else(|_| {
                    sfv::parse_dictionary(&combined).and_then(|d| sfv::serialize_dictionary(&d))
                })
        }
        .map_err(invalid);
    }
    Ok(combined)
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|c| !matches!(c, b' ' | b'\t'));
    let end = v.iter().rposition(|c| !matches!(c, b' ' | b'\t'));
    match (start, end) {
        (Some(s), Some(e)) => v.get(s..=e).unwrap_or_default(),
        _ => &[],
    }
}

/// The `@signature-params` value: the covered components and the parameters (§2.3).
pub fn signature_params(components: &[Item], params: &Params) -> Result<String, BaseError> {
    let mut out = String::new();
    sfv::write_inner_list(&mut out, components, params)
        .map_err(|e| BaseError::Invalid(format!("signature parameters: {e}")))?;
    Ok(out)
}

/// The signature base (§2.5) of `components` and `params` over `msg`.
pub fn signature_base(
    msg: &Message,
    components: &[Item],
    params: &Params,
) -> Result<String, BaseError> {
    let mut out = String::new();
    for (i, c) in components.iter().enumerate() {
        // §2.5: the same identifier (with the same parameters) must not be covered twice.
        if components.iter().take(i).any(|earlier| earlier == c) {
            return Err(BaseError::Invalid("a component is covered twice".into()));
        }
        let value = component_value(msg, c)?;
        sfv::write_item(&mut out, c).map_err(|e| BaseError::Invalid(e.to_string()))?;
        out.push_str(": ");
        out.push_str(&value);
        out.push('\n');
    }
    out.push_str("\"@signature-params\": ");
    out.push_str(&signature_params(components, params)?);
    Ok(out)
}

/// Whether `components` covers the identifier `spec` (same name and parameters).
pub fn covers(components: &[Item], wanted: &Item) -> bool {
    components.iter().any(|c| c == wanted)
}

/// An inner-list member as a list of component identifiers (for Signature-Input).
pub fn components_of(member: &Member) -> Option<(&[Item], &Params)> {
    match member {
        Member::InnerList(items, params) => Some((items, params)),
        Member::Item(_) => None,
    }
}
