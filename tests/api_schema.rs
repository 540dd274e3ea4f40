//! api-schema in a real Envoy, with the orders contract of tests/data/orders-openapi.json:
//! declared operations pass unchanged, each class of violation gets its problem, report mode
//! blocks nothing and counts. Responses: the echo upstream answers with a chosen status and
//! body (`x-echo-status`, `x-echo-body`); in `responses: enforce` one the contract does not
//! declare reaches the client as a 502 problem, never as the upstream sent it.

mod support;

use serde_json::{json, Value};
use support::*;

const GOOD_ORDER: &[u8] =
    br#"{"items":[{"sku":"AB-123","qty":2}],"payment":{"kind":"card","token":"tok_12345678"}}"#;
const UUID: &str = "7d3f1c2e-8a4b-4c5d-9e6f-0a1b2c3d4e5f";
const JSON: &[(&str, &str)] = &[("content-type", "application/json")];

fn policy(extra: Value) -> String {
    let doc: Value =
        serde_json::from_str(include_str!("data/orders-openapi.json")).expect("contract");
    let mut p = json!({ "openapi": doc, "reject_undeclared_query": true });
    if let (Some(o), Some(e)) = (p.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    p.to_string()
}

fn start(extra: Value) -> Envoy {
    envoy().wasm("api-schema", policy(extra)).start()
}

#[test]
fn declared_operations_reach_the_upstream_unchanged() {
    let e = start(json!({}));
    let r = e.get("/v1/orders?status=open&status=shipped&limit=10", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = e.get(&format!("/v1/orders/{UUID}"), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = e.post("/v1/orders", JSON, GOOD_ORDER);
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = e.upstream_seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[2].body.as_bytes(), GOOD_ORDER);
}

#[test]
fn oas_paths_unknown_path_is_404_and_undeclared_method_is_405_with_allow() {
    let e = start(json!({}));
    e.get("/v1/admin/debug", &[])
        .assert_problem(404, "api_schema.unknown_path");
    let r = e.request("PUT", &format!("/v1/orders/{UUID}"), JSON, b"{}");
    r.assert_problem(405, "api_schema.method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET, DELETE"));
    assert!(e.upstream_seen().is_empty());
    assert_eq!(
        e.counter("api_schema", "denied", "api_schema.unknown_path"),
        1
    );
}

#[test]
fn oas_parameters_schema_and_undeclared_query() {
    let e = start(json!({}));
    e.get("/v1/orders/42", &[])
        .assert_problem(400, "api_schema.invalid_parameter");
    e.get("/v1/orders?limit=1000", &[])
        .assert_problem(400, "api_schema.invalid_parameter");
    e.get("/v1/orders?admin=true", &[])
        .assert_problem(400, "api_schema.undeclared_query");
    assert!(e.upstream_seen().is_empty());
}

#[test]
fn oas_request_body_media_type_and_schema() {
    let e = start(json!({}));
    e.post("/v1/orders", &[("content-type", "text/plain")], b"x")
        .assert_problem(415, "api_schema.unsupported_media_type");
    // Mass assignment: a readOnly id and an undeclared price.
    let r = e.post(
        "/v1/orders",
        JSON,
        br#"{"id":"o-1","items":[{"sku":"AB-123","qty":2}],"payment":{"kind":"card","token":"tok_12345678"}}"#,
    );
    r.assert_problem(400, "api_schema.invalid_body");
    let detail = r.json()["detail"].as_str().unwrap_or_default().to_string();
    assert!(
        detail.contains("`/id`") && detail.contains("readOnly"),
        "{detail}"
    );
    let r = e.post(
        "/v1/orders",
        JSON,
        br#"{"items":[{"sku":"AB-123","qty":2,"price":0}],"payment":{"kind":"card","token":"tok_secret99"}}"#,
    );
    r.assert_problem(400, "api_schema.invalid_body");
    assert!(!r.text().contains("tok_secret99"), "{}", r.text());
    assert!(e.upstream_seen().is_empty());
}

#[test]
fn oas_request_body_required_unexpected_and_malformed_json() {
    let e = start(json!({}));
    // OpenAPI 3.0 §4.7.13: `requestBody.required`; an operation without one takes no body.
    let no_body = "POST /v1/orders HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    e.raw(no_body.as_bytes())
        .assert_problem(400, "api_schema.body_required");
    e.request("DELETE", &format!("/v1/orders/{UUID}"), JSON, b"{}")
        .assert_problem(400, "api_schema.unexpected_body");
    e.post("/v1/orders", JSON, br#"{"items": ["#)
        .assert_problem(400, "api_schema.invalid_json");
    assert!(e.upstream_seen().is_empty());
    for code in [
        "api_schema.body_required",
        "api_schema.unexpected_body",
        "api_schema.invalid_json",
    ] {
        assert_eq!(e.counter("api_schema", "denied", code), 1, "{code}");
    }
}

#[test]
fn oas_a_required_query_or_header_parameter_that_is_missing_is_400() {
    let doc = json!({"openapi": "3.1.0", "paths": {"/search": {"get": {"parameters": [
        {"name": "q", "in": "query", "required": true, "schema": {"type": "string"}},
        {"name": "X-Tenant", "in": "header", "required": true, "schema": {"type": "string"}}]}}}});
    let e = envoy()
        .wasm("api-schema", json!({"openapi": doc}).to_string())
        .start();
    let r = e.get("/search?q=a", &[("x-tenant", "t1")]);
    assert_eq!(r.status, 200, "{}", r.text());
    e.get("/search", &[("x-tenant", "t1")])
        .assert_problem(400, "api_schema.missing_parameter");
    e.get("/search?q=a", &[])
        .assert_problem(400, "api_schema.missing_parameter");
    assert_eq!(e.upstream_seen().len(), 1);
    assert_eq!(
        e.counter("api_schema", "denied", "api_schema.missing_parameter"),
        2
    );
}

#[test]
fn report_mode_blocks_nothing_and_counts() {
    let e = start(json!({"mode": "report"}));
    let r = e.get("/v1/shadow-endpoint", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = e.post("/v1/orders", JSON, br#"{"items":[]}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(e.upstream_seen().len(), 2);
    assert_eq!(
        e.counter("api_schema", "reported", "api_schema.unknown_path"),
        1
    );
    assert_eq!(
        e.counter("api_schema", "reported", "api_schema.invalid_body"),
        1
    );
}

#[test]
fn invalid_contract_is_refused_at_load() {
    let bad = json!({"openapi": {"openapi": "3.0.3", "paths": {"/t": {"get": {"parameters": [
        {"$ref": "https://evil.example/p.json"}]}}}}});
    let log = envoy().wasm("api-schema", bad).start_expect_exit();
    assert!(log.contains("remote reference"), "{log}");
}

#[test]
fn inside_guard_api_schema_chains_with_content_type() {
    let doc: Value =
        serde_json::from_str(include_str!("data/orders-openapi.json")).expect("contract");
    let p = json!({
        "chain": ["api_schema", "content_type"],
        "api_schema": {"openapi": doc},
        "content_type": {"default": {"allow": ["application/json"], "allow_empty_body": true}}
    });
    let e = envoy().wasm("guard", p).start();
    let r = e.post("/v1/orders", JSON, GOOD_ORDER);
    assert_eq!(r.status, 200, "{}", r.text());
    e.get("/v1/shadow", &[])
        .assert_problem(404, "api_schema.unknown_path");
    e.post("/v1/orders", JSON, br#"{"items":[]}"#)
        .assert_problem(400, "api_schema.invalid_body");
    assert_eq!(e.upstream_seen().len(), 1);
}

const ORDER: &str = r#"{"id":"7d3f1c2e-8a4b-4c5d-9e6f-0a1b2c3d4e5f","items":[{"sku":"AB-123","qty":2}],"payment":{"kind":"card","token":"tok_12345678"}}"#;

/// Headers that make the echo upstream answer `status` with `body` as JSON, plus a header the
/// client must not see when the response is replaced.
fn answer<'a>(status: &'a str, body: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("x-echo-status", status),
        ("x-echo-content-type", "application/json"),
        ("x-echo-body", body),
        ("x-echo-header", "x-upstream-secret: db-7.internal"),
    ]
}

/// The 502 a replaced response is: the problem, none of the upstream's body or headers.
fn assert_replaced(r: &Response, code: &str, upstream_text: &str) {
    r.assert_problem(502, code);
    assert!(!r.text().contains(upstream_text), "{}", r.text());
    assert_eq!(r.header("x-upstream-secret"), None, "{:?}", r.headers);
}

#[test]
fn oas_responses_declared_response_passes_unchanged() {
    let e = start(json!({"responses": "enforce"}));
    let r = e.get(&format!("/v1/orders/{UUID}"), &answer("200", ORDER));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), ORDER);
    assert_eq!(r.header("x-upstream-secret"), Some("db-7.internal"));
}

#[test]
fn oas_responses_undeclared_status_is_502_problem_in_enforce() {
    let e = start(json!({"responses": "enforce"}));
    let trace = r#"{"error":"NullPointerException at OrderDao.java:42"}"#;
    let r = e.get(&format!("/v1/orders/{UUID}"), &answer("500", trace));
    assert_replaced(&r, "api_schema.undeclared_status", "OrderDao");
    assert_eq!(e.upstream_seen().len(), 1);
    assert_eq!(
        e.counter("api_schema", "denied", "api_schema.undeclared_status"),
        1
    );
}

#[test]
fn oas_responses_write_only_password_in_a_response_is_502() {
    // The upstream echoes the new user back, password included (x-echo-status: the request
    // body becomes the response body).
    let e = start(json!({"responses": "enforce"}));
    let user = br#"{"email":"a@example.com","password":"correct horse battery"}"#;
    let mut h = JSON.to_vec();
    h.extend([
        ("x-echo-status", "201"),
        ("x-echo-content-type", "application/json"),
    ]);
    let r = e.post("/v1/users", &h, user);
    assert_replaced(&r, "api_schema.write_only_in_response", "horse");
    let detail = r.json()["detail"].as_str().unwrap_or_default().to_string();
    assert!(detail.contains("`/password`"), "{detail}");
    // Without the password the same answer is what the contract declares.
    let r = e.post(
        "/v1/users",
        &[
            ("content-type", "application/json"),
            ("x-echo-status", "201"),
            ("x-echo-content-type", "application/json"),
            ("x-echo-body", r#"{"email":"a@example.com"}"#),
        ],
        user,
    );
    assert_eq!(r.status, 201, "{}", r.text());
}

/// RFC 9110 §8.4: a body is checked as decoded; one its content-encoding does not decode
/// cannot be checked, so enforce fails closed.
#[test]
fn rfc9110_8_4_a_response_its_encoding_does_not_decode_is_502() {
    let e = start(json!({"responses": "enforce"}));
    let mut h = answer("200", ORDER);
    h.push(("x-echo-header", "content-encoding: gzip"));
    let r = e.get(&format!("/v1/orders/{UUID}"), &h);
    assert_replaced(&r, "api_schema.response_undecodable", "items");
    assert_eq!(
        e.counter("api_schema", "denied", "api_schema.response_undecodable"),
        1
    );
}

#[test]
fn oas_responses_body_not_matching_its_schema_is_502() {
    let e = start(json!({"responses": "enforce"}));
    let wrong = r#"{"id":"7d3f1c2e-8a4b-4c5d-9e6f-0a1b2c3d4e5f","items":"internal-sku-list"}"#;
    let r = e.get(&format!("/v1/orders/{UUID}"), &answer("200", wrong));
    assert_replaced(&r, "api_schema.invalid_response_body", "internal-sku-list");
    // A media type the response does not declare.
    let mut h = answer("200", "<html>debug</html>");
    h[1] = ("x-echo-content-type", "text/html");
    let r = e.get(&format!("/v1/orders/{UUID}"), &h);
    assert_replaced(&r, "api_schema.undeclared_media_type", "debug");
}

#[test]
fn oas_responses_too_large_to_check_fails_closed_in_enforce() {
    let e = start(json!({"responses": "enforce", "max_body_bytes": 64}));
    let r = e.get(&format!("/v1/orders/{UUID}"), &answer("200", ORDER));
    assert_replaced(&r, "api_schema.response_too_large", "tok_12345678");
}

#[test]
fn oas_responses_report_passes_the_upstream_response_and_counts() {
    let e = start(json!({"responses": "report"}));
    let trace = r#"{"error":"NullPointerException"}"#;
    let r = e.get(&format!("/v1/orders/{UUID}"), &answer("500", trace));
    assert_eq!(r.status, 500);
    assert_eq!(r.text(), trace);
    let r = e.post(
        "/v1/users",
        &[
            ("content-type", "application/json"),
            ("x-echo-status", "201"),
            ("x-echo-content-type", "application/json"),
        ],
        br#"{"email":"a@example.com","password":"correct horse battery"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(r.text().contains("horse"));
    assert_eq!(
        e.counter("api_schema", "reported", "api_schema.undeclared_status"),
        1
    );
    assert_eq!(
        e.counter(
            "api_schema",
            "reported",
            "api_schema.write_only_in_response"
        ),
        1
    );
    assert_eq!(
        e.counter("api_schema", "denied", "api_schema.undeclared_status"),
        0
    );
}

#[test]
fn inside_guard_response_checks_replace_the_response() {
    let doc: Value =
        serde_json::from_str(include_str!("data/orders-openapi.json")).expect("contract");
    let p = json!({
        "chain": ["api_schema", "error_shield"],
        "api_schema": {"openapi": doc, "responses": "enforce"},
        "error_shield": {}
    });
    let e = envoy().wasm("guard", p).start();
    let r = e.get(&format!("/v1/orders/{UUID}"), &answer("200", ORDER));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), ORDER);
    let r = e.post(
        "/v1/users",
        &[
            ("content-type", "application/json"),
            ("x-echo-status", "201"),
            ("x-echo-content-type", "application/json"),
        ],
        br#"{"email":"a@example.com","password":"correct horse battery"}"#,
    );
    assert_replaced(&r, "api_schema.write_only_in_response", "horse");
    let r = e.get(
        &format!("/v1/orders/{UUID}"),
        &answer("503", r#"{"e":"OrderDao"}"#),
    );
    assert_replaced(&r, "api_schema.undeclared_status", "OrderDao");
    assert_eq!(
        e.counter("guard", "denied", "api_schema.write_only_in_response"),
        1
    );
}

// ----- portcullis_operation_violations_total (issue #20: find the shadow APIs in report mode) -----

/// The orders contract with `operationId`s on two operations (one with dots, `.operation.` even,
/// which the wasm stat name's tag regexes must keep whole); the others are labelled
/// `METHOD /template`.
fn policy_with_ids(extra: Value) -> Value {
    let mut doc: Value =
        serde_json::from_str(include_str!("data/orders-openapi.json")).expect("contract");
    doc["paths"]["/orders"]["post"]["operationId"] = json!("createOrder");
    doc["paths"]["/orders"]["get"]["operationId"] = json!("orders.operation.list");
    let mut p = json!({ "openapi": doc, "reject_undeclared_query": true });
    if let (Some(o), Some(e)) = (p.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    p
}

#[test]
fn report_mode_counts_each_violation_by_operation_and_undeclared_requests_under_undeclared() {
    let e = envoy()
        .wasm("api-schema", policy_with_ids(json!({"mode": "report"})))
        .start();
    // Shadow APIs: an undeclared path, an undeclared method. Nothing is blocked.
    for _ in 0..2 {
        assert_eq!(e.get("/v1/shadow-zq7x/export", &[]).status, 200);
    }
    let r = e.request("PATCH", &format!("/v1/orders/{UUID}"), JSON, b"{}");
    assert_eq!(r.status, 200, "{}", r.text());
    // Violations of declared operations: a body, a parameter, a query.
    let r = e.post("/v1/orders", JSON, br#"{"items":[]}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(e.get("/v1/orders/zq8y", &[]).status, 200);
    assert_eq!(e.get("/v1/orders?limit=1000", &[]).status, 200);
    // A response violation, reported under the operation its request matched.
    let r = e.get(&format!("/v1/orders/{UUID}"), &answer("500", r#"{"e":1}"#));
    assert_eq!(r.status, 500);
    assert_eq!(e.upstream_seen().len(), 7);

    let op = |operation: &str, code: &str| {
        e.operation_counter("api_schema", operation, "reported", code)
    };
    assert_eq!(op("undeclared", "api_schema.unknown_path"), 2);
    assert_eq!(op("undeclared", "api_schema.method_not_allowed"), 1);
    assert_eq!(op("createOrder", "api_schema.invalid_body"), 1);
    assert_eq!(
        op("GET /orders/{id}", "api_schema.invalid_parameter"),
        1,
        "the template as the contract writes it"
    );
    assert_eq!(
        op("orders.operation.list", "api_schema.invalid_parameter"),
        1
    );
    assert_eq!(op("GET /orders/{id}", "api_schema.undeclared_status"), 1);
    assert_eq!(
        e.operation_counter(
            "api_schema",
            "undeclared",
            "denied",
            "api_schema.unknown_path"
        ),
        0
    );
    // portcullis_requests_total is as it was.
    assert_eq!(
        e.counter("api_schema", "reported", "api_schema.unknown_path"),
        2
    );
    assert_eq!(
        e.counter("api_schema", "reported", "api_schema.invalid_parameter"),
        2
    );

    // Bounded: neither the raw path, the id sent, nor anything but the contract's labels.
    for page in ["/stats", "/stats/prometheus"] {
        let text = e.admin_get(page).text();
        for raw in ["zq7x", "zq8y", UUID, "PATCH"] {
            assert!(!text.contains(raw), "{raw} in {page}");
        }
        assert!(text.contains("operation_violations_total"), "{page}");
    }
    let prom = e.admin_get("/stats/prometheus").text();
    let mut labels: Vec<&str> = prom
        .lines()
        .filter(|l| l.contains("portcullis_operation_violations_total{"))
        .filter_map(|l| l.split("operation=\"").nth(1)?.split('"').next())
        .collect();
    labels.sort();
    labels.dedup();
    assert_eq!(
        labels,
        [
            "GET /orders/{id}",
            "createOrder",
            "orders.operation.list",
            "undeclared"
        ],
        "{prom}"
    );
}

#[test]
fn enforce_mode_counts_denials_by_operation_and_other_modules_count_none() {
    let e = envoy()
        .wasm("api-schema", policy_with_ids(json!({})))
        .start();
    e.get("/v1/shadow", &[])
        .assert_problem(404, "api_schema.unknown_path");
    e.post("/v1/orders", &[("content-type", "text/plain")], b"x")
        .assert_problem(415, "api_schema.unsupported_media_type");
    assert_eq!(
        e.operation_counter(
            "api_schema",
            "undeclared",
            "denied",
            "api_schema.unknown_path"
        ),
        1
    );
    assert_eq!(
        e.operation_counter(
            "api_schema",
            "createOrder",
            "denied",
            "api_schema.unsupported_media_type"
        ),
        1
    );
    // Allowed requests are not violations.
    assert_eq!(e.post("/v1/orders", JSON, GOOD_ORDER).status, 200);
    let prom = e.admin_get("/stats/prometheus").text();
    assert!(
        !prom
            .lines()
            .any(|l| l.contains("operation_violations_total{") && l.contains("\"ok\"")),
        "{prom}"
    );
}

#[test]
fn inside_guard_violations_count_by_operation_under_module_guard() {
    let p = json!({
        "chain": ["content_type", "api_schema"],
        "api_schema": policy_with_ids(json!({})),
        "content_type": {"default": {"allow": ["application/json"], "allow_empty_body": true}}
    });
    let e = envoy().wasm("guard", p).start();
    e.post("/v1/orders", JSON, br#"{"items":[]}"#)
        .assert_problem(400, "api_schema.invalid_body");
    // content_type's own denial names no operation.
    e.post("/v1/orders", &[("content-type", "text/plain")], b"x")
        .assert_problem(415, "content_type.unsupported");
    assert_eq!(
        e.operation_counter("guard", "createOrder", "denied", "api_schema.invalid_body"),
        1
    );
    let prom = e.admin_get("/stats/prometheus").text();
    let lines = prom
        .lines()
        .filter(|l| l.contains("operation_violations_total{"))
        .filter(|l| !l.ends_with(" 0"))
        .count();
    assert_eq!(lines, 1, "{prom}");
}
