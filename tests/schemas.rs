//! schemas/<module>.json are generated from the policy types and must stay in sync: regenerate
//! with `make schemas`. Each shipped example policy must also satisfy its schema's top-level
//! shape (the modules' own validation stays the authority: see tests/manifests.rs).

use portcullis::controls::module_schema;

const MODULES: &[&str] = &[
    "content-type",
    "error-shield",
    "guard",
    "csrf",
    "api-key",
    "payload-crypto",
    "request-signing",
    "jwt-auth",
    "header-guard",
];

#[test]
fn committed_schemas_match_the_policy_types() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    for m in MODULES {
        let want = serde_json::to_string_pretty(&module_schema(m).unwrap()).unwrap() + "\n";
        let path = dir.join(format!("{m}.json"));
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "{} is stale: run `make schemas`",
            path.display()
        );
    }
}

#[test]
fn schemas_reject_unknown_fields_and_describe_the_rules() {
    let s = module_schema("content-type").unwrap();
    assert_eq!(s["additionalProperties"], false);
    assert!(
        s["properties"]["routes"]["items"]["properties"]["allow"].is_object(),
        "{s}"
    );
    assert!(
        s["properties"]["routes"]["items"]["properties"]["match"].is_object(),
        "{s}"
    );
    let g = module_schema("guard").unwrap();
    assert_eq!(g["required"][0], "chain");
    assert!(g["properties"]["content_type"]["properties"]["default"].is_object());
}
