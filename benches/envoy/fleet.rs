//! `make bench` rows for fleet scale (docs/fleet.md): request-signing with its replay cache in
//! the Envoy (`local`) and in a real three-member etcd cluster on loopback (`etcd`, one round
//! trip per signed request), and jwt-auth with opaque tokens checked by a real RFC 7662
//! endpoint, its answer cached (hit) or not (miss: every request asks).

use serde_json::json;

use crate::support::etcd::EtcdCluster;
use crate::support::introspection::{unix_now, IntrospectionServer};
use crate::variants::{signed, signing_policy, Variant, ROUND};

/// The outside services the fleet variants call, started once for the whole run.
pub struct Servers {
    pub etcd: EtcdCluster,
    pub idp: IntrospectionServer,
}

const CLIENT_ID: &str = "bench";
const CLIENT_SECRET: &str = "bench-secret";
const TOKEN: &str = "opaque-bench-token";

impl Servers {
    pub fn start() -> Servers {
        let idp = IntrospectionServer::start(CLIENT_ID, CLIENT_SECRET);
        idp.issue(
            TOKEN,
            json!({"active": true, "iss": "https://idp.example", "aud": "orders",
                   "sub": "bench", "scope": "read", "exp": unix_now() + 86_400}),
        );
        Servers {
            etcd: EtcdCluster::start(3),
            idp,
        }
    }
}

/// The variant names, to start the servers only when one is chosen.
pub const NAMES: &[&str] = &[
    "request-signing.wasm, local replay cache",
    "request-signing.wasm, etcd replay store",
    "jwt-auth.wasm opaque token, introspection cached",
    "jwt-auth.wasm opaque token, introspection every request",
];

pub fn variants(s: &Servers) -> Vec<Variant> {
    let local = signing_policy();
    let mut etcd = signing_policy();
    etcd["replay_store"] = json!({"kind": "etcd", "cluster": "etcd",
                                  "prefix": format!("/bench/{}/{ROUND}/", std::process::id()),
                                  "timeout_ms": 1000});
    let introspection = |cache_entries: usize| {
        json!({
            "providers": [{"name": "idp", "issuer": "https://idp.example", "audiences": ["orders"],
                           "introspection": {"cluster": "idp", "uri": "http://idp.example/introspect",
                                             "client_id": CLIENT_ID, "client_secret_env": "IDP_SECRET"}}],
            "cache_entries": cache_entries,
            "default": {"scopes_any": ["read"]}
        })
        .to_string()
    };
    let opaque = |name: &str, cache_entries: usize| {
        let mut v = Variant::new(name)
            .wasm("jwt-auth", &introspection(cache_entries))
            .header("authorization", &format!("Bearer {TOKEN}"));
        v.clusters.push(("idp".into(), s.idp.addr));
        v.vm_env.push(("IDP_SECRET".into(), CLIENT_SECRET.into()));
        v
    };
    let mut on_etcd = signed(Variant::new(NAMES[1]).wasm("request-signing", &etcd.to_string()));
    on_etcd.clusters.push(("etcd".into(), s.etcd.client(0)));
    vec![
        signed(Variant::new(NAMES[0]).wasm("request-signing", &local.to_string())),
        on_etcd,
        opaque(NAMES[2], 1000),
        opaque(NAMES[3], 0),
    ]
}
