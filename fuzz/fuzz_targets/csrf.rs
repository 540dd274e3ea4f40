//! csrf: the policy parser, Origin / Referer / allowed-origin parsing and Cookie parsing never
//! panic; a parsed origin re-serialises to a string that parses to the same origin.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::control::configure;
use portcullis::controls::csrf::{parse_origin, parse_referer, Csrf, OriginPattern};
use portcullis::params::cookie_values_in;

fuzz_target!(|data: &[u8]| {
    let _ = configure::<Csrf>(data);
    let _ = cookie_values_in(data, "__Host-csrf");
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(o) = parse_origin(s) {
        let again = parse_origin(&o.to_string()).expect("a serialised origin parses");
        assert_eq!(again, o);
        assert!(OriginPattern::parse(&o.to_string()).is_ok_and(|p| p.matches(&o)));
    }
    let _ = parse_referer(s);
    let _ = OriginPattern::parse(s);
});
