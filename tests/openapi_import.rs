//! `portcullis openapi import`: YAML and JSON contracts give the same api-schema policy, the
//! policy `check` accepts; a contract api-schema cannot enforce fails with its JSON path; what
//! is tolerated but not enforced is listed; `--jwt-routes` writes jwt-auth routes that, merged
//! with providers, pass `check` and decide like the contract's `security`.

mod cli_support;
#[path = "support/jwt.rs"]
mod jwt;

use std::path::PathBuf;
use std::time::SystemTime;

use cli_support::portcullis;
use portcullis::control::Env;
use portcullis::controls::build_module;
use portcullis::store::MemoryStore;
use portcullis::{RequestView, Verdict};
use serde_json::{json, Value};

/// A path in a directory of this test's own (the file is not created).
fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("portcullis-openapi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn temp_file(name: &str, text: &str) -> String {
    let f = temp(name);
    std::fs::write(&f, text).unwrap();
    f.to_str().unwrap().to_string()
}

fn read_json(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn orders_json() -> Value {
    serde_json::from_str(include_str!("data/orders-openapi.json")).unwrap()
}

const YAML: &str = "tests/data/orders-openapi.yaml";
const JSON: &str = "tests/data/orders-openapi.json";

#[test]
fn yaml_and_json_contracts_import_to_the_same_policy() {
    let expected = json!({"openapi": orders_json(), "mode": "enforce",
                          "reject_undeclared_query": false, "responses": "report"});
    for spec in [YAML, JSON] {
        let r = portcullis(&["openapi", "import", spec]);
        assert_eq!(r.code, 0, "{spec}: {}", r.stderr);
        let policy: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(policy, expected, "{spec}");
    }
    let out = temp("report.json");
    let out = out.to_str().unwrap();
    let r = portcullis(&[
        "openapi",
        "import",
        YAML,
        "--mode",
        "report",
        "--reject-undeclared-query",
        "--max-body-bytes",
        "4096",
        "--responses",
        "enforce",
        "-o",
        out,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "", "the policy went to the file");
    let p = read_json(out);
    assert_eq!(
        (
            &p["mode"],
            &p["reject_undeclared_query"],
            &p["max_body_bytes"],
            &p["responses"]
        ),
        (
            &json!("report"),
            &json!(true),
            &json!(4096),
            &json!("enforce")
        )
    );
}

fn run(
    policy_module: &str,
    policy: &Value,
    method: &str,
    path: &str,
    h: &[(&str, &str)],
) -> Verdict {
    let control = build_module(policy_module, policy).unwrap().unwrap();
    let store = MemoryStore::default();
    let env = Env {
        now: SystemTime::now(),
        store: &store,
    };
    let req = RequestView::new(method, path, h).unwrap();
    control.on_request(&req, &env)
}

fn code(v: &Verdict) -> Option<&'static str> {
    match v {
        Verdict::Deny(r) => Some(r.code),
        _ => None,
    }
}

#[test]
fn the_imported_yaml_policy_is_valid_and_enforces_the_contract() {
    let out = temp("orders-policy.json");
    let out = out.to_str().unwrap();
    let r = portcullis(&["openapi", "import", YAML, "-o", out]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = portcullis(&["check", "api-schema", out]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let p = read_json(out);
    assert_eq!(
        code(&run("api-schema", &p, "GET", "/v1/orders?limit=10", &[])),
        None
    );
    assert_eq!(
        code(&run("api-schema", &p, "GET", "/v1/orders?limit=1000", &[])),
        Some("api_schema.invalid_parameter")
    );
    assert_eq!(
        code(&run("api-schema", &p, "GET", "/v1/orders/not-a-uuid", &[])),
        Some("api_schema.invalid_parameter")
    );
    assert_eq!(
        code(&run("api-schema", &p, "GET", "/v1/admin", &[])),
        Some("api_schema.unknown_path")
    );
}

#[test]
fn a_contract_api_schema_cannot_enforce_fails_with_its_json_path() {
    let spec = temp_file(
        "deep.yaml",
        "openapi: 3.1.0\npaths:\n  /a:\n    get:\n      parameters:\n        - {name: f, in: query, style: deepObject, schema: {type: object}}\n",
    );
    let out = temp("never-written.json");
    let r = portcullis(&["openapi", "import", &spec, "-o", out.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "refused by api-schema: openapi.paths./a.get.parameters[0].style: style `deepObject` is not supported"
        ),
        "{}",
        r.stderr
    );
    assert!(!out.exists(), "no partial policy is written");
    let spec = temp_file("v2.yaml", "swagger: '2.0'\npaths: {}\n");
    let r = portcullis(&["openapi", "import", &spec]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("openapi.openapi: expected the OpenAPI version"),
        "{}",
        r.stderr
    );
    let spec = temp_file("broken.yaml", "openapi: [\n");
    let r = portcullis(&["openapi", "import", &spec]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("not YAML"), "{}", r.stderr);
}

#[test]
fn what_is_accepted_but_not_enforced_is_listed_on_stderr() {
    let r = portcullis(&["openapi", "import", YAML]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for said in [
        "not enforced: security: security requirements (`oauth`) are not enforced by api-schema",
        "not enforced: responses: responses (6 operations) are only reported",
        "not enforced: openapi.components.schemas.User.properties.password.writeOnly",
        "not enforced: openapi.components.schemas.Payment.discriminator",
    ] {
        assert!(r.stderr.contains(said), "{said}: {}", r.stderr);
    }
    // Every format api-schema takes as an annotation still compiles, and each is named.
    let spec = temp_file(
        "formats.json",
        &json!({"openapi": "3.0.3", "paths": {"/a": {"get": {"parameters": [
            {"name": "f", "in": "query", "schema": {"type": "string", "format": "password"}},
            {"name": "g", "in": "query", "schema": {"type": "number", "format": "float"}},
            {"name": "h", "in": "query", "schema": {"type": "number", "format": "double"}},
            {"name": "i", "in": "query", "schema": {"type": "string", "format": "byte"}},
            {"name": "j", "in": "query", "schema": {"type": "string", "format": "binary"}}]}}}})
        .to_string(),
    );
    let r = portcullis(&["openapi", "import", &spec]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stderr.matches("is an annotation").count(),
        5,
        "{}",
        r.stderr
    );
}

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

/// The routes merged with an `oauth` provider, as docs/api-schema.md tells the user to.
fn with_provider(routes: &Value) -> Value {
    let mut p = routes.clone();
    p["providers"] = json!([{"name": "oauth", "issuer": "https://idp.example.com",
        "algorithms": ["HS256"], "jwks": jwt::jwks(&[jwt::jwk_oct(SECRET, "k1")])}]);
    p
}

fn bearer(scope: &str) -> String {
    let exp = jwt::now() + 300;
    let t = jwt::hs256(
        SECRET,
        Some("k1"),
        &json!({"iss": "https://idp.example.com", "exp": exp, "scope": scope}),
    );
    format!("Bearer {t}")
}

#[test]
fn jwt_routes_carry_the_scopes_and_pass_check_once_providers_are_added() {
    let out = temp("jwt-routes.json");
    let out = out.to_str().unwrap();
    let r = portcullis(&["openapi", "import", YAML, "--jwt-routes", out]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("add jwt-auth `providers` named `oauth`"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("not enforced: security:"),
        "{}",
        r.stderr
    );
    let routes = read_json(out);
    assert_eq!(routes["default"], json!({"deny": true}));
    assert_eq!(
        routes["routes"][0],
        json!({"match": {"exact": "/v1/orders", "methods": ["GET"]}, "providers": ["oauth"], "scopes_all": ["orders:read"]})
    );
    assert_eq!(
        routes["routes"][1],
        json!({"match": {"exact": "/v1/orders", "methods": ["POST"]}, "providers": ["oauth"], "scopes_all": ["orders:write"]})
    );
    // As written it names a provider nobody declared yet: check says so.
    let r = portcullis(&["check", "jwt-auth", out]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stderr.contains("providers"), "{}", r.stderr);
    let merged = temp_file("jwt-auth.json", &with_provider(&routes).to_string());
    let r = portcullis(&["check", "jwt-auth", &merged]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn jwt_routes_decide_like_the_contracts_security() {
    let out = temp("jwt-routes-decide.json");
    let out = out.to_str().unwrap();
    let r = portcullis(&["openapi", "import", JSON, "--jwt-routes", out]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let p = with_provider(&read_json(out));
    let (read, write) = (bearer("orders:read"), bearer("orders:write"));
    let id = "/v1/orders/7d3f1c2e-8a4b-4c5d-9e6f-0a1b2c3d4e5f";
    for (method, path, token, expected) in [
        ("GET", "/v1/orders", &read, None),
        ("GET", "/v1/orders", &write, Some("jwt.scope")),
        ("POST", "/v1/orders", &read, Some("jwt.scope")),
        ("POST", "/v1/orders", &write, None),
        ("GET", id, &read, None),
        ("DELETE", id, &read, Some("jwt.scope")),
        ("DELETE", id, &write, None),
        // A concrete path's undeclared method never meets the template's rule (api-schema: 405).
        ("DELETE", "/v1/orders/export", &write, Some("jwt.no_route")),
        ("GET", "/v1/orders/export", &read, None),
        // A template takes one segment, never more; undeclared paths are refused.
        ("GET", "/v1/orders/a/b", &read, Some("jwt.no_route")),
        ("GET", "/v1/admin", &read, Some("jwt.no_route")),
        ("GET", "/orders", &read, Some("jwt.no_route")),
        // Top-level security applies where the operation names none.
        ("POST", "/v1/users", &read, None),
    ] {
        let v = run("jwt-auth", &p, method, path, &[("authorization", token)]);
        assert_eq!(code(&v), expected, "{method} {path}");
    }
    let v = run("jwt-auth", &p, "GET", "/v1/orders", &[]);
    assert_eq!(code(&v), Some("jwt.missing"));
}

#[test]
fn one_contract_drives_jwt_auth_and_api_schema_in_one_guard_chain() {
    let (policy, routes) = (temp("g-policy.json"), temp("g-routes.json"));
    let (policy, routes) = (policy.to_str().unwrap(), routes.to_str().unwrap());
    let r = portcullis(&[
        "openapi",
        "import",
        YAML,
        "-o",
        policy,
        "--jwt-routes",
        routes,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let guard = json!({"chain": ["jwt_auth", "api_schema"],
        "jwt_auth": with_provider(&read_json(routes)), "api_schema": read_json(policy)});
    let file = temp_file("guard.json", &guard.to_string());
    let r = portcullis(&["check", &file]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let write = bearer("orders:write");
    let v = run(
        "guard",
        &guard,
        "GET",
        "/v1/orders?limit=5",
        &[("authorization", &bearer("orders:read"))],
    );
    assert_eq!(code(&v), None);
    let v = run(
        "guard",
        &guard,
        "GET",
        "/v1/orders?limit=500",
        &[("authorization", &bearer("orders:read"))],
    );
    assert_eq!(code(&v), Some("api_schema.invalid_parameter"));
    let v = run(
        "guard",
        &guard,
        "DELETE",
        "/v1/orders/nope",
        &[("authorization", &bearer("orders:read"))],
    );
    assert_eq!(code(&v), Some("jwt.scope"));
    let v = run(
        "guard",
        &guard,
        "DELETE",
        "/v1/orders/nope",
        &[("authorization", &write)],
    );
    assert_eq!(code(&v), Some("api_schema.invalid_parameter"));
}

#[test]
fn usage_errors_exit_2_and_the_subcommand_has_help() {
    let same = temp("same.json");
    let same = same.to_str().unwrap();
    let r = portcullis(&["openapi", "import", JSON, "-o", same, "--jwt-routes", same]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("the same file"), "{}", r.stderr);
    let r = portcullis(&["openapi", "import", "no-such-spec.yaml"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("<SPEC>"), "{}", r.stderr);
    let r = portcullis(&["openapi", "import", JSON, "--mode", "block"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = portcullis(&["openapi", "import", "--help"]);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.contains("Usage: portcullis openapi import"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("--jwt-routes"), "{}", r.stdout);
}
