//! jwt-auth's request-facing parsers: arbitrary bytes as a bearer token (split, base64url,
//! strict JSON, header rules, claims, signature check) and as an inline JWKS. Never panics.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use portcullis::control::{configure, Control, Env};
use portcullis::controls::build_module;
use portcullis::controls::jwt_auth::{parse_token, JwtAuth};
use portcullis::store::MemoryStore;
use portcullis::RequestView;

// RFC 8037 §A.2's Ed25519 public key and a 32-byte HMAC secret.
const POLICY: &str = r#"{
  "providers": [
    {"name": "ed", "issuer": "ed", "algorithms": ["EdDSA"], "audiences": ["a"],
     "jwks": {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]},
     "forward": {"claims": ["sub", "scope"], "payload": true}},
    {"name": "hs", "issuer": "hs", "algorithms": ["HS256"], "require_exp": false, "max_lifetime_secs": 60,
     "jwks": {"keys": [{"kty": "oct", "kid": "k", "k": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"}]}}
  ],
  "routes": [{"match": {"prefix": "/s"}, "scopes_all": ["a"], "scopes_any": ["b", "c"]}],
  "default": {},
  "cache_entries": 8
}"#;

thread_local! {
    static CONTROL: JwtAuth = configure(POLICY.as_bytes()).expect("fuzz policy");
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse_token(&text);
    let store = MemoryStore::default();
    let env = Env {
        now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        store: &store,
    };
    let auth = format!("Bearer {text}");
    for path in ["/", "/s"] {
        if let Ok(req) = RequestView::new("GET", path, &[("authorization", auth.as_str())]) {
            CONTROL.with(|c| {
                let _ = c.on_request(&req, &env);
            });
        }
    }
    let jwks = serde_json::json!({"providers": [{"name": "p", "issuer": "p",
        "algorithms": ["RS256", "ES256", "ES384", "EdDSA", "HS256", "HS512"], "jwks": text}]});
    let _ = build_module("jwt-auth", &jwks);
});
