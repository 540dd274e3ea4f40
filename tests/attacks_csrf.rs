//! CSRF attack classes against a real Envoy: each is refused with 403 and the upstream sees
//! nothing. The target's own origin is `http://localhost` (the harness's Host).

mod support;

use support::*;

fn start() -> Envoy {
    envoy()
        .wasm(
            "csrf",
            r#"{"default": {"allowed_origins": ["https://app.example.com"]}}"#,
        )
        .start()
}

fn refused(e: &Envoy, headers: &[(&str, &str)]) {
    let r = e.post("/transfer", headers, b"amount=1000");
    r.assert_problem(403, "csrf.origin");
}

#[test]
fn origin_null_from_a_sandboxed_frame_is_refused() {
    let e = start();
    refused(&e, &[("origin", "null")]);
    assert!(e.upstream_seen().is_empty());
}

#[test]
fn origin_prefix_and_suffix_tricks_are_refused() {
    let e = start();
    for o in [
        "http://localhost.evil.com",
        "https://app.example.com.evil.com",
        "https://evilapp.example.com",
        "https://app.example.com@evil.com",
        "https://evil.com/https://app.example.com",
        "https://evil.com?https://app.example.com",
        "https://app.example.com:444",
        "http://app.example.com",
        "https://app.example.com, https://evil.com",
    ] {
        refused(&e, &[("origin", o)]);
    }
    assert!(e.upstream_seen().is_empty());
}

#[test]
fn a_cross_site_referer_without_origin_is_refused() {
    let e = start();
    refused(&e, &[("referer", "https://evil.com/page")]);
    refused(&e, &[("referer", "https://evil.com/http://localhost/")]);
    refused(&e, &[("referer", "http://localhost.evil.com/")]);
    refused(&e, &[("referer", "/relative")]);
    assert!(e.upstream_seen().is_empty());
}

#[test]
fn case_tricks_change_nothing() {
    let e = start();
    // Header names and the Fetch-Metadata value in odd case; a cross-site origin in upper case.
    let raw = b"POST /transfer HTTP/1.1\r\nhost: localhost\r\nORIGIN: HTTPS://EVIL.COM\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    e.raw(raw).assert_problem(403, "csrf.origin");
    refused(
        &e,
        &[
            ("origin", "http://localhost"),
            ("Sec-Fetch-Site", "CROSS-SITE"),
        ],
    );
    // Upper case of a legitimate origin is the same origin (RFC 6454 §4: host is lower-cased).
    let r = e.post("/transfer", &[("origin", "HTTP://LOCALHOST")], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(e.upstream_seen().len(), 1);
}

#[test]
fn neither_origin_nor_referer_is_refused() {
    let e = start();
    refused(&e, &[]);
    assert!(e.upstream_seen().is_empty());
}

#[test]
fn two_origins_are_refused() {
    let e = start();
    let raw = b"POST /transfer HTTP/1.1\r\nhost: localhost\r\norigin: http://localhost\r\norigin: https://evil.com\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    e.raw(raw).assert_problem(403, "csrf.origin");
    assert!(e.upstream_seen().is_empty());
}
