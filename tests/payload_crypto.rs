//! payload-crypto in a real Envoy, against an independent JOSE implementation (jwcrypto, see
//! tests/jose_interop.py): what the client got and what the upstream saw.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use support::*;

// Test keys only. The EC key pair is RFC 7520 §3.3's example key (meriadoc).
const K_SVC: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
const K_CLIENT: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8";
const EC_X: &str = "Ze2loSV3wrroKUN_4zhwGhCqo3Xhu1td4QjeQ5wIVR0";
const EC_Y: &str = "HlLtdXARY_f55A3fnzQbPcm6hgr34Mp8p-nuzQCE0Zw";
const EC_D: &str = "r_kHyZ-a06rmxM3yESK84r1otSg-aQcVStkRhA-iCM8";

/// RFC 7520 §5.8 (A128KW + A128GCM), verbatim.
const RFC7520_5_8_KEY: &str = "GZy6sIZ6wl9NJOKB-jnmVQ";
const RFC7520_5_8: &str = "eyJhbGciOiJBMTI4S1ciLCJraWQiOiI4MWIyMDk2NS04MzMyLTQzZDktYTQ2OC04MjE2MGFkOTFhYzgiLCJlbmMiOiJBMTI4R0NNIn0.CBI6oDw8MydIx1IBntf_lQcw2MmJKIQx.Qx0pmsDa8KnJc9Jo.AwliP-KmWgsZ37BvzCefNen6VTbRK3QMA4TkvRkH0tP1bTdhtFJgJxeVmJkLD61A1hnWGetdg11c9ADsnWgL56NyxwSYjU1ZEHcGkd3EkU0vjHi9gTlb90qSYFfeF0LwkcTtjbYKCsiNJQkcIp1yeM03OmuiYSoYJVSpf7ej6zaYcMv3WwdxDFl8REwOhNImk2Xld2JXq6BR53TSFkyT7PwVLuq-1GwtGHlQeg7gDT6xW0JqHDPn_H-puQsmthc9Zg0ojmJfqqFvETUxLAF-KjcBTS5dNy6egwkYtOt8EIHK-oEsKYtZRaa8Z7MOZ7UGxGIMvEmxrGCPeJa14slv2-gaqK0kEThkaSqdYw0FkQZF.ER7MWJZ1FBI_NKvn7Zb1Lw";

fn policy() -> String {
    json!({
        "keys": [
            {"kid": "svc-kw", "alg": "A256KW", "k_env": "PC_SVC_KEY"},
            {"kid": "svc-ec", "alg": "ECDH-ES+A256KW", "crv": "P-256", "x": EC_X, "y": EC_Y, "d_env": "PC_SVC_EC_D"},
            {"kid": "81b20965-8332-43d9-a468-82160ad91ac8", "alg": "A128KW", "k": RFC7520_5_8_KEY},
            {"kid": "client-kw", "alg": "A256KW", "k": K_CLIENT},
            {"kid": "client-ec", "alg": "ECDH-ES+A256KW", "crv": "P-256", "x": EC_X, "y": EC_Y}
        ],
        "routes": [
            {"match": {"prefix": "/secure"}, "decrypt_request": true, "max_ciphertext_bytes": 8192},
            {"match": {"prefix": "/statement"}, "encrypt_response": {"kid": "client-ec"}},
            {"match": {"prefix": "/mine"}, "encrypt_response": {"kid_header": "x-jwt-sub"}},
            {"match": {"prefix": "/both"}, "decrypt_request": true,
             "encrypt_response": {"kid_header": "x-jwt-sub"}},
            {"match": {"prefix": "/payments"},
             "request_fields": {"encrypt": ["$.card.number", "$.items[*].ssn"], "to": {"kid": "svc-ec"}},
             "response_fields": {"decrypt": ["$.card.number"]}},
            {"match": {"prefix": "/cards"}, "response_fields": {"decrypt": ["$.card.number"]}},
            {"match": {"prefix": "/profile"},
             "response_fields": {"encrypt": ["$.ssn"], "to": {"kid": "client-kw"}}},
            {"match": {"prefix": "/small"}, "encrypt_response": {"kid": "client-kw"},
             "max_plaintext_bytes": 64}
        ]
    })
    .to_string()
}

/// The module with the policy, its secrets passed as VM environment variables.
fn filter() -> Filter {
    Filter::new("payload-crypto", policy())
        .vm_env("PC_SVC_KEY", K_SVC)
        .vm_env("PC_SVC_EC_D", EC_D)
}

fn start() -> Envoy {
    envoy().filter(filter()).start()
}

fn jwk_oct(kid: &str, k: &str) -> String {
    json!({"kty": "oct", "kid": kid, "k": k}).to_string()
}

fn jwk_ec(kid: &str) -> String {
    json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": EC_X, "y": EC_Y, "d": EC_D}).to_string()
}

/// Run tests/jose_interop.py with `input` on stdin.
fn jose(args: &[&str], input: &[u8]) -> String {
    let python = repo_root().join(".venv/bin/python");
    let mut child = Command::new(&python)
        .arg(repo_root().join("tests/jose_interop.py"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e} (run `make setup`)", python.display()));
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "jose_interop.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn jwcrypto_decrypt(jwk: &str, compact: &str) -> (Value, String) {
    let v: Value = serde_json::from_str(&jose(&["decrypt", jwk], compact.as_bytes())).unwrap();
    (
        v["header"].clone(),
        v["plaintext"].as_str().unwrap().to_string(),
    )
}

const JOSE_CT: (&str, &str) = ("content-type", "application/jose");

#[test]
fn a_jwcrypto_a256kw_jwe_reaches_the_upstream_as_plaintext() {
    let e = start();
    let plain = br#"{"card":{"number":"4111111111111111"}}"#;
    let jwe = jose(
        &[
            "encrypt",
            &jwk_oct("svc-kw", K_SVC),
            "A256KW",
            "A256GCM",
            "json",
        ],
        plain,
    );
    let r = e.post("/secure/pay", &[JOSE_CT], jwe.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = e.upstream_seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body.as_bytes(), plain);
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    assert_eq!(
        seen[0].header("content-length"),
        Some(plain.len().to_string().as_str())
    );
    assert_eq!(
        e.counter("payload_crypto", "replaced", "payload_crypto.decrypted"),
        1
    );
}

#[test]
fn a_jwcrypto_ecdh_es_jwe_is_decrypted_with_the_key_from_the_vm_environment() {
    let e = start();
    let jwe = jose(
        &[
            "encrypt",
            &jwk_ec("svc-ec"),
            "ECDH-ES+A256KW",
            "A256GCM",
            "text/plain",
        ],
        b"patient 42",
    );
    let r = e.post("/secure", &[JOSE_CT], jwe.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = e.upstream_seen();
    assert_eq!(seen[0].body, "patient 42");
    assert_eq!(seen[0].header("content-type"), Some("text/plain"));
}

#[test]
fn rfc7520_5_8_is_decrypted_in_envoy() {
    let e = start();
    let r = e.post("/secure", &[JOSE_CT], RFC7520_5_8.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = e.upstream_seen();
    assert!(seen[0]
        .body
        .starts_with("You can trust us to stick with you"));
    assert!(seen[0].body.ends_with("We are your friends, Frodo."));
    assert_eq!(
        seen[0].header("content-type"),
        Some("application/octet-stream")
    );
}

#[test]
fn a_failed_tag_check_is_400_and_the_upstream_sees_nothing() {
    let e = start();
    let jwe = jose(
        &["encrypt", &jwk_oct("svc-kw", K_SVC), "A256KW", "A256GCM"],
        b"x",
    );
    let mut parts: Vec<&str> = jwe.split('.').collect();
    let bad_tag = "AAAAAAAAAAAAAAAAAAAAAA";
    parts[4] = bad_tag;
    let r = e.post("/secure", &[JOSE_CT], parts.join(".").as_bytes());
    r.assert_problem(400, "payload_crypto.decrypt_failed");
    let r = e.post("/secure", &[("content-type", "application/json")], b"{}");
    r.assert_problem(415, "payload_crypto.not_jwe");
    assert!(e.upstream_seen().is_empty());
    assert_eq!(
        e.counter("payload_crypto", "denied", "payload_crypto.decrypt_failed"),
        1
    );
}

fn echo_headers(ct: &str) -> Vec<(&str, &str)> {
    vec![("x-echo-status", "200"), ("x-echo-content-type", ct)]
}

#[test]
fn the_response_is_encrypted_for_the_client_and_jwcrypto_decrypts_it() {
    let e = start();
    let plain = r#"{"balance":1234}"#;
    let r = e.post(
        "/statement",
        &echo_headers("application/json"),
        plain.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/jose"));
    assert!(
        !r.text().contains("1234"),
        "the client sees ciphertext only"
    );
    // The upstream produced plaintext.
    assert_eq!(e.upstream_seen()[0].body, plain);
    // ECDH-ES in the VM: the ephemeral key, CEK and IV come from WASI random_get.
    let (header, text) = jwcrypto_decrypt(&jwk_ec("client-ec"), &r.text());
    assert_eq!(text, plain);
    assert_eq!(header["alg"], "ECDH-ES+A256KW");
    assert_eq!(header["enc"], "A256GCM");
    assert_eq!(header["cty"], "json");
    assert_eq!(header["kid"], "client-ec");
    // Two responses, two different ephemeral keys and IVs.
    let r2 = e.post(
        "/statement",
        &echo_headers("application/json"),
        plain.as_bytes(),
    );
    assert_ne!(r.text(), r2.text());
    assert_eq!(
        e.counter("payload_crypto", "replaced", "payload_crypto.encrypted"),
        2
    );
}

#[test]
fn the_client_key_is_chosen_by_a_forwarded_claim_header() {
    let e = start();
    let mut h = echo_headers("text/csv");
    h.push(("x-jwt-sub", "client-kw"));
    h.push(("accept-encoding", "gzip"));
    let r = e.post("/mine", &h, b"a,b\n1,2\n");
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = e.upstream_seen();
    assert_eq!(
        seen[0].header("accept-encoding"),
        None,
        "compression is turned off upstream"
    );
    let (header, text) = jwcrypto_decrypt(&jwk_oct("client-kw", K_CLIENT), &r.text());
    assert_eq!(text, "a,b\n1,2\n");
    assert_eq!(header["cty"], "text/csv");
    // An unknown client: 400 before the upstream is asked.
    let r = e.post("/mine", &[("x-jwt-sub", "mallory")], b"x");
    r.assert_problem(400, "payload_crypto.unknown_client_key");
    assert_eq!(e.upstream_seen().len(), 1);
}

#[test]
fn encrypted_both_ways_the_upstream_only_ever_sees_plaintext() {
    let e = start();
    let jwe = jose(
        &[
            "encrypt",
            &jwk_ec("svc-ec"),
            "ECDH-ES+A256KW",
            "A128GCM",
            "json",
        ],
        br#"{"q":"balance"}"#,
    );
    let mut h = echo_headers("application/json");
    h.push(JOSE_CT);
    h.push(("x-jwt-sub", "client-ec"));
    let r = e.post("/both", &h, jwe.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(e.upstream_seen()[0].body, r#"{"q":"balance"}"#);
    assert_eq!(r.header("content-type"), Some("application/jose"));
    let (_, text) = jwcrypto_decrypt(&jwk_ec("client-ec"), &r.text());
    // The echo answers with the (decrypted) request body.
    assert_eq!(text, r#"{"q":"balance"}"#);
}

#[test]
fn field_level_the_upstream_sees_jwe_fields_and_the_rest_in_clear() {
    let e = start();
    let body = br#"{"card":{"number":"4111111111111111","brand":"visa"},"items":[{"ssn":"078-05-1120"}],"amount":5}"#;
    let r = e.post("/payments", &[("content-type", "application/json")], body);
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = e.upstream_seen();
    assert!(!seen[0].body.contains("4111"), "{}", seen[0].body);
    let doc: Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(doc["card"]["brand"], "visa");
    assert_eq!(doc["amount"], 5);
    let (header, number) =
        jwcrypto_decrypt(&jwk_ec("svc-ec"), doc["card"]["number"].as_str().unwrap());
    assert_eq!(number, r#""4111111111111111""#);
    assert_eq!(header["cty"], "json");
    let (_, ssn) = jwcrypto_decrypt(&jwk_ec("svc-ec"), doc["items"][0]["ssn"].as_str().unwrap());
    assert_eq!(ssn, r#""078-05-1120""#);
}

#[test]
fn field_level_response_fields_encrypted_by_jwcrypto_are_decrypted_for_the_client() {
    let e = start();
    let number = jose(
        &[
            "encrypt",
            &jwk_ec("svc-ec"),
            "ECDH-ES+A256KW",
            "A256GCM",
            "json",
        ],
        br#""4111""#,
    );
    let stored = format!(r#"{{"card":{{"number":"{number}"}}}}"#);
    let r = e.post(
        "/cards/1",
        &echo_headers("application/json"),
        stored.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"card": {"number": "4111"}}));
}

/// A response labelled JSON whose body does not parse cannot have its fields encrypted: it is
/// replaced by a 502 problem and counted, never passed in clear.
#[test]
fn response_fields_on_a_json_labelled_body_that_does_not_parse_fail_closed_with_502() {
    let e = start();
    let bodies: [&[u8]; 4] = [
        br#"{"ssn": "123-45-6789""#,
        br#"{"ssn": "123-45-6789"} trailing"#,
        b"\xef\xbb\xbf{\"ssn\": \"123-45-6789\"}",
        b"ssn=123-45-6789",
    ];
    let labels = [
        "application/json",
        "application/json; charset=utf-8",
        "application/problem+json",
        "Application/JSON",
    ];
    for label in labels {
        for body in bodies {
            let r = e.post("/profile/1", &echo_headers(label), body);
            r.assert_problem(502, "payload_crypto.not_json");
            assert!(!r.text().contains("123-45"), "{label}: {}", r.text());
        }
    }
    assert_eq!(
        e.counter("payload_crypto", "denied", "payload_crypto.not_json"),
        (labels.len() * bodies.len()) as u64
    );
    // A body that parses has its field encrypted.
    let r = e.post(
        "/profile/1",
        &echo_headers("application/json"),
        br#"{"ssn": "123-45-6789"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.text().contains("123-45"), "{}", r.text());
}

/// #17 class 5: on a `response_fields` route the label does not decide whether the body is
/// read. Labels a JSON check could miss (`text/json`, `+json` with parameters, a second
/// Content-Type line, a plain-text or HTML mislabel) and content-coded bodies never reach the
/// client in clear: 502, counted.
#[test]
fn response_fields_never_pass_a_body_they_could_not_encrypt_whatever_its_labels() {
    let e = start();
    let leak: &[u8] = br#"{"ssn": "123-45-6789""#;
    let labels: [&[(&str, &str)]; 6] = [
        &[("x-echo-content-type", "text/json")],
        &[("x-echo-content-type", "application/vnd.api+json; ext=\"x\"")],
        &[("x-echo-content-type", "text/plain")],
        &[("x-echo-content-type", "text/html; charset=utf-8")],
        &[
            ("x-echo-content-type", "text/plain"),
            ("x-echo-header", "content-type: application/json"),
        ],
        &[("x-echo-content-type", "application/octet-stream")],
    ];
    for label in labels {
        let mut headers = vec![("x-echo-status", "200")];
        headers.extend_from_slice(label);
        let r = e.post("/profile/1", &headers, leak);
        r.assert_problem(502, "payload_crypto.not_json");
        assert!(!r.text().contains("123-45"), "{label:?}: {}", r.text());
        // The same label on a body that parses: the field is encrypted.
        let r = e.post("/profile/1", &headers, br#"{"ssn": "123-45-6789"}"#);
        assert_eq!(r.status, 200, "{label:?}: {}", r.text());
        assert!(!r.text().contains("123-45"), "{label:?}: {}", r.text());
    }
    assert_eq!(
        e.counter("payload_crypto", "denied", "payload_crypto.not_json"),
        labels.len() as u64
    );
    for coding in ["gzip", "identity, gzip", "br"] {
        let ce = format!("content-encoding: {coding}");
        let headers = [
            ("x-echo-status", "200"),
            ("x-echo-content-type", "application/json"),
            ("x-echo-header", ce.as_str()),
        ];
        let r = e.post("/profile/1", &headers, br#"{"ssn": "123-45-6789"}"#);
        r.assert_problem(502, "payload_crypto.encoded_response");
        assert!(!r.text().contains("123-45"), "{coding}: {}", r.text());
    }
}

#[test]
fn a_response_too_large_to_encrypt_never_reaches_the_client_in_clear() {
    let e = start();
    let secret = "S".repeat(100);
    let r = e.post("/small", &echo_headers("text/plain"), secret.as_bytes());
    r.assert_problem(502, "payload_crypto.response_too_large");
    assert!(!r.text().contains("SSSS"));
    // Within the limit it is encrypted.
    let r = e.post("/small", &echo_headers("text/plain"), b"short");
    let (_, text) = jwcrypto_decrypt(&jwk_oct("client-kw", K_CLIENT), &r.text());
    assert_eq!(text, "short");
}

/// Run the CLI with `input` on stdin; (status ok, stdout, stderr).
fn cli(args: &[&str], env: &[(&str, &str)], input: &[u8]) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_encrypt_and_decrypt_interoperate_with_jwcrypto_and_envoy() {
    let e = start();
    let env = [("PC_KEY", K_SVC)];
    // portcullis encrypt -> the module decrypts it in Envoy.
    let (ok, jwe, err) = cli(
        &[
            "encrypt",
            "--key-env",
            "PC_KEY",
            "--alg",
            "A256KW",
            "--kid",
            "svc-kw",
            "--cty",
            "application/json",
        ],
        &env,
        br#"{"a":1}"#,
    );
    assert!(ok, "{err}");
    let r = e.post("/secure", &[JOSE_CT], jwe.trim().as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(e.upstream_seen()[0].body, r#"{"a":1}"#);
    // jwcrypto -> portcullis decrypt, the key as a JWK file.
    let dir = std::env::temp_dir().join(format!("pc-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("svc.jwk");
    std::fs::write(&file, jwk_ec("svc-ec")).unwrap();
    let jwe = jose(
        &["encrypt", &jwk_ec("svc-ec"), "ECDH-ES+A256KW", "A256GCM"],
        b"hi",
    );
    let (ok, plain, header) = cli(
        &["decrypt", "--key-file", file.to_str().unwrap()],
        &[],
        jwe.as_bytes(),
    );
    assert!(ok, "{header}");
    assert_eq!(plain, "hi");
    assert!(header.contains("ECDH-ES+A256KW"), "{header}");
    // A wrong key fails with a status, not a panic.
    let (ok, plain, _) = cli(&["decrypt", "--key-env", "PC_KEY"], &env, jwe.as_bytes());
    assert!(!ok && plain.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// An upstream that answers every request with a chunked (no Content-Length) text body of
/// `chunks` x 100 bytes of `S`.
fn chunked_upstream(chunks: usize) -> std::net::SocketAddr {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let mut out = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
                for _ in 0..chunks {
                    out.extend_from_slice(format!("64\r\n{}\r\n", "S".repeat(100)).as_bytes());
                }
                out.extend_from_slice(b"0\r\n\r\n");
                let _ = conn.write_all(&out);
                let _ = conn.flush();
            });
        }
    });
    addr
}

#[test]
fn a_chunked_response_too_large_to_encrypt_is_replaced_not_streamed_in_clear() {
    // No Content-Length: the size is only known while buffering, past the limit.
    let e = envoy()
        .filter(filter())
        .upstream(chunked_upstream(10))
        .start();
    let r = e.get("/small", &[]);
    r.assert_problem(502, "payload_crypto.response_too_large");
    assert!(!r.text().contains("SSSS"), "{}", r.text());
    // A small chunked body is encrypted as usual.
    let e = envoy()
        .filter(filter())
        .upstream(chunked_upstream(1))
        .start();
    let r = e.get("/statement", &[]);
    assert_eq!(
        r.header("content-type"),
        Some("application/jose"),
        "{}",
        r.text()
    );
    let (_, text) = jwcrypto_decrypt(&jwk_ec("client-ec"), &r.text());
    assert_eq!(text, "S".repeat(100));
}
