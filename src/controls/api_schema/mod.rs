//! api-schema: an OpenAPI 3.0/3.1 contract as the policy (positive security model).
//!
//! Compiled once at configure time into per-operation validators. Only declared operations
//! pass (404 `api_schema.unknown_path`, 405 `api_schema.method_not_allowed` with `Allow`);
//! parameters, request media types and JSON request bodies are checked against the contract.
//! Responses (`responses.rs`): the status, media type and JSON body the operation declares,
//! with no `writeOnly` property; `responses: enforce` replaces a violating response by a 502.
//! `mode: report` blocks nothing and reports every violation.

mod responses;
pub mod schema;

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::control::{ConfigError, Control, Env};
use crate::controls::content_type::{MediaRange, MediaType};
use crate::params::{cookie_values, percent_decode, query_values};
use crate::reject::Rejection;
use crate::request::{RequestView, ResponseView};
use crate::telemetry::{operation_label, UNDECLARED};
use crate::verdict::Verdict;

pub use responses::ResponseMode;
use responses::{Responses, RESP_NOTE};
use schema::{Compiler, Dialect, Direction, Schemas};

/// Largest request body a policy may ask to buffer.
pub const MAX_BODY_LIMIT: usize = 64 * 1024 * 1024;
/// Which operation a request matched, for its body phase.
const OP_NOTE: &str = "api_schema.op";

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The OpenAPI 3.0.x or 3.1.x document, as JSON (`portcullis openapi import` converts YAML).
    pub openapi: Value,
    /// `enforce`: violations are refused; `report`: logged and counted, nothing is blocked.
    #[serde(default)]
    pub mode: Mode,
    /// Refuse query parameters the operation does not declare (400 `api_schema.undeclared_query`).
    #[serde(default)]
    pub reject_undeclared_query: bool,
    /// Largest JSON body buffered for validation: a request beyond it is refused (413
    /// `body.too_large`); a response beyond it cannot be checked (502 in `enforce`).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Responses: `off`, `report` (logged and counted, the default) or `enforce` (a violating
    /// response is replaced by a 502 problem). `mode: report` reports them too.
    #[serde(default)]
    pub responses: ResponseMode,
}

fn default_max_body() -> usize {
    1024 * 1024
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    Report,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Location {
    Path,
    Query,
    Header,
    Cookie,
}

#[derive(Debug)]
struct Param {
    name: String,
    location: Location,
    required: bool,
    schema: Option<usize>,
}

#[derive(Debug)]
struct Media {
    range: MediaRange,
    schema: Option<usize>,
}

#[derive(Debug)]
struct Body {
    required: bool,
    media: Vec<Media>,
}

#[derive(Debug)]
struct Operation {
    /// The `operation` label of its violations: the `operationId`, else `METHOD /template`.
    label: Arc<str>,
    method: String,
    params: Vec<Param>,
    body: Option<Body>,
    /// `None`: responses are off, or the operation declares none (nothing to check).
    responses: Option<Responses>,
}

#[derive(Debug)]
enum Segment {
    Literal(String),
    Param(String),
}

#[derive(Debug)]
struct PathItem {
    segments: Vec<Segment>,
    templated: usize,
    ops: Vec<Operation>,
    allow: String,
}

#[derive(Debug)]
pub struct ApiSchema {
    report: bool,
    /// Response checks on (`responses` not `off`), and whether they only report.
    check_responses: bool,
    responses_report: bool,
    reject_undeclared_query: bool,
    max_body: usize,
    /// The `operation` label of requests no declared operation matches.
    undeclared: Arc<str>,
    bases: Vec<String>,
    /// Concrete paths before templated ones.
    paths: Vec<PathItem>,
    schemas: Schemas,
}

fn segments(path: &str) -> Vec<&str> {
    path.split('/').skip(1).collect()
}

fn base_path(url: &str) -> Result<String, String> {
    if url.contains('{') {
        return Err("server variables in `url` are not supported".into());
    }
    let rest = match url.split_once("://") {
        Some((_, r)) => r.find('/').and_then(|i| r.get(i..)).unwrap_or(""),
        None => url,
    };
    let rest = rest.trim_end_matches('/');
    if !rest.is_empty() && !rest.starts_with('/') {
        return Err(format!("`{url}` has no absolute base path"));
    }
    Ok(rest.to_string())
}

/// The base paths requests are matched under, from `servers[].url` in order (`/v1`; `""` for
/// a server at the root, and when there are no servers). `openapi import` writes its jwt-auth
/// routes under the same ones.
pub fn base_paths(doc: &Value) -> Result<Vec<String>, ConfigError> {
    let mut bases = Vec::new();
    for (i, s) in doc
        .get("servers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let url = s.get("url").and_then(Value::as_str).unwrap_or("/");
        bases.push(
            base_path(url).map_err(|e| ConfigError::new(format!("openapi.servers[{i}].url"), e))?,
        );
    }
    if bases.is_empty() {
        bases.push(String::new());
    }
    Ok(bases)
}

struct Build<'a> {
    doc: &'a Value,
    compiler: Compiler<'a>,
}

impl<'a> Build<'a> {
    /// An object that may be a `$ref` (parameters, request bodies).
    fn deref(&self, v: &'a Value, path: &str) -> Result<&'a Value, ConfigError> {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => schema::resolve(self.doc, r)
                .map_err(|e| ConfigError::new(format!("{path}.$ref"), e)),
            None => Ok(v),
        }
    }

    fn param(&mut self, v: &'a Value, path: &str) -> Result<Param, ConfigError> {
        let v = self.deref(v, path)?;
        let name = v
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| ConfigError::new(format!("{path}.name"), "expected a string"))?;
        let location = match v.get("in").and_then(Value::as_str) {
            Some("path") => Location::Path,
            Some("query") => Location::Query,
            Some("header") => Location::Header,
            Some("cookie") => Location::Cookie,
            _ => {
                return Err(ConfigError::new(
                    format!("{path}.in"),
                    "expected path, query, header or cookie",
                ))
            }
        };
        let default_style = match location {
            Location::Query | Location::Cookie => "form",
            Location::Path | Location::Header => "simple",
        };
        if let Some(s) = v.get("style").and_then(Value::as_str) {
            if s != default_style {
                return Err(ConfigError::new(
                    format!("{path}.style"),
                    format!("style `{s}` is not supported (only the default `{default_style}`)"),
                ));
            }
        }
        let default_explode = default_style == "form";
        if let Some(e) = v.get("explode").and_then(Value::as_bool) {
            if e != default_explode {
                return Err(ConfigError::new(
                    format!("{path}.explode"),
                    "only the default explode is supported",
                ));
            }
        }
        if v.get("content").is_some() {
            return Err(ConfigError::new(
                format!("{path}.content"),
                "parameters with `content` are not supported (use `schema`)",
            ));
        }
        let schema = match v.get("schema") {
            Some(s) => Some(self.compiler.compile(s, &format!("{path}.schema"))?),
            None => None,
        };
        Ok(Param {
            name: if location == Location::Header {
                name.to_ascii_lowercase()
            } else {
                name.to_string()
            },
            location,
            required: location == Location::Path
                || v.get("required").and_then(Value::as_bool).unwrap_or(false),
            schema,
        })
    }

    fn body(&mut self, v: &'a Value, path: &str) -> Result<Body, ConfigError> {
        let v = self.deref(v, path)?;
        let content = v
            .get("content")
            .ok_or_else(|| ConfigError::new(format!("{path}.content"), "expected an object"))?;
        Ok(Body {
            required: v.get("required").and_then(Value::as_bool).unwrap_or(false),
            media: self.content(content, &format!("{path}.content"), Direction::Request)?,
        })
    }

    /// A `content` map: each media range, a JSON one with its schema compiled. A schema on
    /// another media type is refused in a request (its body would pass unvalidated) and only
    /// type-checked in a response (docs/api-schema.md).
    fn content(
        &mut self,
        content: &'a Value,
        path: &str,
        direction: Direction,
    ) -> Result<Vec<Media>, ConfigError> {
        let content = content
            .as_object()
            .ok_or_else(|| ConfigError::new(path, "expected an object"))?;
        let mut media = Vec::new();
        for (mt, m) in content {
            let at = format!("{path}.{mt}");
            let range = MediaRange::parse(mt).map_err(|e| ConfigError::new(at.clone(), e))?;
            let schema = match m.get("schema") {
                Some(s) if is_json(mt) => Some(self.compiler.compile(s, &format!("{at}.schema"))?),
                Some(_) if direction == Direction::Request => {
                    return Err(ConfigError::new(
                        format!("{at}.schema"),
                        "only JSON bodies are validated against a schema",
                    ))
                }
                _ => None,
            };
            media.push(Media { range, schema });
        }
        Ok(media)
    }
}

/// A media type whose bodies are validated as JSON (`application/json`, `…+json`).
pub fn is_json(media_type: &str) -> bool {
    media_type.contains("json")
}

fn compile(policy: &Policy) -> Result<ApiSchema, ConfigError> {
    let doc = &policy.openapi;
    let version = doc
        .get("openapi")
        .and_then(Value::as_str)
        .ok_or_else(|| ConfigError::new("openapi.openapi", "expected the OpenAPI version"))?;
    let dialect = if version.starts_with("3.0.") {
        Dialect::Oas30
    } else if version.starts_with("3.1.") {
        Dialect::Oas31
    } else {
        return Err(ConfigError::new(
            "openapi.openapi",
            format!("OpenAPI `{version}` is not supported (3.0.x or 3.1.x)"),
        ));
    };
    if policy.max_body_bytes == 0 || policy.max_body_bytes > MAX_BODY_LIMIT {
        return Err(ConfigError::new(
            "max_body_bytes",
            format!("must be between 1 and {MAX_BODY_LIMIT}"),
        ));
    }
    let bases = base_paths(doc)?;
    let empty = Map::new();
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut b = Build {
        doc,
        compiler: Compiler::new(doc, dialect),
    };
    let mut items = Vec::new();
    for (template, item) in paths {
        let at = format!("openapi.paths.{template}");
        if !template.starts_with('/') {
            return Err(ConfigError::new(at, "a path must start with `/`"));
        }
        let item = b.deref(item, &at)?;
        let mut segs = Vec::new();
        for s in segments(template) {
            if let Some(name) = s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                if name.contains(['{', '}']) || name.is_empty() {
                    return Err(ConfigError::new(
                        at,
                        "a template must be a whole segment (`/{a}.{b}` is not supported)",
                    ));
                }
                segs.push(Segment::Param(name.to_string()));
            } else if s.contains(['{', '}']) {
                return Err(ConfigError::new(
                    at,
                    "a template must be a whole segment (`/{a}.{b}` is not supported)",
                ));
            } else {
                let decoded = percent_decode(s.as_bytes());
                segs.push(Segment::Literal(
                    String::from_utf8_lossy(&decoded).into_owned(),
                ));
            }
        }
        let mut shared = Vec::new();
        if let Some(ps) = item.get("parameters").and_then(Value::as_array) {
            for (i, p) in ps.iter().enumerate() {
                shared.push(b.param(p, &format!("{at}.parameters[{i}]"))?);
            }
        }
        let mut ops = Vec::new();
        for m in METHODS {
            let Some(op) = item.get(*m) else { continue };
            let op_at = format!("{at}.{m}");
            let mut params = Vec::new();
            if let Some(ps) = op.get("parameters").and_then(Value::as_array) {
                for (i, p) in ps.iter().enumerate() {
                    params.push(b.param(p, &format!("{op_at}.parameters[{i}]"))?);
                }
            }
            // Path-level parameters apply unless the operation overrides them (name + in).
            for p in &shared {
                if !params
                    .iter()
                    .any(|q| q.name == p.name && q.location == p.location)
                {
                    params.push(Param {
                        name: p.name.clone(),
                        location: p.location,
                        required: p.required,
                        schema: p.schema,
                    });
                }
            }
            for p in params.iter().filter(|p| p.location == Location::Path) {
                if !segs
                    .iter()
                    .any(|s| matches!(s, Segment::Param(n) if *n == p.name))
                {
                    return Err(ConfigError::new(
                        format!("{op_at}.parameters"),
                        format!("path parameter `{}` is not in the template", p.name),
                    ));
                }
            }
            let body = match op.get("requestBody") {
                Some(rb) => Some(b.body(rb, &format!("{op_at}.requestBody"))?),
                None => None,
            };
            let responses = match op.get("responses") {
                Some(r) if policy.responses != ResponseMode::Off => {
                    Some(b.responses(r, &format!("{op_at}.responses"))?)
                }
                _ => None,
            };
            let method = m.to_ascii_uppercase();
            ops.push(Operation {
                label: label(op, &method, template),
                method,
                params,
                body,
                responses,
            });
        }
        let allow = ops
            .iter()
            .map(|o| o.method.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let templated = segs
            .iter()
            .filter(|s| matches!(s, Segment::Param(_)))
            .count();
        items.push(PathItem {
            segments: segs,
            templated,
            ops,
            allow,
        });
    }
    // OpenAPI 3.1 §4.8.8.2: concrete paths are matched before templated ones.
    items.sort_by_key(|p| p.templated);
    Ok(ApiSchema {
        report: policy.mode == Mode::Report,
        check_responses: policy.responses != ResponseMode::Off,
        responses_report: policy.mode == Mode::Report || policy.responses == ResponseMode::Report,
        reject_undeclared_query: policy.reject_undeclared_query,
        max_body: policy.max_body_bytes,
        undeclared: Arc::from(UNDECLARED),
        bases,
        paths: items,
        schemas: b.compiler.finish(),
    })
}

/// An operation's metric label: its `operationId`, else `METHOD /template` as the contract writes
/// the path (`POST /orders/{id}`), made safe by [`operation_label`]. An `operationId` that would
/// read as `undeclared` takes the `METHOD /template` form, so the two never mix.
fn label(op: &Value, method: &str, template: &str) -> Arc<str> {
    op.get("operationId")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map(operation_label)
        .filter(|l| &**l != UNDECLARED)
        .unwrap_or_else(|| operation_label(&format!("{method} {template}")))
}

/// A rejection of this operation's, counted under its label.
fn for_operation(v: Verdict, label: Option<&Arc<str>>) -> Verdict {
    let Some(label) = label else { return v };
    match v {
        Verdict::Deny(r) => Verdict::Deny(r.for_operation(label)),
        Verdict::Report(r) => Verdict::Report(r.for_operation(label)),
        v => v,
    }
}

fn bad(code: &'static str, detail: impl Into<String>) -> Rejection {
    Rejection::new(400, code, detail)
}

/// A parameter's string value read as its schema's type (a string that does not read as the
/// declared type stays a string, and the schema's `type` then refuses it).
fn typed(schemas: &Schemas, schema: usize, raw: &str) -> Value {
    match schemas.param_type(schema) {
        Some("integer") | Some("number") => match serde_json::from_str::<Value>(raw) {
            Ok(v @ Value::Number(_)) => v,
            _ => Value::String(raw.to_string()),
        },
        Some("boolean") => match raw {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(raw.to_string()),
        },
        _ => Value::String(raw.to_string()),
    }
}

fn decode(raw: &str, plus_is_space: bool) -> String {
    let raw = if plus_is_space {
        raw.replace('+', " ")
    } else {
        raw.to_string()
    };
    String::from_utf8_lossy(&percent_decode(raw.as_bytes())).into_owned()
}

impl ApiSchema {
    fn verdict(&self, r: Rejection) -> Verdict {
        if self.report {
            Verdict::Report(r)
        } else {
            Verdict::Deny(r)
        }
    }

    /// The path item and its path parameters (decoded).
    fn route<'s>(&'s self, path: &str) -> Option<(usize, Vec<(&'s str, String)>)> {
        for base in &self.bases {
            let Some(rest) = path.strip_prefix(base.as_str()) else {
                continue;
            };
            if !(rest.starts_with('/') || (rest.is_empty() && base.is_empty())) {
                continue;
            }
            let rest = if rest.is_empty() { "/" } else { rest };
            let segs = segments(rest);
            'items: for (i, item) in self.paths.iter().enumerate() {
                if item.segments.len() != segs.len() {
                    continue;
                }
                let mut vars = Vec::new();
                for (s, got) in item.segments.iter().zip(&segs) {
                    match s {
                        Segment::Literal(l) if l == got => {}
                        Segment::Literal(_) => continue 'items,
                        Segment::Param(_) if got.is_empty() => continue 'items,
                        Segment::Param(n) => vars.push((n.as_str(), decode(got, false))),
                    }
                }
                return Some((i, vars));
            }
        }
        None
    }

    fn check_value(&self, p: &Param, value: Value) -> Result<(), Rejection> {
        let Some(s) = p.schema else { return Ok(()) };
        self.schemas
            .validate(s, &value, Direction::Request)
            .map_err(|f| {
                bad(
                    "api_schema.invalid_parameter",
                    format!(
                        "{} parameter `{}`{} fails `{}`",
                        loc_name(p.location),
                        p.name,
                        f.pointer,
                        f.keyword
                    ),
                )
            })
    }

    fn check_param(
        &self,
        p: &Param,
        req: &RequestView,
        vars: &[(&str, String)],
    ) -> Result<(), Rejection> {
        let raws: Vec<String> = match p.location {
            Location::Path => vars
                .iter()
                .filter(|(n, _)| *n == p.name)
                .map(|(_, v)| v.clone())
                .collect(),
            Location::Query => req
                .query
                .as_deref()
                .map(|q| {
                    query_values(q, &p.name)
                        .into_iter()
                        .map(|v| decode(v, true))
                        .collect()
                })
                .unwrap_or_default(),
            Location::Header => req
                .header_values(&p.name)
                .map(|v| String::from_utf8_lossy(v).trim().to_string())
                .collect(),
            Location::Cookie => cookie_values(req, &p.name)
                .into_iter()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect(),
        };
        if raws.is_empty() {
            if p.required {
                return Err(bad(
                    "api_schema.missing_parameter",
                    format!(
                        "required {} parameter `{}` is missing",
                        loc_name(p.location),
                        p.name
                    ),
                ));
            }
            return Ok(());
        }
        let Some(s) = p.schema else { return Ok(()) };
        if self.schemas.param_type(s) == Some("array") {
            // form+explode for query (`?a=1&a=2`), simple for path and header (`1,2`).
            let parts: Vec<String> = match p.location {
                Location::Query => raws,
                _ => raws
                    .iter()
                    .flat_map(|r| r.split(',').map(|x| x.trim().to_string()))
                    .collect(),
            };
            let items = self.schemas.items_of(s);
            let arr = parts
                .iter()
                .map(|x| match items {
                    Some(i) => typed(&self.schemas, i, x),
                    None => Value::String(x.clone()),
                })
                .collect();
            return self.check_value(p, Value::Array(arr));
        }
        if raws.len() > 1 {
            return Err(bad(
                "api_schema.invalid_parameter",
                format!(
                    "{} parameter `{}` appears more than once",
                    loc_name(p.location),
                    p.name
                ),
            ));
        }
        let raw = raws.first().map(String::as_str).unwrap_or_default();
        self.check_value(p, typed(&self.schemas, s, raw))
    }

    /// The request's operation, checked: `Some` (operation key, media index) when its body must
    /// be validated. A rejection carries the operation's label, or `undeclared`.
    fn check_request(&self, req: &RequestView) -> Result<Option<(usize, usize)>, Rejection> {
        let Some((pi, vars)) = self.route(&req.path) else {
            return Err(Rejection::new(
                404,
                "api_schema.unknown_path",
                "the API does not declare this path",
            )
            .for_operation(&self.undeclared));
        };
        let Some(item) = self.paths.get(pi) else {
            return Ok(None);
        };
        let Some((oi, op)) = item
            .ops
            .iter()
            .enumerate()
            .find(|(_, o)| o.method == req.method)
        else {
            return Err(Rejection::new(
                405,
                "api_schema.method_not_allowed",
                format!("the API does not declare {} on this path", req.method),
            )
            .with_header("allow", item.allow.clone())
            .for_operation(&self.undeclared));
        };
        if self.check_responses {
            // The response phases check against this operation, whatever the request's fate.
            req.note(RESP_NOTE, ((pi as u64) << 8) | (oi as u64 & 0xff));
        }
        match self.check_operation(req, op, &vars) {
            Ok(media) => Ok(media.map(|mi| (pi * 65_536 + oi, mi))),
            Err(r) => Err(r.for_operation(&op.label)),
        }
    }

    /// A matched operation's parameters, query and body headers: `Some` (media index) when the
    /// body must be validated against a schema.
    fn check_operation(
        &self,
        req: &RequestView,
        op: &Operation,
        vars: &[(&str, String)],
    ) -> Result<Option<usize>, Rejection> {
        for p in &op.params {
            self.check_param(p, req, vars)?;
        }
        if self.reject_undeclared_query {
            if let Some(q) = req.query.as_deref() {
                for pair in q.split('&').filter(|p| !p.is_empty()) {
                    let name = decode(pair.split_once('=').map_or(pair, |(k, _)| k), true);
                    let declared = op
                        .params
                        .iter()
                        .any(|p| p.location == Location::Query && p.name == name);
                    if !declared {
                        return Err(bad(
                            "api_schema.undeclared_query",
                            "the operation does not declare a query parameter the request sends",
                        ));
                    }
                }
            }
        }
        match &op.body {
            None if req.has_body => Err(bad(
                "api_schema.unexpected_body",
                "the operation declares no request body",
            )),
            None => Ok(None),
            Some(b) if !req.has_body => {
                if b.required {
                    Err(bad(
                        "api_schema.body_required",
                        "the operation requires a request body",
                    ))
                } else {
                    Ok(None)
                }
            }
            Some(b) => {
                let mt = req
                    .header("content-type")
                    .and_then(|c| MediaType::parse(c).ok());
                let Some(mt) = mt else {
                    return Err(Rejection::new(
                        415,
                        "api_schema.unsupported_media_type",
                        "the request body has no valid Content-Type",
                    ));
                };
                match b.media.iter().position(|m| m.range.matches(&mt)) {
                    None => {
                        let accepted = b
                            .media
                            .iter()
                            .map(|m| m.range.as_str())
                            .collect::<Vec<_>>()
                            .join(", ");
                        Err(Rejection::new(
                            415,
                            "api_schema.unsupported_media_type",
                            format!("the operation accepts {accepted}"),
                        ))
                    }
                    Some(mi) => Ok(b.media.get(mi).and_then(|m| m.schema).map(|_| mi)),
                }
            }
        }
    }

    /// The body schema of the operation noted for the body phase, and the operation's label.
    fn body_schema(&self, note: u64) -> Option<(usize, &Arc<str>)> {
        let op_key = usize::try_from(note >> 16).ok()?;
        let mi = usize::try_from(note & 0xffff).ok()?;
        let (pi, oi) = (op_key / 65_536, op_key % 65_536);
        let op = self.paths.get(pi)?.ops.get(oi)?;
        Some((op.body.as_ref()?.media.get(mi)?.schema?, &op.label))
    }
}

fn loc_name(l: Location) -> &'static str {
    match l {
        Location::Path => "path",
        Location::Query => "query",
        Location::Header => "header",
        Location::Cookie => "cookie",
    }
}

impl Control for ApiSchema {
    type Policy = Policy;
    const NAME: &'static str = "api_schema";

    fn build(policy: Policy) -> Result<Self, ConfigError> {
        compile(&policy)
    }

    fn on_request(&self, req: &RequestView, _env: &Env) -> Verdict {
        match self.check_request(req) {
            Err(r) => self.verdict(r),
            Ok(None) => Verdict::Continue,
            Ok(Some((op_key, mi))) => {
                let note = ((op_key as u64) << 16) | (mi as u64 & 0xffff);
                req.note(OP_NOTE, note);
                Verdict::NeedBody {
                    max_bytes: self.max_body,
                }
            }
        }
    }

    fn on_request_body(&self, req: &RequestView, body: &[u8], _env: &Env) -> Verdict {
        let Some((schema, label)) = req.noted(OP_NOTE).and_then(|n| self.body_schema(n)) else {
            return Verdict::Continue;
        };
        for_operation(self.check_body(schema, body), Some(label))
    }

    fn on_response(&self, req: &RequestView, resp: &ResponseView, _env: &Env) -> Verdict {
        for_operation(self.check_response(req, resp), self.response_label(req))
    }

    fn on_response_body(
        &self,
        req: &RequestView,
        resp: &ResponseView,
        body: Option<&[u8]>,
        _env: &Env,
    ) -> Verdict {
        for_operation(
            self.check_response_body(req, resp, body),
            self.response_label(req),
        )
    }
}

impl ApiSchema {
    fn check_body(&self, schema: usize, body: &[u8]) -> Verdict {
        let value: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) => {
                return self.verdict(bad(
                    "api_schema.invalid_json",
                    "the request body is not valid JSON",
                ))
            }
        };
        match self.schemas.validate(schema, &value, Direction::Request) {
            Ok(()) => Verdict::Continue,
            Err(f) => self.verdict(bad(
                "api_schema.invalid_body",
                format!(
                    "the request body fails `{}` at `{}`",
                    f.keyword,
                    if f.pointer.is_empty() { "" } else { &f.pointer }
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests;
