use super::*;
use serde_json::json;

/// A contract with one operation per path, `security` as given, and these schemes.
fn contract(paths: Value, security: Option<Value>) -> Value {
    let mut doc = json!({
        "openapi": "3.1.0",
        "paths": paths,
        "components": {"securitySchemes": {
            "a": {"type": "oauth2", "flows": {}},
            "b": {"type": "openIdConnect", "openIdConnectUrl": "https://idp.example/.well-known/openid-configuration"},
            "key": {"type": "apiKey", "in": "header", "name": "x-api-key"}
        }}
    });
    if let Some(s) = security {
        doc["security"] = s;
    }
    doc
}

fn get(security: Value) -> Value {
    json!({"/x": {"get": {"security": security}}})
}

/// The rule (route without `match`) of the only operation, and the notices.
fn rule_of(security: Value) -> (Value, Vec<Notice>) {
    let r = routes::routes(&contract(get(security), None)).unwrap();
    let mut route = r.fragment["routes"][0].clone();
    if let Some(o) = route.as_object_mut() {
        o.remove("match");
    }
    (route, r.notices)
}

fn says(notices: &[Notice], word: &str) -> bool {
    notices.iter().any(|n| n.what.contains(word))
}

#[test]
fn oas_security_requirement_scopes_become_scopes_all_of_that_provider() {
    let (r, n) = rule_of(json!([{"a": ["read", "write"]}]));
    assert_eq!(
        r,
        json!({"providers": ["a"], "scopes_all": ["read", "write"]})
    );
    assert!(n.is_empty(), "{n:?}");
}

#[test]
fn oas_security_operation_level_overrides_the_top_level() {
    let doc = contract(
        json!({"/x": {"get": {}, "post": {"security": [{"a": ["write"]}]}}}),
        Some(json!([{"a": ["read"]}])),
    );
    let r = routes::routes(&doc).unwrap();
    assert_eq!(r.fragment["routes"][0]["scopes_all"], json!(["read"]));
    assert_eq!(r.fragment["routes"][0]["match"]["methods"], json!(["GET"]));
    assert_eq!(r.fragment["routes"][1]["scopes_all"], json!(["write"]));
    assert_eq!(r.fragment["default"], json!({"deny": true}));
}

#[test]
fn oas_security_empty_list_and_no_security_are_public() {
    let (r, _) = rule_of(json!([]));
    assert_eq!(r, json!({"allow_anonymous": true}));
    let doc = contract(json!({"/x": {"get": {}}}), None);
    let r = routes::routes(&doc).unwrap();
    assert_eq!(r.fragment["routes"][0]["allow_anonymous"], json!(true));
    // Top-level security, operation `[]`: public.
    let doc = contract(
        json!({"/x": {"get": {"security": []}}}),
        Some(json!([{"a": []}])),
    );
    let r = routes::routes(&doc).unwrap();
    assert_eq!(r.fragment["routes"][0]["allow_anonymous"], json!(true));
}

#[test]
fn oas_security_empty_requirement_object_makes_the_token_optional() {
    let (r, _) = rule_of(json!([{}, {"a": ["read"]}]));
    assert_eq!(
        r,
        json!({"providers": ["a"], "scopes_all": ["read"], "allow_anonymous": true})
    );
}

#[test]
fn oas_security_alternatives_with_the_same_scopes_accept_either_provider() {
    let (r, n) = rule_of(json!([{"a": ["read"]}, {"b": ["read"]}]));
    assert_eq!(r, json!({"providers": ["a", "b"], "scopes_all": ["read"]}));
    assert!(n.is_empty(), "{n:?}");
}

#[test]
fn oas_security_alternatives_differing_by_one_scope_are_scopes_any() {
    let (r, n) = rule_of(json!([{"a": ["base", "read"]}, {"a": ["base", "admin"]}]));
    assert_eq!(
        r,
        json!({"providers": ["a"], "scopes_all": ["base"], "scopes_any": ["admin", "read"]})
    );
    assert!(n.is_empty(), "{n:?}");
    // An alternative implied by a weaker one adds nothing: [x] or [x, y] is [x].
    let (r, _) = rule_of(json!([{"a": ["x"]}, {"a": ["x", "y"]}]));
    assert_eq!(r, json!({"providers": ["a"], "scopes_all": ["x"]}));
}

#[test]
fn oas_security_alternatives_jwt_auth_cannot_express_require_every_scope() {
    // (x and y) or (z and w): no scopes_all/any form; stricter: all four.
    let (r, n) = rule_of(json!([{"a": ["x", "y"]}, {"a": ["z", "w"]}]));
    assert_eq!(
        r,
        json!({"providers": ["a"], "scopes_all": ["w", "x", "y", "z"]})
    );
    assert!(says(&n, "stricter"), "{n:?}");
    // Different scopes per provider: every scope, from either.
    let (r, n) = rule_of(json!([{"a": ["x"]}, {"b": []}]));
    assert_eq!(r, json!({"providers": ["a", "b"], "scopes_all": ["x"]}));
    assert!(says(&n, "stricter"), "{n:?}");
}

#[test]
fn oas_security_two_oauth_schemes_at_once_cannot_be_checked_and_deny() {
    let (r, n) = rule_of(json!([{"a": [], "b": []}]));
    assert_eq!(r, json!({"deny": true}));
    assert!(says(&n, "two OAuth tokens"), "{n:?}");
    // Beside a checkable alternative it is dropped: only the other one is accepted.
    let (r, _) = rule_of(json!([{"a": [], "b": []}, {"a": ["x"]}]));
    assert_eq!(r, json!({"providers": ["a"], "scopes_all": ["x"]}));
}

#[test]
fn oas_security_non_oauth_schemes_are_left_to_other_controls_and_reported() {
    let (r, n) = rule_of(json!([{"key": []}]));
    assert_eq!(r, json!({"allow_anonymous": true}));
    assert!(
        n.iter()
            .any(|n| n.path == "openapi.paths./x.get.security[0].key"),
        "{n:?}"
    );
    assert!(says(&n, "allow_anonymous"), "{n:?}");
    // key or a token: jwt-auth can only check the token, so it requires it (stricter).
    let (r, n) = rule_of(json!([{"key": []}, {"a": ["x"]}]));
    assert_eq!(r, json!({"providers": ["a"], "scopes_all": ["x"]}));
    assert!(says(&n, "stricter"), "{n:?}");
    // key and a token: the token is checked, the key reported.
    let (r, n) = rule_of(json!([{"key": [], "a": ["x"]}]));
    assert_eq!(r, json!({"providers": ["a"], "scopes_all": ["x"]}));
    assert!(says(&n, "api-key"), "{n:?}");
}

#[test]
fn oas_security_an_undeclared_scheme_is_an_error_with_its_path() {
    let e = routes::routes(&contract(get(json!([{"nope": []}])), None))
        .err()
        .unwrap();
    assert!(
        e.starts_with("openapi.paths./x.get.security[0]: security scheme `nope`"),
        "{e}"
    );
}

fn matches(doc: Value) -> Vec<Value> {
    let r = routes::routes(&doc).unwrap();
    r.fragment["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["match"].clone())
        .collect()
}

#[test]
fn oas_paths_concrete_paths_are_exact_and_templates_one_segment_each() {
    let m = matches(contract(
        json!({"/v.2/{id}/items": {"get": {}}, "/v.2/all": {"get": {}}, "/": {"get": {}}}),
        None,
    ));
    assert_eq!(
        m,
        vec![
            json!({"exact": "/", "methods": ["GET"]}),
            json!({"exact": "/v.2/all", "methods": ["GET"]}),
            json!({"regex": "/v\\.2/[^/]+/items", "methods": ["GET"]}),
        ]
    );
}

#[test]
fn oas_servers_each_base_path_gets_the_routes_in_order() {
    let mut doc = contract(json!({"/o/{id}": {"get": {}}}), None);
    doc["servers"] = json!([{"url": "https://api.example.com/v1/"}, {"url": "/v2"}]);
    assert_eq!(
        matches(doc),
        vec![
            json!({"regex": "/v1/o/[^/]+", "methods": ["GET"]}),
            json!({"regex": "/v2/o/[^/]+", "methods": ["GET"]}),
        ]
    );
}

#[test]
fn oas_paths_concrete_before_templated_undeclared_methods_do_not_fall_through() {
    // api-schema answers DELETE /o/export with 405: it must not meet /o/{id}'s DELETE rule.
    let doc = contract(
        json!({"/o/{id}": {"get": {"security": [{"a": ["read"]}]}, "delete": {"security": [{"a": ["admin"]}]}},
               "/o/export": {"get": {"security": []}}}),
        None,
    );
    let r = routes::routes(&doc).unwrap();
    let routes = r.fragment["routes"].as_array().unwrap();
    assert_eq!(
        routes[0]["match"],
        json!({"exact": "/o/export", "methods": ["GET"]})
    );
    assert_eq!(
        routes[1],
        json!({"match": {"exact": "/o/export"}, "deny": true})
    );
    assert_eq!(routes[2]["match"]["regex"], json!("/o/[^/]+"));
    assert_eq!(routes.len(), 4);
    // Methods with the same rule share a route.
    let doc = contract(json!({"/o": {"get": {}, "head": {}}}), None);
    assert_eq!(
        matches(doc),
        vec![json!({"exact": "/o", "methods": ["GET", "HEAD"]})]
    );
}

#[test]
fn oas_paths_a_literal_no_normalised_path_can_carry_gets_no_route() {
    let r = routes::routes(&contract(
        json!({"/a/./b": {"get": {}}, "/c;d": {"get": {}}, "/e//f": {"get": {}}}),
        None,
    ))
    .unwrap();
    assert_eq!(r.fragment["routes"], json!([]));
    assert_eq!(r.notices.len(), 3, "{:?}", r.notices);
    // %-encoded unreserved characters are compared decoded, like the request's.
    let m = matches(contract(json!({"/%7Euser": {"get": {}}}), None));
    assert_eq!(m, vec![json!({"exact": "/~user", "methods": ["GET"]})]);
}

#[test]
fn notices_name_annotations_write_only_discriminators_and_responses() {
    let doc = json!({
        "openapi": "3.0.3",
        "security": [{"a": []}],
        "paths": {"/u": {"post": {
            "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/U"}}}},
            "responses": {"201": {"description": "ok"}}}}},
        "components": {"schemas": {"U": {"type": "object", "properties": {
            "pw": {"type": "string", "format": "password", "writeOnly": true},
            "self": {"$ref": "#/components/schemas/U"}}}}}
    });
    let n = notices::collect(&doc, false, Responses::Report);
    let paths: Vec<&str> = n.iter().map(|n| n.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "security",
            "responses",
            "openapi.components.schemas.U.properties.pw.format",
            "openapi.components.schemas.U.properties.pw.writeOnly",
        ]
    );
    // With --jwt-routes, security is the routes' business; enforced responses are enforced.
    assert!(!notices::collect(&doc, true, Responses::Report)
        .iter()
        .any(|n| n.path == "security"));
    let enforced = notices::collect(&doc, false, Responses::Enforce);
    assert!(!enforced
        .iter()
        .any(|n| n.path == "responses" || n.path.ends_with(".writeOnly")));
}

#[test]
fn notices_name_what_responses_declare_but_api_schema_does_not_check() {
    let doc = json!({
        "openapi": "3.0.3",
        "paths": {"/r": {"get": {"responses": {
            "200": {"description": "ok",
                    "headers": {"x-rate": {"schema": {"type": "integer"}}},
                    "links": {"self": {"operationId": "r"}},
                    "content": {
                        "application/json": {"schema": {"type": "string", "format": "byte"}},
                        "application/xml": {"schema": {"type": "object"}}}},
            "default": {"$ref": "#/components/responses/E"}}}}},
        "components": {"responses": {"E": {"description": "e",
            "headers": {"x-e": {"schema": {"type": "string"}}}}}}
    });
    let n = notices::collect(&doc, false, Responses::Enforce);
    let paths: Vec<&str> = n.iter().map(|n| n.path.as_str()).collect();
    let at = "openapi.paths./r.get.responses.200";
    assert_eq!(
        paths,
        vec![
            format!("{at}.headers").as_str(),
            &format!("{at}.links"),
            &format!("{at}.content.application/json.schema.format"),
            &format!("{at}.content.application/xml.schema"),
            "openapi.components.responses.E.headers",
        ]
    );
    assert!(says(&n, "non-JSON"));
    // Responses off: none of it is compiled, one notice says so.
    let off = notices::collect(&doc, false, Responses::Off);
    let paths: Vec<&str> = off.iter().map(|n| n.path.as_str()).collect();
    assert_eq!(paths, vec!["responses"]);
}
