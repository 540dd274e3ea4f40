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
        Verdict::NeedBody { max_bytes } => {
            let b = (body.len() <= max_bytes).then_some(body);
            s.on_response_body(&req, r, b, &env)
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
    let codes: Vec<_> = reports.iter().map(|r| r.code).collect();
    assert_eq!(codes, vec!["error_shield.stack_trace"]);
}

#[test]
fn internal_ips_and_paths_are_reported_by_default() {
    let s = shield("{}");
    let body = b"proxied to 10.0.0.7 from /home/deploy/app";
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
    let Verdict::Mutate(ops) = v else {
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
fn binary_and_compressed_bodies_are_not_scanned() {
    let s = shield("{}");
    assert!(matches!(
        run(
            &s,
            &resp(200, &[("content-type", "application/octet-stream")]),
            JAVA
        ),
        Verdict::Mutate(_)
    ));
    let gz = resp(
        200,
        &[("content-type", "text/plain"), ("content-encoding", "gzip")],
    );
    assert!(matches!(run(&s, &gz, JAVA), Verdict::Mutate(_)));
    // …but a compressed 5xx is still replaced, and its encoding dropped.
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
