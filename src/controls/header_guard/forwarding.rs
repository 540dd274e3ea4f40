//! `forwarding`: make `x-forwarded-proto`, `x-forwarded-for`, `x-forwarded-host` and
//! `x-envoy-*` carry the truth, under the trust model of Envoy's own `xff_num_trusted_hops`.
//!
//! - The client address is the one Envoy settled on (`source.address`): the TCP peer with
//!   `use_remote_address: true` and no trusted hops, the address `xff_num_trusted_hops` picks
//!   from `x-forwarded-for` otherwise. A filter cannot see more (Envoy exposes no other peer
//!   address to proxy-wasm). `x-forwarded-for` is cut to start at that address: what a client
//!   wrote before it is dropped; without it in the header, the header becomes that address.
//! - `trusted_hops` (set it to Envoy's `xff_num_trusted_hops`): with 0 nothing in front of
//!   Envoy is trusted, so `x-forwarded-proto` becomes the scheme of the connection (TLS or
//!   not) and `x-forwarded-host` and every `x-envoy-*` field are removed; above 0 a trusted
//!   proxy's single `http` / `https` and its `x-forwarded-host` are kept.

use std::net::IpAddr;

use serde::Deserialize;

use crate::control::ConfigError;
use crate::request::RequestView;
use crate::verdict::HeaderOp;

pub const XFP: &str = "x-forwarded-proto";
const XFF: &str = "x-forwarded-for";
const XFH: &str = "x-forwarded-host";
const MAX_HOPS: u8 = 16;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ForwardingMode {
    /// Rewrite the forwarding headers to what the connection and Envoy can vouch for.
    #[default]
    Rewrite,
    /// Leave them as Envoy hands them over.
    Pass,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ForwardingSpec {
    #[serde(default)]
    pub mode: ForwardingMode,
    /// Trusted proxies in front of this Envoy (0 to 16): the same number as the connection
    /// manager's `xff_num_trusted_hops`. 0: no client-supplied forwarding header is believed.
    #[serde(default)]
    pub trusted_hops: u8,
}

#[derive(Debug, Clone)]
pub struct Forwarding {
    trusted: bool,
}

impl Forwarding {
    /// `None` for `mode: pass`.
    pub fn compile(spec: &ForwardingSpec) -> Result<Option<Self>, ConfigError> {
        if spec.mode == ForwardingMode::Pass {
            return Ok(None);
        }
        if spec.trusted_hops > MAX_HOPS {
            return Err(ConfigError::new(
                "forwarding.trusted_hops",
                format!("must be between 0 and {MAX_HOPS}"),
            ));
        }
        Ok(Some(Forwarding {
            trusted: spec.trusted_hops > 0,
        }))
    }

    /// The header edits that make the forwarding headers true (none when they already are).
    pub fn ops(&self, req: &RequestView) -> Vec<HeaderOp> {
        let conn = req.connection;
        let mut ops = Vec::new();
        let values = |name: &str| {
            req.fields()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                .collect::<Vec<_>>()
        };
        let xfp = values(XFP);
        let xff = values(XFF);
        // x-forwarded-proto: a trusted proxy's single `http`/`https`, or the connection's.
        let claimed = match xfp.as_slice() {
            [one] if self.trusted => {
                let v = one.trim().to_ascii_lowercase();
                matches!(v.as_str(), "http" | "https").then_some(v)
            }
            _ => None,
        };
        let proto = claimed.unwrap_or_else(|| conn.scheme().to_string());
        // Envoy always sets it before the filters; a request without it (a test, the CLI) is
        // left without.
        if !xfp.is_empty() && (xfp.len() != 1 || xfp.first() != Some(&proto)) {
            ops.push(HeaderOp::Set(XFP.into(), proto));
        }
        // x-forwarded-for: from the client Envoy settled on to the last proxy.
        if !xff.is_empty() {
            let entries: Vec<&str> = xff
                .iter()
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .collect();
            let client = conn.peer.map(|p| p.to_canonical());
            let value =
                client.map(
                    |c| match entries.iter().rposition(|e| entry_addr(e) == Some(c)) {
                        Some(k) => entries.get(k..).unwrap_or_default().join(", "),
                        None => c.to_string(),
                    },
                );
            match value {
                None => ops.push(HeaderOp::Remove(XFF.into())),
                Some(v) if xff.len() != 1 || xff.first() != Some(&v) => {
                    ops.push(HeaderOp::Set(XFF.into(), v))
                }
                Some(_) => {}
            }
        }
        if !self.trusted {
            let mut removed: Vec<&str> = Vec::new();
            for (k, _) in req.fields() {
                if (k == XFH || k.starts_with("x-envoy-")) && !removed.contains(&k.as_str()) {
                    removed.push(k);
                    ops.push(HeaderOp::Remove(k.clone()));
                }
            }
        }
        ops
    }
}

/// An `x-forwarded-for` entry: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]:80`.
fn entry_addr(e: &str) -> Option<IpAddr> {
    let e = e.trim();
    let ip = e
        .parse::<std::net::SocketAddr>()
        .map(|s| s.ip())
        .or_else(|_| {
            e.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
        })
        .ok()?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Connection;

    fn fwd(json: &str) -> Forwarding {
        let spec: ForwardingSpec = serde_json::from_str(json).unwrap();
        Forwarding::compile(&spec).unwrap().unwrap()
    }

    fn req(peer: &str, tls: bool, headers: &[(&str, &str)]) -> RequestView {
        let mut r = RequestView::new("GET", "/", headers).unwrap();
        r.connection = Connection {
            peer: peer.parse().ok(),
            tls,
        };
        r
    }

    fn set(ops: &[HeaderOp], name: &str) -> Option<String> {
        ops.iter().find_map(|op| match op {
            HeaderOp::Set(k, v) if k == name => Some(v.clone()),
            _ => None,
        })
    }

    fn removed(ops: &[HeaderOp], name: &str) -> bool {
        ops.iter()
            .any(|op| matches!(op, HeaderOp::Remove(k) if k == name))
    }

    #[test]
    fn with_no_trusted_hop_the_connection_decides_and_the_rest_is_removed() {
        let f = fwd("{}");
        // Envoy (use_remote_address) appended the peer and settled on it.
        let r = req(
            "203.0.113.9",
            false,
            &[
                ("x-forwarded-proto", "https"),
                ("x-forwarded-for", "127.0.0.1, 10.0.0.1, 203.0.113.9"),
                ("x-forwarded-host", "admin.internal"),
                ("x-envoy-upstream-rq-timeout-ms", "1"),
                ("x-envoy-retry-on", "5xx"),
            ],
        );
        let ops = f.ops(&r);
        assert_eq!(set(&ops, XFP).as_deref(), Some("http"));
        assert_eq!(set(&ops, XFF).as_deref(), Some("203.0.113.9"));
        assert!(removed(&ops, XFH));
        assert!(removed(&ops, "x-envoy-upstream-rq-timeout-ms"));
        assert!(removed(&ops, "x-envoy-retry-on"));
        // Over TLS the scheme is https, whatever was claimed.
        let ops = f.ops(&req("203.0.113.9", true, &[("x-forwarded-proto", "http")]));
        assert_eq!(set(&ops, XFP).as_deref(), Some("https"));
        // The client address is not in the header at all: the header becomes it.
        let r = req("203.0.113.9", false, &[("x-forwarded-for", "10.0.0.1")]);
        assert_eq!(set(&f.ops(&r), XFF).as_deref(), Some("203.0.113.9"));
    }

    #[test]
    fn true_headers_need_no_edit() {
        let f = fwd("{}");
        let r = req(
            "203.0.113.9",
            false,
            &[
                ("x-forwarded-proto", "http"),
                ("x-forwarded-for", "203.0.113.9"),
            ],
        );
        assert!(f.ops(&r).is_empty(), "{:?}", f.ops(&r));
    }

    #[test]
    fn trusted_hops_keep_the_chain_from_the_client_envoy_picked_and_the_proxy_scheme() {
        // Envoy with xff_num_trusted_hops: 1 picked 198.51.100.4 and appended its peer.
        let f = fwd(r#"{"trusted_hops": 1}"#);
        let r = req(
            "198.51.100.4",
            false,
            &[
                ("x-forwarded-proto", "https"),
                ("x-forwarded-for", "6.6.6.6, 198.51.100.4, 10.0.0.5"),
                ("x-forwarded-host", "api.example.com"),
            ],
        );
        let ops = f.ops(&r);
        assert_eq!(set(&ops, XFP), None, "a trusted proxy's https is kept");
        assert_eq!(set(&ops, XFF).as_deref(), Some("198.51.100.4, 10.0.0.5"));
        assert!(!removed(&ops, XFH));
        // `[v6]:port` entries are found too.
        let r = req(
            "2001:db8::7",
            false,
            &[("x-forwarded-for", "1.1.1.1, [2001:db8::7]:443, 10.0.0.5")],
        );
        assert_eq!(
            set(&f.ops(&r), XFF).as_deref(),
            Some("[2001:db8::7]:443, 10.0.0.5")
        );
        // A trusted proxy's XFP that is not one http/https token falls back to the connection.
        let r = req(
            "198.51.100.4",
            true,
            &[("x-forwarded-proto", "https, http")],
        );
        assert_eq!(set(&f.ops(&r), XFP).as_deref(), Some("https"));
        let r = req("198.51.100.4", false, &[("x-forwarded-proto", "gopher")]);
        assert_eq!(set(&f.ops(&r), XFP).as_deref(), Some("http"));
    }

    #[test]
    fn an_unknown_client_leaves_no_address_to_vouch_for() {
        let f = fwd("{}");
        let mut r = req("", false, &[("x-forwarded-for", "1.2.3.4")]);
        r.connection.peer = None;
        assert!(removed(&f.ops(&r), XFF));
    }

    #[test]
    fn policy_errors_name_the_field() {
        let spec: ForwardingSpec = serde_json::from_str(r#"{"trusted_hops": 17}"#).unwrap();
        assert_eq!(
            Forwarding::compile(&spec).unwrap_err().to_string(),
            "forwarding.trusted_hops: must be between 0 and 16"
        );
        assert!(serde_json::from_str::<ForwardingSpec>(r#"{"trusted_proxies": []}"#).is_err());
        let spec: ForwardingSpec = serde_json::from_str(r#"{"mode": "pass"}"#).unwrap();
        assert!(Forwarding::compile(&spec).unwrap().is_none());
    }
}
