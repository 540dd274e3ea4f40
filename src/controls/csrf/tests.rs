use super::*;
use crate::control::configure;
use crate::store::MemoryStore;
use std::time::SystemTime;

fn control(json: &str) -> Csrf {
    configure::<Csrf>(json.as_bytes()).unwrap()
}

fn req(method: &str, path: &str, headers: &[(&str, &str)]) -> RequestView {
    let mut all = vec![("host", "api.example.com")];
    all.extend_from_slice(headers);
    let mut r = RequestView::new(method, path, &all).unwrap();
    r.authority = "api.example.com".into();
    // The site is served over TLS.
    r.connection.tls = true;
    r
}

fn run(c: &Csrf, r: &RequestView) -> Verdict {
    let store = MemoryStore::default();
    let env = Env {
        now: SystemTime::UNIX_EPOCH,
        store: &store,
    };
    c.on_request(r, &env)
}

fn respond(c: &Csrf, r: &RequestView, headers: &[(&str, &str)]) -> Verdict {
    let store = MemoryStore::default();
    let env = Env {
        now: SystemTime::UNIX_EPOCH,
        store: &store,
    };
    let resp = ResponseView {
        status: 200,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect(),
    };
    c.on_response(r, &resp, &env)
}

fn post(c: &Csrf, headers: &[(&str, &str)]) -> Verdict {
    run(c, &req("POST", "/", headers))
}

fn code(v: &Verdict) -> Option<&'static str> {
    match v {
        Verdict::Deny(r) => Some(r.code),
        _ => None,
    }
}

const ALLOWED: &str =
    r#"{"default": {"allowed_origins": ["https://app.example.com", "https://*.partner.example"]}}"#;

#[test]
fn rfc6454_origin_parsing() {
    let o = parse_origin("HTTPS://API.Example.COM").unwrap();
    assert_eq!(o.to_string(), "https://api.example.com");
    assert_eq!(parse_origin("https://a.example:443").unwrap().port, None);
    assert_eq!(
        parse_origin("http://a.example:8080").unwrap().port,
        Some(8080)
    );
    assert_eq!(parse_origin("http://[::1]:8080").unwrap().host, "[::1]");
    assert_eq!(parse_origin("null"), Err(OriginError::Null));
    for bad in [
        "",
        "https://",
        "example.com",
        "https://a.example/",
        "https://a.example/path",
        "https://user@a.example",
        "https://a.example:99999",
        "https://a.example:",
        "https://a.example, https://b.example",
        "https://a b",
        "1http://a.example",
        "https://[::1",
    ] {
        assert_eq!(parse_origin(bad), Err(OriginError::Malformed), "{bad}");
    }
}

#[test]
fn rfc9110_10_1_3_referer_gives_its_origin() {
    let o = parse_referer("https://app.example.com/page?x=1#y").unwrap();
    assert_eq!(o.to_string(), "https://app.example.com");
    assert_eq!(
        parse_referer("https://a.example?q").unwrap().to_string(),
        "https://a.example"
    );
    assert!(parse_referer("/relative/path").is_err());
    assert!(parse_referer("https://example.com@evil.example/").is_err());
}

#[test]
fn patterns_exact_and_subdomains() {
    let p = OriginPattern::parse("https://*.example.com").unwrap();
    let o = |s| parse_origin(s).unwrap();
    assert!(p.matches(&o("https://a.example.com")));
    assert!(p.matches(&o("https://a.b.example.com")));
    assert!(
        !p.matches(&o("https://example.com")),
        "the apex is not a subdomain"
    );
    assert!(!p.matches(&o("http://a.example.com")), "scheme must match");
    assert!(
        !p.matches(&o("https://a.example.com:8443")),
        "port must match"
    );
    assert!(!p.matches(&o("https://evilexample.com")));
    assert!(!p.matches(&o("https://a.example.com.evil.com")));
    let e = OriginPattern::parse("https://app.example.com").unwrap();
    assert!(e.matches(&o("https://APP.example.com:443")));
    for bad in [
        "app.example.com",
        "https://*.com",
        "https://a*.example.com",
        "https://*",
        "https://app.example.com/",
        "*",
    ] {
        assert!(OriginPattern::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn same_origin_post_passes() {
    let c = control("{}");
    for origin in ["https://api.example.com", "https://API.EXAMPLE.COM:443"] {
        // (`http://api.example.com` is not: rfc6454_5_the_own_origin_compares_the_scheme.)
        let v = run(&c, &req("POST", "/orders", &[("origin", origin)]));
        assert_eq!(v, Verdict::Continue, "{origin}");
    }
}

#[test]
fn cross_origin_post_is_403_csrf_origin() {
    let c = control("{}");
    for origin in [
        "https://evil.example",
        "https://api.example.com.evil.com",
        "https://api.example.com:8443",
        "https://evil-api.example.com",
    ] {
        let v = run(&c, &req("POST", "/orders", &[("origin", origin)]));
        assert_eq!(code(&v), Some("csrf.origin"), "{origin}");
        if let Verdict::Deny(r) = v {
            assert_eq!(r.status, 403);
            assert!(!r.detail.contains("evil"), "the origin is not reflected");
        }
    }
}

#[test]
fn allowed_origins_pass_exact_and_by_pattern() {
    let c = control(ALLOWED);
    for (origin, ok) in [
        ("https://app.example.com", true),
        ("https://x.partner.example", true),
        ("https://partner.example", false),
        ("http://app.example.com", false),
    ] {
        let v = run(&c, &req("PUT", "/orders/1", &[("origin", origin)]));
        assert_eq!(v == Verdict::Continue, ok, "{origin}: {v:?}");
    }
}

#[test]
fn safe_methods_are_not_checked_and_methods_are_configurable() {
    let c = control("{}");
    for m in ["GET", "HEAD", "OPTIONS"] {
        let v = run(&c, &req(m, "/", &[("origin", "https://evil.example")]));
        assert_eq!(v, Verdict::Continue, "{m}");
    }
    for m in ["POST", "PUT", "PATCH", "DELETE"] {
        let v = run(&c, &req(m, "/", &[("origin", "https://evil.example")]));
        assert_eq!(code(&v), Some("csrf.origin"), "{m}");
    }
    let c = control(r#"{"default": {"methods": ["POST"]}}"#);
    let v = run(
        &c,
        &req("DELETE", "/", &[("origin", "https://evil.example")]),
    );
    assert_eq!(v, Verdict::Continue);
}

#[test]
fn referer_is_the_fallback_when_origin_is_absent() {
    let c = control(ALLOWED);
    let v = post(&c, &[("referer", "https://api.example.com/form")]);
    assert_eq!(v, Verdict::Continue);
    let v = post(&c, &[("referer", "https://app.example.com/x")]);
    assert_eq!(v, Verdict::Continue);
    let v = post(&c, &[("referer", "https://evil.example/")]);
    assert_eq!(code(&v), Some("csrf.origin"));
    // Origin wins over Referer.
    let v = post(
        &c,
        &[
            ("origin", "https://evil.example"),
            ("referer", "https://api.example.com/"),
        ],
    );
    assert_eq!(code(&v), Some("csrf.origin"));
}

#[test]
fn neither_origin_nor_referer_follows_the_policy() {
    let v = run(&control("{}"), &req("POST", "/", &[]));
    assert_eq!(code(&v), Some("csrf.origin"));
    let c = control(r#"{"default": {"missing_origin": "allow"}}"#);
    assert_eq!(post(&c, &[]), Verdict::Continue);
}

#[test]
fn origin_null_is_denied_unless_allowed() {
    let v = run(&control("{}"), &req("POST", "/", &[("origin", "null")]));
    assert_eq!(code(&v), Some("csrf.origin"));
    let c = control(r#"{"default": {"allow_null_origin": true}}"#);
    assert_eq!(post(&c, &[("origin", "null")]), Verdict::Continue);
    // Even allowed, a cross-site `null` is still cross-site.
    let v = post(&c, &[("origin", "null"), ("sec-fetch-site", "cross-site")]);
    assert_eq!(code(&v), Some("csrf.origin"));
}

#[test]
fn two_origins_or_two_referers_are_denied() {
    let c = control("{}");
    let v = post(
        &c,
        &[
            ("origin", "https://api.example.com"),
            ("origin", "https://evil.example"),
        ],
    );
    assert_eq!(code(&v), Some("csrf.origin"));
    let v = post(
        &c,
        &[
            ("referer", "https://api.example.com/"),
            ("referer", "https://evil.example/"),
        ],
    );
    assert_eq!(code(&v), Some("csrf.origin"));
}

#[test]
fn fetch_metadata_cross_site_is_denied_even_with_a_same_host_origin() {
    let c = control(ALLOWED);
    let v = post(
        &c,
        &[
            ("origin", "https://api.example.com"),
            ("sec-fetch-site", "cross-site"),
        ],
    );
    assert_eq!(code(&v), Some("csrf.origin"));
    // An explicitly allowed origin is cross-site by nature.
    let v = post(
        &c,
        &[
            ("origin", "https://x.partner.example"),
            ("sec-fetch-site", "cross-site"),
        ],
    );
    assert_eq!(v, Verdict::Continue);
    for site in ["same-origin", "same-site", "none"] {
        let v = post(
            &c,
            &[
                ("origin", "https://api.example.com"),
                ("sec-fetch-site", site),
            ],
        );
        assert_eq!(v, Verdict::Continue, "{site}");
    }
    let c = control(r#"{"default": {"fetch_metadata": false}}"#);
    let v = post(
        &c,
        &[
            ("origin", "https://api.example.com"),
            ("sec-fetch-site", "cross-site"),
        ],
    );
    assert_eq!(v, Verdict::Continue);
}

const TOKEN: &str = r#"{"default": {"token": {}}}"#;

#[test]
fn double_submit_token_must_match_the_cookie() {
    let c = control(TOKEN);
    let o = ("origin", "https://api.example.com");
    let ok = post(
        &c,
        &[
            o,
            ("cookie", "a=1; __Host-csrf=abc123; b=2"),
            ("x-csrf-token", "abc123"),
        ],
    );
    assert_eq!(ok, Verdict::Continue);
    let quoted = post(
        &c,
        &[
            o,
            ("cookie", "__Host-csrf=\"abc123\""),
            ("x-csrf-token", "abc123"),
        ],
    );
    assert_eq!(quoted, Verdict::Continue);
    for headers in [
        vec![
            o,
            ("cookie", "__Host-csrf=abc123"),
            ("x-csrf-token", "abc124"),
        ],
        vec![o, ("cookie", "__Host-csrf=abc123")],
        vec![o, ("x-csrf-token", "abc123")],
        vec![o, ("cookie", "__Host-csrf="), ("x-csrf-token", "")],
        vec![
            o,
            ("cookie", "__host-csrf=abc123"),
            ("x-csrf-token", "abc123"),
        ],
        vec![
            o,
            ("cookie", "__Host-csrf=abc123; __Host-csrf=evil"),
            ("x-csrf-token", "abc123"),
        ],
        vec![
            o,
            ("cookie", "__Host-csrf=abc123"),
            ("x-csrf-token", "abc123"),
            ("x-csrf-token", "abc123"),
        ],
    ] {
        let v = post(&c, &headers);
        assert_eq!(code(&v), Some("csrf.token"), "{headers:?}");
    }
    let long = "a".repeat(MAX_TOKEN_LEN + 1);
    let cookie = format!("__Host-csrf={long}");
    let v = post(&c, &[o, ("cookie", &cookie), ("x-csrf-token", &long)]);
    assert_eq!(code(&v), Some("csrf.token"));
}

#[test]
fn the_origin_is_checked_before_the_token() {
    let c = control(TOKEN);
    let v = post(
        &c,
        &[
            ("origin", "https://evil.example"),
            ("cookie", "__Host-csrf=t"),
            ("x-csrf-token", "t"),
        ],
    );
    assert_eq!(code(&v), Some("csrf.origin"));
}

#[test]
fn report_mode_passes_and_reports_every_finding() {
    let c = control(r#"{"default": {"mode": "report", "token": {}}}"#);
    let v = post(&c, &[("origin", "https://evil.example")]);
    match v {
        Verdict::Pass { ops, reports } => {
            assert!(ops.is_empty());
            let codes: Vec<_> = reports.iter().map(|r| r.code).collect();
            assert_eq!(codes, ["csrf.origin", "csrf.token"]);
        }
        v => panic!("{v:?}"),
    }
    let v = post(
        &c,
        &[
            ("origin", "https://api.example.com"),
            ("cookie", "__Host-csrf=t"),
            ("x-csrf-token", "t"),
        ],
    );
    assert_eq!(v, Verdict::Continue);
}

#[test]
fn per_route_rules_first_match_wins() {
    let c = control(
        r#"{"routes": [
             {"match": {"prefix": "/webhooks"}, "enabled": false},
             {"match": {"prefix": "/beta"}, "mode": "report"},
             {"match": {"prefix": "/partner"}, "allowed_origins": ["https://partner.example"]}
           ]}"#,
    );
    let evil = [("origin", "https://evil.example")];
    assert_eq!(
        run(&c, &req("POST", "/webhooks/x", &evil)),
        Verdict::Continue
    );
    assert!(matches!(
        run(&c, &req("POST", "/beta", &evil)),
        Verdict::Pass { .. }
    ));
    let p = [("origin", "https://partner.example")];
    assert_eq!(run(&c, &req("POST", "/partner/1", &p)), Verdict::Continue);
    assert_eq!(
        code(&run(&c, &req("POST", "/other", &p))),
        Some("csrf.origin")
    );
}

#[test]
fn the_cookie_is_issued_on_safe_requests_without_one() {
    let c = control(TOKEN);
    let r = req("GET", "/page", &[]);
    assert_eq!(run(&c, &r), Verdict::Continue);
    let v = respond(&c, &r, &[]);
    let Verdict::Mutate(ops) = v else {
        panic!("{v:?}")
    };
    let [HeaderOp::Add(k, cookie), HeaderOp::Set(h, token)] = ops.as_slice() else {
        panic!("{ops:?}")
    };
    assert_eq!(k, "set-cookie");
    assert_eq!(h, "x-csrf-token");
    assert_eq!(token.len(), 64);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        cookie,
        &format!("__Host-csrf={token}; Secure; HttpOnly; SameSite=Strict; Path=/")
    );
    // Fresh every time.
    let r2 = req("GET", "/page", &[]);
    run(&c, &r2);
    let Verdict::Mutate(ops2) = respond(&c, &r2, &[]) else {
        panic!()
    };
    assert_ne!(ops, ops2);
}

#[test]
fn no_cookie_is_issued_when_present_disabled_or_set_by_the_app() {
    let c = control(TOKEN);
    let r = req("GET", "/", &[("cookie", "__Host-csrf=t")]);
    run(&c, &r);
    assert_eq!(respond(&c, &r, &[]), Verdict::Continue);
    let r = req("GET", "/", &[]);
    run(&c, &r);
    assert_eq!(
        respond(&c, &r, &[("set-cookie", "__Host-csrf=app; Secure; Path=/")]),
        Verdict::Continue
    );
    let c = control(r#"{"default": {"token": {"issue": false}}}"#);
    let r = req("GET", "/", &[]);
    run(&c, &r);
    assert_eq!(respond(&c, &r, &[]), Verdict::Continue);
    // State-changing requests never get one.
    let c = control(TOKEN);
    let r = req("POST", "/", &[("origin", "https://api.example.com")]);
    run(&c, &r);
    assert_eq!(respond(&c, &r, &[]), Verdict::Continue);
}

#[test]
fn http_only_can_be_turned_off() {
    assert_eq!(
        set_cookie("c", "t", false),
        "c=t; Secure; SameSite=Strict; Path=/"
    );
}

#[test]
fn invalid_policies_name_the_field() {
    for (json, path) in [
        (
            r#"{"default": {"allowed_origins": ["example.com"]}}"#,
            "default.allowed_origins[0]",
        ),
        (
            r#"{"routes": [{"match": {"prefix": "/"}, "allowed_origins": ["https://*"]}]}"#,
            "routes[0].allowed_origins[0]",
        ),
        (
            r#"{"default": {"methods": ["post"]}}"#,
            "default.methods[0]",
        ),
        (
            r#"{"default": {"token": {"cookie": "a b"}}}"#,
            "default.token.cookie",
        ),
        (
            r#"{"default": {"token": {"header": "X-CSRF"}}}"#,
            "default.token.header",
        ),
        (r#"{"default": {"mode": "shadow"}}"#, "default.mode"),
        (r#"{"default": {"origins": []}}"#, "default.origins"),
    ] {
        let e = configure::<Csrf>(json.as_bytes()).unwrap_err();
        assert_eq!(e.path, path, "{json}: {e}");
    }
}

/// RFC 6454 §5 (#17 class 6): the request's own origin has a scheme. `http://api.example.com`
/// is not the own origin of the https site (behind TLS termination that would let an on-path
/// attacker on http forge posts); the scheme comes from the connection, from a (trusted)
/// `x-forwarded-proto` when the policy says so, or is pinned by `site_schemes`.
#[test]
fn rfc6454_5_the_own_origin_compares_the_scheme() {
    let c = control("{}");
    let http_origin = [("origin", "http://api.example.com")];
    assert_eq!(code(&post(&c, &http_origin)), Some("csrf.origin"));
    let Verdict::Deny(r) = post(&c, &http_origin) else {
        panic!("not denied")
    };
    assert!(r.detail.contains("not the site's scheme"), "{}", r.detail);
    assert_eq!(
        code(&post(&c, &[("origin", "https://api.example.com")])),
        None
    );
    assert_eq!(
        code(&post(&c, &[("referer", "http://api.example.com/form")])),
        Some("csrf.origin")
    );
    // Over plain http the own origin is http (and the https one is not).
    let mut plain = req("POST", "/", &[("origin", "http://api.example.com")]);
    plain.connection.tls = false;
    assert_eq!(code(&run(&c, &plain)), None);
    let mut plain = req("POST", "/", &[("origin", "https://api.example.com")]);
    plain.connection.tls = false;
    assert_eq!(code(&run(&c, &plain)), Some("csrf.origin"));
    // Behind a load balancer that ends TLS: the scheme from x-forwarded-proto.
    let xfp = control(r#"{"default": {"own_scheme": "x_forwarded_proto"}}"#);
    let mut lb = req(
        "POST",
        "/",
        &[
            ("origin", "https://api.example.com"),
            ("x-forwarded-proto", "https"),
        ],
    );
    lb.connection.tls = false;
    assert_eq!(code(&run(&xfp, &lb)), None);
    let mut lb = req(
        "POST",
        "/",
        &[
            ("origin", "http://api.example.com"),
            ("x-forwarded-proto", "https"),
        ],
    );
    lb.connection.tls = false;
    assert_eq!(code(&run(&xfp, &lb)), Some("csrf.origin"));
    // Pinned: only https, whatever the connection says.
    let pinned = control(r#"{"default": {"site_schemes": ["https"]}}"#);
    let mut r = req("POST", "/", &[("origin", "https://api.example.com")]);
    r.connection.tls = false;
    assert_eq!(code(&run(&pinned, &r)), None);
    let r = req("POST", "/", &[("origin", "http://api.example.com")]);
    assert_eq!(code(&run(&pinned, &r)), Some("csrf.origin"));
    // Both pinned: the scheme is not compared (Envoy's native csrf filter).
    let both = control(r#"{"default": {"site_schemes": ["http", "HTTPS"]}}"#);
    assert_eq!(code(&post(&both, &http_origin)), None);
    let e = configure::<Csrf>(br#"{"default": {"site_schemes": ["ftp"]}}"#).unwrap_err();
    assert_eq!(
        e.to_string(),
        "default.site_schemes[0]: `ftp` is not `http` or `https`"
    );
}

#[test]
fn a_token_over_the_length_limit_is_refused_saying_so() {
    let c = control(r#"{"default": {"token": {}}}"#);
    let long = "a".repeat(MAX_TOKEN_LEN + 1);
    let cookie = format!("__Host-csrf={long}");
    let cases = [
        (
            vec![("x-csrf-token", long.as_str()), ("cookie", cookie.as_str())],
            "token header",
        ),
        (
            vec![("x-csrf-token", "abc"), ("cookie", cookie.as_str())],
            "cookie",
        ),
        (
            vec![
                ("x-csrf-token", long.as_str()),
                ("cookie", "__Host-csrf=abc"),
            ],
            "token header",
        ),
    ];
    for (mut headers, which) in cases {
        headers.push(("origin", "https://api.example.com"));
        let Verdict::Deny(r) = post(&c, &headers) else {
            panic!("not denied")
        };
        assert_eq!(r.code, "csrf.token");
        assert_eq!(
            r.detail,
            format!("the CSRF {which} is longer than 256 bytes")
        );
    }
    let Verdict::Deny(r) = post(
        &c,
        &[
            ("x-csrf-token", "abc"),
            ("cookie", "__Host-csrf=abd"),
            ("origin", "https://api.example.com"),
        ],
    ) else {
        panic!("not denied")
    };
    assert_eq!(r.detail, "the CSRF token does not match its cookie");
}
