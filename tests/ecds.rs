//! A policy served by ECDS (extension config discovery, here from a file Envoy watches): Envoy
//! loads it at start, applies an update without a restart, and refuses an invalid update while
//! the policy it has keeps serving. In the runtime under test (`make test` runs both).

mod support;

use std::path::Path;

use serde_json::{json, Value};
use support::*;

const NAME: &str = "content-type";

/// One policy as the xDS resource Envoy's ECDS expects: a `TypedExtensionConfig` named
/// like the filter, holding the filter's typed config for the runtime under test.
fn resource(policy: &str) -> Value {
    let filter = wasm_filter(&Filter::new(NAME, policy));
    json!({
        "version_info": policy,
        "resources": [{
            "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
            "name": NAME,
            "typed_config": filter["typed_config"],
        }]
    })
}

/// Envoy watches the file for a move into its directory: write beside it, then rename.
fn publish(file: &Path, policy: &str) {
    let next = file.with_extension("next");
    std::fs::write(&next, resource(policy).to_string()).unwrap();
    std::fs::rename(&next, file).unwrap();
}

fn status(e: &Envoy, media: &str) -> u16 {
    e.post("/orders", &[("content-type", media)], b"{}").status
}

fn only(media: &str) -> String {
    json!({"default": {"allow": [media], "check_body": false}}).to_string()
}

#[test]
fn an_ecds_update_applies_and_an_invalid_one_is_refused_while_the_last_policy_serves() {
    let dir = tempdir();
    let file = dir.join("ecds.json");
    publish(&file, &only("application/json"));
    let type_url = wasm_filter(&Filter::new(NAME, "{}"))["typed_config"]["@type"].clone();
    let e = envoy()
        .native_filter(json!({
            "name": NAME,
            "config_discovery": {
                "config_source": {
                    "path_config_source": {"path": file.display().to_string()},
                    "resource_api_version": "V3"
                },
                "type_urls": [type_url]
            }
        }))
        .start();
    assert_eq!(status(&e, "application/json"), 200);
    assert_eq!(status(&e, "text/plain"), 415);

    publish(&file, &only("text/plain"));
    assert!(
        eventually(10, || status(&e, "text/plain") == 200),
        "the update was not applied: {}",
        e.log()
    );
    assert_eq!(status(&e, "application/json"), 415);

    publish(
        &file,
        r#"{"default": {"allow": ["text/plain"], "max_body_bytes": "big"}}"#,
    );
    assert!(
        e.wait_for_log("default.max_body_bytes", 10),
        "the invalid update was not refused naming the field: {}",
        e.log()
    );
    assert!(e.wait_for_log("config update rejected", 10), "{}", e.log());
    // The last good policy keeps deciding.
    assert_eq!(status(&e, "text/plain"), 200);
    assert_eq!(status(&e, "application/json"), 415);
    assert!(e.upstream_seen().len() >= 2);
}
