use super::*;
use crate::control::configure;
use crate::store::MemoryStore;
use std::time::SystemTime;

fn shield(json: &str) -> ErrorShield {
    configure::<ErrorShield>(json.as_bytes()).unwrap()
}

fn resp(status: u16, headers: &[(&str, &str)]) -> ResponseView {
    ResponseView {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect(),
    }
}

/// Run the response through the shield as the host would.
fn run(s: &ErrorShield, r: &ResponseView, body: &[u8]) -> Verdict {
    let store = MemoryStore::default();
    let env = Env {
        now: SystemTime::UNIX_EPOCH,
        store: &store,
    };
    let req = RequestView::new("GET", "/orders", &[("x-request-id", "req-1")]).unwrap();
    match s.on_response(&req, r, &env) {
        Verdict::NeedBody { max_bytes } if body.len() <= max_bytes => {
            s.on_response_body(&req, r, Some(body), &env)
        }
        Verdict::NeedBody { max_bytes } => {
            s.on_response_body_prefix(&req, r, &body[..max_bytes], &env)
        }
        v => v,
    }
}

fn replaced(v: &Verdict) -> (u16, &'static str, serde_json::Value) {
    let Verdict::ReplaceBody {
        code,
        headers,
        body,
    } = v
    else {
        panic!("not replaced: {v:?}")
    };
    let status = headers
        .iter()
        .find_map(|h| match h {
            HeaderOp::Set(k, v) if k == ":status" => v.parse().ok(),
            _ => None,
        })
        .unwrap();
    (status, code, serde_json::from_slice(body).unwrap())
}

const JAVA: &[u8] =
    b"java.lang.IllegalStateException: boom\n\tat com.acme.Orders.place(Orders.java:42)\n";

#[test]
fn a_5xx_body_is_replaced_by_a_problem_with_the_request_id() {
    let s = shield("{}");
    let v = run(&s, &resp(500, &[("content-type", "text/plain")]), JAVA);
    let (status, code, body) = replaced(&v);
    assert_eq!((status, code), (500, "error_shield.status"));
    assert_eq!(body["request_id"], "req-1");
    assert_eq!(body["title"], "Internal Server Error");
    assert!(!body.to_string().contains("java"), "{body}");
}

#[test]
fn status_map_hides_501_and_502_details() {
    let s = shield(r#"{"default": {"status_map": {"501": 500, "502": 503}}}"#);
    assert_eq!(
        replaced(&run(&s, &resp(502, &[]), b"bad gateway: 10.0.0.7")).0,
        503
    );
    assert_eq!(replaced(&run(&s, &resp(501, &[]), b"")).0, 500);
    assert_eq!(replaced(&run(&s, &resp(500, &[]), b"")).0, 500);
}

#[test]
fn four_xx_pass_by_default_and_are_replaced_when_listed() {
    let s = shield("{}");
    assert!(matches!(
        run(
            &s,
            &resp(404, &[("content-type", "application/json")]),
            b"{}"
        ),
        Verdict::Pass { .. }
    ));
    let s = shield(r#"{"default": {"replace_statuses": ["4xx", "5xx"]}}"#);
    assert_eq!(replaced(&run(&s, &resp(404, &[]), b"{}")).0, 404);
}

#[test]
fn a_2xx_with_a_stack_trace_is_scrubbed_to_500() {
    let s = shield("{}");
    let (status, code, _) = replaced(&run(&s, &resp(200, &[("content-type", "text/html")]), JAVA));
    assert_eq!((status, code), (500, "error_shield.stack_trace"));
    let v = run(
        &s,
        &resp(200, &[("content-type", "application/json")]),
        b"{\"e\":\"You have an error in your SQL syntax\"}",
    );
    assert_eq!(replaced(&v).1, "error_shield.sql_error");
}

#[test]
fn report_mode_passes_and_reports_the_class() {
    let s = shield(r#"{"default": {"leaks": {"stack_trace": "report"}}}"#);
    let py = b"Traceback (most recent call last):\n  File \"/app/x.py\", line 3, in <module>";
    let Verdict::Pass { reports, .. } = run(&s, &resp(200, &[("content-type", "text/plain")]), py)
    else {
        panic!()
    };
    // file_path, not named, keeps its default (report) and finds /app/x.py.
    let codes: Vec<_> = reports.iter().map(|r| r.code).collect();
    assert_eq!(
        codes,
        vec!["error_shield.stack_trace", "error_shield.file_path"]
    );
}

#[test]
fn internal_ips_and_paths_are_reported_by_default() {
    let s = shield("{}");
    let body = b"proxied to 10.0.0.7 from /home/deploy/app/config.yml";
    let Verdict::Pass { reports, .. } = run(&s, &resp(200, &[]), body) else {
        panic!()
    };
    let mut codes: Vec<_> = reports.iter().map(|r| r.code).collect();
    codes.sort();
    assert_eq!(
        codes,
        vec!["error_shield.file_path", "error_shield.internal_ip"]
    );
}

#[test]
fn fingerprinting_headers_are_removed() {
    let s = shield("{}");
    let r = resp(
        200,
        &[
            ("server", "gunicorn"),
            ("x-powered-by", "PHP/5.4"),
            ("x-debug-token", "a"),
            ("content-type", "image/png"),
        ],
    );
    let v = run(&s, &r, b"\x89PNG");
    let Verdict::Pass { ops, .. } = v else {
        panic!("{v:?}")
    };
    assert_eq!(
        ops,
        vec![
            HeaderOp::Remove("server".into()),
            HeaderOp::Remove("x-powered-by".into()),
            HeaderOp::Remove("x-debug-token".into())
        ]
    );
}

#[test]
fn binary_bodies_are_not_scanned_but_a_compressed_5xx_is_still_replaced() {
    let s = shield("{}");
    let v = run(
        &s,
        &resp(200, &[("content-type", "application/octet-stream")]),
        JAVA,
    );
    assert!(
        matches!(v, Verdict::Pass { ref reports, .. } if reports.is_empty()),
        "{v:?}"
    );
    let gz500 = resp(
        500,
        &[("content-type", "text/plain"), ("content-encoding", "gzip")],
    );
    let Verdict::ReplaceBody { headers, .. } = run(&s, &gz500, b"\x1f\x8b") else {
        panic!()
    };
    assert!(headers.contains(&HeaderOp::Remove("content-encoding".into())));
}

#[test]
fn bodies_beyond_the_scan_limit_pass_unchanged() {
    let s = shield(r#"{"default": {"max_scan_bytes": 16}}"#);
    let v = run(&s, &resp(200, &[("content-type", "text/plain")]), JAVA);
    assert!(
        matches!(v, Verdict::Pass { ref reports, .. } if reports.is_empty()),
        "{v:?}"
    );
}

#[test]
fn policy_errors_name_their_path() {
    for (json, path) in [
        (
            r#"{"default": {"replace_statuses": ["6xx"]}}"#,
            "default.replace_statuses[0]",
        ),
        (
            r#"{"default": {"status_map": {"502": 200}}}"#,
            "default.status_map.502",
        ),
        (
            r#"{"default": {"leaks": {"stacktrace": "scrub"}}}"#,
            "default.leaks.stacktrace",
        ),
        (
            r#"{"default": {"leaks": {"stack_trace": "drop"}}}"#,
            "default.leaks.stack_trace",
        ),
        (
            r#"{"default": {"remove_headers": ["bad header"]}}"#,
            "default.remove_headers[0]",
        ),
        (
            r#"{"alerts": {"cluster": "c", "path": "x", "threshold": 1}}"#,
            "alerts.path",
        ),
    ] {
        let e = configure::<ErrorShield>(json.as_bytes()).unwrap_err();
        assert_eq!(e.path, path, "{json}: {e}");
    }
}

#[test]
fn a_replaced_status_too_large_to_hold_is_denied_not_passed() {
    let s = shield(r#"{"default": {"max_scan_bytes": 16, "status_map": {"503": 502}}}"#);
    let big = [JAVA, &[b'x'; 64][..]].concat();
    match run(&s, &resp(503, &[("content-type", "text/plain")]), &big) {
        Verdict::Deny(r) => assert_eq!((r.status, r.code), (502, "error_shield.status")),
        v => panic!("not denied: {v:?}"),
    }
    // A 200 of the same size still passes (counted by the host as too large to inspect).
    let v = run(&s, &resp(200, &[("content-type", "text/plain")]), &big);
    assert!(matches!(v, Verdict::Pass { .. }), "{v:?}");
}

fn reported(v: &Verdict) -> Vec<&'static str> {
    match v {
        Verdict::Pass { reports, .. } => reports.iter().map(|r| r.code).collect(),
        v => panic!("not passed: {v:?}"),
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn a_classes_not_named_in_leaks_keeps_its_default() {
    let s = shield(r#"{"default": {"leaks": {"file_path": "off"}}}"#);
    let v = run(
        &s,
        &resp(200, &[]),
        b"-----BEGIN RSA PRIVATE KEY-----\nMIIE",
    );
    assert_eq!(replaced(&v).1, "error_shield.secret");
}

#[test]
fn secret_is_scrubbed_and_host_and_banner_reported_by_default() {
    let s = shield("{}");
    let v = run(&s, &resp(200, &[]), b"AKIAIOSFODNN7EXAMPLE");
    assert_eq!(replaced(&v), (500, "error_shield.secret", replaced(&v).2));
    let v = run(
        &s,
        &resp(404, &[("content-type", "text/html")]),
        b"<p>orders.default.svc.cluster.local</p><hr><center>nginx/1.25.3</center>",
    );
    assert_eq!(
        reported(&v),
        vec!["error_shield.internal_host", "error_shield.version_banner"]
    );
}

#[test]
fn go_panic_prose_and_a_json_link_pass_with_every_class_scrubbing() {
    let all = r#"{"default": {"leaks": {"stack_trace": "scrub", "sql_error": "scrub", "secret": "scrub",
        "internal_ip": "scrub", "internal_host": "scrub", "file_path": "scrub", "version_banner": "scrub"}}}"#;
    let s = shield(all);
    for body in [
        &b"If the disk is full the server will panic: \nplease free some space."[..],
        br#"{"order": 42, "self": "/app/orders/42", "next": "/home/feed"}"#,
    ] {
        let v = run(
            &s,
            &resp(200, &[("content-type", "application/json")]),
            body,
        );
        assert_eq!(
            reported(&v),
            Vec::<&str>::new(),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn a_leak_in_a_header_value_is_removed_when_scrubbed_and_counted() {
    let s = shield("{}");
    let r = resp(
        200,
        &[
            ("content-type", "image/png"),
            ("x-upstream", "orders.prod.internal:8080"),
            ("x-error", "ORA-00933: SQL command not properly ended"),
            ("location", "https://shop.example.com/orders/42"),
        ],
    );
    let Verdict::Pass { ops, reports } = run(&s, &r, b"\x89PNG") else {
        panic!()
    };
    assert_eq!(ops, vec![HeaderOp::Remove("x-error".into())]);
    let codes: Vec<_> = reports.iter().map(|r| r.code).collect();
    assert_eq!(
        codes,
        vec!["error_shield.internal_host", "error_shield.sql_error"]
    );
}

#[test]
fn a_header_leak_is_found_on_a_scanned_body_too() {
    let s = shield("{}");
    let r = resp(
        200,
        &[
            ("content-type", "text/plain"),
            ("x-db", "SQLITE_ERROR: near"),
        ],
    );
    let Verdict::Pass { ops, .. } = run(&s, &r, b"fine") else {
        panic!()
    };
    assert_eq!(ops, vec![HeaderOp::Remove("x-db".into())]);
}

#[test]
fn scan_content_types_and_scan_untyped_choose_the_bodies() {
    let s = shield(
        r#"{"default": {"scan_content_types": ["application/octet-stream"], "scan_untyped": false}}"#,
    );
    let bin = resp(200, &[("content-type", "application/octet-stream")]);
    assert_eq!(replaced(&run(&s, &bin, JAVA)).1, "error_shield.stack_trace");
    let html = resp(200, &[("content-type", "text/html")]);
    assert_eq!(reported(&run(&s, &html, JAVA)), Vec::<&str>::new());
    assert_eq!(
        reported(&run(&s, &resp(200, &[]), JAVA)),
        Vec::<&str>::new()
    );
}

#[test]
fn a_gzip_body_is_decoded_and_scanned() {
    let s = shield("{}");
    let r = resp(
        200,
        &[("content-type", "text/plain"), ("content-encoding", "gzip")],
    );
    let (status, code, _) = replaced(&run(&s, &r, &gzip(JAVA)));
    assert_eq!((status, code), (500, "error_shield.stack_trace"));
    let clean = run(&s, &r, &gzip(b"{\"ok\": true}"));
    assert_eq!(reported(&clean), Vec::<&str>::new());
}

#[test]
fn a_compression_bomb_is_scrubbed_by_default() {
    let s = shield("{}");
    let r = resp(
        200,
        &[("content-type", "text/plain"), ("content-encoding", "gzip")],
    );
    let bomb = gzip(&vec![b' '; 8 << 20]);
    assert_eq!(
        replaced(&run(&s, &r, &bomb)).1,
        "error_shield.compression_bomb"
    );
}

#[test]
fn undecodable_bodies_are_reported_by_default_and_scrubbed_on_request() {
    let r = resp(
        200,
        &[("content-type", "text/plain"), ("content-encoding", "br")],
    );
    let v = run(&shield("{}"), &r, b"\x0b\x02\x80stack");
    assert_eq!(reported(&v), vec!["error_shield.undecodable"]);
    let s = shield(r#"{"default": {"undecodable": "scrub"}}"#);
    assert_eq!(replaced(&run(&s, &r, b"x")).1, "error_shield.undecodable");
    let s = shield(r#"{"default": {"undecodable": "off"}}"#);
    assert_eq!(reported(&run(&s, &r, b"x")), Vec::<&str>::new());
}

#[test]
fn the_first_max_scan_bytes_of_a_larger_body_are_scanned() {
    let s = shield(r#"{"default": {"max_scan_bytes": 200}}"#);
    let r = resp(200, &[("content-type", "text/plain")]);
    // A leak in the prefix: the whole response is denied (it cannot be replaced in place).
    let early = [JAVA, &[b'x'; 400][..]].concat();
    match run(&s, &r, &early) {
        Verdict::Deny(d) => assert_eq!((d.status, d.code), (500, "error_shield.stack_trace")),
        v => panic!("not denied: {v:?}"),
    }
    // A leak only after the prefix is not seen: the body passes (the host counts it).
    let late = [&[b'x'; 400][..], JAVA].concat();
    assert_eq!(reported(&run(&s, &r, &late)), Vec::<&str>::new());
    // Reports in the prefix are kept.
    let ip = [&b"via 10.1.2.3 "[..], &[b'x'; 400][..]].concat();
    assert_eq!(
        reported(&run(&s, &r, &ip)),
        vec!["error_shield.internal_ip"]
    );
}

#[test]
fn internal_host_suffixes_replace_the_defaults() {
    let s = shield(r#"{"default": {"internal_host_suffixes": ["lan"]}}"#);
    assert_eq!(
        reported(&run(&s, &resp(200, &[]), b"nas.home.lan")),
        vec!["error_shield.internal_host"]
    );
    assert_eq!(
        reported(&run(&s, &resp(200, &[]), b"db.corp")),
        Vec::<&str>::new()
    );
}

#[test]
fn new_policy_fields_are_refused_with_their_path() {
    for (json, path) in [
        (
            r#"{"default": {"internal_host_suffixes": [".corp"]}}"#,
            "default.internal_host_suffixes[0]",
        ),
        (
            r#"{"default": {"internal_host_suffixes": []}}"#,
            "default.internal_host_suffixes",
        ),
        (
            r#"{"default": {"scan_content_types": ["text/*", "json"]}}"#,
            "default.scan_content_types[1]",
        ),
        (
            r#"{"default": {"undecodable": "drop"}}"#,
            "default.undecodable",
        ),
        (
            r#"{"default": {"scan_untyped": "yes"}}"#,
            "default.scan_untyped",
        ),
        (
            r#"{"default": {"leaks": {"secrets": "scrub"}}}"#,
            "default.leaks.secrets",
        ),
    ] {
        let e = configure::<ErrorShield>(json.as_bytes()).unwrap_err();
        assert_eq!(e.path, path, "{json}: {e}");
    }
    // An empty suffix list is fine when the class is off.
    shield(r#"{"default": {"internal_host_suffixes": [], "leaks": {"internal_host": "off"}}}"#);
}
