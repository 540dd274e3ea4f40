//! content-type in a real Envoy: what the client gets and what the upstream saw.

mod support;

use support::*;

const POLICY: &str = r#"{
  "routes": [
    {"match": {"exact": "/login", "methods": ["POST"]}, "allow": ["application/x-www-form-urlencoded"]},
    {"match": {"prefix": "/ping"}, "allow_empty_body": true}
  ],
  "default": {"allow": ["application/json", "application/*+json"], "max_body_bytes": 1024,
              "json_max_depth": 8}
}"#;

fn start() -> Envoy {
    envoy().wasm("content-type", POLICY).start()
}

#[test]
fn allowed_json_reaches_the_upstream_unchanged() {
    let e = start();
    let body = br#"{"order": [1, 2, {"x": "y"}]}"#;
    let r = e.post(
        "/orders",
        &[("content-type", "application/json; charset=utf-8")],
        body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = e.upstream_seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body.as_bytes(), body);
    assert_eq!(
        seen[0].header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(e.counter("content_type", "allowed", "ok"), 1);
}

#[test]
fn disallowed_type_is_415_problem_json_and_the_upstream_sees_nothing() {
    let e = start();
    let r = e.post("/orders", &[("content-type", "text/plain")], b"hello");
    r.assert_problem(415, "content_type.unsupported");
    assert_eq!(
        r.header("accept-post"),
        Some("application/json, application/*+json")
    );
    assert_eq!(r.json()["title"], "Unsupported Media Type");
    assert!(
        r.json()["request_id"].is_string(),
        "Envoy's x-request-id is echoed: {}",
        r.text()
    );
    assert!(e.upstream_seen().is_empty());
    assert_eq!(
        e.counter("content_type", "denied", "content_type.unsupported"),
        1
    );
    let log = e.log();
    assert!(
        log.contains(r#""event":"deny","module":"content_type","code":"content_type.unsupported","status":415,"method":"POST","path":"/orders","route":"default""#),
        "{log}"
    );
}

#[test]
fn malformed_json_is_400_body_mismatch() {
    let e = start();
    let r = e.post(
        "/orders",
        &[("content-type", "application/json")],
        br#"{"a": "#,
    );
    r.assert_problem(400, "content_type.body_mismatch");
    let r = e.post(
        "/orders",
        &[("content-type", "application/json")],
        "[".repeat(9).as_bytes(),
    );
    r.assert_problem(400, "content_type.body_mismatch");
    assert!(e.upstream_seen().is_empty());
    assert_eq!(
        e.counter("content_type", "denied", "content_type.body_mismatch"),
        2
    );
}

/// The denial log line carries the detail, so two causes with one code are told apart.
#[test]
fn denial_log_line_carries_the_detail() {
    let e = start();
    let json = [("content-type", "application/json")];
    e.post("/orders", &json, b"")
        .assert_problem(400, "content_type.body_mismatch");
    e.post("/orders", &json, b"{")
        .assert_problem(400, "content_type.body_mismatch");
    for detail in [
        "the body is empty, but application/json was declared",
        "the body is not valid JSON",
    ] {
        let needle = format!(r#""route":"default","detail":"{detail}""#);
        assert!(e.wait_for_log(&needle, 5), "{needle}\n{}", e.log());
    }
}

#[test]
fn body_over_the_limit_is_413_with_or_without_content_length() {
    let e = start();
    let big = format!("[{}1]", "1,".repeat(600));
    let r = e.post(
        "/orders",
        &[("content-type", "application/json")],
        big.as_bytes(),
    );
    r.assert_problem(413, "body.too_large");
    // Chunked: no length up front, the module counts the buffered bytes.
    let chunk = format!("{:x}\r\n{big}\r\n0\r\n\r\n", big.len());
    let raw = format!(
        "POST /orders HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{chunk}"
    );
    e.raw(raw.as_bytes()).assert_problem(413, "body.too_large");
    assert!(e.upstream_seen().is_empty());
    assert_eq!(e.counter("content_type", "denied", "body.too_large"), 2);
}

/// A POST declaring `type` with an empty body, framed in each way HTTP/1.1 allows.
fn empty_bodies(path: &str, media: &str) -> [(&'static str, String); 3] {
    let head = format!("POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: {media}\r\n");
    [
        ("no body", format!("{head}connection: close\r\n\r\n")),
        (
            "content-length: 0",
            format!("{head}content-length: 0\r\nconnection: close\r\n\r\n"),
        ),
        (
            "empty chunked",
            format!("{head}transfer-encoding: chunked\r\nconnection: close\r\n\r\n0\r\n\r\n"),
        ),
    ]
}

#[test]
fn rfc8259_2_empty_body_of_a_checked_type_is_400_however_it_is_framed() {
    let e = start();
    let cases = [
        ("/orders", "application/json"),
        ("/orders", "application/merge-patch+json"),
        ("/login", "application/x-www-form-urlencoded"),
    ];
    for (path, media) in cases {
        for (framing, raw) in empty_bodies(path, media) {
            let r = e.raw(raw.as_bytes());
            assert_eq!(r.status, 400, "{media}, {framing}: {}", r.text());
            r.assert_problem(400, "content_type.body_mismatch");
        }
    }
    assert!(e.upstream_seen().is_empty());
    assert_eq!(
        e.counter("content_type", "denied", "content_type.body_mismatch"),
        9
    );
}

#[test]
fn allow_empty_body_passes_an_empty_body_however_it_is_framed() {
    let e = start();
    for (framing, raw) in empty_bodies("/ping", "application/json") {
        let r = e.raw(raw.as_bytes());
        assert_eq!(r.status, 200, "{framing}: {}", r.text());
    }
    assert_eq!(e.upstream_seen().len(), 3);
    // A body that is there is still checked on that route.
    e.post("/ping", &[("content-type", "application/json")], b"{")
        .assert_problem(400, "content_type.body_mismatch");
}

#[test]
fn get_without_body_passes() {
    let e = start();
    let r = e.get("/orders?page=2", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(e.upstream_seen()[0].path, "/orders?page=2");
}

#[test]
fn duplicate_content_type_is_415() {
    let e = start();
    let h = [
        ("content-type", "application/json"),
        ("content-type", "application/json"),
    ];
    e.post("/orders", &h, b"{}")
        .assert_problem(415, "content_type.duplicate");
    assert!(e.upstream_seen().is_empty());
}

#[test]
fn missing_content_type_and_bad_charset_are_415() {
    let e = start();
    e.post("/orders", &[], b"{}")
        .assert_problem(415, "content_type.missing");
    let h = [("content-type", "application/json;charset=utf-7")];
    e.post("/orders", &h, b"{}")
        .assert_problem(415, "content_type.charset");
    assert!(e.upstream_seen().is_empty());
}

#[test]
fn route_rules_apply_to_the_normalised_path() {
    let e = start();
    let form = [("content-type", "application/x-www-form-urlencoded")];
    assert_eq!(e.post("/login", &form, b"user=a&pass=b").status, 200);
    // Envoy normalises (normalize_path, merge_slashes) before the module; both must agree.
    assert_eq!(e.post("//./login", &form, b"user=a&pass=b").status, 200);
    e.post("/login", &form, b"user=%zz")
        .assert_problem(400, "content_type.body_mismatch");
    assert_eq!(e.upstream_seen().len(), 2);
}

/// The host's own denial for a target no rule can be matched against: a segment that is only
/// path parameters, empty to servlet containers and an ordinary segment to other servers.
/// (Envoy's `normalize_path` already resolves `/..;/` and `/.;x/` as dot-segments.)
#[test]
fn an_ambiguous_path_parameter_segment_is_400_bad_path() {
    let e = start();
    for target in ["/;x/orders", "/api/;v=2/orders"] {
        e.get(target, &[]).assert_problem(400, "request.bad_path");
    }
    assert!(e.upstream_seen().is_empty());
    assert_eq!(e.counter("content_type", "denied", "request.bad_path"), 2);
    assert_eq!(e.get("/orders;jsessionid=1", &[]).status, 200);
}

#[test]
fn invalid_policy_refuses_to_load_and_envoy_exits_naming_the_field() {
    let log = envoy()
        .wasm(
            "content-type",
            r#"{"routes": [{"match": {"prefix": "/a"}, "allow": ["json"]}]}"#,
        )
        .start_expect_exit();
    assert!(
        log.contains("portcullis content_type: invalid policy: routes[0].allow[0]: `json` is not type/subtype"),
        "{log}"
    );
    assert!(refused_at_load(&log), "{log}");
}

#[test]
fn unknown_policy_field_refuses_to_load() {
    let log = envoy()
        .wasm("content-type", r#"{"default": {"max_body": 10}}"#)
        .start_expect_exit();
    assert!(
        log.contains("invalid policy: default.max_body: unknown field `max_body`"),
        "{log}"
    );
}
