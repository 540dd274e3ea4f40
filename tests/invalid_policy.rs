//! Every module in dist/ refuses an invalid policy: Envoy does not start, and the module's log
//! line names the field. Covers modules added later without editing this file.

mod support;

use support::*;

fn modules() -> Vec<String> {
    let mut m: Vec<String> = std::fs::read_dir(repo_root().join("dist"))
        .expect("dist/: run `make build`")
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".wasm")
                .map(String::from)
        })
        .collect();
    m.sort();
    assert!(m.len() >= 3, "{m:?}");
    m
}

#[test]
fn an_unknown_field_never_loads_in_any_module() {
    for module in modules() {
        let log = envoy()
            .wasm(&module, r#"{"no_such_field": true}"#)
            .start_expect_exit();
        let control = module.replace('-', "_");
        assert!(
            log.contains(&format!("portcullis {control}: invalid policy: "))
                && log.contains("no_such_field"),
            "{module}: {log}"
        );
    }
}

#[test]
fn broken_json_and_an_empty_configuration_never_load() {
    for module in modules() {
        let log = envoy().wasm(&module, r#"{"routes": ["#).start_expect_exit();
        assert!(log.contains("invalid policy"), "{module}: {log}");
        let log = envoy().wasm(&module, "").start_expect_exit();
        assert!(log.contains("invalid policy"), "{module}: {log}");
    }
}
