//! The shipped Envoy config and Istio manifests: valid YAML, the fields Istio requires, and
//! policies that pass the modules' own validation (through `portcullis check`, the same code
//! the filters run).

mod support;

use std::process::Command;

use serde_json::Value;
use support::repo_root;

fn check(file: &std::path::Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("check")
        .arg(file)
        // request-signing.yaml's secrets come from the proxy's environment (`valueFrom: HOST`);
        // `portcullis check` reads them from its own, as the VM would.
        .env(
            "ORDERS_CLIENT_KEY_2026A",
            "q83vEjRWeJASNFZ4kBI0VniQEjRWeJASNFZ4kBI0Vng=",
        )
        .env(
            "ORDERS_CLIENT_KEY_2026B",
            "ASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4mrze8=",
        )
        .output()
        .expect("run portcullis");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn manifests() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(repo_root().join("envoy/istio"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    files
}

#[test]
fn every_wasm_plugin_has_the_fields_istio_requires() {
    for file in manifests() {
        let text = std::fs::read_to_string(&file).unwrap();
        for doc in serde_norway::Deserializer::from_str(&text) {
            let doc: Value = serde::Deserialize::deserialize(doc)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            if doc["kind"] != "WasmPlugin" {
                continue;
            }
            let name = file.display();
            assert_eq!(doc["apiVersion"], "extensions.istio.io/v1alpha1", "{name}");
            assert!(doc["metadata"]["name"].is_string(), "{name}");
            let spec = &doc["spec"];
            assert!(
                spec["url"].as_str().unwrap().starts_with("oci://"),
                "{name}"
            );
            assert!(
                ["AUTHN", "AUTHZ", "STATS"].contains(&spec["phase"].as_str().unwrap()),
                "{name}"
            );
            assert!(spec["priority"].is_i64(), "{name}");
            assert_eq!(
                spec["failStrategy"], "FAIL_CLOSE",
                "{name}: a security filter never fails open"
            );
            assert!(spec["selector"]["matchLabels"].is_object(), "{name}");
            assert!(spec["pluginConfig"].is_object(), "{name}");
        }
    }
}

#[test]
fn every_shipped_policy_passes_the_modules_own_validation() {
    let mut files = manifests();
    files.push(repo_root().join("envoy/envoy.yaml"));
    for file in files {
        let (ok, out) = check(&file);
        assert!(ok, "{}: {out}", file.display());
        assert!(out.contains("valid"), "{out}");
    }
}

#[test]
fn check_names_the_json_path_of_a_bad_policy_inside_a_manifest() {
    let dir = std::env::temp_dir().join(format!("portcullis-manifest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    let text = std::fs::read_to_string(repo_root().join("envoy/istio/content-type.yaml")).unwrap();
    std::fs::write(
        &bad,
        text.replace("json_max_depth: 32", "json_max_depth: 0"),
    )
    .unwrap();
    let (ok, out) = check(&bad);
    assert!(!ok);
    assert!(
        out.contains(
            "invalid content-type policy: default.json_max_depth: must be between 1 and 512"
        ),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn explain_names_the_rule_and_what_it_requires() {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["explain"])
        .arg(repo_root().join("envoy/istio/content-type.yaml"))
        .args([
            "--method",
            "POST",
            "--path",
            "/v1//uploads/./a",
            "--header",
            "content-type: text/plain",
            "--header",
            "content-length: 3",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("normalised: /v1/uploads/a"), "{text}");
    assert!(
        text.contains("content-type: routes[0] applies; denied: 415 content_type.unsupported"),
        "{text}"
    );
}
