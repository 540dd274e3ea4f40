//! The generic host in every stream state Envoy can put it in, in a real Envoy: a bodiless 5xx
//! (`Content-Length: 0`, as load balancers and Envoy itself send), HEAD, 204, 304, a response
//! with trailers, an upstream reset mid-body, a local reply from the router (with and without a
//! body), a request with an empty body. proxy-wasm's SDK turns a host call Envoy refuses into a
//! trap, and a trapped VM answers 503 to everything after it (issue: one bodiless 504 took
//! error-shield down). So after each state the next ordinary request must still be served.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use serde_json::{json, Value};
use support::*;

/// What the scripted upstream answers, by request path.
fn script(path: &str) -> Option<&'static [u8]> {
    Some(match path {
        "/bodiless/500" => b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n",
        "/bodiless/502" => b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n",
        "/bodiless/504" => b"HTTP/1.1 504 Gateway Timeout\r\ncontent-length: 0\r\n\r\n",
        // The answer to HEAD announces the body a GET would get, and sends none.
        "/head/500" => b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\ncontent-length: 120\r\n\r\n",
        "/head/200" => b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 40\r\n\r\n",
        "/204" => b"HTTP/1.1 204 No Content\r\nx-kept: yes\r\n\r\n",
        "/304" => b"HTTP/1.1 304 Not Modified\r\netag: \"v1\"\r\n\r\n",
        "/trailers/500" => b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\ntrailer: x-checksum\r\n\r\n5\r\noops!\r\n0\r\nx-checksum: 1\r\n\r\n",
        "/trailers/empty" => b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\ntrailer: x-checksum\r\n\r\n0\r\nx-checksum: 1\r\n\r\n",
        // Announces 1000 bytes, sends 12 and closes.
        "/reset" => b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\ncontent-length: 1000\r\n\r\npartial body",
        "/ok" => b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"ok\":true}",
        _ => return None,
    })
}

/// One request per connection: read the head (and a content-length body), answer, close.
fn serve(mut s: TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let want = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + want {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let path = head
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .split('?')
        .next()
        .unwrap_or("/")
        .to_string();
    let answer = script(&path).unwrap_or(script("/ok").unwrap_or_default());
    // Say the connection closes: otherwise Envoy may pool it and send the next request down a
    // socket this server has already closed, and answer that request 503 itself.
    let status_end = answer
        .windows(2)
        .position(|w| w == b"\r\n")
        .map_or(0, |i| i + 2);
    let _ = s.write_all(&answer[..status_end]);
    let _ = s.write_all(b"connection: close\r\n");
    let _ = s.write_all(&answer[status_end..]);
    let _ = s.flush();
}

fn scripted_upstream() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
    let addr = l.local_addr().expect("upstream address");
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || serve(s));
        }
    });
    addr
}

fn bootstrap(upstream: SocketAddr, filters: &[Filter]) -> String {
    let socket = |a: SocketAddr| json!({"socket_address": {"address": a.ip().to_string(), "port_value": a.port()}});
    let any: SocketAddr = ([127, 0, 0, 1], 0).into();
    let mut http_filters: Vec<Value> = filters.iter().map(wasm_filter).collect();
    http_filters.push(json!({"name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}));
    // A port nothing listens on: the router answers with its own local reply (503 + text).
    let closed: SocketAddr = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("address")
    };
    let cluster = |name: &str, a: SocketAddr| {
        json!({
            "name": name,
            "connect_timeout": "1s",
            "typed_extension_protocol_options": {
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    "explicit_http_config": {"http_protocol_options": {"enable_trailers": true}}
                }
            },
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": socket(a)}}]}]}
        })
    };
    json!({
        "admin": {"address": socket(any)},
        "stats_config": stats_config(),
        "static_resources": {
            "listeners": [{
                "name": "main",
                "address": socket(any),
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "ingress",
                        "http_protocol_options": {"enable_trailers": true},
                        "route_config": {"virtual_hosts": [{
                            "name": "all", "domains": ["*"],
                            "routes": [
                                // Local replies from the router: bodiless, and with its text.
                                {"match": {"prefix": "/direct/bodiless"}, "direct_response": {"status": 503}},
                                {"match": {"prefix": "/direct/text"}, "direct_response": {"status": 500,
                                    "body": {"inline_string": "at com.acme.Internal.fail(Internal.java:7)"}}},
                                {"match": {"prefix": "/dead"}, "route": {"cluster": "dead", "timeout": "2s"}},
                                {"match": {"prefix": "/"}, "route": {"cluster": "upstream", "timeout": "5s"}}
                            ]
                        }]},
                        "http_filters": http_filters
                    }
                }]}]
            }],
            "clusters": [cluster("upstream", upstream), cluster("dead", closed)]
        }
    })
    .to_string()
}

fn start(filters: &[Filter]) -> Envoy {
    Envoy::launch(&bootstrap(scripted_upstream(), filters), None)
}

/// An ordinary request after `state` is served as usual: the VM is alive and not reloaded
/// (the upstream's body, or under payload-crypto its JWE: five dot-separated parts).
fn assert_still_serving(e: &Envoy, state: &str) {
    let r = e.get("/ok", &[]);
    assert_eq!(r.status, 200, "after {state}: {r:?}\nlog:\n{}", e.log());
    let text = r.text();
    assert!(
        text == "{\"ok\":true}" || text.split('.').count() == 5,
        "after {state}: {text}"
    );
}

/// A request to send: method, path, headers, body.
type Req<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a [u8]);

/// Every stream state, each followed by an ordinary request.
fn walk_every_state(e: &Envoy) {
    let states: &[Req] = &[
        ("GET", "/bodiless/500", &[], b""),
        ("GET", "/bodiless/502", &[], b""),
        ("GET", "/bodiless/504", &[], b""),
        ("HEAD", "/head/500", &[], b""),
        ("HEAD", "/head/200", &[], b""),
        ("GET", "/204", &[], b""),
        ("GET", "/304", &[("if-none-match", "\"v1\"")], b""),
        ("GET", "/trailers/500", &[], b""),
        ("GET", "/trailers/empty", &[], b""),
        ("GET", "/direct/bodiless", &[], b""),
        ("GET", "/direct/text", &[], b""),
        ("GET", "/dead", &[], b""),
        (
            "POST",
            "/ok",
            &[
                ("content-type", "application/json"),
                ("content-length", "0"),
            ],
            b"",
        ),
        (
            "POST",
            "/ok",
            &[("content-type", "application/json")],
            b"{}",
        ),
    ];
    for (method, path, headers, body) in states {
        // Any answer will do here (each module has its own verdict); a crash would not.
        let _ = http(e.listener, method, path, headers, body);
        assert_still_serving(e, &format!("{method} {path}"));
    }
    // An upstream reset mid-body: the client sees a reset or an error, the VM survives.
    let _ = http(e.listener, "GET", "/reset", &[], b"");
    assert_still_serving(e, "an upstream reset mid-body");
}

const K_CLIENT: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8";

/// Every module that touches responses or bodies, with a policy that makes it do so.
fn modules() -> Vec<(&'static str, Filter)> {
    vec![
        ("error-shield", Filter::new("error-shield", "{}")),
        (
            "content-type",
            Filter::new(
                "content-type",
                r#"{"default": {"allow": ["application/json"], "max_body_bytes": 1024}}"#,
            ),
        ),
        ("header-guard", Filter::new("header-guard", "{}")),
        (
            "payload-crypto",
            Filter::new(
                "payload-crypto",
                json!({
                    "keys": [{"kid": "client-kw", "alg": "A256KW", "k": K_CLIENT}],
                    "routes": [{"match": {"prefix": "/"}, "encrypt_response": {"kid": "client-kw"}}]
                }),
            ),
        ),
        // Issues its token cookie on every safe response.
        ("csrf", Filter::new("csrf", r#"{"default": {"token": {}}}"#)),
        // Egress signing buffers and digests every request body, empty ones included.
        (
            "request-signing",
            Filter::new(
                "request-signing",
                r#"{"mode": "sign",
                    "keys": [{"keyid": "k1", "secret": "q83vEjRWeJASNFZ4kBI0VniQEjRWeJASNFZ4kBI0Vng="}],
                    "default": {"components": ["@method", "@path", "content-type"]}}"#,
            ),
        ),
        (
            "guard",
            Filter::new(
                "guard",
                r#"{"chain": ["header_guard", "content_type", "error_shield"],
                    "header_guard": {}, "error_shield": {},
                    "content_type": {"default": {"allow": ["application/json"], "max_body_bytes": 1024}}}"#,
            ),
        ),
    ]
}

#[test]
fn every_module_survives_every_stream_state() {
    for (name, filter) in modules() {
        let e = start(&[filter]);
        walk_every_state(&e);
        // Nothing trapped: a trap is logged by Envoy as a wasm failure.
        let log = e.log();
        assert!(
            !log.contains("unexpected status") && !log.contains("Function: proxy_on_"),
            "{name}: the VM trapped:\n{log}"
        );
    }
}

#[test]
fn a_bodiless_5xx_gets_the_problem_body_it_would_have_had_with_a_body() {
    let e = start(&[Filter::new(
        "error-shield",
        r#"{"default": {"status_map": {"504": 503}}}"#,
    )]);
    for (path, status) in [
        ("/bodiless/500", 500),
        ("/bodiless/502", 502),
        ("/bodiless/504", 503),
    ] {
        let r = e.get(path, &[("x-request-id", "req-7")]);
        assert_eq!(r.status, status, "{path}: {r:?}");
        assert_eq!(
            r.header("content-type"),
            Some("application/problem+json"),
            "{path}"
        );
        let body = r.json();
        assert_eq!(body["code"], "error_shield.status", "{path}");
        assert_eq!(body["status"], status, "{path}");
        assert_eq!(body["request_id"], "req-7", "{path}");
        assert_still_serving(&e, path);
    }
    assert_eq!(
        e.counter("error_shield", "replaced", "error_shield.status"),
        3
    );
}

#[test]
fn a_local_reply_from_the_router_is_shielded_too() {
    let e = start(&[Filter::new("error-shield", "{}")]);
    // direct_response without a body: bodiless, like the upstream case.
    let r = e.get("/direct/bodiless", &[]);
    r.assert_problem(503, "error_shield.status");
    // With a body (a trace in it): replaced in the body phase.
    let r = e.get("/direct/text", &[]);
    r.assert_problem(500, "error_shield.status");
    assert!(!r.text().contains("acme"), "{}", r.text());
    // The router's own 503 for an unreachable upstream names it in plain text.
    let r = e.get("/dead", &[]);
    r.assert_problem(503, "error_shield.status");
    assert!(!r.text().contains("upstream connect error"), "{}", r.text());
    assert_still_serving(&e, "local replies");
}

#[test]
fn rfc9110_head_204_and_304_keep_status_and_headers_without_a_body() {
    let e = start(&[Filter::new("error-shield", "{}")]);
    // HEAD of a 5xx: the replaced status and problem headers, no body (RFC 9110 §9.3.2).
    let r = e.request("HEAD", "/head/500", &[], b"");
    assert_eq!(r.status, 500, "{r:?}");
    assert_eq!(
        r.header("content-type"),
        Some("application/problem+json"),
        "{r:?}"
    );
    assert!(r.body.is_empty(), "{r:?}");
    let r = e.request("HEAD", "/head/200", &[], b"");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.is_empty());
    // 204 and 304 pass as they are (RFC 9110 §15.3.5, §15.4.5).
    let r = e.get("/204", &[]);
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(r.header("x-kept"), Some("yes"));
    assert!(r.body.is_empty());
    let r = e.get("/304", &[("if-none-match", "\"v1\"")]);
    assert_eq!(r.status, 304, "{r:?}");
    assert_eq!(r.header("etag"), Some("\"v1\""));
    assert!(r.body.is_empty());
    assert_still_serving(&e, "HEAD, 204 and 304");
}

#[test]
fn a_bodiless_response_under_payload_crypto_is_never_passed_as_plaintext_nor_a_crash() {
    let e = start(&[Filter::new(
        "payload-crypto",
        json!({
            "keys": [{"kid": "client-kw", "alg": "A256KW", "k": K_CLIENT}],
            "routes": [{"match": {"prefix": "/"}, "encrypt_response": {"kid": "client-kw"}}]
        }),
    )]);
    let r = e.get("/204", &[]);
    assert_eq!(r.status, 204, "{r:?}");
    let r = e.get("/ok", &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_ne!(r.text(), "{\"ok\":true}", "the body passed in clear");
    assert_eq!(r.text().split('.').count(), 5, "not a JWE: {}", r.text());
}
