use super::*;
use crate::control::configure;
use crate::store::MemoryStore;
use std::time::SystemTime;

fn control(json: &str) -> ContentType {
    configure::<ContentType>(json.as_bytes()).unwrap()
}

fn run(
    c: &ContentType,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Verdict {
    let store = MemoryStore::default();
    let env = Env {
        now: SystemTime::UNIX_EPOCH,
        store: &store,
    };
    let mut req = RequestView::new(method, path, headers).unwrap();
    req.has_body = !body.is_empty();
    match c.on_request(&req, &env) {
        Verdict::NeedBody { max_bytes } => {
            assert!(body.len() <= max_bytes || max_bytes > 0);
            c.on_request_body(&req, body, &env)
        }
        v => v,
    }
}

fn code(v: &Verdict) -> Option<&'static str> {
    match v {
        Verdict::Deny(r) => Some(r.code),
        _ => None,
    }
}

fn status(v: &Verdict) -> u16 {
    match v {
        Verdict::Deny(r) => r.status,
        _ => 200,
    }
}

const POLICY: &str = r#"{
  "routes": [
    {"match": {"prefix": "/upload"}, "allow": ["multipart/form-data", "application/octet-stream"],
     "max_body_bytes": 100},
    {"match": {"exact": "/form", "methods": ["POST"]}, "allow": ["application/x-www-form-urlencoded"]},
    {"match": {"prefix": "/raw"}, "allow": ["*/*"], "check_body": false, "charsets": []}
  ],
  "default": {"allow": ["application/json", "application/*+json"], "max_body_bytes": 64,
              "json_max_depth": 3}
}"#;

#[test]
fn allowed_json_passes() {
    let c = control(POLICY);
    let v = run(
        &c,
        "POST",
        "/orders",
        &[("content-type", "application/json")],
        br#"{"a":1}"#,
    );
    assert_eq!(v, Verdict::Continue);
    let v = run(
        &c,
        "PUT",
        "/orders",
        &[(
            "content-type",
            "application/merge-patch+json; charset=UTF-8",
        )],
        b"{}",
    );
    assert_eq!(v, Verdict::Continue);
}

#[test]
fn rfc9110_15_5_16_unsupported_type_is_415_with_accept_post() {
    let c = control(POLICY);
    let v = run(
        &c,
        "POST",
        "/orders",
        &[("content-type", "text/plain")],
        b"hi",
    );
    let Verdict::Deny(r) = v else { panic!("{v:?}") };
    assert_eq!((r.status, r.code), (415, "content_type.unsupported"));
    assert_eq!(
        r.headers,
        vec![(
            "accept-post".to_string(),
            "application/json, application/*+json".to_string()
        )]
    );
    let v = run(
        &c,
        "PATCH",
        "/orders",
        &[("content-type", "text/plain")],
        b"hi",
    );
    let Verdict::Deny(r) = v else { panic!("{v:?}") };
    assert_eq!(r.headers[0].0, "accept-patch");
    let v = run(
        &c,
        "PUT",
        "/orders",
        &[("content-type", "text/plain")],
        b"hi",
    );
    let Verdict::Deny(r) = v else { panic!("{v:?}") };
    assert!(r.headers.is_empty(), "PUT has no Accept-* header");
}

#[test]
fn missing_malformed_and_duplicate_content_types_are_415() {
    let c = control(POLICY);
    assert_eq!(
        code(&run(&c, "POST", "/orders", &[], b"{}")),
        Some("content_type.missing")
    );
    assert_eq!(
        code(&run(
            &c,
            "POST",
            "/orders",
            &[("content-type", "json")],
            b"{}"
        )),
        Some("content_type.malformed")
    );
    let two = [
        ("content-type", "application/json"),
        ("content-type", "application/json"),
    ];
    assert_eq!(
        code(&run(&c, "POST", "/orders", &two, b"{}")),
        Some("content_type.duplicate")
    );
    assert_eq!(status(&run(&c, "POST", "/orders", &two, b"{}")), 415);
    // How Envoy's HTTP/1 codec hands over a repeated field: joined with a comma.
    let joined = [("content-type", "application/json,text/plain")];
    assert_eq!(
        code(&run(&c, "POST", "/orders", &joined, b"{}")),
        Some("content_type.duplicate")
    );
    // A comma inside a quoted parameter is not a list.
    let quoted = [("content-type", "multipart/form-data; boundary=\"a,b\"")];
    assert_eq!(
        code(&run(
            &c,
            "POST",
            "/upload",
            &quoted,
            b"--a,b\r\n\r\n--a,b--"
        )),
        None
    );
}

#[test]
fn charset_allow_list_refuses_utf7() {
    let c = control(POLICY);
    let v = run(
        &c,
        "POST",
        "/orders",
        &[("content-type", "application/json;charset=utf-7")],
        b"{}",
    );
    assert_eq!(code(&v), Some("content_type.charset"));
    let v = run(
        &c,
        "POST",
        "/orders",
        &[("content-type", "application/json; charset=\"UTF-8\"")],
        b"{}",
    );
    assert_eq!(v, Verdict::Continue);
    let v = run(
        &c,
        "POST",
        "/raw/x",
        &[("content-type", "text/plain;charset=latin1")],
        b"x",
    );
    assert_eq!(v, Verdict::Continue, "empty charsets allows any");
}

#[test]
fn body_must_agree_with_the_declared_type() {
    let c = control(POLICY);
    let json = [("content-type", "application/json")];
    assert_eq!(
        code(&run(&c, "POST", "/orders", &json, b"{not json")),
        Some("content_type.body_mismatch")
    );
    assert_eq!(
        status(&run(&c, "POST", "/orders", &json, b"{not json")),
        400
    );
    assert_eq!(
        code(&run(&c, "POST", "/orders", &json, b"[[[[1]]]]")),
        Some("content_type.body_mismatch")
    );
    let form = [("content-type", "application/x-www-form-urlencoded")];
    assert_eq!(
        run(&c, "POST", "/form", &form, b"a=1&b=%C3%A9"),
        Verdict::Continue
    );
    assert_eq!(
        code(&run(&c, "POST", "/form", &form, b"a=%G1")),
        Some("content_type.body_mismatch")
    );
    let raw = [("content-type", "application/json")];
    assert_eq!(
        run(&c, "POST", "/raw/x", &raw, b"{not json"),
        Verdict::Continue,
        "check_body off"
    );
}

#[test]
fn oversize_body_is_413_by_length_or_by_bytes() {
    let c = control(POLICY);
    let big = vec![b'1'; 65];
    let h = [
        ("content-type", "application/json"),
        ("content-length", "65"),
    ];
    let v = run(&c, "POST", "/orders", &h, &big);
    assert_eq!((status(&v), code(&v)), (413, Some("body.too_large")));
    // Without a Content-Length (chunked), the buffered bytes decide.
    let h = [
        ("content-type", "application/json"),
        ("transfer-encoding", "chunked"),
    ];
    assert_eq!(
        code(&run(&c, "POST", "/orders", &h, &big)),
        Some("body.too_large")
    );
}

#[test]
fn requests_without_a_body_or_outside_methods_pass() {
    let c = control(POLICY);
    assert_eq!(run(&c, "GET", "/orders", &[], b""), Verdict::Continue);
    assert_eq!(
        run(
            &c,
            "GET",
            "/orders",
            &[("content-type", "text/plain")],
            b"x"
        ),
        Verdict::Continue
    );
    assert_eq!(run(&c, "POST", "/logout", &[], b""), Verdict::Continue);
    // A declared type is still checked when there is no body.
    assert_eq!(
        code(&run(
            &c,
            "POST",
            "/orders",
            &[("content-type", "text/plain")],
            b""
        )),
        Some("content_type.unsupported")
    );
}

#[test]
fn route_rules_match_the_normalised_path() {
    let c = control(POLICY);
    let mp = [("content-type", "multipart/form-data; boundary=b")];
    let body = b"--b\r\n\r\nx\r\n--b--";
    assert_eq!(run(&c, "POST", "/upload/x", &mp, body), Verdict::Continue);
    assert_eq!(
        run(&c, "POST", "//upload/./x", &mp, body),
        Verdict::Continue
    );
    // /form only for POST: a PUT falls through to the JSON default.
    let form = [("content-type", "application/x-www-form-urlencoded")];
    assert_eq!(
        code(&run(&c, "PUT", "/form", &form, b"a=1")),
        Some("content_type.unsupported")
    );
}

#[test]
fn json_structured_suffix_bodies_are_parsed_too() {
    let c = control(POLICY);
    let h = [("content-type", "application/vnd.api+json")];
    assert_eq!(
        code(&run(&c, "POST", "/x", &h, b"nope")),
        Some("content_type.body_mismatch")
    );
}

#[test]
fn policy_errors_name_their_json_path() {
    let cases = [
        (
            r#"{"routes":[{"match":{"prefix":"/a"},"allow":[]}]}"#,
            "routes[0].allow",
        ),
        (
            r#"{"routes":[{"match":{"prefix":"/a"},"allow":["json"]}]}"#,
            "routes[0].allow[0]",
        ),
        (r#"{"routes":[{"allow":["a/b"]}]}"#, "routes[0].match"),
        (
            r#"{"routes":[{"match":{"prefix":"a"}}]}"#,
            "routes[0].match.prefix",
        ),
        (
            r#"{"default":{"max_body_bytes":0}}"#,
            "default.max_body_bytes",
        ),
        (
            r#"{"default":{"charsets":["utf 8"]}}"#,
            "default.charsets[0]",
        ),
        (
            r#"{"default":{"json_max_depth":0}}"#,
            "default.json_max_depth",
        ),
        (r#"{"default":{"match":{"prefix":"/"}}}"#, "default.match"),
        (r#"{"methods":["post"]}"#, "methods[0]"),
        (
            r#"{"routes":[{"match":{"prefix":"/a"},"alow":[]}]}"#,
            "routes[0].alow",
        ),
        (
            r#"{"default":{"max_body_bytes":"big"}}"#,
            "default.max_body_bytes",
        ),
    ];
    for (json, path) in cases {
        let e = configure::<ContentType>(json.as_bytes()).unwrap_err();
        assert_eq!(e.path, path, "{json}: {e}");
    }
}

#[test]
fn empty_policy_means_json_only_with_defaults() {
    let c = control("{}");
    assert_eq!(
        run(
            &c,
            "POST",
            "/x",
            &[("content-type", "application/json")],
            b"{}"
        ),
        Verdict::Continue
    );
    assert_eq!(
        code(&run(
            &c,
            "POST",
            "/x",
            &[("content-type", "text/xml")],
            b"<a/>"
        )),
        Some("content_type.unsupported")
    );
}

/// The framings of an empty body: none at all, `Content-Length: 0`, an empty chunked body.
/// `has_body` is what the host reports (the headers ended the stream or not).
/// (name, the framing header if any, what the host reports as `has_body`)
type Framing = (&'static str, Option<(&'static str, &'static str)>, bool);

const EMPTY_FRAMINGS: [Framing; 3] = [
    ("no body", None, false),
    ("content-length: 0", Some(("content-length", "0")), false),
    (
        "empty chunked",
        Some(("transfer-encoding", "chunked")),
        true,
    ),
];

fn run_empty(
    c: &ContentType,
    path: &str,
    media: &str,
    framing: Option<(&str, &str)>,
    has_body: bool,
) -> Verdict {
    let store = MemoryStore::default();
    let env = Env {
        now: SystemTime::UNIX_EPOCH,
        store: &store,
    };
    let mut headers = vec![("content-type", media)];
    headers.extend(framing);
    let mut req = RequestView::new("POST", path, &headers).unwrap();
    req.has_body = has_body;
    match c.on_request(&req, &env) {
        // The host hands over the empty body whether or not the headers ended the stream.
        Verdict::NeedBody { .. } => c.on_request_body(&req, b"", &env),
        v => v,
    }
}

#[test]
fn rfc8259_2_empty_body_of_a_checked_type_is_400_however_it_is_framed() {
    let c = control(POLICY);
    let cases = [
        ("/orders", "application/json"),
        ("/orders", "application/problem+json"),
        ("/form", "application/x-www-form-urlencoded"),
        ("/upload", "multipart/form-data; boundary=xyz"),
    ];
    for (path, media) in cases {
        for (name, framing, has_body) in EMPTY_FRAMINGS {
            let v = run_empty(&c, path, media, framing, has_body);
            assert_eq!(
                (status(&v), code(&v)),
                (400, Some("content_type.body_mismatch")),
                "{media}, {name}: {v:?}"
            );
        }
    }
}

#[test]
fn allow_empty_body_lets_an_empty_body_pass_however_it_is_framed() {
    let c = control(
        r#"{"routes": [{"match": {"prefix": "/ping"}, "allow_empty_body": true,
                         "allow": ["application/json", "multipart/form-data"]}]}"#,
    );
    for media in ["application/json", "multipart/form-data; boundary=b"] {
        for (name, framing, has_body) in EMPTY_FRAMINGS {
            let v = run_empty(&c, "/ping", media, framing, has_body);
            assert_eq!(v, Verdict::Continue, "{media}, {name}");
            // Other routes keep the default.
            let v = run_empty(&c, "/other", "application/json", framing, has_body);
            assert_eq!(code(&v), Some("content_type.body_mismatch"), "{name}");
        }
    }
    // A body that is there is still checked.
    let json = [("content-type", "application/json")];
    assert_eq!(
        code(&run(&c, "POST", "/ping", &json, b"{")),
        Some("content_type.body_mismatch")
    );
}

#[test]
fn empty_body_of_an_unchecked_type_or_with_check_body_off_passes() {
    let c = control(POLICY);
    for (name, framing, has_body) in EMPTY_FRAMINGS {
        let v = run_empty(&c, "/upload", "application/octet-stream", framing, has_body);
        assert_eq!(v, Verdict::Continue, "octet-stream, {name}");
        let v = run_empty(&c, "/raw/x", "application/json", framing, has_body);
        assert_eq!(v, Verdict::Continue, "check_body off, {name}");
    }
}
