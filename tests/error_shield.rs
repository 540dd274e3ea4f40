//! error-shield and alerting in a real Envoy.

mod support;

use std::time::Duration;

use support::*;

const JAVA_TRACE: &str = "java.lang.IllegalStateException: order 42\n\tat com.acme.orders.OrderService.place(OrderService.java:42)\n\tat com.acme.orders.Api.post(Api.java:17)\n";
const PY_TRACE: &str = "Traceback (most recent call last):\n  File \"/srv/app/views.py\", line 12, in place\nKeyError: 'sku'\n";

/// Ask the echo upstream to answer with `status`, `body` and extra headers.
fn scripted(
    e: &Envoy,
    status: u16,
    content_type: &str,
    body: &str,
    extra: &[(&str, &str)],
) -> Response {
    let status = status.to_string();
    let mut h = vec![
        ("x-echo-status", status.as_str()),
        ("x-echo-content-type", content_type),
    ];
    h.extend_from_slice(extra);
    e.post("/orders", &h, body.as_bytes())
}

#[test]
fn a_500_with_a_java_stack_trace_reaches_the_client_as_clean_problem_json() {
    let e = envoy().wasm("error-shield", "{}").start();
    let r = scripted(
        &e,
        500,
        "text/plain",
        JAVA_TRACE,
        &[("x-request-id", "req-42")],
    );
    assert_eq!(r.status, 500);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let body = r.json();
    assert_eq!(body["code"], "error_shield.status");
    assert_eq!(body["request_id"], "req-42");
    assert!(
        !r.text().contains("java") && !r.text().contains("OrderService"),
        "{}",
        r.text()
    );
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str())
    );
    assert_eq!(
        e.counter("error_shield", "replaced", "error_shield.status"),
        1
    );
}

#[test]
fn status_map_turns_a_502_into_a_503() {
    let e = envoy()
        .wasm(
            "error-shield",
            r#"{"default": {"status_map": {"502": 503}}}"#,
        )
        .start();
    let r = scripted(
        &e,
        502,
        "text/html",
        "<h1>upstream 10.2.3.4:8080 refused</h1>",
        &[],
    );
    assert_eq!(r.status, 503);
    assert!(!r.text().contains("10.2.3.4"));
}

#[test]
fn a_200_with_a_python_traceback_in_report_mode_passes_and_is_counted() {
    let e = envoy()
        .wasm(
            "error-shield",
            r#"{"default": {"leaks": {"stack_trace": "report"}}}"#,
        )
        .start();
    let r = scripted(&e, 200, "text/plain", PY_TRACE, &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), PY_TRACE, "report mode must not touch the body");
    assert_eq!(
        e.counter("error_shield", "reported", "error_shield.stack_trace"),
        1
    );
    let log = e.log();
    assert!(
        log.contains(
            r#""event":"report","module":"error_shield","code":"error_shield.stack_trace""#
        ),
        "{log}"
    );
}

#[test]
fn a_200_with_a_stack_trace_is_scrubbed_by_default() {
    let e = envoy().wasm("error-shield", "{}").start();
    let r = scripted(
        &e,
        200,
        "application/json",
        &format!("{{\"error\": {JAVA_TRACE:?}}}"),
        &[],
    );
    r.assert_problem(500, "error_shield.stack_trace");
}

#[test]
fn fingerprinting_headers_are_gone() {
    let e = envoy().wasm("error-shield", "{}").start();
    let extra = [
        ("x-echo-header", "server: Apache/2.2.14 (Ubuntu)"),
        ("x-echo-header", "x-powered-by: PHP/5.3.2"),
        ("x-echo-header", "x-debug-token: abc"),
    ];
    let r = scripted(&e, 200, "application/json", r#"{"ok":true}"#, &extra);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), r#"{"ok":true}"#);
    for h in ["server", "x-powered-by", "x-debug-token"] {
        assert_eq!(r.header(h), None, "{h} leaked: {:?}", r.headers);
    }
}

#[test]
fn a_body_beyond_the_scan_limit_passes_unchanged_and_is_counted() {
    let e = envoy()
        .wasm("error-shield", r#"{"default": {"max_scan_bytes": 64}}"#)
        .start();
    let big = format!("{}{JAVA_TRACE}", "x".repeat(5000));
    let r = scripted(&e, 200, "text/plain", &big, &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), big, "never truncated");
    assert_eq!(
        e.counter("error_shield", "reported", "response.too_large_to_inspect"),
        1
    );
}

/// Review finding: a 5xx page over `max_scan_bytes` passed unchanged, stack trace and all.
#[test]
fn a_replaced_status_beyond_the_scan_limit_is_still_replaced() {
    let e = envoy()
        .wasm("error-shield", r#"{"default": {"max_scan_bytes": 64}}"#)
        .start();
    let big = format!("{}{JAVA_TRACE}", "x".repeat(5000));
    let extra = [("x-echo-header", "server: Apache/2.2.14 (Ubuntu)")];
    let r = scripted(&e, 500, "text/plain", &big, &extra);
    r.assert_problem(500, "error_shield.status");
    assert!(!r.text().contains("at com."), "{}", r.text());
    assert_eq!(r.header("server").filter(|s| s.contains("Apache")), None);
    assert_eq!(
        e.counter("error_shield", "denied", "error_shield.status"),
        1
    );
}

#[test]
fn a_burst_of_denials_sends_exactly_one_alert_per_cooldown() {
    let hook = EchoServer::start("127.0.0.1:0").unwrap();
    let alerts = r#"{"alerts": {"cluster": "alerts", "path": "/hooks/portcullis", "threshold": 5,
                                "window_secs": 60, "cooldown_secs": 3600}}"#;
    let e = envoy()
        .cluster("alerts", hook.addr)
        .wasm("content-type", "{}")
        .wasm("error-shield", alerts)
        .start();
    // Let error-shield's first tick turn recording on.
    std::thread::sleep(Duration::from_millis(1500));
    for _ in 0..12 {
        e.post("/orders", &[("content-type", "text/plain")], b"x")
            .assert_problem(415, "content_type.unsupported");
    }
    eventually(10, || !hook.seen().is_empty());
    // More ticks pass: the cooldown holds it to one.
    std::thread::sleep(Duration::from_millis(2500));
    let seen = hook.seen();
    assert_eq!(seen.len(), 1, "{seen:?}\n{}", e.log());
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/hooks/portcullis");
    let body: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(body["alert"], "portcullis.denials");
    assert!(body["count"].as_u64().unwrap() > 5, "{body}");
    assert_eq!(body["top_clients"][0][0], "127.0.0.1", "{body}");
    assert!(
        body["codes"]["content_type.unsupported"].as_u64().unwrap() > 5,
        "{body}"
    );
}

#[test]
fn the_webhook_being_down_changes_no_verdict() {
    let e = envoy()
        .cluster("alerts", "127.0.0.1:9".parse().unwrap())
        .wasm("content-type", "{}")
        .wasm(
            "error-shield",
            r#"{"alerts": {"cluster": "alerts", "path": "/h", "threshold": 1, "window_secs": 60}}"#,
        )
        .start();
    std::thread::sleep(Duration::from_millis(1500));
    for _ in 0..5 {
        e.post("/orders", &[("content-type", "text/plain")], b"x")
            .assert_problem(415, "content_type.unsupported");
    }
    assert!(
        e.wait_for_log("portcullis alert not delivered", 10),
        "{}",
        e.log()
    );
    let r = e.post("/orders", &[("content-type", "application/json")], b"{}");
    assert_eq!(r.status, 200);
    e.post("/orders", &[("content-type", "text/plain")], b"x")
        .assert_problem(415, "content_type.unsupported");
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Ask the echo upstream for a 200 with this (binary) body and these extra headers.
fn scripted_bytes(e: &Envoy, content_type: &str, body: &[u8], extra: &[(&str, &str)]) -> Response {
    let mut h = vec![
        ("x-echo-status", "200"),
        ("x-echo-content-type", content_type),
    ];
    h.extend_from_slice(extra);
    e.post("/orders", &h, body)
}

#[test]
fn a_leak_in_a_response_header_value_is_removed_and_counted() {
    let e = envoy().wasm("error-shield", "{}").start();
    let extra = [
        (
            "x-echo-header",
            "x-db-error: ORA-00942: table or view does not exist",
        ),
        ("x-echo-header", "x-upstream: orders.prod.svc.cluster.local"),
    ];
    let r = scripted(&e, 200, "application/json", r#"{"ok":true}"#, &extra);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-db-error"), None, "{:?}", r.headers);
    // internal_host is report by default: kept, counted.
    assert_eq!(
        r.header("x-upstream"),
        Some("orders.prod.svc.cluster.local")
    );
    assert_eq!(
        e.counter("error_shield", "reported", "error_shield.sql_error"),
        1
    );
    assert_eq!(
        e.counter("error_shield", "reported", "error_shield.internal_host"),
        1
    );
}

#[test]
fn a_gzip_body_with_a_stack_trace_is_decoded_and_scrubbed() {
    let e = envoy().wasm("error-shield", "{}").start();
    let extra = [("x-echo-header", "content-encoding: gzip")];
    let r = scripted_bytes(&e, "text/plain", &gzip(JAVA_TRACE.as_bytes()), &extra);
    r.assert_problem(500, "error_shield.stack_trace");
    assert_eq!(r.header("content-encoding"), None);
    let clean = gzip(br#"{"ok":true}"#);
    let r = scripted_bytes(&e, "application/json", &clean, &extra);
    assert_eq!((r.status, &r.body), (200, &clean), "passes still encoded");
}

#[test]
fn a_gzip_compression_bomb_is_scrubbed() {
    let e = envoy().wasm("error-shield", "{}").start();
    let extra = [("x-echo-header", "content-encoding: gzip")];
    let bomb = gzip(&vec![b'a'; 16 << 20]);
    let r = scripted_bytes(&e, "text/plain", &bomb, &extra);
    r.assert_problem(500, "error_shield.compression_bomb");
}

#[test]
fn a_brotli_body_is_reported_as_undecodable() {
    let e = envoy().wasm("error-shield", "{}").start();
    let extra = [("x-echo-header", "content-encoding: br")];
    let r = scripted_bytes(&e, "text/plain", b"\x0b\x02\x80leak", &extra);
    assert_eq!(r.status, 200);
    assert_eq!(
        e.counter("error_shield", "reported", "error_shield.undecodable"),
        1
    );
}

#[test]
fn a_leak_in_the_first_max_scan_bytes_of_a_larger_body_denies_it() {
    let e = envoy()
        .wasm("error-shield", r#"{"default": {"max_scan_bytes": 1024}}"#)
        .start();
    let big = format!("{JAVA_TRACE}{}", "x".repeat(20_000));
    let r = scripted(&e, 200, "text/plain", &big, &[]);
    r.assert_problem(500, "error_shield.stack_trace");
    assert!(!r.text().contains("OrderService"), "{}", r.text());
    // The next request is served normally.
    let r = scripted(&e, 200, "text/plain", "fine", &[]);
    assert_eq!((r.status, r.text().as_str()), (200, "fine"));
}

#[test]
fn a_json_link_and_panic_prose_pass_with_file_path_and_stack_trace_scrubbing() {
    let policy = r#"{"default": {"leaks": {"file_path": "scrub", "stack_trace": "scrub"}}}"#;
    let e = envoy().wasm("error-shield", policy).start();
    let body = "{\"self\": \"/app/orders/42\", \"note\": \"the old build would panic: \\nfixed\"}";
    let r = scripted(&e, 200, "application/json", body, &[]);
    assert_eq!((r.status, r.text().as_str()), (200, body));
}

#[test]
fn guard_runs_the_same_leak_detection_gzip_included() {
    let policy = r#"{"chain": ["error_shield"], "error_shield": {}}"#;
    let e = envoy().wasm("guard", policy).start();
    let extra = [("x-echo-header", "content-encoding: gzip")];
    let sql = b"System.Data.SqlClient.SqlException (0x80131904): Incorrect syntax near 'x'.";
    let r = scripted_bytes(&e, "text/plain", &gzip(sql), &extra);
    r.assert_problem(500, "error_shield.sql_error");
    let r = scripted(
        &e,
        200,
        "application/json",
        r#"{"self":"/app/orders/42"}"#,
        &[],
    );
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, r#"{"self":"/app/orders/42"}"#)
    );
}
