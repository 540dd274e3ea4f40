//! Properties that must hold for any input (proptest): parsers never panic, normalisation is
//! idempotent and leaves no dot-segment or empty segment behind.

use proptest::prelude::*;

use portcullis::controls::content_type::{check_body, MediaType};
use portcullis::path::{normalize, split_and_normalize};

proptest! {
    #[test]
    fn path_normalisation_is_idempotent(s in "(/|\\.|\\.\\.|%2[eE]|%2[fF]|%6[fF]|a|b|\\?|;|~){0,24}") {
        if let Ok((p, _)) = split_and_normalize(&s) {
            if p != "*" {
                prop_assert_eq!(normalize(&p), Ok(p.clone()));
                prop_assert!(!p.contains("//") && !p.contains("/./") && !p.ends_with("/.") && !p.contains("/../"));
            }
        }
    }

    #[test]
    fn media_type_parser_never_panics(s in "\\PC{0,64}") {
        let _ = MediaType::parse(&s);
    }

    #[test]
    fn body_checks_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512), depth in 1usize..64) {
        for m in ["application/json", "application/x-www-form-urlencoded", "multipart/form-data; boundary=b"] {
            let _ = check_body(&MediaType::parse(m).unwrap(), &body, depth);
        }
    }
}

proptest! {
    #[test]
    fn a_parsed_origin_serialises_to_itself(s in "(https?|HTTP)://[a-zA-Z0-9.-]{1,20}(:[0-9]{1,5})?") {
        use portcullis::controls::csrf::{parse_origin, OriginPattern};
        if let Ok(o) = parse_origin(&s) {
            prop_assert_eq!(parse_origin(&o.to_string()), Ok(o.clone()));
            prop_assert!(OriginPattern::parse(&o.to_string()).is_ok_and(|p| p.matches(&o)));
            let port = o.port.map(|p| format!(":{p}")).unwrap_or_default();
            let authority = format!("{}{}", o.host, port);
            prop_assert!(o.is_host(&authority));
        }
    }

    #[test]
    fn rfc3339_timestamps_round_trip(t in 0i64..253_402_300_799) {
        use portcullis::time::{format_rfc3339, parse_rfc3339};
        prop_assert_eq!(parse_rfc3339(&format_rfc3339(t)), Ok(t));
    }
}

mod payload_crypto {
    use portcullis::controls::payload_crypto::fields::JsonPath;
    use portcullis::controls::payload_crypto::jwe::{self, Alg, Enc, KeyMaterial, Recipient};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn jwe_parser_never_panics(s in "[A-Za-z0-9_.=-]{0,200}") {
            let _ = jwe::parse(&s);
        }

        #[test]
        fn json_path_parser_never_panics(s in "\\$?[a-z.\\[\\]*0-9]{0,24}") {
            let _ = JsonPath::parse(&s);
        }

        #[test]
        fn encrypt_then_decrypt_is_identity_and_any_bit_flip_is_caught(
            plain in proptest::collection::vec(any::<u8>(), 0..256),
            kw in any::<bool>(),
            flip in any::<prop::sample::Index>(),
        ) {
            let key = KeyMaterial::Oct(vec![7u8; 32].into());
            let alg = if kw { Alg::A256Kw } else { Alg::Dir };
            let to = Recipient { kid: Some("k"), alg, enc: Enc::A256Gcm, key: &key };
            let c = jwe::encrypt(&plain, &to, None).unwrap();
            let p = jwe::parse(&c).unwrap();
            prop_assert_eq!(jwe::decrypt(&p, &key).unwrap(), plain.clone());
            // Flip one bit of the ciphertext or tag: decryption fails.
            let mut ct = p.ciphertext.clone();
            ct.extend_from_slice(&p.tag);
            let i = flip.index(ct.len());
            ct[i] ^= 0x10;
            let (body, tag) = ct.split_at(p.ciphertext.len());
            let parts: Vec<&str> = c.split('.').collect();
            let tampered = format!("{}.{}.{}.{}.{}", parts[0], parts[1], parts[2], jwe::b64e(body), jwe::b64e(tag));
            let t = jwe::parse(&tampered).unwrap();
            prop_assert!(jwe::decrypt(&t, &key).is_err());
        }
    }
}

mod request_signing {
    use proptest::prelude::*;

    use portcullis::signing::{self, Key, Message, SignRequest, VerifyOptions};

    const COMPONENTS: &[&str] = &[
        "@method",
        "@authority",
        "@path",
        "@query",
        "x-account",
        "content-digest",
    ];

    struct Req {
        method: String,
        target: String,
        account: String,
        body: Vec<u8>,
    }

    fn headers(r: &Req, extra: &[(&str, String)]) -> Vec<(String, Vec<u8>)> {
        let mut h = vec![("x-account".to_string(), r.account.as_bytes().to_vec())];
        h.extend(
            extra
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())),
        );
        h
    }

    fn msg<'a>(r: &'a Req, h: &'a [(String, Vec<u8>)]) -> Message<'a> {
        Message {
            method: &r.method,
            scheme: "https",
            authority: "api.example",
            target: &r.target,
            headers: h,
        }
    }

    /// Sign `r`, then return the signature headers.
    fn sign(r: &Req, secret: &[u8]) -> Vec<(&'static str, String)> {
        let mut req = SignRequest::new("k", 1_000, COMPONENTS);
        req.nonce = Some("n".into());
        let h = headers(r, &[]);
        let s = signing::sign(&msg(r, &h), Some(&r.body), secret, &req).unwrap();
        s.headers()
            .into_iter()
            .map(|(k, v)| {
                (
                    match k {
                        "Content-Digest" => "content-digest",
                        "Signature-Input" => "signature-input",
                        _ => "signature",
                    },
                    v,
                )
            })
            .collect()
    }

    fn verify(r: &Req, sig: &[(&str, String)], secret: &[u8]) -> Result<(), signing::SigError> {
        let h = headers(r, sig);
        let keys = [Key::new("k", secret.to_vec())];
        signing::verify(&msg(r, &h), Some(&r.body), &keys, &VerifyOptions::at(1_000)).map(|_| ())
    }

    fn flip(s: &mut [u8], at: usize, to: u8) {
        let i = at % s.len();
        s[i] = if s[i] == to {
            if to == b'z' {
                b'y'
            } else {
                b'z'
            }
        } else {
            to
        };
    }

    proptest! {
        #[test]
        fn sign_then_verify_passes_and_any_changed_byte_fails(
            method in "(GET|POST|PUT|PATCH|DELETE)",
            path in "(/[a-zA-Z0-9._~-]{1,8}){1,4}",
            query in proptest::option::of("[a-z]{1,4}=[a-zA-Z0-9%]{0,8}(&[a-z]{1,4}=[a-z0-9]{0,6}){0,2}"),
            account in "[a-zA-Z0-9-]{1,16}",
            body in proptest::collection::vec(any::<u8>(), 1..256),
            secret in proptest::collection::vec(any::<u8>(), 32..64),
            which in 0usize..5,
            at in any::<usize>(),
            to in proptest::sample::select(b"azAZ09-_".to_vec()),
        ) {
            let target = match &query { Some(q) => format!("{path}?{q}"), None => path.clone() };
            let r = Req { method, target, account, body };
            let sig = sign(&r, &secret);
            prop_assert_eq!(verify(&r, &sig, &secret), Ok(()));

            let mut t = Req { method: r.method.clone(), target: r.target.clone(), account: r.account.clone(), body: r.body.clone() };
            match which {
                0 => { let mut m = t.method.into_bytes(); flip(&mut m, at, to); t.method = String::from_utf8(m).unwrap(); }
                1 => { let mut p = path.clone().into_bytes(); let n = p.len(); flip(&mut p, 1 + at % (n - 1), to);
                       let p = String::from_utf8(p).unwrap();
                       t.target = match &query { Some(q) => format!("{p}?{q}"), None => p }; }
                2 => { let q = query.clone().unwrap_or_default(); let mut q = q.into_bytes();
                       if q.is_empty() { q = b"x".to_vec(); } else { flip(&mut q, at, to); }
                       t.target = format!("{path}?{}", String::from_utf8(q).unwrap()); }
                3 => { let mut a = t.account.into_bytes(); flip(&mut a, at, to); t.account = String::from_utf8(a).unwrap(); }
                _ => { let i = at % t.body.len(); t.body[i] ^= 1 + (to % 254); }
            }
            prop_assert!(verify(&t, &sig, &secret).is_err(), "change {} still verifies", which);
        }

        #[test]
        fn signature_field_parsers_never_panic(input in "\\PC{0,200}", sig in "\\PC{0,120}") {
            let h = vec![
                ("signature-input".to_string(), input.into_bytes()),
                ("signature".to_string(), sig.into_bytes()),
            ];
            let m = Message { method: "GET", scheme: "http", authority: "a", target: "/", headers: &h };
            if let Ok(p) = signing::parse(&m, None) {
                let _ = p.base(&m);
            }
        }
    }
}

#[path = "support/jwt.rs"]
mod jwt;

mod jwt_auth_properties {
    use super::jwt;
    use portcullis::control::{configure, Control, Env};
    use portcullis::controls::jwt_auth::{parse_token, JwtAuth};
    use portcullis::store::MemoryStore;
    use portcullis::RequestView;
    use proptest::prelude::*;
    use serde_json::json;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";

    fn verdict_is_deny(c: &JwtAuth, token: &str) -> bool {
        let store = MemoryStore::default();
        let env = Env {
            now: std::time::SystemTime::now(),
            store: &store,
        };
        let auth = format!("Bearer {token}");
        let req = RequestView::new("GET", "/", &[("authorization", auth.as_str())]).unwrap();
        c.on_request(&req, &env).is_deny()
    }

    proptest! {
        #[test]
        fn jwt_parser_never_panics(s in "[A-Za-z0-9_=.+/-]{0,300}") {
            let _ = parse_token(&s);
        }

        #[test]
        fn a_signed_token_verifies_and_any_one_character_change_does_not(
            sub in "[a-z]{1,12}", pos in any::<usize>(), with in any::<usize>(),
        ) {
            let policy = json!({"providers": [{"name": "hs", "issuer": "hs",
                "algorithms": ["HS256"], "jwks": jwt::jwks(&[jwt::jwk_oct(SECRET, "k")])}],
                "default": {}, "cache_entries": 0});
            let c: JwtAuth = configure(policy.to_string().as_bytes()).unwrap();
            let token = jwt::hs256(SECRET, Some("k"), &json!({"iss": "hs", "sub": sub, "exp": jwt::now() + 600}));
            prop_assert!(!verdict_is_deny(&c, &token));
            let mut bytes = token.clone().into_bytes();
            let i = pos % bytes.len();
            let replacement = B64[with % B64.len()];
            prop_assume!(bytes[i] != replacement);
            bytes[i] = replacement;
            let tampered = String::from_utf8(bytes).unwrap();
            prop_assert!(verdict_is_deny(&c, &tampered), "{} accepted", tampered);
        }
    }
}
