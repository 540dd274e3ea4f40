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
        use portcullis::controls::api_key::{format_rfc3339, parse_rfc3339};
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
            let key = KeyMaterial::Oct(vec![7u8; 32]);
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
