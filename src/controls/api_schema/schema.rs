//! A compact JSON Schema validator for the subset OpenAPI 3.0 schema objects and JSON Schema
//! 2020-12 (OpenAPI 3.1) contracts use, over `serde_json` values, with `regex-lite` patterns.
//!
//! Compiled once at configure time into an arena of nodes (internal `$ref`s become indices, so
//! recursive schemas work). A keyword this validator does not enforce is refused at configure
//! time with its JSON path: part of a contract is never silently ignored.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::control::ConfigError;

/// Most schema nodes one contract may compile to.
pub const MAX_NODES: usize = 20_000;
/// Deepest nesting of inline subschemas (references do not add depth: they are shared).
pub const MAX_DEPTH: usize = 64;
/// Deepest instance nesting validated (deeper JSON bodies are refused, not recursed into).
pub const MAX_INSTANCE_DEPTH: usize = 128;

/// Keywords that only annotate: accepted and not enforced (they assert nothing).
const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "example",
    "examples",
    "default",
    "deprecated",
    "externalDocs",
    "xml",
    "$comment",
    "$schema",
    "$id",
    "contentMediaType",
    "contentEncoding",
];

/// Formats that are enforced.
const FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "email",
    "uuid",
    "ipv4",
    "ipv6",
    "int32",
    "int64",
    "uri",
];
/// Formats that assert nothing (OpenAPI 3.0 §4.7.4 lists them for documentation).
const FORMAT_ANNOTATIONS: &[&str] = &["float", "double", "password", "byte", "binary"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// OpenAPI 3.0 schema object (`nullable`, boolean `exclusiveMinimum`).
    Oas30,
    /// OpenAPI 3.1: JSON Schema 2020-12.
    Oas31,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Request,
    Response,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Null,
    Boolean,
    Integer,
    Number,
    String,
    Array,
    Object,
}

impl Ty {
    fn parse(s: &str) -> Option<Ty> {
        Some(match s {
            "null" => Ty::Null,
            "boolean" => Ty::Boolean,
            "integer" => Ty::Integer,
            "number" => Ty::Number,
            "string" => Ty::String,
            "array" => Ty::Array,
            "object" => Ty::Object,
            _ => return None,
        })
    }
    fn of(v: &Value) -> Ty {
        match v {
            Value::Null => Ty::Null,
            Value::Bool(_) => Ty::Boolean,
            Value::Number(n) if n.is_i64() || n.is_u64() => Ty::Integer,
            Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => Ty::Integer,
            Value::Number(_) => Ty::Number,
            Value::String(_) => Ty::String,
            Value::Array(_) => Ty::Array,
            Value::Object(_) => Ty::Object,
        }
    }
}

#[derive(Debug, Default)]
struct Node {
    /// `false` schema (or `not: {}`): nothing is valid.
    never: bool,
    types: Option<Vec<Ty>>,
    nullable: bool,
    enum_: Option<Vec<Value>>,
    const_: Option<Value>,
    pattern: Option<regex_lite::Regex>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    format: Option<&'static str>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    exclusive_minimum: Option<f64>,
    exclusive_maximum: Option<f64>,
    multiple_of: Option<f64>,
    items: Option<usize>,
    prefix_items: Vec<usize>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    unique_items: bool,
    properties: Vec<(String, usize)>,
    required: Vec<String>,
    /// `None`: any other property; `Some(n)`: others must match node n.
    additional: Option<usize>,
    min_properties: Option<u64>,
    max_properties: Option<u64>,
    all_of: Vec<usize>,
    any_of: Vec<usize>,
    one_of: Vec<usize>,
    not: Option<usize>,
    read_only: bool,
    write_only: bool,
    /// `$ref` (alone in 3.0; alongside other keywords in 2020-12).
    reference: Option<usize>,
}

/// Compiled schemas of one contract.
#[derive(Debug, Default)]
pub struct Schemas {
    nodes: Vec<Node>,
}

/// The first failure: where in the instance (a JSON pointer) and which keyword.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub pointer: String,
    pub keyword: &'static str,
}

pub struct Compiler<'a> {
    root: &'a Value,
    dialect: Dialect,
    out: Schemas,
    /// `$ref` target (pointer) -> node, so each target compiles once (and cycles terminate).
    refs: HashMap<String, usize>,
}

/// Resolve an internal `$ref` (`#/components/schemas/Order`) in the document.
pub fn resolve<'v>(root: &'v Value, reference: &str) -> Result<&'v Value, String> {
    let Some(pointer) = reference.strip_prefix('#') else {
        return Err(format!(
            "`{reference}` is a remote reference: only references inside the document (`#/…`) are supported"
        ));
    };
    let pointer = percent_decode_str(pointer);
    root.pointer(&pointer)
        .ok_or_else(|| format!("`{reference}` points at nothing in the document"))
}

fn percent_decode_str(s: &str) -> String {
    let d = crate::params::percent_decode(s.as_bytes());
    String::from_utf8_lossy(&d).into_owned()
}

fn num(v: &Value, path: &str, kw: &str) -> Result<f64, ConfigError> {
    v.as_f64()
        .ok_or_else(|| ConfigError::new(format!("{path}.{kw}"), "expected a number"))
}

fn count(v: &Value, path: &str, kw: &str) -> Result<u64, ConfigError> {
    v.as_u64()
        .ok_or_else(|| ConfigError::new(format!("{path}.{kw}"), "expected a non-negative integer"))
}

impl<'a> Compiler<'a> {
    pub fn new(root: &'a Value, dialect: Dialect) -> Self {
        Compiler {
            root,
            dialect,
            out: Schemas::default(),
            refs: HashMap::new(),
        }
    }

    pub fn finish(self) -> Schemas {
        self.out
    }

    fn alloc(&mut self, path: &str) -> Result<usize, ConfigError> {
        if self.out.nodes.len() >= MAX_NODES {
            return Err(ConfigError::new(
                path,
                format!("the contract's schemas exceed {MAX_NODES} nodes"),
            ));
        }
        self.out.nodes.push(Node::default());
        Ok(self.out.nodes.len() - 1)
    }

    /// Compile the schema at `value` (found at JSON path `path`).
    pub fn compile(&mut self, value: &Value, path: &str) -> Result<usize, ConfigError> {
        self.compile_at(value, path, 0)
    }

    fn compile_ref(&mut self, reference: &str, path: &str) -> Result<usize, ConfigError> {
        if let Some(&n) = self.refs.get(reference) {
            return Ok(n);
        }
        let target = resolve(self.root, reference)
            .map_err(|e| ConfigError::new(format!("{path}.$ref"), e))?;
        let id = self.alloc(path)?;
        self.refs.insert(reference.to_string(), id);
        let target_path = format!(
            "openapi{}",
            reference.trim_start_matches('#').replace('/', ".")
        );
        let inner = self.compile_at(target, &target_path, 0)?;
        if let Some(node) = self.out.nodes.get_mut(id) {
            node.reference = Some(inner);
        }
        Ok(id)
    }

    fn compile_at(
        &mut self,
        value: &Value,
        path: &str,
        depth: usize,
    ) -> Result<usize, ConfigError> {
        if depth > MAX_DEPTH {
            return Err(ConfigError::new(
                path,
                format!("schemas nested deeper than {MAX_DEPTH}"),
            ));
        }
        let obj = match value {
            Value::Bool(b) if self.dialect == Dialect::Oas31 => {
                let id = self.alloc(path)?;
                if let Some(n) = self.out.nodes.get_mut(id) {
                    n.never = !b;
                }
                return Ok(id);
            }
            Value::Object(o) => o,
            _ => return Err(ConfigError::new(path, "a schema must be an object")),
        };
        if let Some(r) = obj.get("$ref") {
            let r = r
                .as_str()
                .ok_or_else(|| ConfigError::new(format!("{path}.$ref"), "expected a string"))?;
            // OpenAPI 3.0 §4.7.24: siblings of $ref are ignored; 2020-12: they apply too.
            if self.dialect == Dialect::Oas30 || obj.len() == 1 {
                return self.compile_ref(r, path);
            }
        }
        let id = self.alloc(path)?;
        let mut n = Node::default();
        for (kw, v) in obj {
            self.keyword(&mut n, obj, kw, v, path, depth)?;
        }
        if let Some(slot) = self.out.nodes.get_mut(id) {
            *slot = n;
        }
        Ok(id)
    }

    fn sub(&mut self, v: &Value, path: String, depth: usize) -> Result<usize, ConfigError> {
        self.compile_at(v, &path, depth + 1)
    }

    fn list(
        &mut self,
        v: &Value,
        path: &str,
        kw: &str,
        depth: usize,
    ) -> Result<Vec<usize>, ConfigError> {
        let arr = v.as_array().filter(|a| !a.is_empty()).ok_or_else(|| {
            ConfigError::new(format!("{path}.{kw}"), "expected a non-empty array")
        })?;
        arr.iter()
            .enumerate()
            .map(|(i, s)| self.sub(s, format!("{path}.{kw}[{i}]"), depth))
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn keyword(
        &mut self,
        n: &mut Node,
        obj: &Map<String, Value>,
        kw: &str,
        v: &Value,
        path: &str,
        depth: usize,
    ) -> Result<(), ConfigError> {
        let at = || format!("{path}.{kw}");
        let oas30 = self.dialect == Dialect::Oas30;
        match kw {
            "$ref" => {
                let r = v.as_str().unwrap_or_default().to_string();
                n.reference = Some(self.compile_ref(&r, path)?);
            }
            "type" => {
                let names: Vec<&str> = match v {
                    Value::String(s) => vec![s.as_str()],
                    Value::Array(a) if !oas30 => a.iter().filter_map(Value::as_str).collect(),
                    _ => return Err(ConfigError::new(at(), "expected a type name")),
                };
                let tys = names
                    .iter()
                    .map(|s| Ty::parse(s))
                    .collect::<Option<Vec<_>>>()
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| ConfigError::new(at(), "unknown type"))?;
                if oas30 && tys.contains(&Ty::Null) {
                    return Err(ConfigError::new(
                        at(),
                        "`null` is not a type in OpenAPI 3.0: use `nullable: true`",
                    ));
                }
                n.types = Some(tys);
            }
            "nullable" if oas30 => n.nullable = v.as_bool().unwrap_or(false),
            "enum" => {
                n.enum_ = Some(
                    v.as_array()
                        .cloned()
                        .ok_or_else(|| ConfigError::new(at(), "expected an array"))?,
                )
            }
            "const" if !oas30 => n.const_ = Some(v.clone()),
            "pattern" => {
                let p = v
                    .as_str()
                    .ok_or_else(|| ConfigError::new(at(), "expected a string"))?;
                n.pattern = Some(
                    regex_lite::Regex::new(p)
                        .map_err(|e| ConfigError::new(at(), format!("invalid pattern: {e}")))?,
                );
            }
            "minLength" => n.min_length = Some(count(v, path, kw)?),
            "maxLength" => n.max_length = Some(count(v, path, kw)?),
            "format" => {
                let f = v
                    .as_str()
                    .ok_or_else(|| ConfigError::new(at(), "expected a string"))?;
                if let Some(known) = FORMATS.iter().find(|k| **k == f) {
                    n.format = Some(known);
                } else if !FORMAT_ANNOTATIONS.contains(&f) {
                    return Err(ConfigError::new(
                        at(),
                        format!("format `{f}` is not enforced by api-schema"),
                    ));
                }
            }
            "minimum" => n.minimum = Some(num(v, path, kw)?),
            "maximum" => n.maximum = Some(num(v, path, kw)?),
            "exclusiveMinimum" | "exclusiveMaximum" => {
                let bound = if oas30 {
                    // OpenAPI 3.0: a boolean that makes minimum/maximum exclusive.
                    let other = if kw == "exclusiveMinimum" {
                        "minimum"
                    } else {
                        "maximum"
                    };
                    match v.as_bool() {
                        Some(true) => obj.get(other).and_then(Value::as_f64),
                        Some(false) => None,
                        None => return Err(ConfigError::new(at(), "expected a boolean")),
                    }
                } else {
                    Some(num(v, path, kw)?)
                };
                if kw == "exclusiveMinimum" {
                    n.exclusive_minimum = bound;
                } else {
                    n.exclusive_maximum = bound;
                }
            }
            "multipleOf" => {
                let m = num(v, path, kw)?;
                if m <= 0.0 {
                    return Err(ConfigError::new(at(), "must be greater than 0"));
                }
                n.multiple_of = Some(m);
            }
            "items" => {
                if v.is_array() {
                    return Err(ConfigError::new(
                        at(),
                        "an array of schemas is not supported (use prefixItems in 3.1)",
                    ));
                }
                n.items = Some(self.sub(v, at(), depth)?);
            }
            "prefixItems" if !oas30 => n.prefix_items = self.list(v, path, kw, depth)?,
            "minItems" => n.min_items = Some(count(v, path, kw)?),
            "maxItems" => n.max_items = Some(count(v, path, kw)?),
            "uniqueItems" => n.unique_items = v.as_bool().unwrap_or(false),
            "properties" => {
                let props = v
                    .as_object()
                    .ok_or_else(|| ConfigError::new(at(), "expected an object"))?;
                for (name, s) in props {
                    let id = self.sub(s, format!("{path}.properties.{name}"), depth)?;
                    n.properties.push((name.clone(), id));
                }
            }
            "required" => {
                n.required = v
                    .as_array()
                    .and_then(|a| a.iter().map(|s| s.as_str().map(String::from)).collect())
                    .ok_or_else(|| ConfigError::new(at(), "expected an array of names"))?;
            }
            "additionalProperties" => match v {
                Value::Bool(true) => {}
                Value::Bool(false) => {
                    let id = self.alloc(path)?;
                    if let Some(node) = self.out.nodes.get_mut(id) {
                        node.never = true;
                    }
                    n.additional = Some(id);
                }
                _ => n.additional = Some(self.sub(v, at(), depth)?),
            },
            "minProperties" => n.min_properties = Some(count(v, path, kw)?),
            "maxProperties" => n.max_properties = Some(count(v, path, kw)?),
            "allOf" => n.all_of = self.list(v, path, kw, depth)?,
            "anyOf" => n.any_of = self.list(v, path, kw, depth)?,
            "oneOf" => n.one_of = self.list(v, path, kw, depth)?,
            "not" => n.not = Some(self.sub(v, at(), depth)?),
            "readOnly" => n.read_only = v.as_bool().unwrap_or(false),
            "writeOnly" => n.write_only = v.as_bool().unwrap_or(false),
            // Validated as the plain oneOf/anyOf it sits beside (OpenAPI 3.0 §4.7.25: a hint).
            "discriminator" => {
                if !obj.contains_key("oneOf") && !obj.contains_key("anyOf") {
                    return Err(ConfigError::new(
                        at(),
                        "a discriminator is enforced only beside oneOf/anyOf",
                    ));
                }
            }
            k if k.starts_with("x-") || ANNOTATIONS.contains(&k) => {}
            k => {
                return Err(ConfigError::new(
                    at(),
                    format!("keyword `{k}` is not enforced by api-schema"),
                ))
            }
        }
        Ok(())
    }
}

fn pointer_push(p: &str, token: &str) -> String {
    format!("{p}/{}", token.replace('~', "~0").replace('/', "~1"))
}

impl Schemas {
    /// Validate `v` against node `id`; the first failure.
    pub fn validate(&self, id: usize, v: &Value, dir: Direction) -> Result<(), Failure> {
        self.check(id, v, dir, "", 0)
    }

    fn fail(pointer: &str, keyword: &'static str) -> Result<(), Failure> {
        Err(Failure {
            pointer: pointer.to_string(),
            keyword,
        })
    }

    /// Is property schema `id` readOnly (or writeOnly), following references?
    fn flag(&self, id: usize, write: bool) -> bool {
        let mut cur = Some(id);
        let mut hops = 0;
        while let (Some(i), true) = (cur, hops < 32) {
            let Some(n) = self.nodes.get(i) else {
                return false;
            };
            if (write && n.write_only) || (!write && n.read_only) {
                return true;
            }
            cur = n.reference;
            hops += 1;
        }
        false
    }

    fn check(
        &self,
        id: usize,
        v: &Value,
        dir: Direction,
        p: &str,
        depth: usize,
    ) -> Result<(), Failure> {
        if depth > MAX_INSTANCE_DEPTH {
            return Self::fail(p, "depth");
        }
        let Some(n) = self.nodes.get(id) else {
            return Self::fail(p, "schema");
        };
        if n.never {
            return Self::fail(p, "false");
        }
        if let Some(r) = n.reference {
            self.check(r, v, dir, p, depth + 1)?;
        }
        if v.is_null() && n.nullable {
            return Ok(());
        }
        let ty = Ty::of(v);
        if let Some(types) = &n.types {
            let ok = types
                .iter()
                .any(|t| *t == ty || (*t == Ty::Number && ty == Ty::Integer));
            if !ok {
                return Self::fail(p, "type");
            }
        }
        if let Some(e) = &n.enum_ {
            if !e.iter().any(|x| json_eq(x, v)) {
                return Self::fail(p, "enum");
            }
        }
        if let Some(c) = &n.const_ {
            if !json_eq(c, v) {
                return Self::fail(p, "const");
            }
        }
        match v {
            Value::String(s) => self.check_string(n, s, p)?,
            Value::Number(num) => {
                let x = num.as_f64().unwrap_or(f64::NAN);
                if n.minimum.is_some_and(|m| x < m) {
                    return Self::fail(p, "minimum");
                }
                if n.maximum.is_some_and(|m| x > m) {
                    return Self::fail(p, "maximum");
                }
                if n.exclusive_minimum.is_some_and(|m| x <= m) {
                    return Self::fail(p, "exclusiveMinimum");
                }
                if n.exclusive_maximum.is_some_and(|m| x >= m) {
                    return Self::fail(p, "exclusiveMaximum");
                }
                if let Some(m) = n.multiple_of {
                    let q = x / m;
                    if !q.is_finite() || (q - q.round()).abs() > 1e-9 {
                        return Self::fail(p, "multipleOf");
                    }
                }
                if let Some(f) = n.format {
                    let ok = match f {
                        "int32" => num.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
                        "int64" => num.is_i64() || num.is_u64(),
                        _ => true,
                    };
                    if !ok {
                        return Self::fail(p, "format");
                    }
                }
            }
            Value::Array(a) => {
                let len = a.len() as u64;
                if n.min_items.is_some_and(|m| len < m) {
                    return Self::fail(p, "minItems");
                }
                if n.max_items.is_some_and(|m| len > m) {
                    return Self::fail(p, "maxItems");
                }
                if n.unique_items {
                    for (i, x) in a.iter().enumerate() {
                        if a.iter().skip(i + 1).any(|y| json_eq(x, y)) {
                            return Self::fail(p, "uniqueItems");
                        }
                    }
                }
                for (i, x) in a.iter().enumerate() {
                    let sub = n.prefix_items.get(i).copied().or(n.items);
                    if let Some(s) = sub {
                        self.check(s, x, dir, &format!("{p}/{i}"), depth + 1)?;
                    }
                }
            }
            Value::Object(o) => {
                let len = o.len() as u64;
                if n.min_properties.is_some_and(|m| len < m) {
                    return Self::fail(p, "minProperties");
                }
                if n.max_properties.is_some_and(|m| len > m) {
                    return Self::fail(p, "maxProperties");
                }
                for r in &n.required {
                    // OpenAPI 3.0 §4.7.24: a required readOnly property applies to responses
                    // only, a required writeOnly one to requests only.
                    let prop = n.properties.iter().find(|(k, _)| k == r).map(|(_, s)| *s);
                    let exempt = prop.is_some_and(|s| match dir {
                        Direction::Request => self.flag(s, false),
                        Direction::Response => self.flag(s, true),
                    });
                    if !o.contains_key(r) && !exempt {
                        return Self::fail(&pointer_push(p, r), "required");
                    }
                }
                for (k, x) in o {
                    let here = pointer_push(p, k);
                    match n.properties.iter().find(|(name, _)| name == k) {
                        Some((_, s)) => {
                            if dir == Direction::Request && self.flag(*s, false) {
                                return Self::fail(&here, "readOnly");
                            }
                            if dir == Direction::Response && self.flag(*s, true) {
                                return Self::fail(&here, "writeOnly");
                            }
                            self.check(*s, x, dir, &here, depth + 1)?;
                        }
                        None => {
                            if let Some(a) = n.additional {
                                if self.nodes.get(a).is_some_and(|an| an.never) {
                                    return Self::fail(&here, "additionalProperties");
                                }
                                self.check(a, x, dir, &here, depth + 1)?;
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        for s in &n.all_of {
            self.check(*s, v, dir, p, depth + 1)?;
        }
        if !n.any_of.is_empty()
            && !n
                .any_of
                .iter()
                .any(|s| self.check(*s, v, dir, p, depth + 1).is_ok())
        {
            return Self::fail(p, "anyOf");
        }
        if !n.one_of.is_empty() {
            let matching = n
                .one_of
                .iter()
                .filter(|s| self.check(**s, v, dir, p, depth + 1).is_ok())
                .count();
            if matching != 1 {
                return Self::fail(p, "oneOf");
            }
        }
        if let Some(s) = n.not {
            if self.check(s, v, dir, p, depth + 1).is_ok() {
                return Self::fail(p, "not");
            }
        }
        Ok(())
    }

    fn check_string(&self, n: &Node, s: &str, p: &str) -> Result<(), Failure> {
        let chars = s.chars().count() as u64;
        if n.min_length.is_some_and(|m| chars < m) {
            return Self::fail(p, "minLength");
        }
        if n.max_length.is_some_and(|m| chars > m) {
            return Self::fail(p, "maxLength");
        }
        if let Some(re) = &n.pattern {
            if !re.is_match(s) {
                return Self::fail(p, "pattern");
            }
        }
        if let Some(f) = n.format {
            if !format_ok(f, s) {
                return Self::fail(p, "format");
            }
        }
        Ok(())
    }

    /// The primitive type a parameter value should be read as (its schema's first type).
    pub fn param_type(&self, id: usize) -> Option<&'static str> {
        let mut cur = Some(id);
        let mut hops = 0;
        while let (Some(i), true) = (cur, hops < 32) {
            let n = self.nodes.get(i)?;
            if let Some(t) = n.types.as_ref().and_then(|t| t.first()) {
                return Some(match t {
                    Ty::Integer => "integer",
                    Ty::Number => "number",
                    Ty::Boolean => "boolean",
                    Ty::Array => "array",
                    Ty::Object => "object",
                    Ty::Null => "null",
                    Ty::String => "string",
                });
            }
            cur = n.reference;
            hops += 1;
        }
        None
    }

    /// The items schema of an array parameter.
    pub fn items_of(&self, id: usize) -> Option<usize> {
        let mut cur = Some(id);
        let mut hops = 0;
        while let (Some(i), true) = (cur, hops < 32) {
            let n = self.nodes.get(i)?;
            if n.items.is_some() {
                return n.items;
            }
            cur = n.reference;
            hops += 1;
        }
        None
    }
}

/// JSON equality with numbers compared by value (`1` == `1.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, a)| y.get(k).is_some_and(|b| json_eq(a, b)))
        }
        _ => a == b,
    }
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

fn date_ok(s: &str) -> bool {
    let mut it = s.split('-');
    match (it.next(), it.next(), it.next(), it.next()) {
        (Some(y), Some(m), Some(d), None) if digits(y, 4) && digits(m, 2) && digits(d, 2) => {
            let (m, d) = (m.parse::<u32>().unwrap_or(0), d.parse::<u32>().unwrap_or(0));
            (1..=12).contains(&m) && (1..=31).contains(&d)
        }
        _ => false,
    }
}

fn time_ok(s: &str) -> bool {
    // RFC 3339 full-time: HH:MM:SS[.frac](Z|±HH:MM)
    let (main, offset) = match s.find(['Z', 'z', '+', '-']) {
        Some(i) => (s.get(..i).unwrap_or(""), s.get(i..).unwrap_or("")),
        None => return false,
    };
    let main = main.split('.').next().unwrap_or("");
    let hms: Vec<&str> = main.split(':').collect();
    let clock = |p: &[&str], lims: &[u32]| {
        p.len() == lims.len()
            && p.iter()
                .zip(lims)
                .all(|(x, l)| digits(x, 2) && x.parse::<u32>().is_ok_and(|v| v <= *l))
    };
    let off_ok = offset.eq_ignore_ascii_case("z")
        || offset
            .get(1..)
            .is_some_and(|o| clock(&o.split(':').collect::<Vec<_>>(), &[23, 59]));
    clock(&hms, &[23, 59, 60]) && off_ok
}

fn format_ok(f: &str, s: &str) -> bool {
    match f {
        "date" => date_ok(s),
        "time" => time_ok(s),
        "date-time" => match s.find(['T', 't']) {
            Some(i) => date_ok(s.get(..i).unwrap_or("")) && time_ok(s.get(i + 1..).unwrap_or("")),
            None => false,
        },
        "email" => match s.rsplit_once('@') {
            Some((l, d)) => {
                !l.is_empty()
                    && d.contains('.')
                    && !d.starts_with('.')
                    && !s.contains(char::is_whitespace)
            }
            None => false,
        },
        "uuid" => {
            let parts: Vec<&str> = s.split('-').collect();
            parts.len() == 5
                && parts
                    .iter()
                    .zip([8, 4, 4, 4, 12])
                    .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
        }
        "ipv4" => s.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<std::net::Ipv6Addr>().is_ok(),
        "uri" => s.split_once(':').is_some_and(|(scheme, _)| {
            scheme
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic())
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        }),
        // Numeric formats on strings do not apply.
        _ => true,
    }
}
