//! What `make bench` compares. Every variant receives the same request, so the ratios measure
//! only what each filter costs.

use serde_json::Value;

use crate::support::{Envoy, Response, Runtime};

#[derive(Clone)]
pub struct Variant {
    pub name: String,
    /// Native Envoy HTTP filters (typed configs), before the wasm filters.
    pub native: Vec<Value>,
    /// portcullis filters (module, policy JSON), loaded in `runtime`.
    pub wasm: Vec<(String, String)>,
    pub runtime: Runtime,
    pub path: String,
    pub wrk_script: String,
    headers: Vec<(String, String)>,
    body: String,
    /// Per-request header values wrk cycles through (single-use signatures), after `headers`.
    rotating: Vec<Vec<(String, String)>>,
    /// Envoy clusters the filters call (an etcd member, an introspection endpoint).
    pub clusters: Vec<(String, std::net::SocketAddr)>,
    /// The wasm VMs' environment (secrets named by `*_env` policy fields).
    pub vm_env: Vec<(String, String)>,
}

impl Variant {
    pub fn new(name: &str) -> Self {
        let body = order_json(1024);
        let headers = vec![("content-type".to_string(), "application/json".to_string())];
        let mut v = Variant {
            name: name.into(),
            native: Vec::new(),
            wasm: Vec::new(),
            runtime: Runtime::Wasm,
            path: "/api/orders".into(),
            wrk_script: String::new(),
            headers,
            body,
            rotating: Vec::new(),
            clusters: Vec::new(),
            vm_env: Vec::new(),
        };
        v.wrk_script = v.script();
        v
    }

    pub fn wasm(mut self, module: &str, policy: &str) -> Self {
        self.wasm.push((module.into(), policy.into()));
        self
    }

    /// The same portcullis filters in the native dynamic module (dist/native/libportcullis.so).
    fn in_native_module(&self) -> Self {
        let name = if self.name.contains(".wasm") {
            self.name.replace(".wasm", ".so")
        } else {
            format!("{} .so", self.name)
        };
        Variant {
            name: name
                .replace(" VMs)", " filters)")
                .replace(" VM)", " filter)"),
            runtime: Runtime::Native,
            ..self.clone()
        }
    }

    pub fn runtime_label(&self) -> &'static str {
        match (self.wasm.is_empty(), self.runtime) {
            (true, _) => "Envoy",
            (false, Runtime::Wasm) => "wasm",
            (false, Runtime::Native) => "native",
        }
    }

    /// One more request header (the script is rebuilt).
    pub fn header(mut self, name: &str, value: &str) -> Self {
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
        if std::env::var_os("BENCH_DEBUG").is_some() {
            // Show the first unexpected answer (a Lua callback per response slows wrk down).
            s.push_str(
                "response = function(status, headers, body)\n  if status ~= 200 and not shown then \
                 shown = true; io.stderr:write(status .. ' ' .. body .. '\\n') end\nend\n",
            );
        }
        s.push_str(&format!("wrk.body = {:?}\n", self.body));
        for (k, v) in &self.headers {
            s.push_str(&format!("wrk.headers[{k:?}] = {v:?}\n"));
        }
        if !self.rotating.is_empty() {
            // A Lua function holds at most 65536 constants: add the sets in chunks.
            s.push_str("local each = {}\n");
            for chunk in self.rotating.chunks(4096) {
                s.push_str(";(function()\n  for _, set in ipairs({\n");
                for set in chunk {
                    let fields: Vec<String> = set
                        .iter()
                        .map(|(k, v)| format!("[{k:?}] = {v:?}"))
                        .collect();
                    s.push_str(&format!("    {{{}}},\n", fields.join(", ")));
                }
                s.push_str("  }) do each[#each + 1] = set end\nend)()\n");
            }
            s.push_str(
                "local i = tonumber(os.getenv(\"BENCH_FIRST\") or \"0\")\nrequest = function()\n  i = i % #each + 1\n  \
                 for k, v in pairs(each[i]) do wrk.headers[k] = v end\n  return wrk.format()\nend\n",
            );
        }
        s
    }

    /// Everything `bench/profile.mjs` needs to replay this variant outside Envoy.
    pub fn dump(&self) -> Value {
        serde_json::json!({
            "name": self.name, "path": self.path, "body": self.body,
            "wasm": self.wasm, "headers": self.headers, "rotating": self.rotating,
        })
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
        Variant::new("api-schema.wasm (1 KiB body, 20 properties)")
            .wasm("api-schema", &crate::micro::api_schema_policy()),
        Variant::new("content-type + error-shield (2 VMs)")
            .wasm("content-type", CONTENT_TYPE)
            .wasm("error-shield", ERROR_SHIELD),
        Variant::new("guard: same 2 controls (1 VM)").wasm("guard", &guard),
    ]
    .into_iter()
    .chain(jwt_variants())
    .chain(four_controls())
    .chain(csrf_variants())
    // Each portcullis row again in the native module, right after its wasm run.
    .flat_map(|v| {
        let native = (!v.wasm.is_empty()).then(|| v.in_native_module());
        std::iter::once(v).chain(native)
    })
    .collect()
}

pub use crate::micro::{jwt, order_json};

const ISSUER: &str = "https://idp.example";

/// The bench's ES256 JWKS and a token from it, valid for a day.
fn es256_token() -> (Value, String) {
    let key = jwt::es256("bench");
    let keys = jwt::jwks(&[jwt::jwk_es256(&key, "bench")]);
    let token = jwt::sign_es256(
        &key,
        &serde_json::json!({"iss": ISSUER, "sub": "bench", "aud": "orders",
                            "iat": jwt::now(), "exp": jwt::now() + 86_400}),
    );
    (keys, token)
}

/// jwt-auth against Envoy's native jwt_authn: the same ES256 key and token, cache against
/// cache (jwt_authn's `jwt_cache_config`, jwt-auth's `cache_entries`) and without (wrk sends
/// one token for the whole run, so a cache off verifies on every request).
fn jwt_variants() -> Vec<Variant> {
    let iss = ISSUER;
    let (keys, token) = es256_token();
    let auth = format!("Bearer {token}");
    let native = |cache: bool| {
        let mut provider = serde_json::json!({"issuer": iss, "audiences": ["orders"], "forward": true,
                                              "local_jwks": {"inline_string": keys.to_string()}});
        if cache {
            provider["jwt_cache_config"] = serde_json::json!({"jwt_cache_size": 100});
        }
        serde_json::json!({
            "name": "envoy.filters.http.jwt_authn",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
                "providers": {"idp": provider},
                "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "idp"}}]
            }
        })
    };
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
        Variant::new("jwt_authn native ES256 cache on")
            .native(native(true))
            .header("authorization", &auth),
        Variant::new("jwt_authn native ES256 cache off")
            .native(native(false))
            .header("authorization", &auth),
        Variant::new("jwt-auth.wasm ES256 cache on")
            .wasm("jwt-auth", &policy(1024))
            .header("authorization", &auth),
        Variant::new("jwt-auth.wasm ES256 cache off")
            .wasm("jwt-auth", &policy(0))
            .header("authorization", &auth),
    ]
}

/// More than a warm-up second sends at the rates seen here, and more than a 5 s run sends after it.
pub const WARM_UP_REQUESTS: usize = 20_000;
const SIGNED_REQUESTS: usize = 100_000;

/// In a policy, replaced by the round number when the bench starts an Envoy: state kept outside
/// Envoy (etcd's nonces) starts empty each round, as a fresh Envoy's own caches do.
pub const ROUND: &str = "@ROUND@";

/// The issue's four controls: header-guard, jwt-auth (ES256, cache on), content-type and
/// request-signing, as four wasm filters (four VMs) and as one guard chain (one VM). The
/// request carries a valid token and an RFC 9421 signature over method, path, content type and
/// body digest with a single-use nonce: wrk cycles through as many signatures as a run can
/// send, made when the bench starts (so they are accepted for an hour, not 300 s).
const SECRET: &str = "q83vEjRWeJASNFZ4kBI0VniQEjRWeJASNFZ4kBI0Vng=";
const COVERED: &[&str] = &["@method", "@path", "content-type", "content-digest"];

/// request-signing's bench policy: an hour's window, so that signatures made when the bench
/// starts stay valid, and a cache holding all of them.
pub fn signing_policy() -> Value {
    serde_json::json!({
        "keys": [{"keyid": "bench", "secret": SECRET}],
        "window_secs": 3600, "nonce_capacity": 200000,
        "default": {"components": COVERED}
    })
}

/// `v` with an RFC 9421 signature on the probe and a fresh one per request for wrk.
pub fn signed(v: Variant) -> Variant {
    use portcullis::signing::{self, Message, SignRequest};
    let headers: Vec<(String, Vec<u8>)> = v
        .headers
        .iter()
        .map(|(k, val)| (k.clone(), val.as_bytes().to_vec()))
        .collect();
    let msg = Message {
        method: "POST",
        scheme: "http",
        authority: "localhost",
        target: &v.path,
        headers: &headers,
    };
    let secret = signing::decode_secret(SECRET).expect("base64 secret");
    // `created` is spread over the last 50 minutes: the replay cache is sized per time slot
    // (nonce_capacity over the window), as real clients' signatures are spread over time.
    let sign = |i: usize| {
        let age = (i * 3000 / SIGNED_REQUESTS) as u64;
        let mut req = SignRequest::new("bench", jwt::now() - age, COVERED);
        req.nonce = signing::random_nonce();
        let signed =
            signing::sign(&msg, Some(v.body.as_bytes()), &secret, &req).expect("sign the request");
        signed
            .headers()
            .into_iter()
            .map(|(k, val)| (k.to_ascii_lowercase(), val))
            .collect::<Vec<_>>()
    };
    // The 1 s warm-up uses the first WARM_UP_REQUESTS, the run what follows (each Envoy starts
    // with an empty replay cache).
    let rotating: Vec<Vec<(String, String)>> = (0..SIGNED_REQUESTS).map(sign).collect();
    // The probe's own signature; wrk's come from `rotating`.
    let probe = sign(0);
    let mut v = v;
    for (k, val) in probe {
        v = v.header(&k, &val);
    }
    v.rotating = rotating;
    v.wrk_script = v.script();
    v
}

fn four_controls() -> Vec<Variant> {
    let iss = ISSUER;
    let (keys, token) = es256_token();
    let jwt_policy = serde_json::json!({
        "providers": [{"name": "idp", "issuer": iss, "audiences": ["orders"],
                       "algorithms": ["ES256"], "jwks": keys}],
        "default": {}
    });
    let signing_policy = signing_policy();
    let with_auth = |v: Variant| signed(v.header("authorization", &format!("Bearer {token}")));
    let header_guard = "{}";
    let guard = serde_json::json!({
        "chain": ["header_guard", "jwt_auth", "content_type", "request_signing"],
        "header_guard": serde_json::from_str::<Value>(header_guard).expect("json"),
        "jwt_auth": jwt_policy,
        "content_type": serde_json::from_str::<Value>(CONTENT_TYPE).expect("json"),
        "request_signing": signing_policy
    });
    vec![
        with_auth(
            Variant::new("4 modules (4 VMs)")
                .wasm("header-guard", header_guard)
                .wasm("jwt-auth", &jwt_policy.to_string())
                .wasm("content-type", CONTENT_TYPE)
                .wasm("request-signing", &signing_policy.to_string()),
        ),
        with_auth(Variant::new("guard: same 4 controls (1 VM)").wasm("guard", &guard.to_string())),
    ]
    .into_iter()
    .chain(guard_prefixes(&guard).into_iter().map(with_auth))
    .collect()
}

/// Where guard's time goes: the same chain cut after its first 1, 2 and 3 members.
fn guard_prefixes(guard: &Value) -> Vec<Variant> {
    let chain: Vec<String> = guard["chain"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|n| n.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    (1..chain.len())
        .map(|n| {
            let members = chain.get(..n).unwrap_or_default();
            let mut policy = serde_json::json!({"chain": members});
            for m in members {
                policy[m] = guard[m].clone();
            }
            Variant::new(&format!("guard: {}", members.join(" + ")))
                .wasm("guard", &policy.to_string())
        })
        .collect()
}

/// Envoy's native csrf filter against the csrf module with the policy that decides like it
/// (tests/csrf.rs checks that request by request): a cross-origin POST from an allowed origin.
fn csrf_variants() -> Vec<Variant> {
    let native = serde_json::json!({
        "name": "envoy.filters.http.csrf",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.csrf.v3.CsrfPolicy",
            "filter_enabled": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
            "additional_origins": [{"exact": "app.example.com"}]
        }
    });
    let policy = r#"{"default": {"allowed_origins": ["https://app.example.com", "http://app.example.com"],
                                 "fetch_metadata": false}}"#;
    vec![
        Variant::new("csrf native")
            .native(native)
            .header("origin", "https://app.example.com"),
        Variant::new("csrf.wasm")
            .wasm("csrf", policy)
            .header("origin", "https://app.example.com"),
    ]
}
