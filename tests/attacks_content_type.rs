//! Content-type confusion attacks against a real Envoy: each gets its exact status and the
//! upstream sees nothing.

mod support;

use support::*;

fn start() -> Envoy {
    envoy()
        .wasm("content-type", r#"{"default": {"allow": ["application/json"], "json_max_depth": 32, "max_body_bytes": 65536}}"#)
        .start()
}

#[test]
fn utf7_charset_smuggling_is_415() {
    let e = start();
    // UTF-7 hides `<script>` from filters that assume UTF-8 (+ADw-script+AD4-).
    e.post(
        "/api",
        &[("content-type", "application/json;charset=utf-7")],
        b"{\"a\":\"+ADw-script+AD4-\"}",
    )
    .assert_problem(415, "content_type.charset");
    e.post(
        "/api",
        &[("content-type", "application/json; charset=\"UTF-7\"")],
        b"{}",
    )
    .assert_problem(415, "content_type.charset");
    assert!(e.upstream_seen().is_empty());
}

#[test]
fn a_json_body_sent_as_text_plain_is_415() {
    // text/plain is a CORS "simple" type: browsers send it cross-origin without a preflight.
    let e = start();
    e.post(
        "/api",
        &[("content-type", "text/plain")],
        br#"{"transfer": 1000}"#,
    )
    .assert_problem(415, "content_type.unsupported");
    assert!(e.upstream_seen().is_empty());
}

#[test]
fn two_content_type_headers_are_415() {
    let e = start();
    let raw = b"POST /api HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-type: text/xml\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
    e.raw(raw).assert_problem(415, "content_type.duplicate");
    assert!(e.upstream_seen().is_empty());
}

#[test]
fn deeply_nested_json_is_400_without_exhausting_the_vm() {
    let e = start();
    let bomb = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    e.post(
        "/api",
        &[("content-type", "application/json")],
        bomb.as_bytes(),
    )
    .assert_problem(400, "content_type.body_mismatch");
    // The VM is still healthy.
    assert_eq!(
        e.post("/api", &[("content-type", "application/json")], b"[1]")
            .status,
        200
    );
    assert_eq!(e.upstream_seen().len(), 1);
}

#[test]
fn a_huge_body_behind_a_small_content_length_never_reaches_the_upstream_as_one_request() {
    let e = start();
    // Envoy's codec frames by Content-Length: the 2 declared bytes are the body, the rest is
    // parsed as a (malformed) next request and refused by the codec.
    let mut raw = b"POST /api HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}".to_vec();
    raw.extend_from_slice(&vec![b'A'; 200_000]);
    let r = e.raw(&raw);
    assert_eq!(r.status, 200, "the first, well-framed request is fine");
    let seen = e.upstream_seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].body, "{}",
        "nothing of the trailing bytes reached the upstream"
    );
}

#[test]
fn an_oversize_body_with_an_honest_length_is_413_before_it_is_read() {
    let e = start();
    let raw = b"POST /api HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 10000000\r\nconnection: close\r\n\r\n[";
    e.raw(raw).assert_problem(413, "body.too_large");
    assert!(e.upstream_seen().is_empty());
}
