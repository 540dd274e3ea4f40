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
