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
}
