use super::*;
use crate::control::configure;
use crate::store::MemoryStore;
use serde_json::json;
use std::time::SystemTime;

const ORDERS: &str = include_str!("../../../tests/data/orders-openapi.json");

fn policy(extra: Value) -> String {
    let doc: Value = serde_json::from_str(ORDERS).unwrap();
    let mut p = json!({ "openapi": doc });
    if let (Some(o), Some(e)) = (p.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            o.insert(k.clone(), v.clone());
        }
    }
    p.to_string()
}

fn orders() -> ApiSchema {
    configure::<ApiSchema>(policy(json!({})).as_bytes()).unwrap()
}

fn config_err(doc: Value) -> ConfigError {
    configure::<ApiSchema>(json!({ "openapi": doc }).to_string().as_bytes()).unwrap_err()
}

fn run(c: &ApiSchema, method: &str, target: &str, headers: &[(&str, &str)], body: &str) -> Verdict {
    let store = MemoryStore::default();
    let env = Env {
        now: SystemTime::UNIX_EPOCH,
        store: &store,
    };
    let mut req = RequestView::new(method, target, headers).unwrap();
    req.has_body = !body.is_empty();
    match c.on_request(&req, &env) {
        Verdict::NeedBody { max_bytes } => {
            assert!(body.len() <= max_bytes);
            c.on_request_body(&req, body.as_bytes(), &env)
        }
        v => v,
    }
}

fn denial(v: &Verdict) -> Option<(u16, &'static str, String)> {
    match v {
        Verdict::Deny(r) => Some((r.status, r.code, r.detail.clone())),
        _ => None,
    }
}

fn code(v: &Verdict) -> Option<&'static str> {
    denial(v).map(|d| d.1)
}

const JSON: &[(&str, &str)] = &[("content-type", "application/json")];
const UUID: &str = "7d3f1c2e-8a4b-4c5d-9e6f-0a1b2c3d4e5f";
const GOOD_ORDER: &str =
    r#"{"items":[{"sku":"AB-123","qty":2}],"payment":{"kind":"card","token":"tok_12345678"}}"#;

#[test]
fn oas_4_8_8_declared_operations_pass() {
    let c = orders();
    assert_eq!(run(&c, "GET", "/v1/orders", &[], ""), Verdict::Continue);
    assert_eq!(
        run(&c, "GET", &format!("/v1/orders/{UUID}"), &[], ""),
        Verdict::Continue
    );
    assert_eq!(
        run(&c, "POST", "/v1/orders", JSON, GOOD_ORDER),
        Verdict::Continue
    );
}

#[test]
fn oas_4_8_1_servers_url_base_path_is_required() {
    let c = orders();
    assert_eq!(
        code(&run(&c, "GET", "/orders", &[], "")),
        Some("api_schema.unknown_path")
    );
    assert_eq!(
        code(&run(&c, "GET", "/v1x/orders", &[], "")),
        Some("api_schema.unknown_path")
    );
}

#[test]
fn oas_4_8_8_unknown_path_is_404() {
    let c = orders();
    let d = denial(&run(&c, "GET", "/v1/admin", &[], "")).unwrap();
    assert_eq!((d.0, d.1), (404, "api_schema.unknown_path"));
    // A template takes exactly one non-empty segment.
    assert_eq!(
        code(&run(&c, "GET", "/v1/orders/a/b", &[], "")),
        Some("api_schema.unknown_path")
    );
}

#[test]
fn oas_4_8_8_path_matching_runs_on_the_normalised_path() {
    let c = orders();
    assert_eq!(run(&c, "GET", "/v1/./orders", &[], ""), Verdict::Continue);
    assert_eq!(run(&c, "GET", "/v1//%6Frders", &[], ""), Verdict::Continue);
}

#[test]
fn oas_4_8_8_2_concrete_paths_before_templated() {
    // `/orders/export` is concrete: not read as `/orders/{id}` (whose uuid format it would fail).
    let c = orders();
    assert_eq!(
        run(&c, "GET", "/v1/orders/export", &[], ""),
        Verdict::Continue
    );
    // DELETE is declared only on the templated path.
    let v = run(&c, "DELETE", "/v1/orders/export", &[], "");
    assert_eq!(code(&v), Some("api_schema.method_not_allowed"));
}

#[test]
fn rfc9110_15_5_6_undeclared_method_is_405_with_allow() {
    let c = orders();
    let v = run(&c, "PUT", &format!("/v1/orders/{UUID}"), &[], "");
    let Verdict::Deny(r) = v else { panic!("{v:?}") };
    assert_eq!((r.status, r.code), (405, "api_schema.method_not_allowed"));
    assert_eq!(
        r.headers,
        vec![("allow".to_string(), "GET, DELETE".to_string())]
    );
}

#[test]
fn oas_4_8_12_path_parameter_schema_format_uuid() {
    let c = orders();
    let d = denial(&run(&c, "GET", "/v1/orders/42", &[], "")).unwrap();
    assert_eq!((d.0, d.1), (400, "api_schema.invalid_parameter"));
    assert!(d.2.contains("`id`") && d.2.contains("format"), "{}", d.2);
    assert!(!d.2.contains("42"), "the value is never echoed: {}", d.2);
}

#[test]
fn oas_4_8_12_4_query_integer_bounds() {
    let c = orders();
    assert_eq!(
        run(&c, "GET", "/v1/orders?limit=100", &[], ""),
        Verdict::Continue
    );
    for bad in ["limit=0", "limit=101", "limit=ten", "limit=1&limit=2"] {
        let v = run(&c, "GET", &format!("/v1/orders?{bad}"), &[], "");
        assert_eq!(code(&v), Some("api_schema.invalid_parameter"), "{bad}");
    }
}

#[test]
fn oas_4_8_12_4_query_array_form_exploded() {
    let c = orders();
    let ok = run(&c, "GET", "/v1/orders?status=open&status=shipped", &[], "");
    assert_eq!(ok, Verdict::Continue);
    let v = run(&c, "GET", "/v1/orders?status=open&status=lost", &[], "");
    let d = denial(&v).unwrap();
    assert_eq!(d.1, "api_schema.invalid_parameter");
    assert!(d.2.contains("/1") && d.2.contains("enum"), "{}", d.2);
}

#[test]
fn oas_4_8_12_header_parameter_pattern_via_ref() {
    let c = orders();
    let ok = run(
        &c,
        "GET",
        "/v1/orders",
        &[("x-trace-id", "0123456789abcdef")],
        "",
    );
    assert_eq!(ok, Verdict::Continue);
    let v = run(&c, "GET", "/v1/orders", &[("x-trace-id", "nope")], "");
    assert_eq!(code(&v), Some("api_schema.invalid_parameter"));
}

#[test]
fn oas_4_8_12_required_parameter_missing() {
    let doc = json!({"openapi": "3.1.0", "paths": {"/s": {"get": {"parameters": [
        {"name": "q", "in": "query", "required": true, "schema": {"type": "string"}},
        {"name": "session", "in": "cookie", "required": true}
    ]}}}});
    let c = configure::<ApiSchema>(json!({ "openapi": doc }).to_string().as_bytes()).unwrap();
    let v = run(&c, "GET", "/s", &[("cookie", "session=1")], "");
    assert_eq!(code(&v), Some("api_schema.missing_parameter"));
    let v = run(&c, "GET", "/s?q=x", &[], "");
    assert_eq!(code(&v), Some("api_schema.missing_parameter"));
    assert_eq!(
        run(&c, "GET", "/s?q=x", &[("cookie", "session=1")], ""),
        Verdict::Continue
    );
}

#[test]
fn undeclared_query_parameters_refused_when_switched_on() {
    let lax = orders();
    assert_eq!(
        run(&lax, "GET", "/v1/orders?debug=1", &[], ""),
        Verdict::Continue
    );
    let strict =
        configure::<ApiSchema>(policy(json!({"reject_undeclared_query": true})).as_bytes())
            .unwrap();
    let v = run(&strict, "GET", "/v1/orders?limit=5&debug=1", &[], "");
    assert_eq!(code(&v), Some("api_schema.undeclared_query"));
    assert_eq!(
        run(&strict, "GET", "/v1/orders?limit=5", &[], ""),
        Verdict::Continue
    );
}

#[test]
fn oas_4_8_13_request_body_required() {
    let c = orders();
    let v = run(&c, "POST", "/v1/orders", JSON, "");
    assert_eq!(code(&v), Some("api_schema.body_required"));
}

#[test]
fn oas_4_8_13_undeclared_body_refused() {
    let c = orders();
    let v = run(&c, "GET", "/v1/orders", JSON, "{}");
    assert_eq!(code(&v), Some("api_schema.unexpected_body"));
}

#[test]
fn oas_4_8_14_declared_media_types_only() {
    let c = orders();
    let v = run(
        &c,
        "POST",
        "/v1/orders",
        &[("content-type", "text/plain")],
        "x",
    );
    let d = denial(&v).unwrap();
    assert_eq!((d.0, d.1), (415, "api_schema.unsupported_media_type"));
    let v = run(&c, "POST", "/v1/orders", &[], "x");
    assert_eq!(code(&v), Some("api_schema.unsupported_media_type"));
    // Parameters are fine: the content-type module's parser reads them.
    let ok = run(
        &c,
        "POST",
        "/v1/orders",
        &[("content-type", "Application/JSON; charset=utf-8")],
        GOOD_ORDER,
    );
    assert_eq!(ok, Verdict::Continue);
}

#[test]
fn json_body_must_parse() {
    let c = orders();
    let v = run(&c, "POST", "/v1/orders", JSON, "{");
    assert_eq!(code(&v), Some("api_schema.invalid_json"));
}

fn body_failure(c: &ApiSchema, target: &str, body: &str) -> String {
    let d = denial(&run(c, "POST", target, JSON, body)).unwrap();
    assert_eq!((d.0, d.1), (400, "api_schema.invalid_body"), "{}", d.2);
    d.2
}

#[test]
fn json_schema_validation_10_3_2_3_additional_properties_false_mass_assignment() {
    let c = orders();
    let body = r#"{"items":[{"sku":"AB-123","qty":2,"price":0}],"payment":{"kind":"card","token":"tok_12345678"}}"#;
    let d = body_failure(&c, "/v1/orders", body);
    assert!(
        d.contains("`/items/0/price`") && d.contains("additionalProperties"),
        "{d}"
    );
}

#[test]
fn oas_4_7_24_read_only_refused_in_requests() {
    let c = orders();
    let body = r#"{"id":"x","items":[{"sku":"AB-123","qty":2}],"payment":{"kind":"card","token":"tok_12345678"}}"#;
    let d = body_failure(&c, "/v1/orders", body);
    assert!(d.contains("`/id`") && d.contains("readOnly"), "{d}");
}

#[test]
fn json_schema_validation_6_2_minimum_maximum_pointer_never_value() {
    let c = orders();
    let body = r#"{"items":[{"sku":"AB-123","qty":1000}],"payment":{"kind":"card","token":"tok_12345678"}}"#;
    let d = body_failure(&c, "/v1/orders", body);
    assert!(d.contains("`/items/0/qty`") && d.contains("maximum"), "{d}");
    assert!(!d.contains("1000") && !d.contains("tok_"), "{d}");
}

#[test]
fn json_schema_validation_6_5_3_required() {
    let c = orders();
    let d = body_failure(&c, "/v1/orders", r#"{"items":[{"sku":"AB-123","qty":1}]}"#);
    assert!(d.contains("`/payment`") && d.contains("required"), "{d}");
}

#[test]
fn oas_4_7_25_discriminator_as_plain_one_of() {
    let c = orders();
    let invoice =
        r#"{"items":[{"sku":"AB-123","qty":1}],"payment":{"kind":"invoice","vat_id":"DE1"}}"#;
    assert_eq!(
        run(&c, "POST", "/v1/orders", JSON, invoice),
        Verdict::Continue
    );
    let mixed = r#"{"items":[{"sku":"AB-123","qty":1}],"payment":{"kind":"invoice","token":"tok_12345678"}}"#;
    let d = body_failure(&c, "/v1/orders", mixed);
    assert!(d.contains("`/payment`") && d.contains("oneOf"), "{d}");
}

#[test]
fn oas_4_7_24_nullable_3_0() {
    let c = orders();
    let body = r#"{"note":null,"items":[{"sku":"AB-123","qty":1}],"payment":{"kind":"card","token":"tok_12345678"}}"#;
    assert_eq!(run(&c, "POST", "/v1/orders", JSON, body), Verdict::Continue);
    let body = r#"{"note":5,"items":[{"sku":"AB-123","qty":1}],"payment":{"kind":"card","token":"tok_12345678"}}"#;
    assert!(body_failure(&c, "/v1/orders", body).contains("type"));
}

#[test]
fn oas_4_7_24_write_only_required_in_requests() {
    let c = orders();
    let d = body_failure(&c, "/v1/users", r#"{"email":"a@example.com"}"#);
    assert!(d.contains("`/password`"), "{d}");
    let d = body_failure(
        &c,
        "/v1/users",
        r#"{"email":"nope","password":"correct horse battery"}"#,
    );
    assert!(d.contains("format"), "{d}");
}

#[test]
fn json_schema_2020_12_type_arrays_const_and_prefix_items() {
    let doc = json!({"openapi": "3.1.0", "paths": {"/t": {"post": {"requestBody": {"content": {
    "application/json": {"schema": {"type": "object", "properties": {
        "v": {"type": ["string", "null"]},
        "c": {"const": 3},
        "p": {"prefixItems": [{"type": "integer"}, {"type": "string"}], "items": false},
        "n": {"type": "number", "exclusiveMinimum": 0, "multipleOf": 0.5}
    }}}}}}}}});
    let c = configure::<ApiSchema>(json!({ "openapi": doc }).to_string().as_bytes()).unwrap();
    let ok = r#"{"v":null,"c":3,"p":[1,"a"],"n":1.5}"#;
    assert_eq!(run(&c, "POST", "/t", JSON, ok), Verdict::Continue);
    for (bad, kw) in [
        (r#"{"v":1}"#, "type"),
        (r#"{"c":4}"#, "const"),
        (r#"{"p":[1,"a",2]}"#, "false"),
        (r#"{"n":0}"#, "exclusiveMinimum"),
        (r#"{"n":0.7}"#, "multipleOf"),
    ] {
        assert!(body_failure(&c, "/t", bad).contains(kw), "{bad}");
    }
}

#[test]
fn json_schema_recursive_ref_compiles_once() {
    let doc = json!({"openapi": "3.0.3", "paths": {"/t": {"post": {"requestBody": {"content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/Node"}}}}}}},
        "components": {"schemas": {"Node": {"type": "object", "additionalProperties": false,
            "properties": {"children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}}}}}});
    let c = configure::<ApiSchema>(json!({ "openapi": doc }).to_string().as_bytes()).unwrap();
    let ok = r#"{"children":[{"children":[{}]}]}"#;
    assert_eq!(run(&c, "POST", "/t", JSON, ok), Verdict::Continue);
    let d = body_failure(&c, "/t", r#"{"children":[{"children":[{"x":1}]}]}"#);
    assert!(d.contains("`/children/0/children/0/x`"), "{d}");
    // Deeply nested instances are refused, not recursed into without bound (serde_json itself
    // stops at 128 levels: this body is below that, the validator's own bound is hit first).
    let deep = format!("{}{{}}{}", r#"{"children":["#.repeat(60), "]}".repeat(60));
    assert!(body_failure(&c, "/t", &deep).contains("depth"));
}

#[test]
fn config_remote_ref_refused_with_path() {
    let e = config_err(
        json!({"openapi": "3.0.3", "paths": {"/t": {"post": {"requestBody": {"content": {
        "application/json": {"schema": {"$ref": "https://evil.example/s.json"}}}}}}}}),
    );
    assert_eq!(
        e.path,
        "openapi.paths./t.post.requestBody.content.application/json.schema.$ref"
    );
    assert!(e.reason.contains("remote reference"), "{}", e.reason);
}

#[test]
fn config_dangling_ref_refused() {
    let e = config_err(
        json!({"openapi": "3.0.3", "paths": {"/t": {"get": {"parameters": [
        {"$ref": "#/components/parameters/Nope"}]}}}}),
    );
    assert!(e.path.ends_with("parameters[0].$ref"), "{}", e.path);
}

#[test]
fn config_unenforced_keyword_refused_never_ignored() {
    let e = config_err(
        json!({"openapi": "3.1.0", "paths": {"/t": {"post": {"requestBody": {"content": {
        "application/json": {"schema": {"type": "object", "patternProperties": {"^x": {}}}}}}}}}}),
    );
    assert!(e.path.ends_with("schema.patternProperties"), "{}", e.path);
    assert!(e.reason.contains("not enforced"));
    let e = config_err(
        json!({"openapi": "3.0.3", "paths": {"/t": {"get": {"parameters": [
        {"name": "h", "in": "query", "schema": {"type": "string", "format": "hostname"}}]}}}}),
    );
    assert!(e.reason.contains("hostname"));
}

#[test]
fn config_unsupported_styles_and_versions_refused() {
    let e = config_err(json!({"openapi": "2.0", "paths": {}}));
    assert_eq!(e.path, "openapi.openapi");
    let e = config_err(
        json!({"openapi": "3.0.3", "paths": {"/t": {"get": {"parameters": [
        {"name": "a", "in": "query", "style": "pipeDelimited", "schema": {"type": "array"}}]}}}}),
    );
    assert!(e.path.ends_with("parameters[0].style"), "{}", e.path);
    let e = config_err(json!({"openapi": "3.0.3", "paths": {"/t/{a}.{b}": {"get": {}}}}));
    assert!(e.reason.contains("whole segment"));
    let e = config_err(
        json!({"openapi": "3.0.3", "paths": {"/t": {"get": {"parameters": [
        {"name": "a", "in": "path", "required": true}]}}}}),
    );
    assert!(e.reason.contains("not in the template"));
}

#[test]
fn config_unknown_policy_field_refused() {
    let e =
        configure::<ApiSchema>(br#"{"openapi":{"openapi":"3.1.0"},"strict":true}"#).unwrap_err();
    assert!(e.reason.contains("unknown field"), "{}", e.reason);
}

#[test]
fn report_mode_blocks_nothing_and_reports() {
    let c = configure::<ApiSchema>(policy(json!({"mode": "report"})).as_bytes()).unwrap();
    let v = run(&c, "GET", "/v1/shadow", &[], "");
    let Verdict::Report(r) = v else {
        panic!("{v:?}")
    };
    assert_eq!(r.code, "api_schema.unknown_path");
    let body = r#"{"items":[],"payment":{"kind":"card","token":"tok_12345678"}}"#;
    let v = run(&c, "POST", "/v1/orders", JSON, body);
    assert!(
        matches!(v, Verdict::Report(ref r) if r.code == "api_schema.invalid_body"),
        "{v:?}"
    );
}
