//! Body agreement checks (JSON depth scan + parse, form, multipart): never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::controls::content_type::{check_body, MediaType};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let media = match selector % 4 {
        0 => "application/json",
        1 => "application/x-www-form-urlencoded",
        2 => "multipart/form-data; boundary=xyz",
        _ => "application/vnd.api+json",
    };
    let m = MediaType::parse(media).expect("constant media type");
    let _ = check_body(&m, body, usize::from(selector % 64) + 1);
});
