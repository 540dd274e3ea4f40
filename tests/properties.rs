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
