//! guard in a real Envoy: one VM, several controls, first denial wins.

mod support;

use support::*;

const POLICY: &str = r#"{
  "chain": ["content_type", "error_shield"],
  "content_type": {"default": {"allow": ["application/json"], "max_body_bytes": 1024}},
  "error_shield": {"default": {"status_map": {"502": 503}}}
}"#;

#[test]
fn chain_runs_every_control_in_one_vm() {
    let e = envoy().wasm("guard", POLICY).start();
    // content_type denies first.
    e.post("/x", &[("content-type", "text/plain")], b"hi")
        .assert_problem(415, "content_type.unsupported");
    e.post("/x", &[("content-type", "application/json")], b"{")
        .assert_problem(400, "content_type.body_mismatch");
    // Allowed by content_type; error_shield rewrites the failing response.
    let r = e.post(
        "/x",
        &[
            ("content-type", "application/json"),
            ("x-echo-status", "502"),
            ("x-echo-header", "server: nginx/1.2"),
        ],
        br#"{"e": "upstream 10.1.1.1 down"}"#,
    );
    r.assert_problem(503, "error_shield.status");
    assert_eq!(r.header("server"), None);
    let ok = e.post("/x", &[("content-type", "application/json")], br#"{"a":1}"#);
    assert_eq!(ok.status, 200);
    assert_eq!(ok.echoed().body, r#"{"a":1}"#);
    assert_eq!(
        e.upstream_seen().len(),
        2,
        "only the two allowed requests reached the upstream"
    );
    assert_eq!(e.counter("guard", "denied", "content_type.unsupported"), 1);
    assert_eq!(e.counter("guard", "replaced", "error_shield.status"), 1);
}

#[test]
fn a_policy_error_names_the_control() {
    let log = envoy()
        .wasm(
            "guard",
            r#"{"chain": ["content_type"], "content_type": {"default": {"allow": []}}}"#,
        )
        .start_expect_exit();
    assert!(log.contains("portcullis guard: invalid policy: content_type.default.allow: must list at least one media type"), "{log}");
}
