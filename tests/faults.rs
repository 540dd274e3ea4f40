//! Failing closed in a real Envoy: an internal error denies, a trapped VM answers 503 and is
//! reloaded (failure_policy: FAIL_RELOAD), and later requests are checked again.
//! Uses dist/fault/*.wasm, built with the test-only `fault-injection` feature.

mod support;

use std::time::{Duration, Instant};

use support::*;

const POLICY: &str = r#"{"default": {"allow": ["application/json"]}}"#;
const JSON: (&str, &str) = ("content-type", "application/json");

fn faulty() -> Envoy {
    envoy()
        .filter(Filter::new("content-type", POLICY).wasm_file("dist/fault/content-type.wasm"))
        .start()
}

#[test]
fn an_internal_error_denies_with_500_and_reaches_no_upstream() {
    let e = faulty();
    let r = e.post(
        "/orders",
        &[JSON, ("x-portcullis-fault", "internal")],
        b"{}",
    );
    r.assert_problem(500, "internal");
    assert!(e.upstream_seen().is_empty());
    assert_eq!(e.counter("content_type", "denied", "internal"), 1);
    assert!(e
        .log()
        .contains("portcullis: internal error: fault injection"));
}

#[test]
fn a_trapped_vm_fails_closed_then_is_reloaded_and_checks_again() {
    let e = faulty();
    assert_eq!(e.post("/orders", &[JSON], b"{}").status, 200);
    let trapped = e.post("/orders", &[JSON, ("x-portcullis-fault", "trap")], b"{}");
    assert_eq!(trapped.status, 503, "{}", trapped.text());
    assert_eq!(
        e.upstream_seen().len(),
        1,
        "the trapping request never reached the upstream"
    );
    // Until the VM is reloaded, nothing passes unchecked: every request is refused or checked.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let bad = e.post("/orders", &[("content-type", "text/plain")], b"x");
        assert_ne!(
            bad.status, 200,
            "a request passed unchecked while the VM was down"
        );
        if bad.status == 415 {
            break;
        }
        assert_eq!(bad.status, 503, "{}", bad.text());
        assert!(
            Instant::now() < deadline,
            "the VM was not reloaded within 60 s:\n{}",
            e.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Reloaded: verdicts are correct again.
    e.post("/orders", &[("content-type", "text/plain")], b"x")
        .assert_problem(415, "content_type.unsupported");
    assert_eq!(e.post("/orders", &[JSON], b"{}").status, 200);
    assert!(e
        .upstream_seen()
        .iter()
        .all(|s| s.header("content-type") == Some("application/json")));
}

#[test]
fn production_builds_have_no_fault_injection() {
    let e = envoy().wasm("content-type", POLICY).start();
    let r = e.post("/orders", &[JSON, ("x-portcullis-fault", "trap")], b"{}");
    assert_eq!(
        r.status,
        200,
        "dist/content-type.wasm must ignore the marker: {}",
        r.text()
    );
    let r = e.post(
        "/orders",
        &[JSON, ("x-portcullis-fault", "internal")],
        b"{}",
    );
    assert_eq!(r.status, 200);
}

#[test]
fn a_write_envoy_refuses_fails_closed_with_500_and_the_vm_keeps_serving() {
    let e = faulty();
    let r = e.get("/orders", &[("x-portcullis-fault", "refused-write")]);
    r.assert_problem(500, "internal");
    assert!(e.upstream_seen().is_empty());
    assert_eq!(e.counter("content_type", "denied", "internal"), 1);
    assert!(
        e.log()
            .contains("internal error: Envoy refused set_buffer_bytes"),
        "{}",
        e.log()
    );
    // No trap, so no reload: the very next request is checked and served.
    assert_eq!(e.post("/orders", &[JSON], b"{}").status, 200);
    assert_eq!(e.upstream_seen().len(), 1);
}
