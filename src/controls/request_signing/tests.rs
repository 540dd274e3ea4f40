use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;
use crate::control::configure;
use crate::store::MemoryStore;

const SECRET_A: &str = "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE="; // 32 x 'a'
const SECRET_B: &str = "YmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmI="; // 32 x 'b'
const T0: u64 = 1_790_000_000; // 2026-09-21, while only key `a` is valid

fn policy(extra: &str) -> String {
    format!(
        r#"{{
  "keys": [
    {{"keyid": "a", "secret": "{SECRET_A}", "not_after": "2027-01-15T08:00:00Z"}},
    {{"keyid": "b", "secret": "{SECRET_B}", "not_before": "2027-01-15T07:00:00Z"}}
  ],
  "routes": [
    {{"match": {{"prefix": "/health"}}, "required": false}},
    {{"match": {{"prefix": "/admin"}}, "key_ids": ["b"]}}
  ],
  "default": {{"components": ["@method", "@authority", "@path", "@query", "content-type"]}}
  {extra}
}}"#
    )
}

fn control(extra: &str) -> RequestSigning {
    configure(policy(extra).as_bytes()).unwrap()
}

fn rfc3339(t: &str) -> Result<u64, String> {
    crate::time::parse_rfc3339(t).map(|s| s as u64)
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

struct Case {
    method: &'static str,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn post(target: &str, body: &[u8]) -> Case {
    Case {
        method: "POST",
        target: target.into(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("content-length".into(), body.len().to_string()),
        ],
        body: body.to_vec(),
    }
}

impl Case {
    fn view(&self) -> RequestView {
        let h: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut v = RequestView::new(self.method, &self.target, &h).unwrap();
        v.has_body = !self.body.is_empty();
        v
    }

    /// Sign with the library, as a client would (with a random nonce).
    fn signed(self, keyid: &str, secret: &str, created: u64, components: &[&str]) -> Self {
        let mut req = SignRequest::new(keyid, created, components);
        req.nonce = signing::random_nonce();
        self.signed_as(secret, &req)
    }

    fn signed_as(mut self, secret: &str, req: &SignRequest) -> Self {
        let view = self.view();
        let s = signing::sign(
            &Message::from_view(&view),
            Some(&self.body),
            &signing::decode_secret(secret).unwrap(),
            req,
        )
        .unwrap();
        for (k, v) in s.headers() {
            self.headers.push((k.to_ascii_lowercase(), v));
        }
        self
    }

    fn header_mut(&mut self, name: &str) -> &mut String {
        &mut self.headers.iter_mut().find(|(k, _)| k == name).unwrap().1
    }
}

const FULL: &[&str] = &[
    "@method",
    "@authority",
    "@path",
    "@query",
    "content-type",
    "content-digest",
];

/// Run both phases as the host would; the verdict of the last phase that ran.
fn run(c: &RequestSigning, case: &Case, store: &MemoryStore, now: u64) -> Verdict {
    let env = Env {
        now: at(now),
        store,
    };
    let view = case.view();
    match c.on_request(&view, &env) {
        Verdict::NeedBody { max_bytes } => {
            assert!(case.body.len() <= max_bytes);
            c.on_request_body(&view, &case.body, &env)
        }
        v => v,
    }
}

fn code(v: &Verdict) -> &'static str {
    match v {
        Verdict::Deny(r) => r.code,
        Verdict::Continue => "ok",
        other => panic!("unexpected verdict {other:?}"),
    }
}

fn status(v: &Verdict) -> u16 {
    match v {
        Verdict::Deny(r) => r.status,
        _ => 200,
    }
}

#[test]
fn a_signed_request_passes_once() {
    let c = control("");
    let store = MemoryStore::default();
    let case = post("/orders?id=7", br#"{"a":1}"#).signed("a", SECRET_A, T0, FULL);
    assert_eq!(code(&run(&c, &case, &store, T0 + 5)), "ok");
    // RFC 9421 §7.2.2: the same signature again is a replay.
    let again = run(&c, &case, &store, T0 + 6);
    assert_eq!(code(&again), "signature.replayed");
    assert_eq!(status(&again), 401);
}

#[test]
fn unsigned_request_is_missing_and_unsigned_route_passes() {
    let c = control("");
    let store = MemoryStore::default();
    let v = run(&c, &post("/orders", b"{}"), &store, T0);
    assert_eq!(code(&v), "signature.missing");
    let Verdict::Deny(r) = &v else { unreachable!() };
    assert_eq!(
        r.headers,
        vec![("www-authenticate".into(), "Signature".into())]
    );
    let mut get = post("/health", b"");
    get.method = "GET";
    assert_eq!(code(&run(&c, &get, &store, T0)), "ok");
}

#[test]
fn tampering_with_any_covered_part_is_bad_or_mismatched() {
    let c = control("");
    let store = MemoryStore::default();
    let signed = || post("/orders?id=7", br#"{"a":1}"#).signed("a", SECRET_A, T0, FULL);

    let mut m = signed();
    m.method = "PUT";
    assert_eq!(code(&run(&c, &m, &store, T0)), "signature.bad", "method");

    let mut p = signed();
    p.target = "/orderz?id=7".into();
    assert_eq!(code(&run(&c, &p, &store, T0)), "signature.bad", "path");

    let mut q = signed();
    q.target = "/orders?id=8".into();
    assert_eq!(code(&run(&c, &q, &store, T0)), "signature.bad", "query");

    let mut h = signed();
    *h.header_mut("content-type") = "text/plain".into();
    assert_eq!(code(&run(&c, &h, &store, T0)), "signature.bad", "header");

    let mut b = signed();
    b.body = br#"{"a":2}"#.to_vec();
    assert_eq!(code(&run(&c, &b, &store, T0)), "digest.mismatch", "body");

    let mut d = signed();
    *d.header_mut("content-digest") =
        signing::digest::content_digest(signing::Algorithm::Sha256, br#"{"a":2}"#);
    d.body = br#"{"a":2}"#.to_vec();
    assert_eq!(
        code(&run(&c, &d, &store, T0)),
        "signature.bad",
        "digest field"
    );

    let mut s = signed();
    *s.header_mut("signature") = "sig1=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:".into();
    assert_eq!(code(&run(&c, &s, &store, T0)), "signature.bad", "signature");

    // None of the tampered requests spent the nonce: the genuine one still passes.
    let genuine = signed();
    assert_eq!(code(&run(&c, &genuine, &store, T0)), "ok");
}

#[test]
fn covering_less_than_required_is_components() {
    let c = control("");
    let store = MemoryStore::default();
    let no_ct = post("/orders", b"{}").signed(
        "a",
        SECRET_A,
        T0,
        &["@method", "@authority", "@path", "@query", "content-digest"],
    );
    assert_eq!(code(&run(&c, &no_ct, &store, T0)), "signature.components");
    let no_digest = post("/orders", b"{}").signed(
        "a",
        SECRET_A,
        T0,
        &["@method", "@authority", "@path", "@query", "content-type"],
    );
    assert_eq!(
        code(&run(&c, &no_digest, &store, T0)),
        "signature.components"
    );
}

#[test]
fn stale_future_and_expired_signatures() {
    let c = control("");
    let store = MemoryStore::default();
    let case = |created| post("/orders", b"{}").signed("a", SECRET_A, created, FULL);
    // Window 300 s, skew 30 s.
    assert_eq!(
        code(&run(&c, &case(T0), &store, T0 + 331)),
        "signature.stale"
    );
    assert_eq!(
        code(&run(&c, &case(T0), &store, T0 - 31)),
        "signature.future"
    );
    assert_eq!(code(&run(&c, &case(T0), &store, T0 + 330)), "ok");
    assert_eq!(code(&run(&c, &case(T0), &store, T0 - 30)), "ok");

    // `expires` is honoured.
    let mut req = SignRequest::new("a", T0, FULL);
    req.nonce = Some("n-exp".into());
    req.expires = Some(T0 + 10);
    let e = post("/orders", b"{}").signed_as(SECRET_A, &req);
    assert_eq!(code(&run(&c, &e, &store, T0 + 41)), "signature.expired");
    assert_eq!(code(&run(&c, &e, &store, T0 + 40)), "ok");
}

#[test]
fn created_and_nonce_are_required() {
    let c = control("");
    let store = MemoryStore::default();
    let no_nonce = post("/orders", b"{}").signed_as(SECRET_A, &SignRequest::new("a", T0, FULL));
    assert_eq!(
        code(&run(&c, &no_nonce, &store, T0)),
        "signature.nonce_missing"
    );

    let mut no_created = post("/orders", b"{}").signed("a", SECRET_A, T0, FULL);
    let input = no_created.header_mut("signature-input");
    *input = input.replace(&format!(";created={T0}"), "");
    assert_eq!(
        code(&run(&c, &no_created, &store, T0)),
        "signature.malformed"
    );
}

#[test]
fn without_required_nonce_the_signature_itself_is_single_use() {
    let c = control(r#", "require_nonce": false"#);
    let store = MemoryStore::default();
    let case = post("/orders", b"{}").signed_as(SECRET_A, &SignRequest::new("a", T0, FULL));
    assert_eq!(code(&run(&c, &case, &store, T0)), "ok");
    assert_eq!(code(&run(&c, &case, &store, T0)), "signature.replayed");
}

#[test]
fn keys_unknown_expired_not_yet_valid_and_overlapping() {
    let c = control("");
    let store = MemoryStore::default();
    let a_end = rfc3339("2027-01-15T08:00:00Z").unwrap();
    let b_start = rfc3339("2027-01-15T07:00:00Z").unwrap();
    let case =
        |keyid: &str, secret: &str, t: u64| post("/orders", b"{}").signed(keyid, secret, t, FULL);
    assert_eq!(
        code(&run(&c, &case("zz", SECRET_A, T0), &store, T0)),
        "signature.key_unknown"
    );
    // `b` before its not_before, `a` from its not_after on.
    assert_eq!(
        code(&run(
            &c,
            &case("b", SECRET_B, b_start - 10),
            &store,
            b_start - 10
        )),
        "signature.key_not_yet_valid"
    );
    assert_eq!(
        code(&run(&c, &case("a", SECRET_A, a_end), &store, a_end)),
        "signature.key_expired"
    );
    // Both valid during the overlap hour: clients move to `b` before `a` ends.
    let overlap = b_start + 600;
    assert_eq!(
        code(&run(&c, &case("a", SECRET_A, overlap), &store, overlap)),
        "ok"
    );
    assert_eq!(
        code(&run(&c, &case("b", SECRET_B, overlap), &store, overlap)),
        "ok"
    );
    // A key id with the other key's secret does not verify.
    assert_eq!(
        code(&run(&c, &case("b", SECRET_A, overlap), &store, overlap)),
        "signature.bad"
    );
}

#[test]
fn route_key_ids_limit_the_keys() {
    let c = control("");
    let store = MemoryStore::default();
    let t = rfc3339("2027-01-15T07:30:00Z").unwrap();
    let mut get = Case {
        method: "GET",
        target: "/admin/users".into(),
        headers: Vec::new(),
        body: Vec::new(),
    };
    let comps = &["@method", "@authority", "@path", "@query"];
    get = get.signed("a", SECRET_A, t, comps);
    assert_eq!(code(&run(&c, &get, &store, t)), "signature.key_not_allowed");
    let get = Case {
        method: "GET",
        target: "/admin/users".into(),
        headers: Vec::new(),
        body: Vec::new(),
    }
    .signed("b", SECRET_B, t, comps);
    assert_eq!(code(&run(&c, &get, &store, t)), "ok");
}

#[test]
fn malformed_fields_and_labels() {
    let c = control("");
    let store = MemoryStore::default();
    for (input, sig) in [
        ("sig1=(\"@method\"", "sig1=:AAAA:"),
        ("sig1=(\"@method\");created=1", "sig1=AAAA"),
        (
            "sig1=(\"@status\");created=1;keyid=\"a\";nonce=\"x\"",
            "sig1=:AAAA:",
        ),
        ("sig1=(\"@method\");created=-1", "sig1=:AAAA:"),
        ("sig1=(\"@method\");created=1", "other=:AAAA:"),
        ("sig1=\"@method\"", "sig1=:AAAA:"),
    ] {
        let mut case = post("/orders", b"{}");
        case.headers.push(("signature-input".into(), input.into()));
        case.headers.push(("signature".into(), sig.into()));
        let v = run(&c, &case, &store, T0);
        assert!(
            matches!(code(&v), "signature.malformed" | "signature.components"),
            "{input}: {v:?}"
        );
    }
    let mut alg = post("/orders", b"{}").signed("a", SECRET_A, T0, FULL);
    let input = alg.header_mut("signature-input");
    input.push_str(";alg=\"rsa-pss-sha512\"");
    assert_eq!(
        code(&run(&c, &alg, &store, T0)),
        "signature.unsupported_alg"
    );
}

#[test]
fn the_policy_label_picks_the_signature() {
    let c = control(r#", "label": "mine""#);
    let store = MemoryStore::default();
    let case = post("/orders", b"{}").signed("a", SECRET_A, T0, FULL);
    // Signed as `sig1`: no `mine` signature.
    assert_eq!(code(&run(&c, &case, &store, T0)), "signature.malformed");
}

#[test]
fn a_full_replay_cache_fails_closed_without_evicting() {
    let c = control(r#", "nonce_capacity": 1"#);
    let store = MemoryStore::default();
    let first = post("/orders", b"{}").signed("a", SECRET_A, T0, FULL);
    assert_eq!(code(&run(&c, &first, &store, T0)), "ok");
    let second = post("/orders", b"{}").signed("a", SECRET_A, T0, FULL);
    let v = run(&c, &second, &store, T0);
    assert_eq!(code(&v), "signature.replay_cache_full");
    assert_eq!(status(&v), 503);
    assert_eq!(code(&run(&c, &first, &store, T0)), "signature.replayed");
}

#[test]
fn sign_mode_adds_headers_the_verifier_accepts() {
    let signer: RequestSigning = configure(policy(r#", "mode": "sign""#).as_bytes()).unwrap();
    let verifier = control("");
    let store = MemoryStore::default();
    let case = post("/orders?x=1", br#"{"n":1}"#);
    let env = Env {
        now: at(T0),
        store: &store,
    };
    let view = case.view();
    assert!(matches!(
        signer.on_request(&view, &env),
        Verdict::NeedBody { .. }
    ));
    let Verdict::Mutate(ops) = signer.on_request_body(&view, &case.body, &env) else {
        panic!("sign mode mutates")
    };
    let names: Vec<&str> = ops
        .iter()
        .map(|op| match op {
            HeaderOp::Set(k, _) => k.as_str(),
            _ => "?",
        })
        .collect();
    assert_eq!(names, ["content-digest", "signature-input", "signature"]);
    let mut signed = case;
    for op in ops {
        if let HeaderOp::Set(k, v) = op {
            signed.headers.push((k, v));
        }
    }
    let input = signed.header_mut("signature-input").clone();
    assert!(
        input.contains("keyid=\"a\"") && input.contains("nonce="),
        "{input}"
    );
    assert_eq!(code(&run(&verifier, &signed, &store, T0 + 1)), "ok");
}

#[test]
fn sign_mode_uses_the_newest_valid_key_and_skips_absent_fields() {
    let signer: RequestSigning = configure(policy(r#", "mode": "sign""#).as_bytes()).unwrap();
    let store = MemoryStore::default();
    let t = rfc3339("2027-01-15T07:30:00Z").unwrap();
    let env = Env {
        now: at(t),
        store: &store,
    };
    let get = RequestView::new("GET", "/orders", &[]).unwrap();
    let Verdict::Mutate(ops) = signer.on_request(&get, &env) else {
        panic!("a GET is signed at once")
    };
    let HeaderOp::Set(_, input) = &ops[0] else {
        panic!()
    };
    assert!(input.contains("keyid=\"b\""), "{input}");
    assert!(
        input.starts_with(r#"sig1=("@method" "@authority" "@path" "@query");"#),
        "{input}"
    );
}

#[test]
fn policy_errors_name_the_field() {
    let err = |p: &str| configure::<RequestSigning>(p.as_bytes()).unwrap_err();
    let e = err(r#"{"keys": []}"#);
    assert_eq!(e.path, "keys");
    let e = err(r#"{"keys": [{"keyid": "a", "secret": "c2hvcnQ="}]}"#);
    assert_eq!(e.path, "keys[0].secret");
    assert!(e.reason.contains("at least 32"), "{e}");
    assert!(!e.reason.contains("c2hvcnQ"), "{e}");
    let e = err(r#"{"keys": [{"keyid": "a"}]}"#);
    assert_eq!(e.path, "keys[0]");
    let e = err(r#"{"keys": [{"keyid": "a", "secret_env": "PORTCULLIS_TEST_UNSET_VAR"}]}"#);
    assert_eq!(e.path, "keys[0].secret_env");
    let e = err(&format!(
        r#"{{"keys": [{{"keyid": "a", "secret": "{SECRET_A}", "not_before": "tomorrow"}}]}}"#
    ));
    assert_eq!(e.path, "keys[0].not_before");
    let e = err(&format!(
        r#"{{"keys": [{{"keyid": "a", "secret": "{SECRET_A}"}}, {{"keyid": "a", "secret": "{SECRET_B}"}}]}}"#
    ));
    assert_eq!(e.path, "keys[1].keyid");
    let e = err(&format!(
        r#"{{"keys": [{{"keyid": "a", "secret": "{SECRET_A}"}}], "default": {{"components": ["@status"]}}}}"#
    ));
    assert_eq!(e.path, "default.components[0]");
    let e = err(&format!(
        r#"{{"keys": [{{"keyid": "a", "secret": "{SECRET_A}"}}], "default": {{"key_ids": ["x"]}}}}"#
    ));
    assert_eq!(e.path, "default.key_ids[0]");
    let e = err(&format!(
        r#"{{"keys": [{{"keyid": "a", "secret": "{SECRET_A}"}}], "label": "Sig"}}"#
    ));
    assert_eq!(e.path, "label");
    // `a;x` parses as a key with a parameter, but no signature could ever carry that label.
    let e = err(&format!(
        r#"{{"keys": [{{"keyid": "a", "secret": "{SECRET_A}"}}], "label": "a;x"}}"#
    ));
    assert_eq!(e.path, "label");
    let e = err(&format!(
        r#"{{"keys": [{{"keyid": "a", "secret": "{SECRET_A}"}}], "default": {{"components": []}}}}"#
    ));
    assert_eq!(e.path, "default.components");
    let e = err(&format!(
        r#"{{"keys": [{{"keyid": "a", "secret": "{SECRET_A}"}}], "window_secs": 0}}"#
    ));
    assert_eq!(e.path, "window_secs");
    let e = err(&format!(
        r#"{{"keys": [{{"keyid": "a", "secret": "{SECRET_A}"}}], "mode": "both"}}"#
    ));
    assert_eq!(e.path, "mode");
}

#[test]
fn secrets_from_the_environment() {
    std::env::set_var("PORTCULLIS_TEST_SIG_SECRET", SECRET_A);
    let c: RequestSigning =
        configure(br#"{"keys": [{"keyid": "a", "secret_env": "PORTCULLIS_TEST_SIG_SECRET"}]}"#)
            .unwrap();
    assert_eq!(*c.keys[0].secret, vec![b'a'; 32]);
}

#[test]
fn every_derived_component_and_structured_field_parameters_verify() {
    let comps = [
        "@method",
        "@target-uri",
        "@authority",
        "@scheme",
        "@request-target",
        "@path",
        "@query",
        "content-type",
        "x-dict;sf",
        "x-dict;key=\"b\"",
        "x-raw;bs",
        "content-digest",
    ];
    let policy = format!(
        r#"{{"keys": [{{"keyid": "a", "secret": "{SECRET_A}"}}],
            "default": {{"components": {}}}}}"#,
        serde_json::to_string(&comps).unwrap()
    );
    let c: RequestSigning = configure(policy.as_bytes()).unwrap();
    let store = MemoryStore::default();
    let mut case = post("/orders?id=7", b"{}");
    case.headers
        .push(("x-dict".into(), "a=1,  b=(x y);q=2".into()));
    case.headers.push(("x-raw".into(), "raw value".into()));
    let case = case.signed("a", SECRET_A, T0, &comps);
    assert_eq!(code(&run(&c, &case, &store, T0)), "ok");
    // Whitespace inside the structured field does not matter to `;sf` …
    let mut spaced = post("/orders?id=7", b"{}");
    spaced
        .headers
        .push(("x-dict".into(), "a=1, b=(x   y);q=2".into()));
    spaced.headers.push(("x-raw".into(), "raw value".into()));
    let mut spaced = spaced.signed("a", SECRET_A, T0, &comps);
    *spaced.header_mut("x-dict") = "a=1,b=(x y);q=2".into();
    assert_eq!(code(&run(&c, &spaced, &store, T0)), "ok");
    // … but a changed member does.
    let mut changed = post("/orders?id=7", b"{}");
    changed
        .headers
        .push(("x-dict".into(), "a=1, b=(x y);q=2".into()));
    changed.headers.push(("x-raw".into(), "raw value".into()));
    let mut changed = changed.signed("a", SECRET_A, T0, &comps);
    *changed.header_mut("x-dict") = "a=1, b=(x z);q=2".into();
    assert_eq!(code(&run(&c, &changed, &store, T0)), "signature.bad");
}

#[test]
fn sign_mode_buffers_the_body_when_content_digest_is_covered_without_require_digest() {
    let policy = format!(
        r#"{{"mode": "sign", "keys": [{{"keyid": "a", "secret": "{SECRET_A}"}}],
            "default": {{"require_digest": false, "components": ["@method", "content-digest"]}}}}"#
    );
    let signer: RequestSigning = configure(policy.as_bytes()).unwrap();
    let store = MemoryStore::default();
    let env = Env {
        now: at(T0),
        store: &store,
    };
    let case = post("/x", b"{}");
    let view = case.view();
    assert!(matches!(
        signer.on_request(&view, &env),
        Verdict::NeedBody { .. }
    ));
    let Verdict::Mutate(ops) = signer.on_request_body(&view, b"{}", &env) else {
        panic!("mutates")
    };
    assert_eq!(
        ops[0],
        HeaderOp::Set(
            "content-digest".into(),
            signing::digest::content_digest(signing::Algorithm::Sha256, b"{}")
        )
    );
}

impl Case {
    /// Add one more signature, labelled `label`, as a second verifier's signer would.
    fn also_signed(mut self, label: &str, keyid: &str, secret: &str, created: u64) -> Self {
        let mut req = SignRequest::new(keyid, created, FULL);
        req.label = label.into();
        req.nonce = signing::random_nonce();
        let before = self.headers.len();
        self = self.signed_as(secret, &req);
        // One Content-Digest field is enough: the new signature covers the same body.
        let mut seen = false;
        let mut i = 0;
        self.headers.retain(|(k, _)| {
            let extra = i >= before && k == "content-digest" && seen;
            seen |= k == "content-digest";
            i += 1;
            !extra
        });
        self
    }

    /// A signature pair appended as raw text.
    fn with_pair(mut self, input: &str, signature: &str) -> Self {
        self.headers.push(("signature-input".into(), input.into()));
        self.headers.push(("signature".into(), signature.into()));
        self
    }
}

/// A well-formed pair by key `a` whose MAC is wrong.
fn forged_pair(label: &str) -> (String, String) {
    (
        format!(
            r#"{label}=("@method" "@authority" "@path" "@query" "content-type" "content-digest");created={T0};keyid="a";nonce="{label}""#
        ),
        format!("{label}=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:"),
    )
}

#[test]
fn any_one_valid_signature_by_a_known_key_verifies() {
    let c = control("");
    let store = MemoryStore::default();
    // For another verifier (a key we do not know) first, then ours.
    let other_first = post("/orders", b"{}")
        .signed("partner", SECRET_B, T0, FULL)
        .also_signed("ours", "a", SECRET_A, T0);
    assert_eq!(code(&run(&c, &other_first, &store, T0)), "ok");
    let ours_first = post("/orders", b"{}")
        .signed("a", SECRET_A, T0, FULL)
        .also_signed("theirs", "partner", SECRET_B, T0);
    assert_eq!(code(&run(&c, &ours_first, &store, T0)), "ok");
}

#[test]
fn signatures_by_unknown_keys_are_ignored_not_errors() {
    let c = control("");
    let store = MemoryStore::default();
    // Only unknown keys: nothing we can verify.
    let unknown = post("/orders", b"{}")
        .signed("p1", SECRET_A, T0, FULL)
        .also_signed("two", "p2", SECRET_B, T0);
    assert_eq!(
        code(&run(&c, &unknown, &store, T0)),
        "signature.key_unknown"
    );
    // Beside a valid one, they are not even reported.
    let mixed = post("/orders", b"{}")
        .signed("p1", SECRET_A, T0, FULL)
        .also_signed("ours", "a", SECRET_A, T0);
    assert_eq!(run(&c, &mixed, &store, T0), Verdict::Continue);
}

#[test]
fn a_malformed_signature_is_skipped_and_reported() {
    let c = control("");
    let store = MemoryStore::default();
    let case = post("/orders", b"{}")
        .with_pair(r#"junk=("@method");keyid="a""#, "junk=AAAA")
        .signed("a", SECRET_A, T0, FULL);
    match run(&c, &case, &store, T0) {
        Verdict::Report(r) => {
            assert_eq!(r.code, "signature.skipped");
            assert!(
                r.detail.contains("`junk` (signature.malformed)"),
                "{}",
                r.detail
            );
        }
        v => panic!("{v:?}"),
    }
    // Alone, the malformed pair is what the request is refused for.
    let alone = post("/orders", b"{}").with_pair(r#"junk=("@method");keyid="a""#, "junk=AAAA");
    assert_eq!(code(&run(&c, &alone, &store, T0)), "signature.malformed");
}

#[test]
fn no_more_than_max_signatures_are_tried() {
    let c = control("");
    let store = MemoryStore::default();
    let flood = |forged: usize| {
        let mut case = post("/orders", b"{}");
        for i in 0..forged {
            let (input, sig) = forged_pair(&format!("f{i}"));
            case = case.with_pair(&input, &sig);
        }
        case.also_signed("genuine", "a", SECRET_A, T0)
    };
    // The genuine signature is the last one tried: it verifies (the forged ones are reported).
    let last_tried = flood(signing::MAX_SIGNATURES - 1);
    match run(&c, &last_tried, &store, T0) {
        Verdict::Report(r) => assert_eq!(r.code, "signature.skipped"),
        v => panic!("{v:?}"),
    }
    // One place further it is never looked at: the forged ones are what failed.
    let beyond = flood(signing::MAX_SIGNATURES);
    assert_eq!(code(&run(&c, &beyond, &store, T0)), "signature.bad");
}

#[test]
fn when_none_verifies_the_error_of_a_known_key_is_the_answer() {
    let c = control("");
    let store = MemoryStore::default();
    let case = post("/orders", b"{}")
        .with_pair(r#"junk=("@method")"#, "junk=:AAAA:")
        .signed("partner", SECRET_B, T0, FULL)
        .also_signed("ours", "a", SECRET_A, T0 - 1000);
    assert_eq!(code(&run(&c, &case, &store, T0)), "signature.stale");
}

#[test]
fn the_policy_label_pins_one_signature() {
    let c = control(r#", "label": "ours""#);
    let store = MemoryStore::default();
    // A valid `sig1` does not stand in for a forged `ours`.
    let (input, sig) = forged_pair("ours");
    let case = post("/orders", b"{}")
        .signed("a", SECRET_A, T0, FULL)
        .with_pair(&input, &sig);
    assert_eq!(code(&run(&c, &case, &store, T0)), "signature.bad");
    let genuine = post("/orders", b"{}")
        .signed("a", SECRET_A, T0, FULL)
        .also_signed("ours", "a", SECRET_A, T0);
    assert_eq!(code(&run(&c, &genuine, &store, T0)), "ok");
}

#[test]
fn a_nonce_is_single_use_whatever_else_differs() {
    let c = control("");
    let store = MemoryStore::default();
    let with_nonce = |created: u64, label: &str, components: &[&str]| {
        let mut req = SignRequest::new("a", created, components);
        req.nonce = Some("the-nonce".into());
        req.label = label.into();
        post("/orders", b"{}").signed_as(SECRET_A, &req)
    };
    assert_eq!(
        code(&run(&c, &with_nonce(T0, "sig1", FULL), &store, T0)),
        "ok"
    );
    // Re-signed with another `created` (another time slot), label or component order.
    let mut reordered = FULL.to_vec();
    reordered.reverse();
    for (created, label, components) in [
        (T0 + 35, "sig1", FULL),
        (T0 - 200, "sig1", FULL),
        (T0 + 20, "other", FULL),
        (T0 + 5, "sig1", &reordered[..]),
    ] {
        let v = run(&c, &with_nonce(created, label, components), &store, T0 + 10);
        assert_eq!(code(&v), "signature.replayed", "created {created}, {label}");
    }
}

/// A route whose signatures must cover `content-digest`, body or not.
fn files_policy(extra: &str) -> String {
    format!(
        r#"{{"keys": [{{"keyid": "a", "secret": "{SECRET_A}"}}],
  "routes": [{{"match": {{"prefix": "/files"}}, "components": ["@method", "@path", "content-digest"]}}]
  {extra}}}"#
    )
}

#[test]
fn a_route_listing_content_digest_requires_it_without_a_body_too() {
    let c: RequestSigning = configure(files_policy("").as_bytes()).unwrap();
    let store = MemoryStore::default();
    let get = || {
        let mut g = post("/files/1", b"");
        g.method = "GET";
        g.headers.retain(|(k, _)| k != "content-length");
        g
    };
    let without = get().signed("a", SECRET_A, T0, &["@method", "@path"]);
    assert_eq!(code(&run(&c, &without, &store, T0)), "signature.components");
    // Covered, with the digest of the empty body: passes.
    let with = get().signed("a", SECRET_A, T0, &["@method", "@path", "content-digest"]);
    assert!(with.headers.iter().any(|(k, _)| k == "content-digest"));
    assert_eq!(code(&run(&c, &with, &store, T0)), "ok");
    // A digest of some other body in place of the signed one: the signature breaks.
    let mut lying = get().signed("a", SECRET_A, T0, &["@method", "@path", "content-digest"]);
    *lying.header_mut("content-digest") =
        signing::digest::content_digest(signing::Algorithm::Sha256, b"x");
    assert_eq!(code(&run(&c, &lying, &store, T0)), "signature.bad");
}

#[test]
fn sign_mode_covers_a_listed_content_digest_without_a_body() {
    let signer: RequestSigning = configure(files_policy(r#", "mode": "sign""#).as_bytes()).unwrap();
    let store = MemoryStore::default();
    let env = Env {
        now: at(T0),
        store: &store,
    };
    let get = RequestView::new("GET", "/files/1", &[]).unwrap();
    let Verdict::Mutate(ops) = signer.on_request(&get, &env) else {
        panic!("a GET is signed at once")
    };
    let empty = signing::digest::content_digest(signing::Algorithm::Sha256, b"");
    assert!(
        ops.contains(&HeaderOp::Set("content-digest".into(), empty)),
        "{ops:?}"
    );
    let Some(HeaderOp::Set(_, input)) = ops
        .iter()
        .find(|op| matches!(op, HeaderOp::Set(k, _) if k == "signature-input"))
    else {
        panic!("{ops:?}")
    };
    assert!(input.contains("\"content-digest\""), "{input}");
}

mod fleet {
    //! `replay_store: etcd`: the control's side of the store, driven through ask → answers →
    //! verdict with a store played in memory (tests/etcd_store.rs plays it with a real etcd).
    use super::*;
    use crate::callout::{Answer, CalloutFailure, CalloutResponse, HostCapabilities};
    use crate::control::parse_policy;
    use std::cell::RefCell;
    use std::collections::HashSet;

    fn store_policy(on_unavailable: &str) -> String {
        policy(&format!(
            r#", "replay_store": {{"kind": "etcd", "cluster": "etcd", "prefix": "/portcullis/test/",
                 "timeout_ms": 200, "on_unavailable": "{on_unavailable}"}}"#
        ))
    }

    fn fleet_control(on_unavailable: &str) -> RequestSigning {
        let p: Policy = parse_policy(store_policy(on_unavailable).as_bytes()).unwrap();
        RequestSigning::build_with(p, HostCapabilities::ALL).unwrap()
    }

    /// Grant the control a lease as the host's background work would.
    fn with_lease(c: &RequestSigning, store: &MemoryStore, now: u64) {
        let env = Env {
            now: at(now),
            store,
        };
        let calls = c.on_tick(&env);
        assert_eq!(calls.len(), 1, "one lease grant");
        assert_eq!(calls[0].path, "/v3/lease/grant");
        let resp = CalloutResponse {
            status: 200,
            body: br#"{"header":{},"ID":"694d77aa9e38260f","TTL":"900"}"#.to_vec(),
        };
        // An id etcd writes in decimal.
        let resp = CalloutResponse {
            body: String::from_utf8(resp.body)
                .unwrap()
                .replace("694d77aa9e38260f", "7587862072907589135")
                .into_bytes(),
            ..resp
        };
        c.on_callout_response(calls[0].tag, Some(resp), &env);
        assert!(c.on_tick(&env).is_empty(), "the lease is fresh");
    }

    /// etcd in memory: the txn's compare on `create_revision` 0, put only when it holds.
    #[derive(Default)]
    struct MemEtcd {
        keys: RefCell<HashSet<String>>,
        calls: RefCell<usize>,
    }

    impl MemEtcd {
        fn answer(&self, c: &Callout) -> Answer {
            *self.calls.borrow_mut() += 1;
            assert_eq!(
                (c.path.as_str(), c.cluster.as_str()),
                ("/v3/kv/txn", "etcd")
            );
            let b: serde_json::Value = serde_json::from_slice(c.body.as_deref().unwrap()).unwrap();
            assert_eq!(b["compare"][0]["target"], "CREATE");
            assert_eq!(b["compare"][0]["create_revision"], "0");
            assert_eq!(
                b["success"][0]["request_put"]["lease"],
                "7587862072907589135"
            );
            let key = b["compare"][0]["key"].as_str().unwrap().to_string();
            let fresh = self.keys.borrow_mut().insert(key);
            let body = if fresh {
                r#"{"header":{"revision":"2"},"succeeded":true}"#
            } else {
                r#"{"header":{"revision":"2"}}"#
            };
            Ok(CalloutResponse {
                status: 200,
                body: body.into(),
            })
        }
    }

    /// Both phases and the ask, as the host runs them.
    fn drive(
        c: &RequestSigning,
        case: &Case,
        store: &MemoryStore,
        now: u64,
        answer: impl Fn(&Callout) -> Answer,
    ) -> (Verdict, bool) {
        let env = Env {
            now: at(now),
            store,
        };
        let view = case.view();
        let (v, body) = match c.on_request(&view, &env) {
            Verdict::NeedBody { .. } => (c.on_request_body(&view, &case.body, &env), true),
            v => (v, false),
        };
        match v {
            Verdict::Ask(ask) => {
                let answers: Vec<Answer> = ask.callouts.iter().map(&answer).collect();
                let body = body.then_some(case.body.as_slice());
                (c.on_answers(&view, body, &ask.state, &answers, &env), true)
            }
            v => (v, false),
        }
    }

    fn signed_post(created: u64) -> Case {
        post("/orders?id=7", br#"{"a":1}"#).signed("a", SECRET_A, created, FULL)
    }

    #[test]
    fn replay_store_etcd_is_refused_by_a_host_without_request_time_callouts() {
        let p: Policy = crate::control::parse_policy(store_policy("deny").as_bytes()).unwrap();
        let e = RequestSigning::build_with(p, HostCapabilities::NONE)
            .err()
            .unwrap();
        assert_eq!(e.path, "replay_store.kind");
        assert_eq!(
            e.reason,
            "`etcd` needs request-time callouts, which this host does not run"
        );
        // The proxy-wasm host runs them; `local` runs everywhere.
        configure::<RequestSigning>(store_policy("deny").as_bytes()).unwrap();
        configure::<RequestSigning>(policy(r#", "replay_store": {"kind": "local"}"#).as_bytes())
            .unwrap();
    }

    #[test]
    fn replay_store_policy_errors_name_the_field() {
        let err = |store: &str| {
            let p: Result<Policy, _> =
                parse_policy(policy(&format!(r#", "replay_store": {store}"#)).as_bytes());
            match p {
                Err(e) => e,
                Ok(p) => RequestSigning::build_with(p, HostCapabilities::ALL).unwrap_err(),
            }
        };
        let e = err(r#"{"kind": "etcd", "cluster": "etcd", "prefix": "/p/", "timeout_ms": 0}"#);
        assert_eq!(e.path, "replay_store.timeout_ms");
        let e = err(r#"{"kind": "etcd", "cluster": "etcd", "prefix": "a b"}"#);
        assert_eq!(e.path, "replay_store.prefix");
        let e = err(r#"{"kind": "etcd", "cluster": "", "prefix": "/p/"}"#);
        assert_eq!(e.path, "replay_store.cluster");
        let e = err(r#"{"kind": "etcd", "cluster": "etcd"}"#);
        assert_eq!(e.path, "replay_store.prefix");
        let e = err(r#"{"kind": "etcd", "prefix": "/p/"}"#);
        assert_eq!(e.path, "replay_store.cluster");
        let e = err(r#"{"kind": "local", "prefix": "/p/"}"#);
        assert_eq!(e.path, "replay_store.prefix");
        assert_eq!(e.reason, "only with `kind: etcd`");
        let e = err(r#"{"kind": "etcd", "cluster": "etcd", "prefix": "/p/", "ttl": 1}"#);
        assert!(e.reason.contains("unknown field `ttl`"), "{e}");
        let e = err(r#"{"kind": "redis"}"#);
        assert!(e.path.starts_with("replay_store"), "{e}");
        assert!(e.reason.contains("unknown variant `redis`"), "{e}");
        let e = err(
            r#"{"kind": "etcd", "cluster": "etcd", "prefix": "/p/", "on_unavailable": "pass"}"#,
        );
        assert_eq!(e.path, "replay_store.on_unavailable");
        let p: Policy = parse_policy(
            policy(r#", "mode": "sign", "replay_store": {"kind": "etcd", "cluster": "etcd", "prefix": "/p/"}"#)
                .as_bytes(),
        )
        .unwrap();
        let e = RequestSigning::build_with(p, HostCapabilities::ALL).unwrap_err();
        assert_eq!(e.path, "replay_store");
    }

    #[test]
    fn a_request_accepted_by_one_replica_is_refused_as_a_replay_by_another() {
        let etcd = MemEtcd::default();
        let (a, b) = (fleet_control("deny"), fleet_control("deny"));
        let (sa, sb) = (MemoryStore::default(), MemoryStore::default());
        with_lease(&a, &sa, T0);
        with_lease(&b, &sb, T0);
        let case = signed_post(T0);
        let (v, asked) = drive(&a, &case, &sa, T0 + 1, |c| etcd.answer(c));
        assert!(asked);
        assert_eq!(code(&v), "ok");
        // Replayed to the other replica: its own cache never saw it, the store did.
        let (v, asked) = drive(&b, &case, &sb, T0 + 2, |c| etcd.answer(c));
        assert!(asked);
        assert_eq!(code(&v), "signature.replayed");
        assert_eq!(status(&v), 401);
        // Replayed to either again: the local cache in front refuses it without a round trip.
        for (c, s) in [(&a, &sa), (&b, &sb)] {
            let (v, asked) = drive(c, &case, s, T0 + 3, |_| panic!("no round trip"));
            assert!(!asked);
            assert_eq!(code(&v), "signature.replayed");
        }
        assert_eq!(*etcd.calls.borrow(), 2);
        // A fresh nonce passes on either.
        let (v, _) = drive(&b, &signed_post(T0), &sb, T0 + 4, |c| etcd.answer(c));
        assert_eq!(code(&v), "ok");
    }

    #[test]
    fn skipped_signatures_are_still_reported_after_the_store_decides() {
        let etcd = MemEtcd::default();
        let c = fleet_control("deny");
        let s = MemoryStore::default();
        with_lease(&c, &s, T0);
        let case = post("/orders?id=7", br#"{"a":1}"#)
            .with_pair(r#"junk=("@method");keyid="a""#, "junk=AAAA")
            .signed("a", SECRET_A, T0, FULL);
        let (v, asked) = drive(&c, &case, &s, T0 + 1, |x| etcd.answer(x));
        assert!(asked);
        assert!(
            matches!(v, Verdict::Report(ref r) if r.code == "signature.skipped"),
            "{v:?}"
        );
    }

    #[test]
    fn store_unavailable_fails_closed_by_default_and_spends_nothing_locally() {
        let c = fleet_control("deny");
        let s = MemoryStore::default();
        with_lease(&c, &s, T0);
        let case = signed_post(T0);
        let failures: Vec<Answer> = vec![
            Err(CalloutFailure::Timeout),
            Err(CalloutFailure::Reset),
            Err(CalloutFailure::NoCluster),
            Ok(CalloutResponse {
                status: 503,
                body: br#"{"error":"etcdserver: request timed out","code":14}"#.to_vec(),
            }),
            Ok(CalloutResponse {
                status: 200,
                body: b"<html>".to_vec(),
            }),
        ];
        for f in failures {
            let (v, asked) = drive(&c, &case, &s, T0 + 1, |_| f.clone());
            assert!(asked);
            assert_eq!(code(&v), "signature.replay_store_unavailable", "{f:?}");
            assert_eq!(status(&v), 503);
        }
        // Nothing was spent here (these answers say the store did not take it either): once
        // the store answers, the same request passes, once.
        let etcd = MemEtcd::default();
        assert_eq!(
            code(&drive(&c, &case, &s, T0 + 2, |x| etcd.answer(x)).0),
            "ok"
        );
        assert_eq!(
            code(&drive(&c, &case, &s, T0 + 3, |x| etcd.answer(x)).0),
            "signature.replayed"
        );
    }

    #[test]
    fn store_unavailable_with_allow_passes_on_the_local_cache_and_is_reported() {
        let c = fleet_control("allow");
        let s = MemoryStore::default();
        with_lease(&c, &s, T0);
        let case = signed_post(T0);
        let (v, _) = drive(&c, &case, &s, T0 + 1, |_| Err(CalloutFailure::Timeout));
        match v {
            Verdict::Pass { ops, reports } => {
                assert!(ops.is_empty());
                assert_eq!(reports.len(), 1);
                assert_eq!(reports[0].code, "signature.replay_store_unavailable");
            }
            other => panic!("{other:?}"),
        }
        // The local cache still refuses the replay here.
        let (v, asked) = drive(&c, &case, &s, T0 + 2, |_| Err(CalloutFailure::Timeout));
        assert!(!asked);
        assert_eq!(code(&v), "signature.replayed");
    }

    #[test]
    fn without_a_lease_nothing_is_inserted_and_the_policy_decides() {
        let c = fleet_control("deny");
        let s = MemoryStore::default();
        // No tick answered yet: a put without a lease would keep the key forever.
        let (v, asked) = drive(&c, &signed_post(T0), &s, T0, |_| panic!("no call"));
        assert!(!asked);
        assert_eq!(code(&v), "signature.replay_store_unavailable");
    }

    #[test]
    fn a_lost_lease_is_replaced_at_the_next_tick() {
        let c = fleet_control("deny");
        let s = MemoryStore::default();
        with_lease(&c, &s, T0);
        let gone = Ok(CalloutResponse {
            status: 404,
            body: br#"{"error":"etcdserver: requested lease not found","code":5}"#.to_vec(),
        });
        let (v, _) = drive(&c, &signed_post(T0), &s, T0 + 1, |_| gone.clone());
        assert_eq!(code(&v), "signature.replay_store_unavailable");
        let env = Env {
            now: at(T0 + 1),
            store: &s,
        };
        let calls = c.on_tick(&env);
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].path, "/v3/lease/grant");
    }

    /// In a guard chain, request-signing asks from the body phase (its digest is checked
    /// first), and content-type after it still checks the body once the store answered.
    #[test]
    fn in_a_chain_the_members_after_the_store_still_run() {
        use crate::chain::{build_dyn, Chain};
        use crate::controls::content_type::ContentType;
        let etcd = MemEtcd::default();
        let chain = |c: RequestSigning| {
            Chain::new(vec![
                Box::new(c),
                build_dyn::<ContentType>(&serde_json::json!({})).unwrap(),
            ])
            .unwrap()
        };
        let (a, b) = (chain(fleet_control("deny")), chain(fleet_control("deny")));
        let (sa, sb) = (MemoryStore::default(), MemoryStore::default());
        let run = |g: &Chain, s: &MemoryStore, case: &Case| {
            let env = Env {
                now: at(T0 + 1),
                store: s,
            };
            let view = case.view();
            assert!(matches!(
                g.on_request(&view, &env),
                Verdict::NeedBody { .. }
            ));
            match g.on_request_body(&view, &case.body, &env) {
                Verdict::Ask(ask) => {
                    let answers: Vec<Answer> =
                        ask.callouts.iter().map(|c| etcd.answer(c)).collect();
                    g.on_answers(&view, Some(&case.body), &ask.state, &answers, &env)
                }
                v => v,
            }
        };
        // Leases for both (the chain's ticks carry the member index in the tag).
        for (g, s) in [(&a, &sa), (&b, &sb)] {
            let env = Env {
                now: at(T0),
                store: s,
            };
            let calls = g.on_tick(&env);
            assert_eq!(calls.len(), 1);
            let resp = CalloutResponse {
                status: 200,
                body: br#"{"ID":"7587862072907589135","TTL":"900"}"#.to_vec(),
            };
            g.on_callout_response(calls[0].tag, Some(resp), &env);
        }
        let case = signed_post(T0);
        let v = run(&a, &sa, &case);
        assert!(
            matches!(v, Verdict::Pass { ref ops, ref reports } if ops.is_empty() && reports.is_empty()),
            "{v:?}"
        );
        // Replayed to the other replica's chain: refused by the store's answer.
        assert_eq!(code(&run(&b, &sb, &case)), "signature.replayed");
        // A body content-type refuses, signed correctly: the store is asked (the signature is
        // good), then content-type refuses it.
        let bad = post("/orders?id=8", b"{not json").signed("a", SECRET_A, T0, FULL);
        let v = run(&a, &sa, &bad);
        assert_eq!(code(&v), "content_type.body_mismatch");
    }

    #[test]
    fn answers_with_a_state_that_is_not_ours_fail_closed() {
        let c = fleet_control("deny");
        let s = MemoryStore::default();
        let env = Env {
            now: at(T0),
            store: &s,
        };
        let view = signed_post(T0).view();
        let v = c.on_answers(&view, None, &crate::callout::Resume::new(()), &[], &env);
        assert_eq!(code(&v), "internal.unhandled_answers");
    }
}
