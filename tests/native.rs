//! What only the native dynamic module (dist/native/libportcullis.so) can get wrong, in a real
//! Envoy, whatever `PORTCULLIS_RUNTIME` says: the controls themselves are checked by every
//! other real-Envoy test under both runtimes (`make test`).

mod support;

use serde_json::json;
use support::*;

fn native(module: &str, policy: &str) -> serde_json::Value {
    native_module_filter(&Filter::new(module, policy))
}

#[test]
fn an_unknown_filter_name_is_refused_at_load_with_the_names_it_knows() {
    let log = envoy()
        .native_filter(native("jwt-authn", "{}"))
        .start_expect_exit();
    assert!(
        log.contains("portcullis: unknown filter_name \"jwt-authn\": expected one of api-key,"),
        "{log}"
    );
    assert!(log.contains("Failed to initialize dynamic module"), "{log}");
}

#[test]
fn an_invalid_policy_is_refused_at_load_naming_the_field() {
    let log = envoy()
        .native_filter(native("csrf", r#"{"mode": "sometimes"}"#))
        .start_expect_exit();
    assert!(
        log.contains("portcullis csrf: invalid policy: mode:"),
        "{log}"
    );
    assert!(log.contains("Failed to initialize dynamic module"), "{log}");
}

/// Envoy checks the version string `on_program_init` returns against its own.
#[test]
fn the_module_reports_the_abi_version_of_the_pinned_envoy() {
    let e = envoy().native_filter(native("noop", "{}")).start();
    assert_eq!(e.get("/", &[]).status, 200);
    assert!(
        e.log()
            .contains("Dynamic module ABI version v0.2.0 matched"),
        "{}",
        e.log()
    );
}

/// Two filters of one library are two configurations: each gets its own control and policy, and
/// both count under the one labelled counter.
#[test]
fn two_filters_of_one_library_keep_their_own_policies() {
    let only = |prefix: &str, media: &str| {
        json!({"routes": [{"match": {"prefix": prefix}, "allow": [media]}],
               "default": {"allow": ["*/*"], "check_body": false}})
        .to_string()
    };
    let e = envoy()
        .native_filter(native("content-type", &only("/a", "application/json")))
        .native_filter(native("content-type", &only("/b", "text/plain")))
        .start();
    let (json_ct, text) = (
        ("content-type", "application/json"),
        ("content-type", "text/plain"),
    );
    assert_eq!(e.post("/a", &[json_ct], b"{}").status, 200);
    assert_eq!(e.post("/b", &[text], b"x").status, 200);
    e.post("/a", &[text], b"x")
        .assert_problem(415, "content_type.unsupported");
    e.post("/b", &[json_ct], b"{}")
        .assert_problem(415, "content_type.unsupported");
    assert_eq!(e.upstream_seen().len(), 2);
    // /a passed both filters, /b both, /b's text/plain passed the first: 5 allowed in all.
    assert_eq!(e.counter("content_type", "allowed", "ok"), 5);
    assert_eq!(
        e.counter("content_type", "denied", "content_type.unsupported"),
        2
    );
}
