//! The command line itself: exit status 0 / 1 / 2 as docs/cli.md documents them, errors that
//! name the offending argument, per-command help, `--version`, completions and
//! `check --format json`. (What each command computes is tested with the modules it serves:
//! tests/manifests.rs, api_key.rs, request_signing.rs, payload_crypto.rs, oci.rs.)

mod cli_support;
mod support;

use std::path::PathBuf;

use cli_support::portcullis;
use serde_json::Value;
use support::repo_root;

/// A file in a directory of this test process's own.
fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("portcullis-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join(name);
    std::fs::write(&f, text).unwrap();
    f
}

const BAD_CONTENT_TYPE: &str = r#"{"default": {"json_max_depth": 0}}"#;

#[test]
fn exit_status_0_when_every_policy_is_valid() {
    let r = portcullis(&["check", "envoy/envoy.yaml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("valid header-guard policy"),
        "{}",
        r.stdout
    );
}

#[test]
fn exit_status_1_for_an_invalid_policy() {
    let f = temp_file("bad.json", BAD_CONTENT_TYPE);
    let r = portcullis(&["check", "content-type", f.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("invalid content-type policy: default.json_max_depth"),
        "{}",
        r.stderr
    );
}

#[test]
fn exit_status_1_for_a_file_that_holds_no_policy() {
    let f = temp_file("notjson.json", "{ not json");
    let r = portcullis(&["check", "content-type", f.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("not JSON"), "{}", r.stderr);
}

#[test]
fn exit_status_2_for_a_usage_error_naming_the_argument() {
    for (args, named) in [
        (&["check"][..], "<FILE>"),
        (&["check", "no-such-file.json"], "<FILE>"),
        (&["check", "no-such-module", "envoy/envoy.yaml"], "[MODULE]"),
        (
            &["check", "--format", "xml", "envoy/envoy.yaml"],
            "--format",
        ),
        (&["schema", "jwt"], "<MODULE>"),
        (
            &[
                "explain",
                "envoy/envoy.yaml",
                "--path",
                "/",
                "--header",
                "x",
            ],
            "--header",
        ),
        (
            &[
                "explain",
                "envoy/envoy.yaml",
                "--path",
                "/",
                "--method",
                "GE T",
            ],
            "--method",
        ),
        (
            &[
                "rotate",
                "envoy/envoy.yaml",
                "--client",
                "a",
                "--overlap",
                "7",
            ],
            "--overlap",
        ),
        (
            &[
                "sign",
                "--key-id",
                "k",
                "--secret-env",
                "PORTCULLIS_CLI_UNSET",
            ],
            "--secret-env",
        ),
        (&["encrypt", "--alg", "A256KW"], "--key-env"),
        (&["keygen", "--clinet", "acme"], "--clinet"),
        (&["no-such-command"], "no-such-command"),
    ] {
        let r = portcullis(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains(named),
            "{args:?} names {named}: {}",
            r.stderr
        );
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
    }
}

#[test]
fn exit_status_2_for_a_bare_policy_without_its_module() {
    let f = temp_file("bare.json", "{}");
    let r = portcullis(&["check", f.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("name its module"), "{}", r.stderr);
}

#[test]
fn a_misspelt_flag_gets_a_suggestion_not_the_whole_usage() {
    let r = portcullis(&["keygen", "--clinet", "acme"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--client"), "{}", r.stderr);
    assert!(!r.stderr.contains("encrypt"), "{}", r.stderr);
}

#[test]
fn no_arguments_print_the_commands_with_exit_status_2() {
    let r = portcullis(&[]);
    assert_eq!(r.code, 2);
    for c in [
        "check",
        "explain",
        "sign",
        "keygen",
        "rotate",
        "completions",
        "openapi",
    ] {
        assert!(r.stderr.contains(c), "{c}: {}", r.stderr);
    }
}

#[test]
fn every_subcommand_has_its_own_help() {
    for (cmd, flag) in [
        ("check", "--format"),
        ("explain", "--header"),
        ("sign", "--secret-env"),
        ("rotate", "--overlap"),
        ("keygen", "--client"),
        ("encrypt", "--key-file"),
        ("decrypt", "--key-env"),
        ("oci", "OUTDIR"),
        ("schema", "MODULE"),
        ("echo-upstream", "ADDR"),
        ("completions", "SHELL"),
        ("openapi", "import"),
    ] {
        let r = portcullis(&[cmd, "--help"]);
        assert_eq!(r.code, 0, "{cmd}: {}", r.stderr);
        assert!(
            r.stdout.contains(&format!("Usage: portcullis {cmd}")),
            "{cmd}: {}",
            r.stdout
        );
        assert!(
            r.stdout.contains(flag),
            "{cmd} --help lists {flag}: {}",
            r.stdout
        );
    }
}

#[test]
fn version_names_the_crate_and_the_makefiles_envoy_version() {
    let makefile = std::fs::read_to_string(repo_root().join("Makefile")).unwrap();
    let envoy = makefile
        .lines()
        .find_map(|l| l.strip_prefix("ENVOY_VERSION := "))
        .expect("ENVOY_VERSION in the Makefile")
        .trim();
    let r = portcullis(&["--version"]);
    assert_eq!(r.code, 0);
    assert_eq!(
        r.stdout.trim(),
        format!(
            "portcullis {} (modules built and tested for Envoy {envoy})",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn completions_are_generated_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let r = portcullis(&["completions", shell]);
        assert_eq!(r.code, 0, "{shell}: {}", r.stderr);
        assert!(r.stdout.contains("portcullis"), "{shell}");
        assert!(
            r.stdout.contains("secret-env"),
            "{shell}: completes sign's flags"
        );
    }
    assert_eq!(portcullis(&["completions", "tcsh"]).code, 2);
}

#[test]
fn check_format_json_prints_one_object_per_policy() {
    let r = portcullis(&["check", "--format", "json", "envoy/envoy.yaml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let text = portcullis(&["check", "envoy/envoy.yaml"]);
    assert_eq!(
        lines.len(),
        text.stdout.lines().count(),
        "one line per finding"
    );
    assert!(lines
        .iter()
        .all(|l| l["valid"] == true && l["error"].is_null()));
    assert!(lines.iter().any(|l| l["module"] == "header-guard"));

    let f = temp_file("bad-json.json", BAD_CONTENT_TYPE);
    let r = portcullis(&[
        "check",
        "--format",
        "json",
        "content-type",
        f.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 1);
    let line: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(line["valid"], false);
    assert_eq!(line["module"], "content-type");
    assert!(
        line["error"]
            .as_str()
            .unwrap()
            .starts_with("default.json_max_depth"),
        "{line}"
    );
}

#[test]
fn a_module_may_be_named_with_its_policy_spelling() {
    let f = temp_file("ok.json", "{}");
    let r = portcullis(&["check", "content_type", f.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("valid content-type policy"),
        "{}",
        r.stdout
    );
}
