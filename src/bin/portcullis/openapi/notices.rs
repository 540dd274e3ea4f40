//! What a contract says that api-schema accepts but does not enforce: the import lists it, so
//! that nobody believes the filter checks what it only tolerates. (What api-schema cannot
//! enforce at all it refuses; the import then fails with that error.)

use std::collections::BTreeSet;

use portcullis::controls::api_schema::is_json;
use portcullis::controls::api_schema::schema::resolve;
use serde_json::Value;

use super::{operations, path_items, Notice, Responses};

/// `format` values api-schema accepts as annotations (OpenAPI 3.0 §4.7.4), asserting nothing.
/// The control's own list is private to it (schema.rs `FORMAT_ANNOTATIONS`); tests/openapi_import.rs
/// checks each of these still compiles.
pub const FORMAT_ANNOTATIONS: &[&str] = &["float", "double", "password", "byte", "binary"];

/// Every notice for `doc`; `security` is left to `--jwt-routes` when `jwt_routes`.
pub fn collect(doc: &Value, jwt_routes: bool, responses: Responses) -> Vec<Notice> {
    let mut out = Vec::new();
    let ops = operations(doc);
    let secured: BTreeSet<&str> = ops
        .iter()
        .filter_map(|o| o.op.get("security").or_else(|| doc.get("security")))
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(Value::as_object)
        .flat_map(|r| r.keys().map(String::as_str))
        .collect();
    if !jwt_routes && !secured.is_empty() {
        let schemes: Vec<String> = secured.iter().map(|s| format!("`{s}`")).collect();
        out.push(Notice::new(
            "security",
            format!(
                "security requirements ({}) are not enforced by api-schema: `--jwt-routes FILE` \
                 writes jwt-auth routes for the oauth2/openIdConnect ones",
                schemes.join(", ")
            ),
        ));
    }
    let with_responses = ops
        .iter()
        .filter(|o| o.op.get("responses").is_some())
        .count();
    let unenforced = match responses {
        Responses::Off => Some("not checked (`--responses off`)"),
        Responses::Report => {
            Some("only reported (`--responses enforce` replaces a violating one by a 502)")
        }
        Responses::Enforce => None,
    };
    if let (true, Some(how)) = (with_responses > 0, unenforced) {
        out.push(Notice::new(
            "responses",
            format!("responses ({with_responses} operations) are {how}"),
        ));
    }
    if doc.get("webhooks").is_some() {
        out.push(Notice::new("openapi.webhooks", "webhooks are not checked"));
    }
    for (template, item) in path_items(doc) {
        if item.get("servers").is_some() {
            out.push(Notice::new(
                format!("openapi.paths.{template}.servers"),
                "not used: requests are matched under the top-level servers' base paths",
            ));
        }
    }
    let mut walk = Walk {
        doc,
        seen: BTreeSet::new(),
        out: &mut out,
        responses,
    };
    for o in &ops {
        for key in ["servers", "callbacks"] {
            if o.op.get(key).is_some() {
                let what = if key == "servers" {
                    "not used: requests are matched under the top-level servers' base paths"
                } else {
                    "callbacks are not checked"
                };
                walk.out.push(Notice::new(format!("{}.{key}", o.at), what));
            }
        }
        // The schemas api-schema compiles: parameters (path item and operation), JSON request
        // bodies and, unless they are off, JSON responses.
        let item = path_items(doc)
            .into_iter()
            .find(|(t, _)| *t == o.template)
            .map(|(_, i)| i);
        let shared = item
            .and_then(|i| i.get("parameters"))
            .map(|p| (p, format!("openapi.paths.{}.parameters", o.template)));
        let own =
            o.op.get("parameters")
                .map(|p| (p, format!("{}.parameters", o.at)));
        for (params, at) in shared.into_iter().chain(own) {
            for (i, p) in params.as_array().into_iter().flatten().enumerate() {
                let (p, p_at) = walk.deref(p, format!("{at}[{i}]"));
                if let Some(s) = p.get("schema") {
                    walk.schema(s, format!("{p_at}.schema"));
                }
            }
        }
        if let Some(rb) = o.op.get("requestBody") {
            let (rb, rb_at) = walk.deref(rb, format!("{}.requestBody", o.at));
            for (mt, m) in rb
                .get("content")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if let Some(s) = m.get("schema") {
                    walk.schema(s, format!("{rb_at}.content.{mt}.schema"));
                }
            }
        }
        if responses != Responses::Off {
            walk.responses(o.op.get("responses"), format!("{}.responses", o.at));
        }
    }
    out
}

struct Walk<'a, 'o> {
    doc: &'a Value,
    /// Shared schemas and parameters visited once (and cycles end).
    seen: BTreeSet<String>,
    out: &'o mut Vec<Notice>,
    /// A `writeOnly` property is refused in responses only when they are enforced.
    responses: Responses,
}

/// A `$ref` target's JSON path, as api-schema names it in its errors.
fn ref_path(r: &str) -> String {
    format!("openapi{}", r.trim_start_matches('#').replace('/', "."))
}

impl<'a> Walk<'a, '_> {
    fn deref(&self, v: &'a Value, at: String) -> (&'a Value, String) {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => match resolve(self.doc, r) {
                Ok(t) => (t, ref_path(r)),
                Err(_) => (v, at),
            },
            None => (v, at),
        }
    }

    /// An operation's responses: what api-schema compiles (JSON schemas) and what it skips.
    fn responses(&mut self, responses: Option<&'a Value>, at: String) {
        for (key, r) in responses.and_then(Value::as_object).into_iter().flatten() {
            let (r, r_at) = self.deref(r, format!("{at}.{key}"));
            for (part, what) in [
                ("headers", "response headers are not checked"),
                ("links", "links are not checked"),
            ] {
                if r.get(part).is_some() {
                    self.out.push(Notice::new(format!("{r_at}.{part}"), what));
                }
            }
            let content = r.get("content").and_then(Value::as_object);
            for (mt, m) in content.into_iter().flatten() {
                let Some(s) = m.get("schema") else { continue };
                let s_at = format!("{r_at}.content.{mt}.schema");
                if is_json(mt) {
                    self.schema(s, s_at);
                } else {
                    let what = "only the media type is checked: a non-JSON body is not validated";
                    self.out.push(Notice::new(s_at, what));
                }
            }
        }
    }

    fn schema(&mut self, s: &'a Value, at: String) {
        let Some(obj) = s.as_object() else { return };
        if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
            if self.seen.insert(r.to_string()) {
                if let Ok(t) = resolve(self.doc, r) {
                    self.schema(t, ref_path(r));
                }
            }
        }
        if let Some(f) = obj.get("format").and_then(Value::as_str) {
            if FORMAT_ANNOTATIONS.contains(&f) {
                self.out.push(Notice::new(
                    format!("{at}.format"),
                    format!("`{f}` is an annotation: the value is not checked against it"),
                ));
            }
        }
        let write_only = match self.responses {
            Responses::Off => Some("not checked: it concerns responses (`--responses off`)"),
            Responses::Report => Some("only reported when a response carries it"),
            Responses::Enforce => None,
        };
        if let (Some(true), Some(how)) = (obj.get("writeOnly").and_then(Value::as_bool), write_only)
        {
            self.out.push(Notice::new(format!("{at}.writeOnly"), how));
        }
        if obj.get("discriminator").is_some() {
            self.out.push(Notice::new(
                format!("{at}.discriminator"),
                "validated as the plain oneOf/anyOf beside it (its mapping is not used)",
            ));
        }
        for (kw, v) in obj {
            match (kw.as_str(), v) {
                ("properties", Value::Object(props)) => {
                    for (name, sub) in props {
                        self.schema(sub, format!("{at}.properties.{name}"));
                    }
                }
                ("items" | "additionalProperties" | "not", sub) => {
                    self.schema(sub, format!("{at}.{kw}"))
                }
                ("prefixItems" | "allOf" | "anyOf" | "oneOf", Value::Array(subs)) => {
                    for (i, sub) in subs.iter().enumerate() {
                        self.schema(sub, format!("{at}.{kw}[{i}]"));
                    }
                }
                _ => {}
            }
        }
    }
}
