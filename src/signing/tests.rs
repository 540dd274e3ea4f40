//! RFC 9421 Appendix B.2.5 and the sign/verify round trip.

use super::*;

/// RFC 9421 Appendix B.1.5: the shared secret `test-shared-secret`.
const RFC_SECRET: &str =
    "uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ==";

/// RFC 9421 Appendix B.2: the test request.
///
/// ```text
/// POST /foo?param=Value&Pet=dog HTTP/1.1
/// Host: example.com
/// Date: Tue, 20 Apr 2021 02:07:55 GMT
/// Content-Type: application/json
/// Content-Digest: sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:
/// Content-Length: 18
///
/// {"hello": "world"}
/// ```
fn rfc_headers() -> Vec<(String, Vec<u8>)> {
    [
        ("host", "example.com"),
        ("date", "Tue, 20 Apr 2021 02:07:55 GMT"),
        ("content-type", "application/json"),
        (
            "content-digest",
            "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
        ),
        ("content-length", "18"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
    .collect()
}
const RFC_BODY: &[u8] = br#"{"hello": "world"}"#;

fn rfc_msg(headers: &[(String, Vec<u8>)]) -> Message<'_> {
    Message {
        method: "POST",
        scheme: "https",
        authority: "example.com",
        target: "/foo?param=Value&Pet=dog",
        headers,
    }
}

fn with(headers: &[(String, Vec<u8>)], extra: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    let mut h = headers.to_vec();
    h.extend(
        extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())),
    );
    h
}

// RFC 9421 B.2.5: Signature-Input and Signature, verbatim.
const B25_INPUT: &str =
    r#"sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret""#;
const B25_SIGNATURE: &str = "sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:";
const B25_BASE: &str = "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n\"@authority\": example.com\n\"content-type\": application/json\n\"@signature-params\": (\"date\" \"@authority\" \"content-type\");created=1618884473;keyid=\"test-shared-secret\"";

fn rfc_key() -> Key {
    Key::new("test-shared-secret", decode_secret(RFC_SECRET).unwrap())
}

fn b25_options() -> VerifyOptions {
    VerifyOptions {
        required: Vec::new(),
        // B.2.5 does not cover the body.
        require_digest: false,
        ..VerifyOptions::at(1_618_884_473)
    }
}

#[test]
fn rfc9421_b_2_5_signature_base() {
    let h = with(
        &rfc_headers(),
        &[("signature-input", B25_INPUT), ("signature", B25_SIGNATURE)],
    );
    let msg = rfc_msg(&h);
    let p = parse(&msg, Some("sig-b25")).unwrap();
    assert_eq!(p.base(&msg).unwrap(), B25_BASE);
}

#[test]
fn rfc9421_b_2_5_hmac_sha256_verifies() {
    let h = with(
        &rfc_headers(),
        &[("signature-input", B25_INPUT), ("signature", B25_SIGNATURE)],
    );
    let v = verify(&rfc_msg(&h), Some(RFC_BODY), &[rfc_key()], &b25_options()).unwrap();
    assert_eq!(v.keyid, "test-shared-secret");
    assert_eq!(v.label, "sig-b25");
    assert_eq!(v.created, 1_618_884_473);
}

#[test]
fn rfc9421_b_2_5_sign_reproduces_the_signature() {
    let h = rfc_headers();
    let mut req = SignRequest::new(
        "test-shared-secret",
        1_618_884_473,
        &["date", "@authority", "content-type"],
    );
    req.label = "sig-b25".into();
    let s = sign(&rfc_msg(&h), Some(RFC_BODY), &rfc_key().secret, &req).unwrap();
    assert_eq!(s.signature_input, B25_INPUT);
    assert_eq!(s.signature, B25_SIGNATURE);
    assert_eq!(s.content_digest, None);
}

#[test]
fn rfc9421_b_2_5_tampered_covered_field_is_bad() {
    let mut h = rfc_headers();
    h[1].1 = b"Tue, 20 Apr 2021 02:07:56 GMT".to_vec();
    let h = with(
        &h,
        &[("signature-input", B25_INPUT), ("signature", B25_SIGNATURE)],
    );
    let e = verify(&rfc_msg(&h), Some(RFC_BODY), &[rfc_key()], &b25_options()).unwrap_err();
    assert_eq!(e.code(), "signature.bad");
}

#[test]
fn rfc9421_b_2_5_wrong_secret_is_bad() {
    let h = with(
        &rfc_headers(),
        &[("signature-input", B25_INPUT), ("signature", B25_SIGNATURE)],
    );
    let key = Key::new("test-shared-secret", b"another secret".to_vec());
    let e = verify(&rfc_msg(&h), Some(RFC_BODY), &[key], &b25_options()).unwrap_err();
    assert_eq!(e, SigError::Bad(String::new()));
}

#[test]
fn rfc9421_2_2_derived_components_of_the_test_request() {
    let h = rfc_headers();
    let msg = rfc_msg(&h);
    let v = |c: &str| base::component_value(&msg, &base::parse_component(c).unwrap()).unwrap();
    assert_eq!(v("@method"), "POST");
    assert_eq!(
        v("@target-uri"),
        "https://example.com/foo?param=Value&Pet=dog"
    );
    assert_eq!(v("@authority"), "example.com");
    assert_eq!(v("@scheme"), "https");
    assert_eq!(v("@request-target"), "/foo?param=Value&Pet=dog");
    assert_eq!(v("@path"), "/foo");
    assert_eq!(v("@query"), "?param=Value&Pet=dog");
    let no_query = Message {
        target: "/foo",
        ..msg
    };
    assert_eq!(
        base::component_value(&no_query, &base::parse_component("@query").unwrap()).unwrap(),
        "?"
    );
    let port = Message {
        authority: "Example.COM:443",
        ..msg
    };
    assert_eq!(
        base::component_value(&port, &base::parse_component("@authority").unwrap()).unwrap(),
        "example.com"
    );
}

#[test]
fn rfc9421_2_1_field_parameters_sf_key_bs() {
    let h = with(
        &[],
        &[
            ("example-dict", " a=1,    b=2;x=1;y=2, c=(a   b   c)"),
            ("example-header", "value, with, lots"),
            ("example-header", "of, commas"),
        ],
    );
    let msg = rfc_msg(&h);
    let v = |c: &str| base::component_value(&msg, &base::parse_component(c).unwrap()).unwrap();
    // RFC 9421 §2.1.1 and §2.1.2 examples.
    assert_eq!(v("example-dict"), "a=1,    b=2;x=1;y=2, c=(a   b   c)");
    assert_eq!(v("example-dict;sf"), "a=1, b=2;x=1;y=2, c=(a b c)");
    assert_eq!(v(r#"example-dict;key="a""#), "1");
    assert_eq!(v(r#"example-dict;key="b""#), "2;x=1;y=2");
    assert_eq!(v(r#"example-dict;key="c""#), "(a b c)");
    // §2.1.3.
    assert_eq!(v("example-header"), "value, with, lots, of, commas");
    assert_eq!(
        v("example-header;bs"),
        ":dmFsdWUsIHdpdGgsIGxvdHM=:, :b2YsIGNvbW1hcw==:"
    );
}

#[test]
fn unsupported_components_are_refused() {
    for c in [
        "@status",
        "@query-param;name=\"x\"",
        "date;req",
        "date;tr",
        "@method;x",
    ] {
        assert!(base::parse_component(c).is_err(), "{c}");
    }
    assert!(base::parse_component("Date").is_err());
}

fn round_trip_headers() -> Vec<(String, Vec<u8>)> {
    with(&[], &[("content-type", "application/json")])
}

const COMPONENTS: &[&str] = &[
    "@method",
    "@authority",
    "@path",
    "@query",
    "content-type",
    "content-digest",
];

fn signed_message(secret: &[u8], created: u64, body: &[u8]) -> (Vec<(String, Vec<u8>)>, Signed) {
    let h = round_trip_headers();
    let mut req = SignRequest::new("k1", created, COMPONENTS);
    req.nonce = Some("n-1".into());
    let s = sign(&rfc_msg(&h), Some(body), secret, &req).unwrap();
    let mut out = h.clone();
    out.extend(
        s.headers()
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.into_bytes())),
    );
    (out, s)
}

#[test]
fn sign_then_verify_with_content_digest() {
    let secret = [9u8; 32];
    let (h, s) = signed_message(&secret, 1000, RFC_BODY);
    assert_eq!(
        s.content_digest.as_deref(),
        Some("sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:")
    );
    let keys = [Key::new("k1", secret.to_vec())];
    let v = verify(
        &rfc_msg(&h),
        Some(RFC_BODY),
        &keys,
        &VerifyOptions::at(1010),
    )
    .unwrap();
    assert_eq!(v.nonce.as_deref(), Some("n-1"));
    assert!(v.covers_digest);
    let e = verify(&rfc_msg(&h), Some(b"{}"), &keys, &VerifyOptions::at(1010)).unwrap_err();
    assert_eq!(e.code(), "digest.mismatch");
}

#[test]
fn newest_valid_key_signs() {
    let mut a = Key::new("a", vec![1; 32]);
    a.not_before = Some(100);
    a.not_after = Some(300);
    let mut b = Key::new("b", vec![2; 32]);
    b.not_before = Some(200);
    assert_eq!(newest_key(&[a.clone(), b.clone()], 150).unwrap().keyid, "a");
    assert_eq!(newest_key(&[a.clone(), b.clone()], 250).unwrap().keyid, "b");
    assert_eq!(newest_key(&[a, b], 50).map(|k| k.keyid.clone()), None);
}

#[test]
fn random_nonces_differ() {
    let (a, b) = (random_nonce().unwrap(), random_nonce().unwrap());
    assert_eq!(a.len(), 22);
    assert_ne!(a, b);
}

#[test]
fn key_debug_never_prints_the_secret() {
    let k = Key::new("k", b"supersecretvalue".to_vec());
    // A derived Debug would print the bytes as numbers: compare the whole text.
    assert_eq!(
        format!("{k:?}"),
        r#"Key { keyid: "k", not_before: None, not_after: None, .. }"#
    );
}

/// Review finding: `@method` is the method as received (RFC 9421 §2.2.1, no case change), not
/// the upper-cased form route rules match on.
#[test]
fn method_keeps_its_case_in_the_signature_base() {
    let key = decode_secret(RFC_SECRET).unwrap();
    let view = |m: &str| crate::RequestView::new(m, "/orders", &[]).unwrap();
    let (lower, upper) = (view("post"), view("POST"));
    assert_eq!(lower.method, "POST");
    let req = SignRequest::new("k", 1_700_000_000, &["@method", "@path"]);
    let signed = sign(&Message::from_view(&lower), None, &key, &req).unwrap();
    let with_signature = |v: &crate::RequestView| {
        let mut headers = v.headers.clone();
        for (k, val) in signed.headers() {
            headers.push((k.to_ascii_lowercase(), val.into_bytes()));
        }
        crate::RequestView::from_headers(headers).unwrap()
    };
    let keys = [Key::new("k", key.clone())];
    let opts = VerifyOptions {
        required: Vec::new(),
        ..VerifyOptions::at(1_700_000_010)
    };
    let (lower, upper) = (with_signature(&lower), with_signature(&upper));
    let ok = verify(&Message::from_view(&lower), None, &keys, &opts);
    assert!(ok.is_ok(), "{ok:?}");
    assert!(verify(&Message::from_view(&upper), None, &keys, &opts).is_err());
}
