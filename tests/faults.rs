//! Failing closed in a real Envoy: an internal error denies, a trapped VM answers 503 and is
//! reloaded (failure_policy: FAIL_RELOAD) or, in the native module, the panic is caught at the
//! hook, and later requests are checked again.
//! Uses dist/fault/ (content-type.wasm, native/libportcullis.so), built with the test-only
//! `fault-injection` feature.

mod support;

use std::time::Duration;

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

/// A panic: what any bug reachable from a request would do.
#[test]
fn a_panic_fails_that_request_closed_and_later_requests_are_checked() {
    let e = faulty();
    match runtime() {
        Runtime::Wasm => trapped_vm_answers_503_until_reloaded(&e),
        Runtime::Native => panic_caught_at_the_native_hook(&e),
    }
    // Verdicts are correct again, and nothing unchecked reached the upstream.
    e.post("/orders", &[("content-type", "text/plain")], b"x")
        .assert_problem(415, "content_type.unsupported");
    assert_eq!(e.post("/orders", &[JSON], b"{}").status, 200);
    assert!(e
        .upstream_seen()
        .iter()
        .all(|s| s.header("content-type") == Some("application/json")));
}

/// The native module catches the panic at the hook: that stream gets the `internal` problem,
/// counted and logged, and Envoy (which a panic unwinding into it would abort) serves the next
/// request at once.
fn panic_caught_at_the_native_hook(e: &Envoy) {
    assert_eq!(e.post("/orders", &[JSON], b"{}").status, 200);
    let panicked = e.post("/orders", &[JSON, ("x-portcullis-fault", "trap")], b"{}");
    panicked.assert_problem(500, "internal");
    assert_eq!(
        e.upstream_seen().len(),
        1,
        "the panicking request reached the upstream"
    );
    assert_eq!(e.counter("content_type", "denied", "internal"), 1);
    assert!(e
        .log()
        .contains("portcullis: internal error: a panic in the filter"));
}

/// A trap stops the wasm VM: Envoy answers 503 (FAIL_RELOAD) until it has reloaded it.
fn trapped_vm_answers_503_until_reloaded(e: &Envoy) {
    assert_eq!(e.post("/orders", &[JSON], b"{}").status, 200);
    let trapped = e.post("/orders", &[JSON, ("x-portcullis-fault", "trap")], b"{}");
    assert_eq!(trapped.status, 503, "{}", trapped.text());
    assert_eq!(
        e.upstream_seen().len(),
        1,
        "the trapping request never reached the upstream"
    );
    // Until the VM is reloaded, nothing passes unchecked: every request is refused or checked.
    let mut patience = Patience::secs(60);
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
            patience.holds(),
            "the VM was not reloaded within 60 s:\n{}",
            e.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
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
        e.log().contains("internal error: Envoy refused "),
        "{}",
        e.log()
    );
    // No trap, so no reload: the very next request is checked and served.
    assert_eq!(e.post("/orders", &[JSON], b"{}").status, 200);
    assert_eq!(e.upstream_seen().len(), 1);
}
