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
fn oas_4_8_14_a_schema_on_a_non_json_request_body_is_refused() {
    // Its bodies would pass unvalidated; a response's is type-checked only (see the responses
    // tests: text/csv).
    let e = config_err(
        json!({"openapi": "3.0.3", "paths": {"/t": {"post": {"requestBody": {"content": {
        "application/xml": {"schema": {"type": "object"}}}}}}}}),
    );
    assert_eq!(
        e.path,
        "openapi.paths./t.post.requestBody.content.application/xml.schema"
    );
    assert!(e.reason.contains("only JSON"), "{}", e.reason);
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

// ----- responses (OpenAPI 3.1 §4.8.16, §4.8.17) -----

fn with(extra: Value) -> ApiSchema {
    configure::<ApiSchema>(policy(extra).as_bytes()).unwrap()
}

fn enforcing() -> ApiSchema {
    with(json!({"responses": "enforce"}))
}

/// The request, then the response headers and (when asked for) its body, through the control.
fn respond(
    c: &ApiSchema,
    method: &str,
    target: &str,
    status: u16,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Verdict {
    let store = MemoryStore::default();
    let env = Env {
        now: SystemTime::UNIX_EPOCH,
        store: &store,
    };
    let req = RequestView::new(method, target, &[]).unwrap();
    let _ = c.on_request(&req, &env);
    let mut all = vec![(":status".to_string(), status.to_string().into_bytes())];
    all.extend(
        headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())),
    );
    let resp = ResponseView {
        status,
        headers: all,
    };
    match c.on_response(&req, &resp, &env) {
        Verdict::NeedBody { max_bytes } => {
            let body = body.map(str::as_bytes).filter(|b| b.len() <= max_bytes);
            c.on_response_body(&req, &resp, body, &env)
        }
        v => v,
    }
}

const ORDER: &str = r#"{"id":"7d3f1c2e-8a4b-4c5d-9e6f-0a1b2c3d4e5f","items":[{"sku":"AB-123","qty":2}],"payment":{"kind":"card","token":"tok_12345678"}}"#;

fn one_order(c: &ApiSchema, status: u16, headers: &[(&str, &str)], body: &str) -> Verdict {
    respond(
        c,
        "GET",
        &format!("/v1/orders/{UUID}"),
        status,
        headers,
        Some(body),
    )
}

#[test]
fn oas_4_8_17_declared_response_passes_and_read_only_is_allowed_in_responses() {
    let c = enforcing();
    assert_eq!(one_order(&c, 200, JSON, ORDER), Verdict::Continue);
}

#[test]
fn oas_4_8_16_undeclared_status_is_502_in_enforce() {
    let c = enforcing();
    let v = respond(&c, "GET", &format!("/v1/orders/{UUID}"), 500, &[], None);
    let d = denial(&v).unwrap();
    assert_eq!((d.0, d.1), (502, "api_schema.undeclared_status"));
    assert!(!d.2.contains("500"), "{}", d.2);
}

#[test]
fn oas_4_8_16_2_exact_code_then_range_then_default() {
    let c = enforcing();
    // `404` exactly (a `$ref` to components.responses: its content is problem+json).
    let problem = r#"{"status":404,"title":"Not Found"}"#;
    let pj = &[("content-type", "application/problem+json")];
    assert_eq!(one_order(&c, 404, pj, problem), Verdict::Continue);
    // `4XX` on GET /orders covers 429.
    let v = respond(&c, "GET", "/v1/orders", 429, pj, Some(problem));
    assert_eq!(v, Verdict::Continue);
    let v = respond(&c, "GET", "/v1/orders", 503, pj, Some(problem));
    assert_eq!(code(&v), Some("api_schema.undeclared_status"));
    // `default` on DELETE covers every other status; 204 carries no body to check.
    let del = format!("/v1/orders/{UUID}");
    assert_eq!(
        respond(&c, "DELETE", &del, 503, pj, Some(problem)),
        Verdict::Continue
    );
    assert_eq!(
        respond(&c, "DELETE", &del, 204, &[], None),
        Verdict::Continue
    );
    // The range applies the response's own schema: a problem without `title` fails it.
    let v = respond(&c, "GET", "/v1/orders", 429, pj, Some(r#"{"status":429}"#));
    assert_eq!(code(&v), Some("api_schema.invalid_response_body"));
}

#[test]
fn oas_4_8_17_response_media_type_must_be_declared() {
    let c = enforcing();
    let v = one_order(&c, 200, &[("content-type", "text/html")], "<h1>hi</h1>");
    let d = denial(&v).unwrap();
    assert_eq!((d.0, d.1), (502, "api_schema.undeclared_media_type"));
    // A body without a Content-Type is not a declared one either; no body at all is fine.
    let v = one_order(&c, 200, &[], ORDER);
    assert_eq!(code(&v), Some("api_schema.undeclared_media_type"));
    assert_eq!(one_order(&c, 200, &[], ""), Verdict::Continue);
    // A non-JSON media type is checked for its type only (its schema is not compiled).
    let csv = &[("content-type", "text/csv")];
    let v = respond(&c, "GET", "/v1/orders/export", 200, csv, Some("a,b\n"));
    assert_eq!(v, Verdict::Continue);
}

#[test]
fn oas_4_7_24_write_only_refused_in_responses() {
    let c = enforcing();
    let user = r#"{"email":"a@example.com","password":"correct horse battery"}"#;
    let v = respond(&c, "POST", "/v1/users", 201, JSON, Some(user));
    let d = denial(&v).unwrap();
    assert_eq!((d.0, d.1), (502, "api_schema.write_only_in_response"));
    assert!(
        d.2.contains("`/password`") && d.2.contains("writeOnly"),
        "{}",
        d.2
    );
    assert!(!d.2.contains("horse"), "the value is never echoed: {}", d.2);
}

#[test]
fn oas_4_7_24_write_only_exempt_from_required_in_responses() {
    // User requires `password`; a response without it is what the contract wants.
    let c = enforcing();
    let v = respond(
        &c,
        "POST",
        "/v1/users",
        201,
        JSON,
        Some(r#"{"email":"a@example.com"}"#),
    );
    assert_eq!(v, Verdict::Continue);
}

#[test]
fn oas_4_7_24_read_only_required_in_responses() {
    // Order requires its readOnly `id` in responses (the request direction exempts it).
    let c = enforcing();
    let no_id =
        r#"{"items":[{"sku":"AB-123","qty":2}],"payment":{"kind":"card","token":"tok_12345678"}}"#;
    let d = denial(&one_order(&c, 200, JSON, no_id)).unwrap();
    assert_eq!(d.1, "api_schema.invalid_response_body");
    assert!(d.2.contains("`/id`") && d.2.contains("required"), "{}", d.2);
}

#[test]
fn response_body_schema_pointer_and_keyword_never_value() {
    let c = enforcing();
    let bad = r#"{"id":"7d3f1c2e-8a4b-4c5d-9e6f-0a1b2c3d4e5f","items":[{"sku":"AB-123","qty":2,"cost":"s3cr3t"}],"payment":{"kind":"card","token":"tok_12345678"}}"#;
    let d = denial(&one_order(&c, 200, JSON, bad)).unwrap();
    assert_eq!((d.0, d.1), (502, "api_schema.invalid_response_body"));
    assert!(
        d.2.contains("`/items/0/cost`") && d.2.contains("additionalProperties"),
        "{}",
        d.2
    );
    assert!(!d.2.contains("s3cr3t"), "{}", d.2);
    let v = one_order(&c, 200, JSON, "{not json");
    assert_eq!(code(&v), Some("api_schema.invalid_response_body"));
}

#[test]
fn response_too_large_to_check_fails_closed_in_enforce() {
    let c = with(json!({"responses": "enforce", "max_body_bytes": 16}));
    let d = denial(&one_order(&c, 200, JSON, ORDER)).unwrap();
    assert_eq!((d.0, d.1), (502, "api_schema.response_too_large"));
    // Report lets it pass (the host counts `response.too_large_to_inspect`).
    let c = with(json!({"responses": "report", "max_body_bytes": 16}));
    assert_eq!(one_order(&c, 200, JSON, ORDER), Verdict::Continue);
}

#[test]
fn rfc9110_8_4_gzip_response_is_decoded_before_validation() {
    use std::io::Write;
    let c = enforcing();
    let gz = |s: &str| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(s.as_bytes()).unwrap();
        e.finish().unwrap()
    };
    let req = RequestView::new("GET", &format!("/v1/orders/{UUID}"), &[]).unwrap();
    let store = MemoryStore::default();
    let env = Env {
        now: SystemTime::UNIX_EPOCH,
        store: &store,
    };
    let _ = c.on_request(&req, &env);
    let resp = ResponseView {
        status: 200,
        headers: vec![
            ("content-type".into(), b"application/json".to_vec()),
            ("content-encoding".into(), b"gzip".to_vec()),
        ],
    };
    assert!(matches!(
        c.on_response(&req, &resp, &env),
        Verdict::NeedBody { .. }
    ));
    let ok = gz(ORDER);
    assert_eq!(
        c.on_response_body(&req, &resp, Some(&ok), &env),
        Verdict::Continue
    );
    let leak = gz(r#"{"email":"a@example.com","password":"x"}"#);
    let v = c.on_response_body(&req, &resp, Some(&leak), &env);
    assert_eq!(code(&v), Some("api_schema.invalid_response_body"));
    let v = c.on_response_body(&req, &resp, Some(b"\x1f\x8bnot gzip"), &env);
    assert_eq!(code(&v), Some("api_schema.response_undecodable"));
}

#[test]
fn responses_report_by_default_and_when_mode_is_report() {
    let default = orders();
    let v = respond(
        &default,
        "GET",
        &format!("/v1/orders/{UUID}"),
        500,
        &[],
        None,
    );
    assert!(
        matches!(v, Verdict::Report(ref r) if r.code == "api_schema.undeclared_status"),
        "{v:?}"
    );
    let c = with(json!({"mode": "report", "responses": "enforce"}));
    let v = one_order(&c, 200, JSON, r#"{"items":"x"}"#);
    assert!(
        matches!(v, Verdict::Report(ref r) if r.code == "api_schema.invalid_response_body"),
        "{v:?}"
    );
}

#[test]
fn responses_off_checks_nothing_and_compiles_nothing() {
    let c = with(json!({"responses": "off"}));
    let v = respond(&c, "GET", &format!("/v1/orders/{UUID}"), 500, &[], None);
    assert_eq!(v, Verdict::Continue);
    // Off: a response schema api-schema could not enforce does not stop the contract loading.
    let doc = json!({"openapi": "3.1.0", "paths": {"/t": {"get": {"responses": {"200": {
        "description": "x", "content": {"application/json": {"schema": {"patternProperties": {}}}}}}}}}});
    let p = json!({"openapi": doc, "responses": "off"}).to_string();
    assert!(configure::<ApiSchema>(p.as_bytes()).is_ok());
    let e = config_err(doc);
    assert!(
        e.path
            .ends_with("responses.200.content.application/json.schema.patternProperties"),
        "{}",
        e.path
    );
}

#[test]
fn responses_of_unmatched_requests_are_not_checked() {
    // A request only reported (unknown path) has no operation to hold its response to.
    let c = with(json!({"mode": "report", "responses": "enforce"}));
    assert_eq!(
        respond(&c, "GET", "/v1/shadow", 500, &[], None),
        Verdict::Continue
    );
}

#[test]
fn config_response_keys_and_modes_refused_with_path() {
    let e = config_err(
        json!({"openapi": "3.0.3", "paths": {"/t": {"get": {"responses": {"2X0": {"description": "x"}}}}}}),
    );
    assert_eq!(e.path, "openapi.paths./t.get.responses.2X0");
    let e = config_err(
        json!({"openapi": "3.0.3", "paths": {"/t": {"get": {"responses": {"200": {"$ref": "#/components/responses/Nope"}}}}}}),
    );
    assert!(e.path.ends_with("responses.200.$ref"), "{}", e.path);
    let e = configure::<ApiSchema>(policy(json!({"responses": "block"})).as_bytes()).unwrap_err();
    assert_eq!(e.path, "responses");
    assert!(e.reason.contains("unknown variant"), "{}", e.reason);
}

// ----- the `operation` label of portcullis_operation_violations_total (issue #20) -----

/// The orders contract with `operationId`s on some operations.
fn with_ids(extra: Value) -> ApiSchema {
    let mut doc: Value = serde_json::from_str(ORDERS).unwrap();
    doc["paths"]["/orders"]["post"]["operationId"] = json!("createOrder");
    doc["paths"]["/orders/{id}"]["delete"]["operationId"] = json!("undeclared");
    let mut p = json!({ "openapi": doc });
    if let (Some(o), Some(e)) = (p.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    configure::<ApiSchema>(p.to_string().as_bytes()).unwrap()
}

fn operation(v: &Verdict) -> Option<&str> {
    match v {
        Verdict::Deny(r) | Verdict::Report(r) => r.operation.as_deref(),
        _ => None,
    }
}

#[test]
fn operation_label_is_the_operation_id() {
    let c = with_ids(json!({}));
    // A body violation (the body phase) and a header-phase one (the media type).
    let v = run(&c, "POST", "/v1/orders", JSON, r#"{"items":[]}"#);
    assert_eq!(code(&v), Some("api_schema.invalid_body"));
    assert_eq!(operation(&v), Some("createOrder"));
    let v = run(
        &c,
        "POST",
        "/v1/orders",
        &[("content-type", "text/plain")],
        "x",
    );
    assert_eq!(code(&v), Some("api_schema.unsupported_media_type"));
    assert_eq!(operation(&v), Some("createOrder"));
}

#[test]
fn operation_label_without_operation_id_is_method_and_template_as_written() {
    let c = with_ids(json!({}));
    // The template as the contract writes it: no server base, `{id}` not the value sent.
    let v = run(&c, "GET", "/v1/orders/42", &[], "");
    assert_eq!(code(&v), Some("api_schema.invalid_parameter"));
    assert_eq!(operation(&v), Some("GET /orders/{id}"));
    let v = run(&c, "GET", "/v1/orders?admin=1&limit=1000", &[], "");
    assert_eq!(operation(&v), Some("GET /orders"));
    // An `operationId` that reads as `undeclared` never mixes with the undeclared requests.
    let v = run(&c, "DELETE", "/v1/orders/42", &[], "");
    assert_eq!(code(&v), Some("api_schema.invalid_parameter"));
    assert_eq!(operation(&v), Some("DELETE /orders/{id}"));
}

#[test]
fn operation_label_of_undeclared_paths_and_methods_is_undeclared_never_the_request() {
    for c in [with_ids(json!({})), with_ids(json!({"mode": "report"}))] {
        let v = run(&c, "GET", "/v1/shadow/7d3f1c2e", &[], "");
        assert!(
            matches!(&v, Verdict::Deny(r) | Verdict::Report(r) if r.code == "api_schema.unknown_path"),
            "{v:?}"
        );
        assert_eq!(operation(&v), Some("undeclared"));
        let v = run(&c, "PATCH", "/v1/orders", JSON, "{}");
        assert!(
            matches!(&v, Verdict::Deny(r) | Verdict::Report(r) if r.code == "api_schema.method_not_allowed"),
            "{v:?}"
        );
        assert_eq!(operation(&v), Some("undeclared"));
    }
}

#[test]
fn operation_label_of_response_violations_is_their_operation() {
    let c = with_ids(json!({"responses": "enforce"}));
    let v = one_order(&c, 500, &[], "");
    assert_eq!(code(&v), Some("api_schema.undeclared_status"));
    assert_eq!(operation(&v), Some("GET /orders/{id}"));
    let v = one_order(&c, 200, JSON, r#"{"id":1}"#);
    assert_eq!(code(&v), Some("api_schema.invalid_response_body"));
    assert_eq!(operation(&v), Some("GET /orders/{id}"));
    // Reported alike.
    let c = with_ids(json!({}));
    let v = respond(&c, "POST", "/v1/orders", 500, &[], None);
    assert!(matches!(&v, Verdict::Report(_)), "{v:?}");
    assert_eq!(operation(&v), Some("createOrder"));
}

#[test]
fn operation_label_from_the_contract_is_made_safe() {
    let doc = json!({"openapi": "3.0.3", "paths": {
        "/a": {"get": {"operationId": "a\"b\nc.", "responses": {"200": {"description": "ok"}}}},
        "/b": {"get": {"operationId": "", "parameters": [
            {"name": "q", "in": "query", "required": true, "schema": {"type": "string"}}]}}}});
    let c = configure::<ApiSchema>(json!({ "openapi": doc }).to_string().as_bytes()).unwrap();
    let v = run(&c, "GET", "/a?x", &[], "");
    assert_eq!(v, Verdict::Continue);
    let v = run(&c, "GET", "/a", &[], "x");
    assert_eq!(operation(&v), Some("a_b_c_"));
    // An empty `operationId` is none.
    let v = run(&c, "GET", "/b", &[], "");
    assert_eq!(code(&v), Some("api_schema.missing_parameter"));
    assert_eq!(operation(&v), Some("GET /b"));
}
