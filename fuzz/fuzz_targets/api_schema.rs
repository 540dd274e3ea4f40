//! api-schema's compiled validators: any contract, any request, never a panic.
//!
//! Input: `CONTRACT \0 METHOD \n TARGET \n header: value … \n\n BODY`. A CONTRACT that parses
//! as JSON is compiled as the policy's `openapi` document (the compiler is fuzzed too);
//! otherwise its first byte picks one of the built-in contracts below, compiled once, so that
//! most inputs reach the parameter and body validators rather than stop at the compiler.
#![no_main]

use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use portcullis::control::{Control, Env};
use portcullis::controls::api_schema::{ApiSchema, Policy};
use portcullis::store::MemoryStore;
use portcullis::{RequestView, Verdict};
use serde_json::{json, Value};

const ORDERS: &str = include_str!("../../tests/data/orders-openapi.json");

/// OpenAPI 3.1 / JSON Schema 2020-12 keywords the orders contract (3.0) does not use.
fn everything_31() -> Value {
    json!({
        "openapi": "3.1.0",
        "servers": [{"url": "/api"}, {"url": "https://x.example/"}],
        "paths": {
            "/t/{a}/{b}": {
                "parameters": [
                    {"name": "a", "in": "path", "schema": {"type": "array", "items": {"type": "integer", "multipleOf": 3}}},
                    {"name": "b", "in": "path", "schema": {"type": ["string", "null"], "pattern": "^[a-z]+$", "maxLength": 8}}
                ],
                "put": {
                    "parameters": [
                        {"name": "X-N", "in": "header", "required": true, "schema": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1.5}},
                        {"name": "s", "in": "cookie", "schema": {"type": "string", "format": "uuid"}},
                        {"name": "q", "in": "query", "schema": {"type": "array", "items": {"type": "boolean"}, "uniqueItems": true}}
                    ],
                    "requestBody": {"required": true, "content": {
                        "application/*+json": {"schema": {"$ref": "#/components/schemas/Node"}},
                        "text/plain": {}
                    }}
                }
            },
            "/f": {"post": {"requestBody": {"content": {"application/json": {"schema": {
                "prefixItems": [{"const": 1}, {"enum": ["a", null]}],
                "items": false, "minItems": 1,
                "not": {"type": "object"},
                "anyOf": [{"type": "array"}, {"type": "string", "format": "date-time"}]
            }}}}}}
        },
        "components": {"schemas": {"Node": {
            "type": "object",
            "required": ["v"],
            "minProperties": 1, "maxProperties": 4,
            "properties": {
                "v": {"oneOf": [{"type": "integer", "format": "int32"}, {"type": "string", "format": "email"}]},
                "ip": {"anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
                "at": {"type": "string", "format": "date"},
                "id": {"readOnly": true},
                "kids": {"type": "array", "maxItems": 3, "items": {"$ref": "#/components/schemas/Node"}}
            },
            "additionalProperties": {"allOf": [{"type": "string"}, {"minLength": 1}]}
        }}}
    })
}

fn compile(doc: Value) -> Option<ApiSchema> {
    let policy: Policy = serde_json::from_value(
        json!({"openapi": doc, "reject_undeclared_query": true, "max_body_bytes": 65536}),
    )
    .ok()?;
    ApiSchema::build(policy).ok()
}

thread_local! {
    // A built-in contract that stopped compiling would quietly shrink what is fuzzed: crash.
    static BUILT_IN: Vec<ApiSchema> = [serde_json::from_str(ORDERS).expect("orders contract"), everything_31()]
        .into_iter()
        .map(|doc| compile(doc).expect("built-in contract compiles"))
        .collect();
}

fn request(data: &[u8]) -> Option<(RequestView, &[u8])> {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(p) => (&data[..p], &data[p + 2..]),
        None => (data, &b""[..]),
    };
    let mut lines = head.split(|b| *b == b'\n');
    let method = lines.next().unwrap_or_default().to_vec();
    let target = lines.next().unwrap_or_default().to_vec();
    let mut headers = vec![
        (":method".to_string(), method),
        (":path".to_string(), target),
        (":authority".to_string(), b"x.example".to_vec()),
        (":scheme".to_string(), b"https".to_vec()),
    ];
    for line in lines.take(32) {
        let (k, v) = match line.iter().position(|b| *b == b':') {
            Some(p) => (&line[..p], &line[p + 1..]),
            None => (line, &b""[..]),
        };
        headers.push((String::from_utf8_lossy(k).to_ascii_lowercase(), v.to_vec()));
    }
    let mut req = RequestView::from_headers(headers).ok()?;
    req.has_body = !body.is_empty();
    Some((req, body))
}

fn evaluate(c: &ApiSchema, req: &RequestView, body: &[u8]) {
    let store = MemoryStore::default();
    let env = Env {
        now: SystemTime::UNIX_EPOCH,
        store: &store,
    };
    if let Verdict::NeedBody { max_bytes } = c.on_request(req, &env) {
        let _ = c.on_request_body(req, &body[..body.len().min(max_bytes)], &env);
    }
}

fuzz_target!(|data: &[u8]| {
    let (contract, rest) = match data.iter().position(|b| *b == 0) {
        Some(p) => (&data[..p], &data[p + 1..]),
        None => (&b""[..], data),
    };
    let Some((req, body)) = request(rest) else {
        return;
    };
    match serde_json::from_slice::<Value>(contract) {
        Ok(doc) => {
            if let Some(c) = compile(doc) {
                evaluate(&c, &req, body);
            }
        }
        Err(_) => BUILT_IN.with(|built| {
            let pick = contract.first().map_or(0, |b| usize::from(*b));
            if let Some(c) = built.get(pick % built.len()) {
                evaluate(c, &req, body);
            }
        }),
    }
});
