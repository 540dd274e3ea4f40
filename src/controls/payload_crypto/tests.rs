use super::*;
use crate::control::configure;
use crate::store::MemoryStore;
use jwe::KeyMaterial;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

// RFC 7520 §5 (JWE examples): the plaintext and the compact serializations, verbatim (as
// copied in panva/jose's cookbook/jwe.mjs, which mirrors the RFC).
const FRODO: &str = "You can trust us to stick with you through thick and thin\u{2013}to the bitter end. And you can trust us to keep any secret of yours\u{2013}closer than you keep it yourself. But you cannot trust us to let you face trouble alone, and go off without a word. We are your friends, Frodo.";

/// RFC 7520 §5.6: direct encryption (`dir`) with A128GCM.
const RFC7520_5_6_KEY: &str = "XctOhJAkA-pD9Lh7ZgW_2A";
const RFC7520_5_6_KID: &str = "77c7e2b8-6e13-45cf-8672-617b5b45243a";
const RFC7520_5_6: &str = "eyJhbGciOiJkaXIiLCJraWQiOiI3N2M3ZTJiOC02ZTEzLTQ1Y2YtODY3Mi02MTdiNWI0NTI0M2EiLCJlbmMiOiJBMTI4R0NNIn0..refa467QzzKx6QAB.JW_i_f52hww_ELQPGaYyeAB6HYGcR559l9TYnSovc23XJoBcW29rHP8yZOZG7YhLpT1bjFuvZPjQS-m0IFtVcXkZXdH_lr_FrdYt9HRUYkshtrMmIUAyGmUnd9zMDB2n0cRDIHAzFVeJUDxkUwVAE7_YGRPdcqMyiBoCO-FBdE-Nceb4h3-FtBP-c_BIwCPTjb9o0SbdcdREEMJMyZBH8ySWMVi1gPD9yxi-aQpGbSv_F9N4IZAxscj5g-NJsUPbjk29-s7LJAGb15wEBtXphVCgyy53CoIKLHHeJHXex45Uz9aKZSRSInZI-wjsY0yu3cT4_aQ3i1o-tiE-F8Ios61EKgyIQ4CWao8PFMj8TTnp.vbb32Xvllea2OtmHAdccRQ";

/// RFC 7520 §5.8: AES key wrap (`A128KW`) with A128GCM.
const RFC7520_5_8_KEY: &str = "GZy6sIZ6wl9NJOKB-jnmVQ";
const RFC7520_5_8_KID: &str = "81b20965-8332-43d9-a468-82160ad91ac8";
const RFC7520_5_8: &str = "eyJhbGciOiJBMTI4S1ciLCJraWQiOiI4MWIyMDk2NS04MzMyLTQzZDktYTQ2OC04MjE2MGFkOTFhYzgiLCJlbmMiOiJBMTI4R0NNIn0.CBI6oDw8MydIx1IBntf_lQcw2MmJKIQx.Qx0pmsDa8KnJc9Jo.AwliP-KmWgsZ37BvzCefNen6VTbRK3QMA4TkvRkH0tP1bTdhtFJgJxeVmJkLD61A1hnWGetdg11c9ADsnWgL56NyxwSYjU1ZEHcGkd3EkU0vjHi9gTlb90qSYFfeF0LwkcTtjbYKCsiNJQkcIp1yeM03OmuiYSoYJVSpf7ej6zaYcMv3WwdxDFl8REwOhNImk2Xld2JXq6BR53TSFkyT7PwVLuq-1GwtGHlQeg7gDT6xW0JqHDPn_H-puQsmthc9Zg0ojmJfqqFvETUxLAF-KjcBTS5dNy6egwkYtOt8EIHK-oEsKYtZRaa8Z7MOZ7UGxGIMvEmxrGCPeJa14slv2-gaqK0kEThkaSqdYw0FkQZF.ER7MWJZ1FBI_NKvn7Zb1Lw";

/// RFC 7520 §5.9: the same key with compressed content (`zip: DEF`), which we refuse.
const RFC7520_5_9: &str = "eyJhbGciOiJBMTI4S1ciLCJraWQiOiI4MWIyMDk2NS04MzMyLTQzZDktYTQ2OC04MjE2MGFkOTFhYzgiLCJlbmMiOiJBMTI4R0NNIiwiemlwIjoiREVGIn0.5vUT2WOtQxKWcekM_IzVQwkGgzlFDwPi.p9pUq6XHY0jfEZIl.HbDtOsdai1oYziSx25KEeTxmwnh8L8jKMFNc1k3zmMI6VB8hry57tDZ61jXyezSPt0fdLVfe6Jf5y5-JaCap_JQBcb5opbmT60uWGml8blyiMQmOn9J--XhhlYg0m-BHaqfDO5iTOWxPxFMUedx7WCy8mxgDHj0aBMG6152PsM-w5E_o2B3jDbrYBKhpYA7qi3AyijnCJ7BP9rr3U8kxExCpG3mK420TjOw.VILuUwuIxaLVmh5X-T7kmA";

/// A fixed 256-bit test key (base64url of 0x00..0x1f) and a P-256 key pair (RFC 7520 §3.3's
/// "meriadoc" key, used here only as key material).
const K256: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
const K256B: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8";
const EC_X: &str = "Ze2loSV3wrroKUN_4zhwGhCqo3Xhu1td4QjeQ5wIVR0";
const EC_Y: &str = "HlLtdXARY_f55A3fnzQbPcm6hgr34Mp8p-nuzQCE0Zw";
const EC_D: &str = "r_kHyZ-a06rmxM3yESK84r1otSg-aQcVStkRhA-iCM8";

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn oct(k: &str) -> KeyMaterial {
    KeyMaterial::Oct(crate::secret::Secret::new(jwe::b64d(k).unwrap()))
}

fn ec_private() -> KeyMaterial {
    KeyMaterial::EcPrivate(p256::SecretKey::from_slice(&jwe::b64d(EC_D).unwrap()).unwrap())
}

fn open(compact: &str, key: &KeyMaterial) -> Result<Vec<u8>, JweError> {
    let p = jwe::parse(compact)?;
    jwe::decrypt(&p, key)
}

/// Replace one of the five parts of a compact JWE.
fn with_part(compact: &str, i: usize, f: impl Fn(&str) -> String) -> String {
    let mut parts: Vec<String> = compact.split('.').map(String::from).collect();
    parts[i] = f(&parts[i]);
    parts.join(".")
}

/// Flip one bit of a base64url part.
fn flip(part: &str) -> String {
    let mut b = jwe::b64d(part).unwrap();
    b[0] ^= 1;
    jwe::b64e(&b)
}

#[test]
fn rfc7520_5_6_dir_a128gcm_decrypts() {
    let p = jwe::parse(RFC7520_5_6).unwrap();
    assert_eq!((p.alg, p.enc), (Alg::Dir, Enc::A128Gcm));
    assert_eq!(p.kid(), Some(RFC7520_5_6_KID));
    let plain = jwe::decrypt(&p, &oct(RFC7520_5_6_KEY)).unwrap();
    assert_eq!(String::from_utf8(plain).unwrap(), FRODO);
}

#[test]
fn rfc7520_5_8_a128kw_a128gcm_decrypts() {
    let p = jwe::parse(RFC7520_5_8).unwrap();
    assert_eq!((p.alg, p.enc), (Alg::A128Kw, Enc::A128Gcm));
    assert_eq!(p.kid(), Some(RFC7520_5_8_KID));
    let plain = jwe::decrypt(&p, &oct(RFC7520_5_8_KEY)).unwrap();
    assert_eq!(String::from_utf8(plain).unwrap(), FRODO);
}

#[test]
fn rfc7520_5_9_compressed_content_is_refused() {
    assert_eq!(jwe::parse(RFC7520_5_9).unwrap_err(), JweError::Compressed);
}

#[test]
fn rfc7520_vectors_tampered_tag_iv_aad_ciphertext_and_key_fail() {
    for (vector, key) in [
        (RFC7520_5_6, oct(RFC7520_5_6_KEY)),
        (RFC7520_5_8, oct(RFC7520_5_8_KEY)),
    ] {
        for part in [2, 3, 4] {
            let t = with_part(vector, part, flip);
            assert_eq!(open(&t, &key), Err(JweError::Decrypt), "part {part}");
        }
        // The AAD is the protected header as sent: re-encoding it (same JSON, one more space)
        // breaks the tag.
        let t = with_part(vector, 0, |h| {
            let json = String::from_utf8(jwe::b64d(h).unwrap()).unwrap();
            jwe::b64e(json.replacen(':', ": ", 1).as_bytes())
        });
        assert_eq!(open(&t, &key), Err(JweError::Decrypt));
        // A wrong key fails the same way.
        assert_eq!(
            open(vector, &oct("AAAAAAAAAAAAAAAAAAAAAA")),
            Err(JweError::Decrypt)
        );
    }
    // RFC 7520 §5.8 with a changed wrapped key: the RFC 3394 integrity check fails.
    let t = with_part(RFC7520_5_8, 1, flip);
    assert_eq!(open(&t, &oct(RFC7520_5_8_KEY)), Err(JweError::Decrypt));
    // `dir` takes no encrypted key.
    let t = with_part(RFC7520_5_6, 1, |_| "AAAA".into());
    assert_eq!(open(&t, &oct(RFC7520_5_6_KEY)), Err(JweError::Malformed));
}

fn header(json: &str) -> String {
    with_part(RFC7520_5_8, 0, |_| jwe::b64e(json.as_bytes()))
}

#[test]
fn rfc7516_7_1_compact_parser_rejections() {
    for bad in [
        "",
        "a.b.c.d",
        "a.b.c.d.e.f",
        "....",
        "!!.a.b.c.d",
        "eyJ9.a.b.c.d",
    ] {
        assert_eq!(jwe::parse(bad).unwrap_err(), JweError::Malformed, "{bad}");
    }
    // Padding is not base64url (RFC 7515 §2).
    let padded = with_part(RFC7520_5_8, 4, |t| format!("{t}=="));
    assert_eq!(jwe::parse(&padded).unwrap_err(), JweError::Malformed);
    // A header that is JSON but not an object.
    assert_eq!(jwe::parse(&header("[1]")).unwrap_err(), JweError::Malformed);
    // IV and tag sizes (RFC 7518 §5.3).
    let short_iv = with_part(RFC7520_5_8, 2, |_| jwe::b64e(&[0; 8]));
    assert_eq!(jwe::parse(&short_iv).unwrap_err(), JweError::Malformed);
    let short_tag = with_part(RFC7520_5_8, 4, |_| jwe::b64e(&[0; 12]));
    assert_eq!(jwe::parse(&short_tag).unwrap_err(), JweError::Malformed);
}

#[test]
fn rfc7518_algorithms_outside_the_allow_list_are_refused() {
    for alg in [
        "none",
        "RSA1_5",
        "RSA-OAEP",
        "A192KW",
        "ECDH-ES",
        "A256GCMKW",
        "PBES2-HS256+A128KW",
        "dir ",
    ] {
        let h = format!(r#"{{"alg":"{alg}","enc":"A128GCM"}}"#);
        assert_eq!(
            jwe::parse(&header(&h)).unwrap_err(),
            JweError::UnsupportedAlg,
            "{alg}"
        );
    }
    assert_eq!(
        jwe::parse(&header(r#"{"enc":"A128GCM"}"#)).unwrap_err(),
        JweError::UnsupportedAlg
    );
    for enc in ["A128CBC-HS256", "A192GCM", "none", ""] {
        let h = format!(r#"{{"alg":"A128KW","enc":"{enc}"}}"#);
        assert_eq!(
            jwe::parse(&header(&h)).unwrap_err(),
            JweError::UnsupportedEnc,
            "{enc}"
        );
    }
    assert_eq!(
        jwe::parse(&header(
            r#"{"alg":"A128KW","enc":"A128GCM","crit":["exp"],"exp":1}"#
        ))
        .unwrap_err(),
        JweError::Critical
    );
}

#[test]
fn roundtrip_every_supported_alg_and_enc() {
    let cases = [
        (Alg::Dir, Enc::A256Gcm, oct(K256)),
        (Alg::Dir, Enc::A128Gcm, oct(RFC7520_5_6_KEY)),
        (Alg::A256Kw, Enc::A256Gcm, oct(K256)),
        (Alg::A256Kw, Enc::A128Gcm, oct(K256)),
        (Alg::A128Kw, Enc::A256Gcm, oct(RFC7520_5_8_KEY)),
        (Alg::EcdhEsA256Kw, Enc::A256Gcm, ec_private()),
        (Alg::EcdhEsA256Kw, Enc::A128Gcm, ec_private()),
    ];
    for (alg, enc, key) in cases {
        let to = Recipient {
            kid: Some("k1"),
            alg,
            enc,
            key: &key,
        };
        let a = jwe::encrypt(b"{\"card\":1}", &to, Some("json")).unwrap();
        let b = jwe::encrypt(b"{\"card\":1}", &to, Some("json")).unwrap();
        assert_ne!(a, b, "fresh IV (and CEK) every time");
        let p = jwe::parse(&a).unwrap();
        assert_eq!(
            (p.alg, p.enc, p.cty(), p.kid()),
            (alg, enc, Some("json"), Some("k1"))
        );
        assert_eq!(
            jwe::decrypt(&p, &key).unwrap(),
            b"{\"card\":1}",
            "{alg:?} {enc:?}"
        );
        // Tampering with the tag is always caught.
        assert_eq!(open(&with_part(&a, 4, flip), &key), Err(JweError::Decrypt));
    }
}

#[test]
fn rfc7518_4_6_ecdh_es_encrypts_to_a_public_key_only_the_private_key_opens() {
    let sk = p256::SecretKey::from_slice(&jwe::b64d(EC_D).unwrap()).unwrap();
    let public = KeyMaterial::EcPublic(sk.public_key());
    let to = Recipient {
        kid: None,
        alg: Alg::EcdhEsA256Kw,
        enc: Enc::A256Gcm,
        key: &public,
    };
    let c = jwe::encrypt(b"secret", &to, None).unwrap();
    let p = jwe::parse(&c).unwrap();
    let epk = p.header["epk"].as_object().unwrap();
    assert_eq!(epk["kty"], "EC");
    assert_eq!(epk["crv"], "P-256");
    assert!(
        !epk.contains_key("d"),
        "the ephemeral private key never leaves"
    );
    assert_eq!(jwe::decrypt(&p, &ec_private()).unwrap(), b"secret");
    // Another private key cannot open it.
    let other = KeyMaterial::EcPrivate(p256::SecretKey::from_slice(&[7u8; 32]).unwrap());
    assert_eq!(jwe::decrypt(&p, &other), Err(JweError::Decrypt));
    // An epk that is not on the curve (invalid-curve attack) is refused before any ECDH.
    let bad = with_part(&c, 0, |h| {
        let mut v: Value = serde_json::from_slice(&jwe::b64d(h).unwrap()).unwrap();
        v["epk"]["y"] = Value::String(jwe::b64e(&[1u8; 32]));
        jwe::b64e(&serde_json::to_vec(&v).unwrap())
    });
    assert_eq!(open(&bad, &ec_private()), Err(JweError::Malformed));
    // A missing epk likewise.
    let bad = with_part(&c, 0, |_| {
        jwe::b64e(br#"{"alg":"ECDH-ES+A256KW","enc":"A256GCM"}"#)
    });
    assert_eq!(open(&bad, &ec_private()), Err(JweError::Malformed));
}

#[test]
fn the_wrong_kind_of_key_is_never_used() {
    // A symmetric key for an ECDH-ES JWE, an EC key for a key-wrap JWE.
    assert_eq!(open(RFC7520_5_8, &ec_private()), Err(JweError::UnknownKey));
    // The right kind but a 256-bit KEK for an A128KW-wrapped CEK still fails closed.
    assert_eq!(open(RFC7520_5_8, &oct(K256)), Err(JweError::Decrypt));
}

// ---- the control ----

fn keys_json() -> String {
    format!(
        r#"[
  {{"kid": "{RFC7520_5_6_KID}", "alg": "dir", "k": "{RFC7520_5_6_KEY}"}},
  {{"kid": "{RFC7520_5_8_KID}", "alg": "A128KW", "k": "{RFC7520_5_8_KEY}"}},
  {{"kid": "svc-2025", "alg": "A256KW", "k": "{K256}", "not_before": 1000, "not_after": 3000}},
  {{"kid": "svc-2026", "alg": "A256KW", "k": "{K256B}", "not_before": 2000}},
  {{"kid": "svc-ec", "alg": "ECDH-ES+A256KW", "crv": "P-256", "x": "{EC_X}", "y": "{EC_Y}", "d": "{EC_D}"}},
  {{"kid": "client-ec", "alg": "ECDH-ES+A256KW", "crv": "P-256", "x": "{EC_X}", "y": "{EC_Y}"}},
  {{"kid": "client-kw", "alg": "A256KW", "k": "{K256}"}}
]"#
    )
}

fn policy() -> String {
    format!(
        r#"{{
  "keys": {},
  "routes": [
    {{"match": {{"prefix": "/secure"}}, "decrypt_request": true, "max_ciphertext_bytes": 4096}},
    {{"match": {{"prefix": "/statement"}}, "encrypt_response": {{"kid": "client-kw"}}}},
    {{"match": {{"prefix": "/mine"}}, "encrypt_response": {{"kid_header": "x-jwt-sub", "enc": "A128GCM"}}}},
    {{"match": {{"prefix": "/both"}}, "decrypt_request": true, "encrypt_response": {{"kid": "client-ec"}}}},
    {{"match": {{"prefix": "/payments"}},
      "request_fields": {{"encrypt": ["$.card.number", "$.items[*].ssn"], "to": {{"kid": "svc-ec"}}}},
      "response_fields": {{"decrypt": ["$.card.number"]}},
      "max_fields": 3}},
    {{"match": {{"prefix": "/records"}},
      "request_fields": {{"decrypt": ["$.patient.ssn"]}},
      "response_fields": {{"encrypt": ["$.patient.ssn"], "to": {{"kid_header": "x-jwt-sub"}}}}}}
  ]
}}"#,
        keys_json()
    )
}

fn control() -> PayloadCrypto {
    configure::<PayloadCrypto>(policy().as_bytes()).unwrap()
}

fn env_at(store: &MemoryStore, now: SystemTime) -> Env<'_> {
    Env { now, store }
}

/// Run the request phases; the verdict of the last one that ran.
fn request(
    c: &PayloadCrypto,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    now: SystemTime,
) -> (RequestView, Verdict) {
    let store = MemoryStore::default();
    let env = env_at(&store, now);
    let mut req = RequestView::new("POST", path, headers).unwrap();
    req.has_body = !body.is_empty();
    let v = match c.on_request(&req, &env) {
        Verdict::NeedBody { max_bytes } if body.len() > max_bytes => {
            Verdict::Deny(Rejection::new(413, "body.too_large", "host limit"))
        }
        Verdict::NeedBody { .. } => c.on_request_body(&req, body, &env),
        v => v,
    };
    (req, v)
}

fn response(
    c: &PayloadCrypto,
    req: &RequestView,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    now: SystemTime,
) -> Verdict {
    let store = MemoryStore::default();
    let env = env_at(&store, now);
    let resp = ResponseView {
        status: 200,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect(),
    };
    match c.on_response(req, &resp, &env) {
        Verdict::NeedBody { max_bytes } => {
            let body = body.filter(|b| b.len() <= max_bytes);
            c.on_response_body(req, &resp, body, &env)
        }
        v => v,
    }
}

fn denied(v: &Verdict) -> (u16, &'static str) {
    match v {
        Verdict::Deny(r) => (r.status, r.code),
        v => panic!("not a denial: {v:?}"),
    }
}

fn replaced(v: &Verdict) -> (&'static str, &[HeaderOp], &[u8]) {
    match v {
        Verdict::ReplaceBody {
            code,
            headers,
            body,
        } => (code, headers, body),
        v => panic!("not a replacement: {v:?}"),
    }
}

fn set_header<'a>(ops: &'a [HeaderOp], name: &str) -> Option<&'a str> {
    ops.iter().find_map(|op| match op {
        HeaderOp::Set(k, v) if k == name => Some(v.as_str()),
        _ => None,
    })
}

const JOSE_CT: (&str, &str) = ("content-type", "application/jose");

#[test]
fn decrypt_request_rfc7520_vectors_reach_the_upstream_as_plaintext() {
    let c = control();
    for vector in [RFC7520_5_6, RFC7520_5_8] {
        let (_, v) = request(&c, "/secure/x", &[JOSE_CT], vector.as_bytes(), at(0));
        let (code, ops, body) = replaced(&v);
        assert_eq!(code, "payload_crypto.decrypted");
        assert_eq!(body, FRODO.as_bytes());
        // No `cty` in these vectors: the upstream gets an opaque type.
        assert_eq!(
            set_header(ops, "content-type"),
            Some("application/octet-stream")
        );
    }
}

#[test]
fn decrypt_request_uses_cty_as_the_media_type() {
    let c = control();
    let key = oct(K256B);
    let to = Recipient {
        kid: Some("svc-2026"),
        alg: Alg::A256Kw,
        enc: Enc::A256Gcm,
        key: &key,
    };
    for (cty, want) in [
        ("json", "application/json"),
        ("application/json", "application/json"),
        ("text/plain; charset=utf-8", "text/plain; charset=utf-8"),
    ] {
        let jwe = jwe::encrypt(b"{}", &to, Some(cty)).unwrap();
        let body = format!("{jwe}\r\n");
        let (_, v) = request(&c, "/secure", &[JOSE_CT], body.as_bytes(), at(2500));
        let (_, ops, body) = replaced(&v);
        assert_eq!(body, b"{}");
        assert_eq!(set_header(ops, "content-type"), Some(want), "{cty}");
    }
    // A cty that would inject a header line is refused.
    let jwe = jwe::encrypt(b"{}", &to, Some("text/plain\r\nx-admin: 1")).unwrap();
    let (_, v) = request(&c, "/secure", &[JOSE_CT], jwe.as_bytes(), at(2500));
    assert_eq!(denied(&v), (400, "payload_crypto.bad_cty"));
}

/// Name, request headers, body, expected (status, code).
type RejectCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, String, (u16, &'a str));

#[test]
fn decrypt_request_rejections() {
    let c = control();
    let jose = [JOSE_CT];
    let cases: Vec<RejectCase> = vec![
        (
            "not JOSE",
            vec![("content-type", "application/json")],
            "{}".into(),
            (415, "payload_crypto.not_jwe"),
        ),
        (
            "no type",
            vec![],
            RFC7520_5_8.into(),
            (415, "payload_crypto.not_jwe"),
        ),
        (
            "JWS-like",
            jose.to_vec(),
            "a.b.c".into(),
            (400, "payload_crypto.malformed"),
        ),
        (
            "binary",
            jose.to_vec(),
            "\u{0}\u{1}".into(),
            (400, "payload_crypto.malformed"),
        ),
        (
            "zip",
            jose.to_vec(),
            RFC7520_5_9.into(),
            (400, "payload_crypto.zip_rejected"),
        ),
        (
            "none",
            jose.to_vec(),
            header(r#"{"alg":"none","enc":"A128GCM"}"#),
            (400, "payload_crypto.unsupported_alg"),
        ),
        (
            "RSA1_5",
            jose.to_vec(),
            header(r#"{"alg":"RSA1_5","enc":"A128GCM"}"#),
            (400, "payload_crypto.unsupported_alg"),
        ),
        (
            "CBC",
            jose.to_vec(),
            header(r#"{"alg":"A128KW","enc":"A128CBC-HS256"}"#),
            (400, "payload_crypto.unsupported_enc"),
        ),
        (
            "unknown kid",
            jose.to_vec(),
            header(r#"{"alg":"A128KW","enc":"A128GCM","kid":"nope"}"#),
            (400, "payload_crypto.unknown_kid"),
        ),
        // The kid exists, but for another alg: no algorithm confusion.
        (
            "kid for another alg",
            jose.to_vec(),
            header(&format!(
                r#"{{"alg":"dir","enc":"A128GCM","kid":"{RFC7520_5_8_KID}"}}"#
            )),
            (400, "payload_crypto.unknown_kid"),
        ),
        (
            "tampered tag",
            jose.to_vec(),
            with_part(RFC7520_5_8, 4, flip),
            (400, "payload_crypto.decrypt_failed"),
        ),
        (
            "tampered iv",
            jose.to_vec(),
            with_part(RFC7520_5_8, 2, flip),
            (400, "payload_crypto.decrypt_failed"),
        ),
        (
            "tampered ciphertext",
            jose.to_vec(),
            with_part(RFC7520_5_8, 3, flip),
            (400, "payload_crypto.decrypt_failed"),
        ),
        (
            "too large",
            jose.to_vec(),
            "a".repeat(5000),
            (413, "body.too_large"),
        ),
    ];
    for (name, headers, body, want) in cases {
        let (_, v) = request(&c, "/secure", &headers, body.as_bytes(), at(0));
        assert_eq!(denied(&v), want, "{name}");
    }
    // An announced length beyond the limit is refused before buffering.
    let (_, v) = request(
        &c,
        "/secure",
        &[JOSE_CT, ("content-length", "999999")],
        b"x",
        at(0),
    );
    assert_eq!(denied(&v), (413, "payload_crypto.too_large"));
    // 415 says what is accepted.
    let (_, v) = request(
        &c,
        "/secure",
        &[("content-type", "text/plain")],
        b"x",
        at(0),
    );
    let Verdict::Deny(r) = v else { panic!() };
    assert_eq!(
        r.headers,
        vec![("accept-post".to_string(), JOSE.to_string())]
    );
}

#[test]
fn plaintext_limit_is_413() {
    let json = policy().replace(
        r#""decrypt_request": true, "max_ciphertext_bytes": 4096"#,
        r#""decrypt_request": true, "max_plaintext_bytes": 10"#,
    );
    let c = configure::<PayloadCrypto>(json.as_bytes()).unwrap();
    let (_, v) = request(&c, "/secure", &[JOSE_CT], RFC7520_5_8.as_bytes(), at(0));
    assert_eq!(denied(&v), (413, "payload_crypto.plaintext_too_large"));
}

#[test]
fn requests_without_a_body_pass_and_other_routes_are_untouched() {
    let c = control();
    let store = MemoryStore::default();
    let env = env_at(&store, at(0));
    let get = RequestView::new("GET", "/secure", &[]).unwrap();
    assert_eq!(c.on_request(&get, &env), Verdict::Mutate(vec![]));
    let (_, v) = request(
        &c,
        "/public",
        &[("content-type", "text/plain")],
        b"hi",
        at(0),
    );
    assert_eq!(v, Verdict::Mutate(vec![]));
}

fn kw_jwe(kid: &str, k: &str, plain: &[u8]) -> String {
    let key = oct(k);
    jwe::encrypt(
        plain,
        &Recipient {
            kid: Some(kid),
            alg: Alg::A256Kw,
            enc: Enc::A256Gcm,
            key: &key,
        },
        Some("json"),
    )
    .unwrap()
}

#[test]
fn key_rotation_with_overlap_uses_not_before_and_not_after() {
    let c = control();
    let old = kw_jwe("svc-2025", K256, b"1");
    let new = kw_jwe("svc-2026", K256B, b"2");
    let try_at = |jwe: &str, t: u64| {
        let (_, v) = request(&c, "/secure", &[JOSE_CT], jwe.as_bytes(), at(t));
        match v {
            Verdict::ReplaceBody { body, .. } => Ok(body),
            Verdict::Deny(r) => Err(r.code),
            v => panic!("{v:?}"),
        }
    };
    // Before the old key's not_before, during overlap, after its not_after.
    assert_eq!(try_at(&old, 999), Err("payload_crypto.key_not_valid"));
    assert_eq!(try_at(&old, 1000), Ok(b"1".to_vec()));
    assert_eq!(try_at(&new, 1999), Err("payload_crypto.key_not_valid"));
    assert_eq!(try_at(&old, 2500), Ok(b"1".to_vec()));
    assert_eq!(try_at(&new, 2500), Ok(b"2".to_vec()));
    // not_after is exclusive, as in api-key and request-signing (time::key_window).
    assert_eq!(try_at(&old, 2999), Ok(b"1".to_vec()));
    assert_eq!(try_at(&old, 3000), Err("payload_crypto.key_not_valid"));
    assert_eq!(try_at(&new, 9999), Ok(b"2".to_vec()));
    // The old kid with the new key's ciphertext: one kid, one key.
    let swapped = kw_jwe("svc-2025", K256B, b"3");
    assert_eq!(try_at(&swapped, 2500), Err("payload_crypto.decrypt_failed"));
    // Without a kid: only when exactly one valid key fits the alg.
    let nokid = {
        let key = oct(K256B);
        jwe::encrypt(
            b"4",
            &Recipient {
                kid: None,
                alg: Alg::A256Kw,
                enc: Enc::A256Gcm,
                key: &key,
            },
            None,
        )
        .unwrap()
    };
    // At 2500, svc-2025, svc-2026 and client-kw are all valid A256KW keys: ambiguous.
    assert_eq!(try_at(&nokid, 2500), Err("payload_crypto.unknown_kid"));
}

#[test]
fn encrypt_response_for_a_fixed_key() {
    let c = control();
    let (req, v) = request(&c, "/statement", &[("accept-encoding", "gzip")], b"", at(0));
    // Compression is turned off upstream, or the body could not be encrypted.
    assert_eq!(
        v,
        Verdict::Mutate(vec![HeaderOp::Remove("accept-encoding".into())])
    );
    let v = response(
        &c,
        &req,
        &[("content-type", "application/json"), ("etag", "\"x\"")],
        Some(br#"{"balance":1}"#),
        at(0),
    );
    let (code, ops, body) = replaced(&v);
    assert_eq!(code, "payload_crypto.encrypted");
    assert_eq!(set_header(ops, "content-type"), Some(JOSE));
    assert!(ops.contains(&HeaderOp::Remove("etag".into())));
    let p = jwe::parse(std::str::from_utf8(body).unwrap()).unwrap();
    assert_eq!(
        (p.alg, p.enc, p.kid(), p.cty()),
        (Alg::A256Kw, Enc::A256Gcm, Some("client-kw"), Some("json"))
    );
    assert_eq!(jwe::decrypt(&p, &oct(K256)).unwrap(), br#"{"balance":1}"#);
}

#[test]
fn encrypt_response_for_the_key_a_header_names() {
    let c = control();
    let (req, _) = request(&c, "/mine", &[("x-jwt-sub", "client-ec")], b"", at(0));
    let v = response(
        &c,
        &req,
        &[("content-type", "text/csv")],
        Some(b"a,b"),
        at(0),
    );
    let (_, _, body) = replaced(&v);
    let p = jwe::parse(std::str::from_utf8(body).unwrap()).unwrap();
    assert_eq!(
        (p.alg, p.enc, p.kid(), p.cty()),
        (
            Alg::EcdhEsA256Kw,
            Enc::A128Gcm,
            Some("client-ec"),
            Some("text/csv")
        )
    );
    assert_eq!(jwe::decrypt(&p, &ec_private()).unwrap(), b"a,b");
    // No header, or one naming no key: 400 before the upstream is asked.
    for h in [vec![], vec![("x-jwt-sub", "mallory")]] {
        let (_, v) = request(&c, "/mine", &h, b"", at(0));
        assert_eq!(denied(&v), (400, "payload_crypto.unknown_client_key"));
    }
    // A key outside its validity period.
    let (_, v) = request(&c, "/mine", &[("x-jwt-sub", "svc-2026")], b"", at(10));
    assert_eq!(denied(&v), (400, "payload_crypto.client_key_not_valid"));
}

#[test]
fn encrypt_response_never_lets_plaintext_through() {
    let c = control();
    let (req, _) = request(&c, "/statement", &[], b"", at(0));
    // Too large to buffer (the host hands over no body): replaced by a 502.
    let v = response(&c, &req, &[("content-type", "text/plain")], None, at(0));
    assert_eq!(denied(&v), (502, "payload_crypto.response_too_large"));
    let v = response(
        &c,
        &req,
        &[("content-length", "99999999")],
        Some(b"x"),
        at(0),
    );
    assert_eq!(denied(&v), (502, "payload_crypto.response_too_large"));
    // Compressed anyway.
    let v = response(&c, &req, &[("content-encoding", "gzip")], Some(b"x"), at(0));
    assert_eq!(denied(&v), (502, "payload_crypto.encoded_response"));
    // An empty body stays empty (nothing to protect).
    let v = response(&c, &req, &[], Some(b""), at(0));
    assert_eq!(v, Verdict::Continue);
}

#[test]
fn decrypt_request_and_encrypt_response_on_one_route() {
    let c = control();
    let (req, v) = request(
        &c,
        "/both",
        &[JOSE_CT, ("accept-encoding", "br")],
        RFC7520_5_8.as_bytes(),
        at(0),
    );
    let (_, ops, _) = replaced(&v);
    assert!(ops.contains(&HeaderOp::Remove("accept-encoding".into())));
    let v = response(&c, &req, &[], Some(b"ok"), at(0));
    let (_, ops, body) = replaced(&v);
    assert_eq!(set_header(ops, "content-type"), Some(JOSE));
    let p = jwe::parse(std::str::from_utf8(body).unwrap()).unwrap();
    assert_eq!(p.cty(), None, "no type upstream, none claimed");
    assert_eq!(jwe::decrypt(&p, &ec_private()).unwrap(), b"ok");
}

#[test]
fn request_fields_are_encrypted_and_the_rest_stays_readable() {
    let c = control();
    let body = br#"{"card":{"number":"4111111111111111","brand":"visa"},"items":[{"ssn":"1"},{"ssn":2},{"x":3}],"amount":10}"#;
    let (_, v) = request(
        &c,
        "/payments",
        &[("content-type", "application/json")],
        body,
        at(0),
    );
    let (code, _, out) = replaced(&v);
    assert_eq!(code, "payload_crypto.fields");
    let doc: Value = serde_json::from_slice(out).unwrap();
    assert_eq!(doc["card"]["brand"], "visa");
    assert_eq!(doc["amount"], 10);
    assert_eq!(doc["items"][2]["x"], 3);
    let field = |v: &Value| {
        let p = jwe::parse(v.as_str().unwrap()).unwrap();
        assert_eq!(
            (p.alg, p.cty(), p.kid()),
            (Alg::EcdhEsA256Kw, Some("json"), Some("svc-ec"))
        );
        serde_json::from_slice::<Value>(&jwe::decrypt(&p, &ec_private()).unwrap()).unwrap()
    };
    assert_eq!(field(&doc["card"]["number"]), "4111111111111111");
    assert_eq!(field(&doc["items"][0]["ssn"]), "1");
    assert_eq!(field(&doc["items"][1]["ssn"]), 2);
    assert!(!String::from_utf8_lossy(out).contains("4111"));
}

#[test]
fn field_limits_and_types() {
    let c = control();
    let ct = [("content-type", "application/json")];
    let many = br#"{"items":[{"ssn":1},{"ssn":2},{"ssn":3},{"ssn":4}]}"#;
    let (_, v) = request(&c, "/payments", &ct, many, at(0));
    assert_eq!(denied(&v), (413, "payload_crypto.too_many_fields"));
    let (_, v) = request(
        &c,
        "/payments",
        &[("content-type", "text/plain")],
        b"x",
        at(0),
    );
    assert_eq!(denied(&v), (415, "payload_crypto.not_json"));
    let (_, v) = request(&c, "/payments", &ct, b"{not json", at(0));
    assert_eq!(denied(&v), (400, "payload_crypto.not_json"));
    // Absent paths are left alone.
    let (_, v) = request(&c, "/payments", &ct, br#"{"other":1}"#, at(0));
    assert_eq!(replaced(&v).2, br#"{"other":1}"#);
}

#[test]
fn request_fields_are_decrypted_and_response_fields_encrypted_for_the_client() {
    let c = control();
    let ssn = kw_jwe("client-kw", K256, br#""123-45-6789""#);
    let body = format!(r#"{{"patient":{{"name":"A","ssn":"{ssn}"}}}}"#);
    let (req, v) = request(
        &c,
        "/records",
        &[
            ("content-type", "application/json"),
            ("x-jwt-sub", "client-kw"),
        ],
        body.as_bytes(),
        at(0),
    );
    let doc: Value = serde_json::from_slice(replaced(&v).2).unwrap();
    assert_eq!(doc["patient"]["ssn"], "123-45-6789");
    assert_eq!(doc["patient"]["name"], "A");
    // Tampered field: 400, no partial document.
    let bad = body.replace(&ssn, &with_part(&ssn, 4, flip));
    let (_, v) = request(
        &c,
        "/records",
        &[
            ("content-type", "application/json"),
            ("x-jwt-sub", "client-kw"),
        ],
        bad.as_bytes(),
        at(0),
    );
    assert_eq!(denied(&v), (400, "payload_crypto.decrypt_failed"));
    // A field that is not a JWE string.
    let (_, v) = request(
        &c,
        "/records",
        &[
            ("content-type", "application/json"),
            ("x-jwt-sub", "client-kw"),
        ],
        br#"{"patient":{"ssn":123}}"#,
        at(0),
    );
    assert_eq!(denied(&v), (400, "payload_crypto.field_not_jwe"));
    // The response: the client's key (from the header) encrypts `patient.ssn`.
    let v = response(
        &c,
        &req,
        &[("content-type", "application/json")],
        Some(br#"{"patient":{"name":"A","ssn":"123-45-6789"}}"#),
        at(0),
    );
    let doc: Value = serde_json::from_slice(replaced(&v).2).unwrap();
    assert_eq!(doc["patient"]["name"], "A");
    let p = jwe::parse(doc["patient"]["ssn"].as_str().unwrap()).unwrap();
    assert_eq!(jwe::decrypt(&p, &oct(K256)).unwrap(), br#""123-45-6789""#);
    // A body that is not JSON on a fields route is not passed in clear, whatever its label.
    let v = response(
        &c,
        &req,
        &[("content-type", "text/plain")],
        Some(b"x"),
        at(0),
    );
    assert_eq!(denied(&v), (502, "payload_crypto.not_json"));
    // An empty body has no fields to encrypt.
    let v = response(
        &c,
        &req,
        &[("content-type", "text/plain")],
        Some(b""),
        at(0),
    );
    assert_eq!(v, Verdict::Continue);
}

/// #17 class 5: a route with `response_fields` never passes a body it could not encrypt: the
/// label does not decide whether the body is read (`text/json`, `+json` with parameters, upper
/// case, none at all, a second Content-Type line, a plain-text mislabel), and a content-coded
/// body (which cannot be parsed) is refused, whichever `Content-Encoding` line names the coding.
#[test]
fn response_fields_never_pass_a_body_they_could_not_encrypt_whatever_its_labels() {
    let c = control();
    let (req, _) = request(&c, "/records/1", &[("x-jwt-sub", "client-kw")], b"", at(0));
    let leak = br#"{"patient":{"ssn":"123-45-6789"}"#;
    let labels: [&[(&str, &str)]; 8] = [
        &[("content-type", "text/json")],
        &[("content-type", "application/vnd.api+json; charset=utf-8")],
        &[("content-type", "APPLICATION/JSON")],
        &[],
        &[
            ("content-type", "text/plain"),
            ("content-type", "application/json"),
        ],
        &[("content-type", "text/html")],
        &[("content-type", "application/octet-stream")],
        &[("content-type", "application/json ; q=1")],
    ];
    for headers in labels {
        let v = response(&c, &req, headers, Some(leak), at(0));
        assert_eq!(denied(&v), (502, "payload_crypto.not_json"), "{headers:?}");
    }
    // Whatever the label, a body that parses has its field encrypted.
    for headers in labels {
        let v = response(
            &c,
            &req,
            headers,
            Some(br#"{"patient":{"ssn":"1"}}"#),
            at(0),
        );
        let doc: Value = serde_json::from_slice(replaced(&v).2).unwrap();
        assert!(
            jwe::parse(doc["patient"]["ssn"].as_str().unwrap()).is_ok(),
            "{headers:?}"
        );
    }
    let codings: [&[(&str, &str)]; 5] = [
        &[("content-encoding", "gzip")],
        &[("content-encoding", "GZIP")],
        &[("content-encoding", "identity, gzip")],
        &[("content-encoding", "identity"), ("content-encoding", "br")],
        &[
            ("content-encoding", "identity"),
            ("content-encoding", "deflate"),
        ],
    ];
    for coding in codings {
        let mut headers = vec![("content-type", "application/json")];
        headers.extend_from_slice(coding);
        let v = response(&c, &req, &headers, Some(b"\x1f\x8b\x08\0"), at(0));
        assert_eq!(
            denied(&v),
            (502, "payload_crypto.encoded_response"),
            "{coding:?}"
        );
    }
    let v = response(
        &c,
        &req,
        &[
            ("content-type", "application/json"),
            ("content-encoding", "identity"),
        ],
        Some(br#"{"patient":{"ssn":"1"}}"#),
        at(0),
    );
    assert!(matches!(v, Verdict::ReplaceBody { .. }), "{v:?}");
}

#[test]
fn response_fields_are_decrypted() {
    let c = control();
    let (req, _) = request(&c, "/payments", &[], b"", at(0));
    let number = {
        let key = ec_private();
        jwe::encrypt(
            br#""4111""#,
            &Recipient {
                kid: Some("svc-ec"),
                alg: Alg::EcdhEsA256Kw,
                enc: Enc::A256Gcm,
                key: &key,
            },
            Some("json"),
        )
        .unwrap()
    };
    let body = format!(r#"{{"card":{{"number":"{number}"}}}}"#);
    let v = response(
        &c,
        &req,
        &[("content-type", "application/json")],
        Some(body.as_bytes()),
        at(0),
    );
    assert_eq!(replaced(&v).2, br#"{"card":{"number":"4111"}}"#);
    let v = response(
        &c,
        &req,
        &[("content-type", "application/json")],
        Some(b"[oops"),
        at(0),
    );
    assert_eq!(denied(&v), (502, "payload_crypto.not_json"));
}

#[test]
fn json_paths_subset() {
    for ok in [
        "$.a",
        "$.a.b-c_d",
        "$.a[0]",
        "$.a[*].b",
        "$[1]",
        "$.a[10][2]",
    ] {
        JsonPath::parse(ok).unwrap();
    }
    for bad in [
        "", "$", "a.b", "$.", "$..a", "$.a[", "$.a[x]", "$.a[-1]", "$['a']", "$.a b", "$.*",
    ] {
        assert!(JsonPath::parse(bad).is_err(), "{bad}");
    }
}

fn config_error(json: &str) -> ConfigError {
    configure::<PayloadCrypto>(json.as_bytes()).unwrap_err()
}

#[test]
fn invalid_policies_name_the_path() {
    let cases = [
        (
            r#"{"keys":[{"kid":"a","alg":"RSA1_5","k":"AA"}]}"#,
            "keys[0].alg",
        ),
        (
            r#"{"keys":[{"kid":"a","alg":"A256KW","k":"AAAA"}]}"#,
            "keys[0].k",
        ),
        (
            r#"{"keys":[{"kid":"a","alg":"A256KW","k":"!!"}]}"#,
            "keys[0].k",
        ),
        (r#"{"keys":[{"kid":"a","alg":"A256KW"}]}"#, "keys[0].k"),
        (
            r#"{"keys":[{"kid":"a","alg":"A256KW","k_env":"PORTCULLIS_TEST_UNSET_VAR"}]}"#,
            "keys[0].k_env",
        ),
        (
            r#"{"keys":[{"kid":"a","alg":"ECDH-ES+A256KW","crv":"P-384","x":"AA","y":"AA"}]}"#,
            "keys[0].crv",
        ),
        (
            r#"{"keys":[{"kid":"a","alg":"ECDH-ES+A256KW","crv":"P-256","x":"AAAA","y":"AAAA"}]}"#,
            "keys[0].x",
        ),
        (
            r#"{"keys":[{"kid":"a","alg":"dir","k":"AAAAAAAAAAAAAAAAAAAAAA","not_before":5,"not_after":4}]}"#,
            "keys[0].not_after",
        ),
        (
            r#"{"keys":[{"kid":"a","alg":"dir","k":"AAAAAAAAAAAAAAAAAAAAAA"},{"kid":"a","alg":"dir","k":"AAAAAAAAAAAAAAAAAAAAAA"}]}"#,
            "keys[1].kid",
        ),
        (
            r#"{"keys":[{"kid":"a","alg":"dir","k":"AAAAAAAAAAAAAAAAAAAAAA","kty":"oct"}]}"#,
            "keys[0].kty",
        ),
        (
            r#"{"routes":[{"match":{"prefix":"/"},"encrypt_response":{"kid":"nope"}}]}"#,
            "routes[0].encrypt_response.kid",
        ),
        (
            r#"{"routes":[{"match":{"prefix":"/"},"encrypt_response":{}}]}"#,
            "routes[0].encrypt_response",
        ),
        (
            r#"{"routes":[{"match":{"prefix":"/"},"encrypt_response":{"kid_header":"x y"}}]}"#,
            "routes[0].encrypt_response.kid_header",
        ),
        (
            r#"{"routes":[{"match":{"prefix":"/"},"encrypt_response":{"kid_header":"x","enc":"A128CBC-HS256"}}]}"#,
            "routes[0].encrypt_response.enc",
        ),
        (
            r#"{"routes":[{"match":{"prefix":"/"},"request_fields":{"encrypt":["$.a"]}}]}"#,
            "routes[0].request_fields.to",
        ),
        (
            r#"{"routes":[{"match":{"prefix":"/"},"request_fields":{"decrypt":["a"]}}]}"#,
            "routes[0].request_fields.decrypt[0]",
        ),
        (
            r#"{"routes":[{"match":{"prefix":"/"},"request_fields":{}}]}"#,
            "routes[0].request_fields",
        ),
        (
            r#"{"routes":[{"match":{"prefix":"/"},"decrypt_request":true,"request_fields":{"decrypt":["$.a"]}}]}"#,
            "routes[0].request_fields",
        ),
        (
            r#"{"default":{"max_ciphertext_bytes":0}}"#,
            "default.max_ciphertext_bytes",
        ),
        (r#"{"default":{"max_fields":0}}"#, "default.max_fields"),
        (r#"{"default":{"decrypt":true}}"#, "default.decrypt"),
    ];
    for (json, path) in cases {
        assert_eq!(config_error(json).path, path, "{json}");
    }
    // A dir key that does not fit the configured enc.
    let e = config_error(&format!(
        r#"{{"keys":[{{"kid":"d","alg":"dir","k":"{K256}"}}],"default":{{"encrypt_response":{{"kid":"d","enc":"A128GCM"}}}}}}"#
    ));
    assert_eq!(e.path, "default.encrypt_response.enc");
    // x/y that are not the public half of d.
    let e = config_error(&format!(
        r#"{{"keys":[{{"kid":"e","alg":"ECDH-ES+A256KW","crv":"P-256","x":"{EC_X}","y":"{EC_Y}","d":"{K256}"}}]}}"#
    ));
    assert_eq!(e.path, "keys[0].x");
    // Secrets never appear in errors.
    let e = config_error(&format!(
        r#"{{"keys":[{{"kid":"a","alg":"A128KW","k":"{K256}"}}]}}"#
    ));
    assert!(!e.to_string().contains(K256), "{e}");
}

#[test]
fn secrets_come_from_the_vm_environment() {
    // SAFETY of the test: a variable name only this test uses.
    std::env::set_var("PORTCULLIS_TEST_PC_KEY", K256B);
    let c = configure::<PayloadCrypto>(
        br#"{"keys":[{"kid":"svc-2026","alg":"A256KW","k_env":"PORTCULLIS_TEST_PC_KEY"}],
            "default":{"decrypt_request":true}}"#,
    )
    .unwrap();
    let (_, v) = request(
        &c,
        "/",
        &[JOSE_CT],
        kw_jwe("svc-2026", K256B, b"env").as_bytes(),
        at(0),
    );
    assert_eq!(replaced(&v).2, b"env");
    let e = config_error(
        r#"{"keys":[{"kid":"a","alg":"A256KW","k":"x","k_env":"PORTCULLIS_TEST_PC_KEY"}]}"#,
    );
    assert_eq!(e.path, "keys[0].k");
}

#[test]
fn key_material_is_never_printed() {
    let c = control();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains(K256) && dbg.contains("Oct(..)"), "{dbg}");
}

#[test]
fn a_guard_chain_refuses_it_by_name() {
    // It runs as its own module: a body rewrite would end the chain's body phase.
    use crate::controls::guard::Guard;
    let json = format!(
        r#"{{"chain": ["payload_crypto"], "payload_crypto": {}}}"#,
        policy()
    );
    let e = configure::<Guard>(json.as_bytes()).err().unwrap();
    assert_eq!(e.path, "payload_crypto");
    assert!(e.reason.contains("payload-crypto.wasm"), "{e}");
    let json = r#"{"chain": ["payload_crypto"]}"#.to_string();
    let e = configure::<Guard>(json.as_bytes()).err().unwrap();
    assert_eq!(e.path, "chain[0]");
    assert!(e.reason.contains("runs only as its own module"), "{e}");
}
