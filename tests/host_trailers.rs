//! The generic host in a real Envoy: a response body that ends with trailers (gRPC, HTTP/2, or
//! HTTP/1 chunked with `enable_trailers`) still reaches the control's body phase. Without
//! `on_http_response_trailers` the buffered body was released unchecked when the trailers came
//! (review finding: error-shield let the stack trace through; payload-crypto would have sent
//! the plaintext).

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};

use serde_json::json;
use support::*;

const TRACE: &str = "java.lang.IllegalStateException: order 42\n\tat com.acme.orders.OrderService.place(OrderService.java:42)\n";

/// An upstream that answers every request with a 500, a chunked stack trace and a trailer.
fn trailer_upstream() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
    let addr = l.local_addr().expect("upstream address");
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let resp = format!(
                "HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\n\
                 transfer-encoding: chunked\r\ntrailer: x-checksum\r\n\r\n\
                 {:x}\r\n{TRACE}\r\n0\r\nx-checksum: 1\r\n\r\n",
                TRACE.len()
            );
            let _ = s.write_all(resp.as_bytes());
        }
    });
    addr
}

fn bootstrap(upstream: SocketAddr) -> String {
    let socket = |a: SocketAddr| json!({"socket_address": {"address": a.ip().to_string(), "port_value": a.port()}});
    let any: SocketAddr = ([127, 0, 0, 1], 0).into();
    let trailers = json!({"enable_trailers": true});
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
                        "route_config": {"virtual_hosts": [{
                            "name": "all", "domains": ["*"],
                            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "upstream", "timeout": "5s"}}]
                        }]},
                        "http_filters": [
                            {"name": "error-shield", "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                                "config": {
                                    "name": "error-shield", "root_id": "error-shield",
                                    "failure_policy": "FAIL_RELOAD",
                                    "allow_on_headers_stop_iteration": true,
                                    "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": "{}"},
                                    "vm_config": {"vm_id": "portcullis", "runtime": "envoy.wasm.runtime.v8",
                                        "code": {"local": {"filename": wasm_path("error-shield")}}}
                                }
                            }},
                            {"name": "envoy.filters.http.router",
                             "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
                        ]
                    }
                }]}]
            }],
            "clusters": [{
                "name": "upstream",
                "connect_timeout": "1s",
                "typed_extension_protocol_options": {
                    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                        "explicit_http_config": {"http_protocol_options": trailers}
                    }
                },
                "load_assignment": {"cluster_name": "upstream", "endpoints": [{"lb_endpoints": [{"endpoint": {"address": socket(upstream)}}]}]}
            }]
        }
    })
    .to_string()
}

#[test]
fn a_response_body_ending_in_trailers_is_still_checked() {
    let e = Envoy::launch(&bootstrap(trailer_upstream()), None);
    let r = e.get("/orders", &[]);
    assert_eq!(r.status, 500);
    assert!(
        !r.text().contains("OrderService"),
        "the stack trace passed: {}",
        r.text()
    );
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(r.json()["code"], "error_shield.status");
}
