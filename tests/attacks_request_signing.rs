//! Attacks on request signatures against a real Envoy: replay, stale and future signatures,
//! tampered covered components, signatures covering less than required, forged keys. Each gets
//! its exact status and code, and the upstream sees nothing.

mod signing_support;
mod support;

use portcullis::signing::{self, SignRequest};
use signing_support::*;
use support::*;

fn start() -> Envoy {
    envoy()
        .filter(Filter::new("request-signing", verify_policy()).vm_env(SECRET_ENV, SECRET))
        .start()
}

const BODY: &[u8] = br#"{"to": "acct-1", "amount": 100}"#;
const CT: (&str, &str) = ("content-type", "application/json");

fn signed(created: u64, components: &[&str]) -> Vec<(String, String)> {
    lib_sign("POST", "/orders?tenant=7", &[CT], BODY, created, components)
}

#[test]
fn replaying_a_captured_request_is_401_and_reaches_the_upstream_once() {
    let e = start();
    let s = signed(now(), FULL);
    let h = with(&[CT], &s);
    assert_eq!(e.post("/orders?tenant=7", &h, BODY).status, 200);
    for _ in 0..3 {
        e.post("/orders?tenant=7", &h, BODY)
            .assert_problem(401, "signature.replayed");
    }
    assert_eq!(e.upstream_seen().len(), 1);
}

#[test]
fn a_replay_with_a_second_signature_label_added_is_still_a_replay() {
    let e = start();
    let s = signed(now(), FULL);
    assert_eq!(
        e.post("/orders?tenant=7", &with(&[CT], &s), BODY).status,
        200
    );
    // A client cannot dodge the cache by appending a junk signature: the genuine one still
    // verifies, and its nonce is spent.
    let mut s2 = s.clone();
    s2[1]
        .1
        .push_str(r#", x=("@method");created=1;keyid="client-1";nonce="n""#);
    s2[2].1.push_str(", x=:AAAA:");
    e.post("/orders?tenant=7", &with(&[CT], &s2), BODY)
        .assert_problem(401, "signature.replayed");
    assert_eq!(e.upstream_seen().len(), 1);
}

/// Signed by a partner whose key we do not hold, for another verifier.
fn partner_signed(label: &str) -> Vec<(String, String)> {
    let mut partner = SignRequest::new("partner", now(), FULL);
    partner.label = label.into();
    partner.nonce = signing::random_nonce();
    lib_sign_as(
        "POST",
        "/orders?tenant=7",
        &[CT],
        BODY,
        OTHER_SECRET,
        &partner,
    )
}

/// Signed for `client-1` (our key) and for a partner verifier.
fn for_two_verifiers(partner_first: bool) -> Vec<(String, String)> {
    let theirs = partner_signed("partner");
    let ours = signed(now(), FULL);
    if partner_first {
        both(&theirs, &ours)
    } else {
        both(&ours, &theirs)
    }
}

const OTHER_SECRET: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

#[test]
fn any_one_valid_signature_by_a_known_key_verifies_and_unknown_keys_are_ignored() {
    let e = start();
    for partner_first in [true, false] {
        let s = for_two_verifiers(partner_first);
        assert_eq!(
            e.post("/orders?tenant=7", &with(&[CT], &s), BODY).status,
            200,
            "partner first: {partner_first}"
        );
    }
    assert_eq!(e.upstream_seen().len(), 2);
    // Only the partner's signature: nothing we can verify.
    let theirs = partner_signed("sig1");
    e.post("/orders?tenant=7", &with(&[CT], &theirs), BODY)
        .assert_problem(401, "signature.key_unknown");
    assert_eq!(e.upstream_seen().len(), 2);
}

#[test]
fn a_flood_of_forged_signatures_is_tried_only_up_to_the_cap() {
    let e = start();
    let genuine = signed(now(), FULL);
    let forged: Vec<String> = (0..signing::MAX_SIGNATURES)
        .map(|i| {
            format!(
                r#"f{i}=("@method" "@authority" "@path" "@query" "content-type" "content-digest");created={};keyid="client-1";nonce="f{i}""#,
                now()
            )
        })
        .collect();
    let sigs: Vec<String> = (0..signing::MAX_SIGNATURES)
        .map(|i| format!("f{i}=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:"))
        .collect();
    // The genuine signature comes after the cap: never tried, the forged ones fail.
    let flood = vec![
        genuine[0].clone(),
        (
            "Signature-Input".into(),
            format!("{}, {}", forged.join(", "), genuine[1].1),
        ),
        (
            "Signature".into(),
            format!("{}, {}", sigs.join(", "), genuine[2].1),
        ),
    ];
    e.post("/orders?tenant=7", &with(&[CT], &flood), BODY)
        .assert_problem(401, "signature.bad");
    assert!(e.upstream_seen().is_empty());
    // The same genuine signature alone still verifies: the flood spent nothing.
    assert_eq!(
        e.post("/orders?tenant=7", &with(&[CT], &genuine), BODY)
            .status,
        200
    );
}

#[test]
fn a_nonce_is_single_use_whatever_else_differs() {
    let e = start();
    let with_nonce = |created: u64, label: &str| {
        let mut req = SignRequest::new("client-1", created, FULL);
        req.nonce = Some("one-nonce".into());
        req.label = label.into();
        lib_sign_as("POST", "/orders?tenant=7", &[CT], BODY, SECRET, &req)
    };
    let t = now();
    let first = with_nonce(t, "sig1");
    assert_eq!(
        e.post("/orders?tenant=7", &with(&[CT], &first), BODY)
            .status,
        200
    );
    // Re-signed by the key holder with another `created` (far enough to be another time slot)
    // or another label: the nonce is spent.
    for (created, label) in [(t - 200, "sig1"), (t - 100, "other"), (t + 20, "sig1")] {
        let again = with_nonce(created, label);
        e.post("/orders?tenant=7", &with(&[CT], &again), BODY)
            .assert_problem(401, "signature.replayed");
    }
    assert_eq!(e.upstream_seen().len(), 1);
}

#[test]
fn a_route_requiring_content_digest_requires_it_of_a_bodiless_request() {
    let e = start();
    let no_digest = &["@method", "@authority", "@path", "@query", "content-type"];
    let s = lib_sign("GET", "/orders?tenant=7", &[CT], b"", now(), no_digest);
    e.get("/orders?tenant=7", &with(&[CT], &s))
        .assert_problem(401, "signature.components");
    assert!(e.upstream_seen().is_empty());
    // Covered: the digest of the empty body.
    let s = lib_sign("GET", "/orders?tenant=7", &[CT], b"", now(), FULL);
    assert!(s.iter().any(|(k, _)| k == "Content-Digest"));
    assert_eq!(e.get("/orders?tenant=7", &with(&[CT], &s)).status, 200);
    assert_eq!(e.upstream_seen().len(), 1);
}

#[test]
fn a_stale_signature_is_401_stale() {
    let e = start();
    // Window 300 s + skew 30 s.
    let s = signed(now() - 400, FULL);
    e.post("/orders?tenant=7", &with(&[CT], &s), BODY)
        .assert_problem(401, "signature.stale");
    assert!(e.upstream_seen().is_empty());
}

#[test]
fn a_signature_from_the_future_is_401_future() {
    let e = start();
    let s = signed(now() + 3600, FULL);
    e.post("/orders?tenant=7", &with(&[CT], &s), BODY)
        .assert_problem(401, "signature.future");
    assert!(e.upstream_seen().is_empty());
}

#[test]
fn tampered_method_path_query_and_header_are_401_bad() {
    let e = start();
    let s = signed(now(), FULL);
    let h = with(&[CT], &s);
    e.request("PUT", "/orders?tenant=7", &h, BODY)
        .assert_problem(401, "signature.bad");
    e.post("/orders/x?tenant=7", &h, BODY)
        .assert_problem(401, "signature.bad");
    e.post("/orders?tenant=8", &h, BODY)
        .assert_problem(401, "signature.bad");
    let other_ct = with(&[("content-type", "application/json; charset=utf-8")], &s);
    e.post("/orders?tenant=7", &other_ct, BODY)
        .assert_problem(401, "signature.bad");
    let other_host = with(&[CT, ("host", "evil.example")], &s);
    e.post("/orders?tenant=7", &other_host, BODY)
        .assert_problem(401, "signature.bad");
    assert!(e.upstream_seen().is_empty());
    // None of them spent the nonce: the genuine request still passes.
    assert_eq!(e.post("/orders?tenant=7", &h, BODY).status, 200);
}

#[test]
fn a_tampered_body_is_401_digest_mismatch() {
    let e = start();
    let s = signed(now(), FULL);
    e.post(
        "/orders?tenant=7",
        &with(&[CT], &s),
        br#"{"to": "acct-666", "amount": 100}"#,
    )
    .assert_problem(401, "digest.mismatch");
    assert!(e.upstream_seen().is_empty());
}

#[test]
fn a_signature_covering_fewer_components_than_required_is_401_components() {
    let e = start();
    // No content-type: a client could be made to send another media type under the signature.
    let s = signed(
        now(),
        &["@method", "@authority", "@path", "@query", "content-digest"],
    );
    e.post("/orders?tenant=7", &with(&[CT], &s), BODY)
        .assert_problem(401, "signature.components");
    // No content-digest: the body would be unprotected.
    let s = signed(
        now(),
        &["@method", "@authority", "@path", "@query", "content-type"],
    );
    e.post("/orders?tenant=7", &with(&[CT], &s), BODY)
        .assert_problem(401, "signature.components");
    // Only the method.
    let s = signed(now(), &["@method"]);
    e.post("/orders?tenant=7", &with(&[CT], &s), BODY)
        .assert_problem(401, "signature.components");
    assert!(e.upstream_seen().is_empty());
}

#[test]
fn a_forged_key_id_or_a_guessed_signature_is_401() {
    let e = start();
    let mut s = signed(now(), FULL);
    s[1].1 = s[1].1.replace("keyid=\"client-1\"", "keyid=\"admin\"");
    e.post("/orders?tenant=7", &with(&[CT], &s), BODY)
        .assert_problem(401, "signature.key_unknown");
    let mut s = signed(now(), FULL);
    s[2].1 = "sig1=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:".into();
    e.post("/orders?tenant=7", &with(&[CT], &s), BODY)
        .assert_problem(401, "signature.bad");
    // alg confusion: only hmac-sha256.
    let mut s = signed(now(), FULL);
    s[1].1.push_str(";alg=\"ed25519\"");
    e.post("/orders?tenant=7", &with(&[CT], &s), BODY)
        .assert_problem(401, "signature.unsupported_alg");
    assert!(e.upstream_seen().is_empty());
}

#[test]
fn malformed_signature_fields_are_401_malformed_and_never_trap_the_vm() {
    let e = start();
    for (input, sig) in [
        ("sig1=(\"@method\"", "sig1=:AAAA:"),
        (
            "sig1=(\"@method\");created=99999999999999999",
            "sig1=:AAAA:",
        ),
        (
            "sig1=(\"@method\" \"@method\");created=1;keyid=\"client-1\";nonce=\"n\"",
            "sig1=:AAAA:",
        ),
        (&format!("sig1=({})", "\"a\" ".repeat(3000)), "sig1=:AAAA:"),
        ("sig1=(\"@method\");created=1", "sig1=:%%%%:"),
    ] {
        let h = [CT, ("signature-input", input), ("signature", sig)];
        let r = e.post("/orders?tenant=7", &h, BODY);
        assert_eq!(r.status, 401, "{input}: {}", r.text());
    }
    assert!(e.upstream_seen().is_empty());
    // The VM is alive: a genuine request passes.
    let s = signed(now(), FULL);
    assert_eq!(
        e.post("/orders?tenant=7", &with(&[CT], &s), BODY).status,
        200
    );
}

#[test]
fn flooding_the_replay_cache_fails_closed_and_never_evicts() {
    // Room for one live nonce.
    let policy = verify_policy().replace("\"keys\"", "\"nonce_capacity\": 1, \"keys\"");
    let e = envoy()
        .filter(Filter::new("request-signing", policy).vm_env(SECRET_ENV, SECRET))
        .start();
    let first = signed(now(), FULL);
    assert_eq!(
        e.post("/orders?tenant=7", &with(&[CT], &first), BODY)
            .status,
        200
    );
    // Another genuine request while the first nonce is live: refused, 503, and counted.
    let second = signed(now(), FULL);
    let r = e.post("/orders?tenant=7", &with(&[CT], &second), BODY);
    r.assert_problem(503, "signature.replay_cache_full");
    assert!(r.header("retry-after").is_some());
    // The first nonce was not evicted to make room.
    e.post("/orders?tenant=7", &with(&[CT], &first), BODY)
        .assert_problem(401, "signature.replayed");
    assert_eq!(e.upstream_seen().len(), 1);
    assert_eq!(
        e.counter("request_signing", "denied", "signature.replay_cache_full"),
        1
    );
}
