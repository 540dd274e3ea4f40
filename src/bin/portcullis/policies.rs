//! Find portcullis policies in a file: a policy JSON, an Envoy bootstrap or listener YAML, or
//! Istio WasmPlugin manifests (several YAML documents allowed).

use serde_json::Value;

/// One policy found, with where it was found.
pub struct Found {
    /// Module name with dashes (`content-type`).
    pub module: String,
    pub location: String,
    pub policy: Value,
}

const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";

/// Module name from a `.wasm` file name or an OCI reference: `dist/content-type.wasm`,
/// `oci://ghcr.io/acme/portcullis-jwt-auth:0.1.0` → `content-type`, `jwt-auth`.
pub fn module_from_ref(r: &str) -> String {
    let last = r.rsplit('/').next().unwrap_or(r);
    let last = last.split([':', '@']).next().unwrap_or(last);
    let last = last.strip_suffix(".wasm").unwrap_or(last);
    last.strip_prefix("portcullis-").unwrap_or(last).to_string()
}

/// Why no policy came out of a file.
pub enum NotFound {
    /// A bare policy JSON that is not a guard's: the caller must name its module (a usage
    /// error, not an invalid policy).
    NeedsModule,
    /// Not JSON or YAML, or no portcullis policy in it.
    Invalid(String),
}

impl From<String> for NotFound {
    fn from(e: String) -> Self {
        NotFound::Invalid(e)
    }
}

pub fn discover(file: &str, text: &str, module: Option<&str>) -> Result<Vec<Found>, NotFound> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') && !looks_like_bootstrap(trimmed) {
        let policy: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let module = match module {
            Some(m) => m.to_string(),
            None if policy.get("chain").is_some() => "guard".to_string(),
            None => return Err(NotFound::NeedsModule),
        };
        return Ok(vec![Found {
            module,
            location: file.to_string(),
            policy,
        }]);
    }
    let mut found = Vec::new();
    for (i, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
        let doc: Value =
            serde::Deserialize::deserialize(doc).map_err(|e| format!("not YAML: {e}"))?;
        if doc.get("kind").and_then(Value::as_str) == Some("WasmPlugin") {
            found.push(wasm_plugin(&doc, i)?);
        } else {
            walk(&doc, &mut found);
        }
    }
    if found.is_empty() {
        return Err(NotFound::Invalid(
            "no portcullis policy found (no wasm HTTP filter, no WasmPlugin)".into(),
        ));
    }
    Ok(found)
}

fn looks_like_bootstrap(json: &str) -> bool {
    json.contains("static_resources") || json.contains(WASM_TYPE)
}

fn wasm_plugin(doc: &Value, index: usize) -> Result<Found, String> {
    let name = doc["metadata"]["name"].as_str().unwrap_or("?");
    let url = doc["spec"]["url"]
        .as_str()
        .ok_or(format!("WasmPlugin {name}: spec.url is missing"))?;
    let policy = doc["spec"]
        .get("pluginConfig")
        .cloned()
        .unwrap_or(Value::Null);
    Ok(Found {
        module: module_from_ref(url),
        location: format!(
            "document {} (WasmPlugin {name}) spec.pluginConfig",
            index + 1
        ),
        policy,
    })
}

/// Every wasm HTTP filter config in an Envoy bootstrap or listener.
fn walk(v: &Value, found: &mut Vec<Found>) {
    match v {
        Value::Object(map) => {
            if map.get("@type").and_then(Value::as_str) == Some(WASM_TYPE) {
                let config = &map["config"];
                let file = config["vm_config"]["code"]["local"]["filename"]
                    .as_str()
                    .or_else(|| config["vm_config"]["code"]["remote"]["http_uri"]["uri"].as_str())
                    .unwrap_or("");
                let module = if file.is_empty() {
                    config["name"].as_str().unwrap_or("?").to_string()
                } else {
                    module_from_ref(file)
                };
                let raw = config["configuration"]["value"].as_str().unwrap_or("");
                let policy = serde_json::from_str(raw)
                    .unwrap_or_else(|e| Value::String(format!("\u{0}not JSON: {e}")));
                found.push(Found {
                    module,
                    location: format!("wasm filter {}", config["name"].as_str().unwrap_or("?")),
                    policy,
                });
                return;
            }
            for child in map.values() {
                walk(child, found);
            }
        }
        Value::Array(items) => items.iter().for_each(|c| walk(c, found)),
        _ => {}
    }
}
