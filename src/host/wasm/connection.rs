//! The downstream connection facts a [`RequestView`](crate::RequestView) carries, read from
//! Envoy's attributes (one function, so a runtime adapter can supply its own).
//!
//! - `source.address`: the client address Envoy's connection manager settled on, `ip:port`
//!   (`[v6]:port`): the TCP peer with `use_remote_address: true` and no `xff_num_trusted_hops`;
//!   otherwise an entry of `x-forwarded-for` (with `use_remote_address: false`, the last one).
//!   Envoy exposes no other peer address to proxy-wasm.
//! - `connection.tls_version`: present (`TLSv1.3`) only on a TLS connection.

use proxy_wasm::hostcalls;

use crate::host::primitives::parse_addr;
use crate::request::Connection;

pub fn read() -> Connection {
    Connection {
        peer: property(&["source", "address"]).and_then(|a| parse_addr(&a)),
        tls: property(&["connection", "tls_version"]).is_some_and(|v| !v.is_empty()),
    }
}

/// A string attribute of the stream (`None`: absent, or not UTF-8).
pub fn property(path: &[&str]) -> Option<String> {
    hostcalls::get_property(path.to_vec())
        .ok()
        .flatten()
        .and_then(|b| String::from_utf8(b).ok())
}
