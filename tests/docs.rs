//! The manual cannot drift from the code: every policy field of `schemas/<module>.json` is
//! described on `docs/<module>.md`, every reason code the code can emit is listed on its
//! module's page (shared codes on `docs/behaviour.md`), and every relative link in README.md
//! and docs/ points at a file (and heading) that exists.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Route matcher fields every module shares, described once on the shared page.
const SHARED_FIELDS: &[&str] = &[
    "match",
    "exact",
    "prefix",
    "regex",
    "methods",
    "method_override",
];

/// Every property name in a JSON Schema, at any depth (objects, arrays, `$defs`, `anyOf`…).
fn property_names(schema: &Value, out: &mut BTreeSet<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get("properties") {
                for (name, sub) in props {
                    out.insert(name.clone());
                    property_names(sub, out);
                }
            }
            for (key, sub) in map {
                if key != "properties" {
                    property_names(sub, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| property_names(v, out)),
        _ => {}
    }
}

/// A field or code counts as described when the page names it as code: `` `name` ``, a JSON
/// key `"name"`, a dotted path ending in it (`` `default.allow` ``, `` `routes[].match` ``), or
/// a member of an inline object with its default (`` `{cluster, timeout_ms: 5000}` ``).
fn names(page: &str, name: &str) -> bool {
    page.contains(&format!("`{name}`"))
        || page.contains(&format!("\"{name}\""))
        || page.contains(&format!(".{name}`"))
        || page.contains(&format!("`{name}[]`"))
        || page.contains(&format!("`{name}:"))
        || page.contains(&format!(" {name}: "))
        || page.contains(&format!("{{{name}: "))
}

fn schemas() -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = fs::read_dir(root().join("schemas"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let module = p.file_stem().unwrap().to_string_lossy().into_owned();
            (module, serde_json::from_str(&read(&p)).unwrap())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn every_policy_field_in_a_schema_is_described_on_its_module_page() {
    let shared = read(&root().join("docs/behaviour.md"));
    let mut missing = Vec::new();
    for (module, schema) in schemas() {
        let page = read(&root().join(format!("docs/{module}.md")));
        let mut fields = BTreeSet::new();
        if module == "guard" {
            // guard's own fields; each member's policy is its own module's page.
            if let Some(Value::Object(props)) = schema.get("properties") {
                fields.extend(props.keys().cloned());
            }
        } else {
            property_names(&schema, &mut fields);
        }
        for f in fields {
            let described =
                names(&page, &f) || (SHARED_FIELDS.contains(&f.as_str()) && names(&shared, &f));
            if !described {
                missing.push(format!("docs/{module}.md: `{f}`"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "policy fields not described:\n{}",
        missing.join("\n")
    );
}

/// The reason-code prefixes of each module page; codes with any other prefix belong to the
/// shared page.
const CODE_PREFIXES: &[(&str, &[&str])] = &[
    ("header-guard", &["header_guard"]),
    ("jwt-auth", &["jwt"]),
    ("api-key", &["api_key"]),
    ("api-schema", &["api_schema"]),
    ("csrf", &["csrf"]),
    ("request-signing", &["signature", "digest"]),
    ("content-type", &["content_type"]),
    ("payload-crypto", &["payload_crypto"]),
    ("error-shield", &["error_shield"]),
    ("behaviour", &["request", "body", "internal", "response"]),
];

/// String literals of these shapes in src/ that are not reason codes: shared-store keys, notes
/// between phases, test host names.
const NOT_CODES: &[&str] = &[
    "api_key.grace",
    "api_schema.op",
    "api_schema.response",
    "csrf.issue",
    "payload_crypto.request_key",
    "payload_crypto.response_key",
    "response.remove_headers",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `"prefix.name"` literal in the library's non-test code (the part of a file before
/// its `#[cfg(test)]` module; `tests.rs` files skipped), for the given prefixes.
fn codes_in_source(prefixes: &[&str]) -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let literal = regex_lite::Regex::new(r#""(([a-z_]+)\.[a-z_0-9]+)""#).unwrap();
    let mut codes = BTreeSet::new();
    for file in files {
        if file.file_name().is_some_and(|n| n == "tests.rs")
            || file.starts_with(root().join("src/bin"))
        {
            continue;
        }
        let text = read(&file);
        let code_part = text.split("#[cfg(test)]").next().unwrap_or("");
        for m in literal.captures_iter(code_part) {
            let (code, prefix) = (&m[1], &m[2]);
            if prefixes.contains(&prefix) && !NOT_CODES.contains(&code) {
                codes.insert(code.to_string());
            }
        }
    }
    codes
}

#[test]
fn every_reason_code_the_code_can_emit_is_listed_on_its_page() {
    let mut missing = Vec::new();
    for (page, prefixes) in CODE_PREFIXES {
        let text = read(&root().join(format!("docs/{page}.md")));
        let codes = codes_in_source(prefixes);
        assert!(
            !codes.is_empty(),
            "no codes found for {page}: is the scan still right?"
        );
        for code in codes {
            if !text.contains(&format!("`{code}`")) {
                missing.push(format!("docs/{page}.md: `{code}`"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "reason codes not listed:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_code_scan_finds_codes_of_every_kind() {
    // The scan itself must not go blind: these are emitted today.
    let all = codes_in_source(&["content_type", "signature", "request", "internal"]);
    for code in [
        "content_type.unsupported",
        "signature.replayed",
        "request.bad_path",
        "internal.unconfigured",
    ] {
        assert!(all.contains(code), "{code} not found by the scan");
    }
    assert!(!all.contains("csrf.issue"));
}

/// GitHub's anchor of a heading: lower case, punctuation other than `-` and `_` dropped,
/// spaces to `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        if !fenced && line.starts_with('#') {
            out.insert(anchor(line.trim_start_matches('#')));
        }
    }
    out
}

/// The targets of `[text](target)` links outside code blocks.
fn link_targets(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        for part in line.split("](").skip(1) {
            if let Some(end) = part.find(')') {
                out.push(part[..end].to_string());
            }
        }
    }
    out
}

/// Pages linked before they land (removed from here when they do).
const COMING: &[&str] = &[];

#[test]
fn every_relative_link_in_the_readme_and_the_manual_resolves() {
    let mut pages = vec![root().join("README.md")];
    pages.extend(
        fs::read_dir(root().join("docs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "md")),
    );
    let mut broken = Vec::new();
    for page in &pages {
        let text = read(page);
        let dir = page.parent().unwrap();
        for target in link_targets(&text) {
            if target.starts_with("http://")
                || target.starts_with("https://")
                || target.starts_with("mailto:")
            {
                continue;
            }
            let (file, fragment) = match target.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (target.as_str(), None),
            };
            let resolved = if file.is_empty() {
                page.clone()
            } else {
                dir.join(file)
            };
            if COMING.iter().any(|c| resolved.ends_with(c)) {
                continue;
            }
            if !resolved.exists() {
                broken.push(format!("{}: {target} (no such file)", page.display()));
                continue;
            }
            if let Some(fragment) = fragment {
                if resolved.extension().is_some_and(|e| e == "md")
                    && !anchors(&read(&resolved)).contains(fragment)
                {
                    broken.push(format!("{}: {target} (no such heading)", page.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn github_anchors_are_computed_as_github_does() {
    assert_eq!(
        anchor(" Why was my request denied?"),
        "why-was-my-request-denied"
    );
    assert_eq!(anchor(" `guard` module: one VM"), "guard-module-one-vm");
    assert_eq!(
        anchor(" Which layer stops what (measured)"),
        "which-layer-stops-what-measured"
    );
}
