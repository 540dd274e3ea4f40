//! `forwarding`: make `x-forwarded-proto`, `x-forwarded-for`, `x-forwarded-host` and
//! `x-envoy-*` carry the truth under a trust model like Envoy's `xff_num_trusted_hops`.
//!
//! The hops are counted back from this proxy: hop 0 is the peer of the connection, hop 1 the
//! last `x-forwarded-for` entry, and so on. A hop is trusted when it is one of the first
//! `trusted_hops`, or its address is in `trusted_proxies`. When the peer is not trusted,
//! nothing it claims about earlier hops is believed: `x-forwarded-proto` becomes the scheme of
//! the connection, `x-forwarded-for` the peer's address, and `x-forwarded-host` and every
//! `x-envoy-*` field are removed. When it is, the trusted chain is kept and what lies before
//! the first untrusted hop (the client) is dropped.

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
    /// Rewrite the forwarding headers to what the trust model can vouch for.
    #[default]
    Rewrite,
    /// Leave them as Envoy hands them over (Envoy's own `use_remote_address` does the work).
    Pass,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ForwardingSpec {
    #[serde(default)]
    pub mode: ForwardingMode,
    /// Proxies in front of this one whose forwarding headers are believed, counted back from
    /// the connection's peer (Envoy's `xff_num_trusted_hops`); 0 to 16.
    #[serde(default)]
    pub trusted_hops: u8,
    /// Addresses or CIDR blocks (`10.0.0.0/8`, `2001:db8::/32`) of proxies whose forwarding
    /// headers are believed, wherever they stand in the chain.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    net: u128,
    mask: u128,
    v4: bool,
}

fn bits(ip: IpAddr) -> (u128, bool) {
    match ip.to_canonical() {
        IpAddr::V4(a) => (u128::from(u32::from(a)), true),
        IpAddr::V6(a) => (u128::from(a), false),
    }
}

impl Cidr {
    fn parse(s: &str) -> Option<Cidr> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l.parse::<u32>().ok()?)),
            None => (s, None),
        };
        let (n, v4) = bits(addr.trim().parse::<IpAddr>().ok()?);
        let width = if v4 { 32 } else { 128 };
        let len = len.unwrap_or(width);
        if len > width {
            return None;
        }
        let ones = if v4 { u128::from(u32::MAX) } else { u128::MAX };
        let host = width - len;
        let mask = if host >= 128 {
            0
        } else {
            ones & !((1u128 << host) - 1)
        };
        Some(Cidr {
            net: n & mask,
            mask,
            v4,
        })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let (n, v4) = bits(ip);
        v4 == self.v4 && n & self.mask == self.net
    }
}

#[derive(Debug, Clone)]
pub struct Forwarding {
    hops: usize,
    proxies: Vec<Cidr>,
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
        let proxies = spec
            .trusted_proxies
            .iter()
            .enumerate()
            .map(|(i, c)| {
                Cidr::parse(c).ok_or_else(|| {
                    ConfigError::new(
                        format!("forwarding.trusted_proxies[{i}]"),
                        format!("`{c}` is not an IP address or CIDR block"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Forwarding {
            hops: usize::from(spec.trusted_hops),
            proxies,
        }))
    }

    fn trusted(&self, hop: usize, addr: Option<IpAddr>) -> bool {
        hop < self.hops || addr.is_some_and(|a| self.proxies.iter().any(|c| c.contains(a)))
    }

    /// The header edits that make the forwarding headers true (none when they already are).
    pub fn ops(&self, req: &RequestView) -> Vec<HeaderOp> {
        let conn = req.connection;
        let peer = conn.peer.map(|p| p.to_canonical());
        let mut ops = Vec::new();
        let values = |name: &str| {
            req.fields()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                .collect::<Vec<_>>()
        };
        let xfp = values(XFP);
        let xff = values(XFF);
        let peer_trusted = self.trusted(0, peer);
        // x-forwarded-proto: a trusted peer's single `http`/`https`, or the connection's scheme.
        let claimed = match xfp.as_slice() {
            [one] if peer_trusted => {
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
        // x-forwarded-for: the trusted chain, from the client it names to the peer.
        if !xff.is_empty() {
            let entries: Vec<&str> = xff
                .iter()
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .collect();
            let peer_text = peer.map(|p| p.to_string());
            // Envoy with `use_remote_address` has appended the peer already.
            let appended = peer_text.is_some() && entries.last().copied() == peer_text.as_deref();
            let before: &[&str] = match entries.split_last() {
                Some((_, rest)) if appended => rest,
                _ => &entries,
            };
            let mut chain: Vec<String> = Vec::new();
            if peer_trusted {
                for (i, e) in before.iter().rev().enumerate() {
                    let addr = entry_addr(e);
                    let Some(a) = addr else { break };
                    chain.push(a.to_string());
                    if !self.trusted(i + 1, Some(a)) {
                        break;
                    }
                }
                chain.reverse();
            }
            chain.extend(peer_text);
            let value = chain.join(", ");
            if chain.is_empty() {
                ops.push(HeaderOp::Remove(XFF.into()));
            } else if xff.len() != 1 || xff.first() != Some(&value) {
                ops.push(HeaderOp::Set(XFF.into(), value));
            }
        }
        if !peer_trusted {
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
    fn cidr_blocks_v4_v6_and_mapped_addresses() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        let one = Cidr::parse("192.0.2.7").unwrap();
        assert!(one.contains("192.0.2.7".parse().unwrap()));
        assert!(!one.contains("192.0.2.8".parse().unwrap()));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("::/0")
            .unwrap()
            .contains("::1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "::/129", "example.com", "10.0.0.0/x", ""] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_untrusted_peer_gets_the_connection_scheme_and_its_own_address() {
        let f = fwd("{}");
        let r = req(
            "203.0.113.9",
            false,
            &[
                ("x-forwarded-proto", "https"),
                ("x-forwarded-for", "127.0.0.1, 10.0.0.1"),
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
        // Over TLS the scheme is https.
        let ops = f.ops(&req("203.0.113.9", true, &[("x-forwarded-proto", "http")]));
        assert_eq!(set(&ops, XFP).as_deref(), Some("https"));
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
        // Envoy (`use_remote_address`) appended the peer: not appended twice.
        let r = req(
            "203.0.113.9",
            false,
            &[("x-forwarded-for", "1.1.1.1, 203.0.113.9")],
        );
        assert_eq!(set(&f.ops(&r), XFF).as_deref(), Some("203.0.113.9"));
    }

    #[test]
    fn trusted_hops_keep_the_chain_back_to_the_client_and_drop_what_the_client_claimed() {
        // One load balancer in front (xff_num_trusted_hops: 1): the last entry is the client.
        let f = fwd(r#"{"trusted_hops": 1}"#);
        let r = req(
            "10.0.0.5",
            false,
            &[
                ("x-forwarded-proto", "https"),
                ("x-forwarded-for", "6.6.6.6, 198.51.100.4"),
                ("x-forwarded-host", "api.example.com"),
            ],
        );
        let ops = f.ops(&r);
        assert_eq!(set(&ops, XFP), None, "a trusted peer's https is kept");
        assert_eq!(set(&ops, XFF).as_deref(), Some("198.51.100.4, 10.0.0.5"));
        assert!(!removed(&ops, XFH));
        // Two hops: the spoofed first entry stays out only when the chain is longer.
        let f2 = fwd(r#"{"trusted_hops": 2}"#);
        let r = req(
            "10.0.0.5",
            false,
            &[("x-forwarded-for", "6.6.6.6, 198.51.100.4, 10.0.0.9")],
        );
        assert_eq!(
            set(&f2.ops(&r), XFF).as_deref(),
            Some("198.51.100.4, 10.0.0.9, 10.0.0.5")
        );
        // A trusted peer's XFP that is not one http/https token falls back to the connection.
        let r = req("10.0.0.5", true, &[("x-forwarded-proto", "https, http")]);
        assert_eq!(set(&f.ops(&r), XFP).as_deref(), Some("https"));
        let r = req("10.0.0.5", false, &[("x-forwarded-proto", "gopher")]);
        assert_eq!(set(&f.ops(&r), XFP).as_deref(), Some("http"));
    }

    #[test]
    fn trusted_proxies_are_trusted_by_address_wherever_they_stand() {
        let f = fwd(r#"{"trusted_proxies": ["10.0.0.0/8", "2001:db8::/32"]}"#);
        let r = req(
            "10.0.0.5",
            false,
            &[(
                "x-forwarded-for",
                "6.6.6.6, 198.51.100.4, [2001:db8::7]:443, 10.1.1.1",
            )],
        );
        assert_eq!(
            set(&f.ops(&r), XFF).as_deref(),
            Some("198.51.100.4, 2001:db8::7, 10.1.1.1, 10.0.0.5")
        );
        // A peer outside them is not believed.
        let r = req(
            "198.51.100.4",
            false,
            &[
                ("x-forwarded-for", "10.0.0.1"),
                ("x-forwarded-proto", "https"),
            ],
        );
        let ops = f.ops(&r);
        assert_eq!(set(&ops, XFF).as_deref(), Some("198.51.100.4"));
        assert_eq!(set(&ops, XFP).as_deref(), Some("http"));
        // An entry that is not an address ends the chain.
        let r = req(
            "10.0.0.5",
            false,
            &[("x-forwarded-for", "1.1.1.1, unknown, 10.1.1.1")],
        );
        assert_eq!(set(&f.ops(&r), XFF).as_deref(), Some("10.1.1.1, 10.0.0.5"));
    }

    #[test]
    fn an_unknown_peer_leaves_no_address_to_vouch_for() {
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
        let spec: ForwardingSpec =
            serde_json::from_str(r#"{"trusted_proxies": ["10.0.0.0/8", "10.0.0.0/40"]}"#).unwrap();
        assert!(Forwarding::compile(&spec)
            .unwrap_err()
            .to_string()
            .starts_with("forwarding.trusted_proxies[1]"));
        let spec: ForwardingSpec = serde_json::from_str(r#"{"mode": "pass"}"#).unwrap();
        assert!(Forwarding::compile(&spec).unwrap().is_none());
    }
}
