use super::*;
use crate::control::configure;
use crate::store::MemoryStore;
use crate::time::format_rfc3339;
use std::time::{Duration, SystemTime};

const T0: i64 = 1_780_000_000; // 2026-05-28T20:26:40Z
const DAY: i64 = 86_400;

fn policy(extra: &str) -> String {
    format!(
        r#"{{
  "keys": [
    {{"id": "acme-1", "client": "acme", "sha256": "{}", "scopes": ["orders:read", "orders:write"]}},
    {{"id": "acme-2", "client": "acme", "sha256": "{}", "scopes": ["orders:read"],
      "not_before": "{}", "not_after": "{}"}},
    {{"id": "beta-1", "client": "beta", "sha256": "{}"}}
  ],
  "grace": "7d"{extra}
}}"#,
        sha256_hex(b"pk_acme_one"),
        sha256_hex(b"pk_acme_two"),
        format_rfc3339(T0 - 10 * DAY),
        format_rfc3339(T0 + 10 * DAY),
        sha256_hex(b"pk_beta"),
    )
}

fn control(extra: &str) -> ApiKey {
    configure::<ApiKey>(policy(extra).as_bytes()).unwrap()
}

fn at(t: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(t as u64)
}

fn run_at(c: &ApiKey, r: &RequestView, t: i64) -> Verdict {
    let store = MemoryStore::default();
    c.on_request(
        r,
        &Env {
            now: at(t),
            store: &store,
        },
    )
}

fn run(c: &ApiKey, method: &str, path: &str, headers: &[(&str, &str)]) -> Verdict {
    run_at(c, &RequestView::new(method, path, headers).unwrap(), T0)
}

fn respond(c: &ApiKey, r: &RequestView) -> Verdict {
    let store = MemoryStore::default();
    c.on_response(
        r,
        &ResponseView::default(),
        &Env {
            now: at(T0),
            store: &store,
        },
    )
}

fn code(v: &Verdict) -> Option<(u16, &'static str)> {
    match v {
        Verdict::Deny(r) => Some((r.status, r.code)),
        _ => None,
    }
}

fn ops(v: Verdict) -> Vec<HeaderOp> {
    match v {
        Verdict::Mutate(ops) => ops,
        v => panic!("{v:?}"),
    }
}

fn set(ops: &[HeaderOp], name: &str) -> Option<String> {
    ops.iter().find_map(|o| match o {
        HeaderOp::Set(k, v) if k == name => Some(v.clone()),
        _ => None,
    })
}

fn removes(ops: &[HeaderOp], name: &str) -> bool {
    ops.iter()
        .any(|o| matches!(o, HeaderOp::Remove(k) if k == name))
}

#[test]
fn a_valid_key_passes_with_identity_forwarded_and_the_key_removed() {
    let c = control("");
    let o = ops(run(&c, "GET", "/orders", &[("x-api-key", "pk_acme_one")]));
    assert!(removes(&o, "x-api-key"));
    assert_eq!(set(&o, "x-apikey-client").as_deref(), Some("acme"));
    assert_eq!(set(&o, "x-apikey-id").as_deref(), Some("acme-1"));
    assert_eq!(
        set(&o, "x-apikey-scopes").as_deref(),
        Some("orders:read orders:write")
    );
    // The key itself appears in no op.
    assert!(!format!("{o:?}").contains("pk_acme_one"));
}

#[test]
fn incoming_identity_headers_are_always_stripped() {
    let c = control(r#", "default": {"optional": true}"#);
    let spoof = [
        ("x-apikey-client", "admin"),
        ("x-apikey-scopes", "admin:*"),
        ("x-apikey-id", "root"),
    ];
    let o = ops(run(&c, "GET", "/", &spoof));
    for h in ["x-apikey-client", "x-apikey-scopes", "x-apikey-id"] {
        assert!(removes(&o, h), "{h}");
        assert_eq!(set(&o, h), None);
    }
    // beta-1 has no scopes: the spoofed scopes header is removed, not replaced.
    let mut with_key = spoof.to_vec();
    with_key.push(("x-api-key", "pk_beta"));
    let o = ops(run(&c, "GET", "/", &with_key));
    assert!(removes(&o, "x-apikey-scopes"));
    assert_eq!(set(&o, "x-apikey-scopes"), None);
    assert_eq!(set(&o, "x-apikey-client").as_deref(), Some("beta"));
    let view = RequestView::new("GET", "/", &with_key)
        .unwrap()
        .with_ops(&o);
    assert_eq!(view.header("x-apikey-client"), Some("beta"));
    assert_eq!(view.header("x-apikey-scopes"), None);
    assert_eq!(view.header("x-api-key"), None);
}

#[test]
fn missing_unknown_and_malformed_keys_are_401() {
    let c = control("");
    for (headers, want) in [
        (vec![], "api_key.missing"),
        (vec![("x-api-key", "pk_nope")], "api_key.unknown"),
        (vec![("x-api-key", "")], "api_key.malformed"),
        (
            vec![("x-api-key", "pk_acme_one"), ("x-api-key", "pk_beta")],
            "api_key.malformed",
        ),
        (
            vec![("x-api-key", "pk_acme_one"), ("x-api-key", "pk_acme_one")],
            "api_key.malformed",
        ),
        (vec![("x-api-key", "pk acme")], "api_key.malformed"),
    ] {
        let v = run(&c, "GET", "/", &headers);
        assert_eq!(code(&v), Some((401, want)), "{headers:?}");
        if let Verdict::Deny(r) = &v {
            assert!(r
                .headers
                .iter()
                .any(|(k, v)| k == "www-authenticate" && v == "ApiKey"));
            assert!(!r.detail.contains("pk_"), "{}", r.detail);
        }
    }
    let long = "k".repeat(MAX_KEY_LEN + 1);
    let v = run(&c, "GET", "/", &[("x-api-key", &long)]);
    assert_eq!(code(&v), Some((401, "api_key.malformed")));
}

#[test]
fn validity_window_not_before_and_not_after() {
    let c = control("");
    let r = RequestView::new("GET", "/", &[("x-api-key", "pk_acme_two")]).unwrap();
    assert_eq!(
        code(&run_at(&c, &r, T0 - 11 * DAY)),
        Some((401, "api_key.not_yet_valid"))
    );
    assert!(matches!(run_at(&c, &r, T0 - 10 * DAY), Verdict::Mutate(_)));
    assert!(matches!(
        run_at(&c, &r, T0 + 10 * DAY - 1),
        Verdict::Mutate(_)
    ));
    assert_eq!(
        code(&run_at(&c, &r, T0 + 10 * DAY)),
        Some((401, "api_key.expired"))
    );
}

#[test]
fn rfc8594_sunset_and_rfc9745_deprecation_inside_the_grace_period() {
    let c = control("");
    let not_after = T0 + 10 * DAY;
    // Before the grace period: no headers.
    let r = RequestView::new("GET", "/", &[("x-api-key", "pk_acme_two")]).unwrap();
    run_at(&c, &r, not_after - 8 * DAY);
    assert_eq!(respond(&c, &r), Verdict::Continue);
    // Inside it.
    let r = RequestView::new("GET", "/", &[("x-api-key", "pk_acme_two")]).unwrap();
    assert!(matches!(
        run_at(&c, &r, not_after - 3 * DAY),
        Verdict::Mutate(_)
    ));
    let o = ops(respond(&c, &r));
    assert_eq!(
        set(&o, "deprecation"),
        Some(format!("@{}", not_after - 7 * DAY))
    );
    assert_eq!(set(&o, "sunset"), Some(http_date(not_after)));
    // A key without not_after is never deprecated.
    let r = RequestView::new("GET", "/", &[("x-api-key", "pk_acme_one")]).unwrap();
    run_at(&c, &r, T0);
    assert_eq!(respond(&c, &r), Verdict::Continue);
}

#[test]
fn two_keys_of_one_client_work_at_once() {
    let c = control("");
    for k in ["pk_acme_one", "pk_acme_two"] {
        let o = ops(run(&c, "GET", "/", &[("x-api-key", k)]));
        assert_eq!(set(&o, "x-apikey-client").as_deref(), Some("acme"));
    }
}

#[test]
fn authorization_apikey_scheme_when_enabled() {
    let c = control("");
    let v = run(&c, "GET", "/", &[("authorization", "ApiKey pk_beta")]);
    assert_eq!(code(&v), Some((401, "api_key.missing")), "off by default");
    let c = control(r#", "authorization": true"#);
    for a in ["ApiKey pk_beta", "apikey pk_beta", "APIKEY   pk_beta "] {
        let o = ops(run(&c, "GET", "/", &[("authorization", a)]));
        assert!(removes(&o, "authorization"), "{a}");
        assert_eq!(set(&o, "x-apikey-client").as_deref(), Some("beta"));
    }
    // Another scheme is somebody else's credential: left alone.
    let o = ops(run(
        &c,
        "GET",
        "/",
        &[("authorization", "Bearer eyJ"), ("x-api-key", "pk_beta")],
    ));
    assert!(!removes(&o, "authorization"));
    // A key in two places is ambiguous.
    let v = run(
        &c,
        "GET",
        "/",
        &[
            ("authorization", "ApiKey pk_beta"),
            ("x-api-key", "pk_beta"),
        ],
    );
    assert_eq!(code(&v), Some((401, "api_key.malformed")));
}

#[test]
fn query_parameter_only_when_configured_and_removed_from_the_path() {
    let c = control("");
    let v = run(&c, "GET", "/orders?api_key=pk_beta", &[]);
    assert_eq!(code(&v), Some((401, "api_key.missing")));
    let c = control(r#", "query_param": "api_key""#);
    let o = ops(run(&c, "GET", "/orders?a=1&api_key=pk_beta&b=2", &[]));
    assert_eq!(set(&o, ":path").as_deref(), Some("/orders?a=1&b=2"));
    let o = ops(run(&c, "GET", "/orders?api_key=pk%5Fbeta", &[]));
    assert_eq!(set(&o, ":path").as_deref(), Some("/orders"));
    let v = run(&c, "GET", "/orders?api_key=pk_beta&api_key=pk_beta", &[]);
    assert_eq!(code(&v), Some((401, "api_key.malformed")));
    // A key in the header leaves the query alone.
    let o = ops(run(&c, "GET", "/orders?x=1", &[("x-api-key", "pk_beta")]));
    assert_eq!(set(&o, ":path"), None);
}

#[test]
fn per_route_scopes_all_and_any() {
    let c = control(
        r#", "routes": [
      {"match": {"prefix": "/orders", "methods": ["POST"]}, "scopes_all": ["orders:write"]},
      {"match": {"prefix": "/orders"}, "scopes_any": ["orders:read", "orders:admin"]},
      {"match": {"prefix": "/public"}, "optional": true}
    ]"#,
    );
    let key = |k| [("x-api-key", k)];
    assert!(matches!(
        run(&c, "POST", "/orders", &key("pk_acme_one")),
        Verdict::Mutate(_)
    ));
    let v = run(&c, "POST", "/orders", &key("pk_acme_two"));
    assert_eq!(code(&v), Some((403, "api_key.scope")));
    if let Verdict::Deny(r) = v {
        assert!(r.detail.contains("orders:write"), "{}", r.detail);
    }
    assert!(matches!(
        run(&c, "GET", "/orders/1", &key("pk_acme_two")),
        Verdict::Mutate(_)
    ));
    assert_eq!(
        code(&run(&c, "GET", "/orders/1", &key("pk_beta"))),
        Some((403, "api_key.scope"))
    );
    assert!(matches!(run(&c, "GET", "/public", &[]), Verdict::Mutate(_)));
    assert_eq!(
        code(&run(&c, "GET", "/public", &key("pk_wrong"))),
        Some((401, "api_key.unknown")),
        "a key that is present is checked even where keys are optional"
    );
}

#[test]
fn invalid_policies_name_the_field() {
    let h = sha256_hex(b"x");
    for (json, path) in [
        (
            r#"{"keys": [{"id": "a", "client": "c", "sha256": "pk_plaintext"}]}"#.to_string(),
            "keys[0].sha256",
        ),
        (
            format!(
                r#"{{"keys": [{{"id": "a", "client": "c", "sha256": "{h}"}}, {{"id": "a", "client": "c", "sha256": "{}"}}]}}"#,
                sha256_hex(b"y")
            ),
            "keys[1].id",
        ),
        (
            format!(
                r#"{{"keys": [{{"id": "a", "client": "c", "sha256": "{h}"}}, {{"id": "b", "client": "c", "sha256": "{h}"}}]}}"#
            ),
            "keys[1].sha256",
        ),
        (
            format!(r#"{{"keys": [{{"id": "a", "client": "c d", "sha256": "{h}"}}]}}"#),
            "keys[0].client",
        ),
        (
            format!(
                r#"{{"keys": [{{"id": "a", "client": "c", "sha256": "{h}", "not_after": "tomorrow"}}]}}"#
            ),
            "keys[0].not_after",
        ),
        (
            format!(
                r#"{{"keys": [{{"id": "a", "client": "c", "sha256": "{h}", "not_before": "2026-02-01T00:00:00Z", "not_after": "2026-01-01T00:00:00Z"}}]}}"#
            ),
            "keys[0].not_after",
        ),
        (
            format!(
                r#"{{"keys": [{{"id": "a", "client": "c", "sha256": "{h}", "scopes": ["a b"]}}]}}"#
            ),
            "keys[0].scopes[0]",
        ),
        (
            format!(r#"{{"keys": [{{"id": "a", "client": "c", "sha256": "{h}", "key": "x"}}]}}"#),
            "keys[0].key",
        ),
        (r#"{"grace": "a week"}"#.to_string(), "grace"),
        (
            r#"{"client_header": "X-Client"}"#.to_string(),
            "client_header",
        ),
        (r#"{"header": "authorization"}"#.to_string(), "header"),
        (r#"{"header": null}"#.to_string(), "header"),
        (r#"{"query_param": "a&b"}"#.to_string(), "query_param"),
        (
            r#"{"routes": [{"match": {"prefix": "/"}, "scopes_any": ["a,b"]}]}"#.to_string(),
            "routes[0].scopes_any[0]",
        ),
    ] {
        let e = configure::<ApiKey>(json.as_bytes()).unwrap_err();
        assert_eq!(e.path, path, "{json}: {e}");
    }
    assert!(
        configure::<ApiKey>(b"{}").is_ok(),
        "no keys: every request is refused"
    );
}

#[test]
fn in_a_guard_chain_the_grace_headers_still_reach_the_response() {
    use crate::controls::guard::Guard;
    let inner = policy("");
    let g = configure::<Guard>(
        format!(r#"{{"chain": ["csrf", "api_key"], "csrf": {{"default": {{"enabled": false}}}}, "api_key": {inner}}}"#)
            .as_bytes(),
    )
    .unwrap();
    let store = MemoryStore::default();
    let env = Env {
        now: at(T0 + 5 * DAY),
        store: &store,
    };
    let r = RequestView::new("GET", "/", &[("x-api-key", "pk_acme_two")]).unwrap();
    assert!(matches!(g.on_request(&r, &env), Verdict::Pass { .. }));
    let v = g.on_response(&r, &ResponseView::default(), &env);
    let Verdict::Pass { ops, .. } = v else {
        panic!("{v:?}")
    };
    assert_eq!(set(&ops, "sunset"), Some(http_date(T0 + 10 * DAY)));
}

/// Review finding: CGI, PHP, WSGI and Rack read `x_apikey_client` as `x-apikey-client`
/// (`HTTP_X_APIKEY_CLIENT`) and Envoy forwards underscores by default, so the spelling with
/// `_` of an identity header is stripped too.
#[test]
fn identity_headers_spelt_with_underscores_are_stripped_too() {
    let c = control(r#", "default": {"optional": true}"#);
    let spoof = [("x_apikey_client", "admin"), ("x_apikey-scopes", "admin:*")];
    for headers in [
        spoof.to_vec(),
        [&spoof[..], &[("x-api-key", "pk_beta")]].concat(),
    ] {
        let o = ops(run(&c, "GET", "/", &headers));
        assert!(removes(&o, "x_apikey_client"), "{o:?}");
        assert!(removes(&o, "x_apikey-scopes"), "{o:?}");
    }
}
