//! What `make bench` compares. Every variant receives the same request, so the ratios measure
//! only what each filter costs.

use serde_json::Value;

use crate::support::{Envoy, Response};

pub struct Variant {
    pub name: String,
    /// Native Envoy HTTP filters (typed configs), before the wasm filters.
    pub native: Vec<Value>,
    /// (module, policy JSON)
    pub wasm: Vec<(String, String)>,
    pub path: String,
    pub wrk_script: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Variant {
    fn new(name: &str) -> Self {
        let body = order_json(1024);
        let headers = vec![("content-type".to_string(), "application/json".to_string())];
        let mut v = Variant {
            name: name.into(),
            native: Vec::new(),
            wasm: Vec::new(),
            path: "/api/orders".into(),
            wrk_script: String::new(),
            headers,
            body,
        };
        v.wrk_script = v.script();
        v
    }

    fn wasm(mut self, module: &str, policy: &str) -> Self {
        self.wasm.push((module.into(), policy.into()));
        self
    }

    /// One more request header (the script is rebuilt).
    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self.wrk_script = self.script();
        self
    }

    fn native(mut self, filter: Value) -> Self {
        self.native.push(filter);
        self
    }

    fn script(&self) -> String {
        let mut s = String::from("wrk.method = \"POST\"\n");
        s.push_str(&format!("wrk.body = {:?}\n", self.body));
        for (k, v) in &self.headers {
            s.push_str(&format!("wrk.headers[{k:?}] = {v:?}\n"));
        }
        s
    }

    /// The benchmark request, sent once through the harness client.
    pub fn probe(&self, e: &Envoy) -> Response {
        let h: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        e.post(&self.path, &h, self.body.as_bytes())
    }
}

/// A realistic JSON order document of about `size` bytes.
pub fn order_json(size: usize) -> String {
    let mut items = Vec::new();
    let mut s = String::new();
    let mut i = 0;
    while s.len() < size {
        items.push(format!(
            r#"{{"sku":"SKU-{i:05}","qty":{},"price":"{}.99","tags":["a","b"]}}"#,
            i % 7 + 1,
            i % 90 + 10
        ));
        s = format!(
            r#"{{"customer":"c-1842","currency":"EUR","items":[{}]}}"#,
            items.join(",")
        );
        i += 1;
    }
    s
}

const CONTENT_TYPE: &str =
    r#"{"default": {"allow": ["application/json"], "max_body_bytes": 65536}}"#;
const ERROR_SHIELD: &str = r#"{}"#;

pub fn all() -> Vec<Variant> {
    let guard = format!(
        r#"{{"chain": ["content_type", "error_shield"], "content_type": {CONTENT_TYPE}, "error_shield": {ERROR_SHIELD}}}"#
    );
    vec![
        Variant::new("no filter"),
        Variant::new("noop.wasm").wasm("noop", "{}"),
        Variant::new("content-type.wasm").wasm("content-type", CONTENT_TYPE),
        Variant::new("content-type + error-shield (2 VMs)")
            .wasm("content-type", CONTENT_TYPE)
            .wasm("error-shield", ERROR_SHIELD),
        Variant::new("guard: same 2 controls (1 VM)").wasm("guard", &guard),
    ]
    .into_iter()
    .chain(jwt_variants())
    .collect()
}

#[path = "../../tests/support/jwt.rs"]
pub mod jwt;

/// jwt-auth against Envoy's native jwt_authn: the same ES256 key and token (wrk sends one
/// token for the whole run, so "cache off" (`cache_entries: 0`) verifies on every request).
fn jwt_variants() -> Vec<Variant> {
    let iss = "https://idp.example";
    let key = jwt::es256("bench");
    let keys = jwt::jwks(&[jwt::jwk_es256(&key, "bench")]);
    let token = jwt::sign_es256(
        &key,
        &serde_json::json!({"iss": iss, "sub": "bench", "aud": "orders",
                            "iat": jwt::now(), "exp": jwt::now() + 86_400}),
    );
    let auth = format!("Bearer {token}");
    let native = serde_json::json!({
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"idp": {"issuer": iss, "audiences": ["orders"], "forward": true,
                                  "local_jwks": {"inline_string": keys.to_string()}}},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "idp"}}]
        }
    });
    let policy = |cache: usize| {
        serde_json::json!({
            "providers": [{"name": "idp", "issuer": iss, "audiences": ["orders"],
                           "algorithms": ["ES256"], "jwks": keys}],
            "default": {},
            "cache_entries": cache
        })
        .to_string()
    };
    vec![
        Variant::new("jwt_authn native ES256")
            .native(native)
            .header("authorization", &auth),
        Variant::new("jwt-auth.wasm ES256 cache on")
            .wasm("jwt-auth", &policy(1024))
            .header("authorization", &auth),
        Variant::new("jwt-auth.wasm ES256 cache off")
            .wasm("jwt-auth", &policy(0))
            .header("authorization", &auth),
    ]
}
