//! The same vectors through the facade (whichever backend the build has) and, with
//! `native-crypto`, through both backends side by side, valid and tampered.

use super::*;
use jwt_simple::prelude::*;

// The test keys jwt-auth's unit tests use too (their module is private to jwt_auth).
#[allow(clippy::duplicate_mod)]
#[path = "../../tests/support/jwt.rs"]
mod jwt;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn fips180_4_sha256_and_sha512_of_abc() {
    assert_eq!(
        sha256(b"abc").to_vec(),
        hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    );
    assert_eq!(
        sha512(b"abc").to_vec(),
        hex("ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f")
    );
}

#[test]
fn rfc4231_4_3_hmac_sha2_test_case_2() {
    let (key, data) = (b"Jefe", b"what do ya want for nothing?");
    let cases = [
        (Hmac::Sha256, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        (Hmac::Sha384, "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649"),
        (Hmac::Sha512, "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"),
    ];
    for (alg, tag) in cases {
        let tag = hex(tag);
        assert_eq!(hmac(alg, key, data), tag);
        assert!(hmac_verify(alg, key, data, &tag));
        // RFC 9421 / RFC 7518 take the full tag: a truncated one (RFC 2104 §5) is refused.
        assert!(!hmac_verify(alg, key, data, &tag[..tag.len() - 1]));
        assert!(!hmac_verify(alg, key, data, &tag[..16]));
        let mut bad = tag.clone();
        bad[0] ^= 1;
        assert!(!hmac_verify(alg, key, data, &bad));
    }
}

/// NIST GCM spec test case 16 (AES-256, 96-bit IV, with AAD), the tag refused when cut.
#[test]
fn rfc7518_5_3_aes_gcm_nist_test_case_16() {
    let key = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
    let iv = hex("cafebabefacedbaddecaf888");
    let pt = hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
    let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
    let ct = hex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662");
    let tag = hex("76fc6ece0f4e1768cddf8853bb2d551b");
    let mut buf = pt.clone();
    assert_eq!(
        gcm_seal(Gcm::Aes256, &key, &iv, &aad, &mut buf),
        Some(tag.clone())
    );
    assert_eq!(buf, ct);
    let mut open = ct.clone();
    assert!(gcm_open(Gcm::Aes256, &key, &iv, &aad, &mut open, &tag));
    assert_eq!(open, pt);
    for cut in [15, 12, 0] {
        let mut b = ct.clone();
        assert!(!gcm_open(Gcm::Aes256, &key, &iv, &aad, &mut b, &tag[..cut]));
    }
    let mut b = ct.clone();
    assert!(!gcm_open(Gcm::Aes256, &key, &iv, b"other", &mut b, &tag));
    let mut b = ct.clone();
    b[3] ^= 1;
    assert!(!gcm_open(Gcm::Aes256, &key, &iv, &aad, &mut b, &tag));
    // Only 96-bit IVs and the right key size.
    let mut b = ct.clone();
    assert!(!gcm_open(Gcm::Aes256, &key, &iv[..8], &aad, &mut b, &tag));
    assert!(!gcm_open(Gcm::Aes128, &key, &iv, &aad, &mut b, &tag));
    assert_eq!(gcm_seal(Gcm::Aes128, &key, &iv, &aad, &mut b), None);
}

fn claims() -> serde_json::Value {
    serde_json::json!({"iss": "i", "sub": "s", "exp": 4_000_000_000u64})
}

/// Every way a token can be altered: one signature byte, one payload byte, the signature cut.
fn tampered(token: &str) -> Vec<String> {
    let (input, sig) = token.rsplit_once('.').unwrap();
    let sig = jwt::b64(b64url(sig).unwrap());
    let raw = b64url(token.rsplit_once('.').unwrap().1).unwrap();
    let mut out = Vec::new();
    for at in [0, raw.len() / 2, raw.len() - 1] {
        let mut bad = raw.clone();
        bad[at] ^= 0x01;
        out.push(format!("{input}.{}", jwt::b64(&bad)));
    }
    out.push(format!("{input}.{}", jwt::b64(&raw[..raw.len() - 1])));
    // A signature one octet longer (a leading zero: the same integer for RSA).
    let mut longer = vec![0u8];
    longer.extend_from_slice(&raw);
    out.push(format!("{input}.{}", jwt::b64(&longer)));
    out.push(format!("{input}."));
    let (header, payload) = input.split_once('.').unwrap();
    let mut p = b64url(payload).unwrap();
    p[1] ^= 0x20;
    out.push(format!("{header}.{}.{sig}", jwt::b64(&p)));
    out
}

fn ec_point(x: &[u8], y: &[u8]) -> Vec<u8> {
    let mut p = vec![4u8];
    p.extend_from_slice(x);
    p.extend_from_slice(y);
    p
}

/// (verifier, a valid token) for every algorithm ring may take over.
fn signed() -> Vec<(jws::Verifier, String)> {
    let rsa = jwt::rsa("r");
    let c = rsa.public_key().to_components();
    let ps = PS256KeyPair::from_pem(jwt::RSA_PEM).unwrap();
    let es = jwt::es256("e");
    let es384 = jwt::es384("e");
    let ed = jwt::ed25519("d");
    let point = |jwk: serde_json::Value| {
        ec_point(
            &b64url(jwk["x"].as_str().unwrap()).unwrap(),
            &b64url(jwk["y"].as_str().unwrap()).unwrap(),
        )
    };
    let secret = [7u8; 32];
    vec![
        (
            jws::Verifier::rsa("RS256", &c.n, &c.e).unwrap(),
            jwt::sign_rs256(&rsa, &claims()),
        ),
        (
            jws::Verifier::rsa("PS256", &c.n, &c.e).unwrap(),
            ps.sign(Claims::create(Duration::from_secs(60))).unwrap(),
        ),
        (
            jws::Verifier::ec("ES256", &point(jwt::jwk_es256(&es, "e"))).unwrap(),
            jwt::sign_es256(&es, &claims()),
        ),
        (
            jws::Verifier::ec("ES384", &point(jwt::jwk_es384(&es384, "e"))).unwrap(),
            jwt::sign_es384(&es384, &claims()),
        ),
        (
            jws::Verifier::ed25519(&ed.public_key().to_bytes()).unwrap(),
            jwt::sign_ed25519(&ed, &claims()),
        ),
        (
            jws::Verifier::hmac("HS256", &secret).unwrap(),
            jwt::hs256(&secret, None, &claims()),
        ),
    ]
}

#[test]
fn rfc7515_5_2_valid_signatures_verify_and_altered_ones_do_not() {
    for (key, token) in signed() {
        assert!(key.verify(&token), "{}", key.alg());
        for bad in tampered(&token) {
            assert!(!key.verify(&bad), "{}: {bad}", key.alg());
        }
    }
}

/// RFC 7518 §3.4: an ECDSA JWS signature is `r || s` (64 bytes for P-256), never DER.
#[test]
fn rfc7518_3_4_es256_signature_is_r_concat_s() {
    let es = jwt::es256("e");
    let jwk = jwt::jwk_es256(&es, "e");
    let key = jws::Verifier::ec(
        "ES256",
        &ec_point(
            &b64url(jwk["x"].as_str().unwrap()).unwrap(),
            &b64url(jwk["y"].as_str().unwrap()).unwrap(),
        ),
    )
    .unwrap();
    let token = jwt::sign_es256(&es, &claims());
    let (input, sig) = token.rsplit_once('.').unwrap();
    let sig = b64url(sig).unwrap();
    let der = |part: &[u8]| {
        let mut v = part.to_vec();
        if v[0] & 0x80 != 0 {
            v.insert(0, 0);
        }
        let mut out = vec![2u8, v.len() as u8];
        out.extend(v);
        out
    };
    let (r, s) = (der(&sig[..32]), der(&sig[32..]));
    let mut der_sig = vec![0x30u8, (r.len() + s.len()) as u8];
    der_sig.extend(r);
    der_sig.extend(s);
    assert!(key.verify(&token));
    assert!(!key.verify(&format!("{input}.{}", jwt::b64(&der_sig))));
}

/// RFC 7518 §3.3: 2048 bits at least; this build also caps at 4096 and wants an odd exponent
/// of at least 3 (what both backends can judge alike).
#[test]
fn rfc7518_3_3_rsa_key_size_and_exponent() {
    let c = jwt::rsa("r").public_key().to_components();
    assert!(jws::Verifier::rsa("RS256", &c.n, &c.e).is_some());
    // A leading zero octet does not make a smaller key larger, nor a valid one invalid.
    let mut padded = vec![0u8];
    padded.extend_from_slice(&c.n);
    assert!(jws::Verifier::rsa("RS256", &padded, &c.e).is_some());
    assert!(
        jws::Verifier::rsa("RS256", &c.n[1..], &c.e).is_none(),
        "2040 bits"
    );
    let mut big = c.n.clone();
    big.extend_from_slice(&c.n);
    big.push(1);
    assert!(
        jws::Verifier::rsa("RS256", &big, &c.e).is_none(),
        "over 4096 bits"
    );
    for e in [&[2u8][..], &[1], &[0x01, 0x00, 0x00], &[], &[2, 0, 0, 0, 1]] {
        assert!(jws::Verifier::rsa("RS256", &c.n, e).is_none(), "e = {e:?}");
    }
}

#[cfg(feature = "native-crypto")]
mod both {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_same_answer_from_ring_and_the_pure_backend() {
        for (key, token) in signed() {
            assert!(
                key.verify(&token) && key.verify_with_pure(&token),
                "{}",
                key.alg()
            );
            for bad in tampered(&token) {
                assert_eq!(
                    key.verify(&bad),
                    key.verify_with_pure(&bad),
                    "{}: {bad}",
                    key.alg()
                );
            }
        }
    }

    /// Claims jwt-simple cannot read are refused by both (its shape is checked on ring's path).
    #[test]
    fn rfc7519_4_1_4_exp_of_the_wrong_type_refused_alike() {
        let rsa = jwt::rsa("r");
        let c = rsa.public_key().to_components();
        let key = jws::Verifier::rsa("RS256", &c.n, &c.e).unwrap();
        for claims in [
            serde_json::json!({"exp": "soon"}),
            serde_json::json!({"aud": 5}),
            serde_json::json!({"sub": "x", "exp": 1}),
        ] {
            let token = jwt::sign_rs256(&rsa, &claims);
            assert_eq!(key.verify(&token), key.verify_with_pure(&token), "{claims}");
        }
    }

    /// ECDSA accepts `s` and `n - s` alike (RFC 7518 §3.4 does not ask for low `s`): so do
    /// both backends.
    #[test]
    fn rfc7518_3_4_es256_high_s_accepted_alike() {
        use p256::elliptic_curve::PrimeField;
        let (key, token) = signed().swap_remove(2);
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = b64url(sig).unwrap();
        let s = Option::<p256::Scalar>::from(p256::Scalar::from_repr(
            p256::FieldBytes::try_from(&sig[32..]).unwrap(),
        ))
        .unwrap();
        let mut high = sig[..32].to_vec();
        high.extend_from_slice(&(-s).to_repr());
        let t = format!("{input}.{}", jwt::b64(&high));
        assert!(key.verify(&t));
        assert!(key.verify_with_pure(&t));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn sha2_and_hmac_agree(data in proptest::collection::vec(any::<u8>(), 0..300),
                               key in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assert_eq!(native::sha256(&data), pure::sha256(&data));
            prop_assert_eq!(native::sha512(&data).to_vec(), pure::sha512(&data).to_vec());
            for alg in [Hmac::Sha256, Hmac::Sha384, Hmac::Sha512] {
                let tag = native::hmac(alg, &key, &data);
                prop_assert_eq!(&tag, &pure::hmac(alg, &key, &data));
                prop_assert!(pure::hmac_verify(alg, &key, &data, &tag));
            }
        }

        #[test]
        fn aes_gcm_agrees(data in proptest::collection::vec(any::<u8>(), 0..300),
                          key in proptest::array::uniform32(any::<u8>()),
                          iv in proptest::array::uniform12(any::<u8>()),
                          flip in 0usize..(300 * 8 + 128)) {
            for (alg, k) in [(Gcm::Aes128, &key[..16]), (Gcm::Aes256, &key[..])] {
                let (mut a, mut b) = (data.clone(), data.clone());
                let ta = native::gcm_seal(alg, k, &iv, b"aad", &mut a).unwrap();
                let tb = pure::gcm_seal(alg, k, &iv, b"aad", &mut b).unwrap();
                prop_assert_eq!(&a, &b);
                prop_assert_eq!(&ta, &tb);
                let (mut ct, mut tag) = (a.clone(), ta.clone());
                let bit = flip % (ct.len() * 8 + 128);
                if bit < ct.len() * 8 { ct[bit / 8] ^= 1 << (bit % 8) } else { tag[(bit - ct.len() * 8) / 8] ^= 1 << (bit % 8) }
                let (mut x, mut y) = (ct.clone(), ct.clone());
                prop_assert!(!native::gcm_open(alg, k, &iv, b"aad", &mut x, &tag));
                prop_assert!(!pure::gcm_open(alg, k, &iv, b"aad", &mut y, &tag));
                let (mut x, mut y) = (a.clone(), a.clone());
                prop_assert!(native::gcm_open(alg, k, &iv, b"aad", &mut x, &ta));
                prop_assert!(pure::gcm_open(alg, k, &iv, b"aad", &mut y, &ta));
                prop_assert_eq!(&x, &data);
            }
        }

        /// Any 64 bytes as an ES256 signature: ring and the tables agree.
        #[test]
        fn es256_any_signature_agrees(sig in proptest::collection::vec(any::<u8>(), 64)) {
            let (key, token) = signed().swap_remove(2);
            let (input, _) = token.rsplit_once('.').unwrap();
            let t = format!("{input}.{}", jwt::b64(&sig));
            prop_assert_eq!(key.verify(&t), key.verify_with_pure(&t));
        }
    }
}

/// Pure vs ring, interleaved batches in one process (the machine is noisy): `cargo test
/// --profile release-native --lib --features native-crypto crypto::tests::bench -- --ignored
/// --nocapture`. The numbers are in docs/native.md ("Crypto backend").
#[cfg(feature = "native-crypto")]
#[test]
#[ignore]
fn bench_backends() {
    use std::hint::black_box;
    use std::time::Instant;
    fn ns(f: &mut dyn FnMut()) -> f64 {
        let mut n = 1u32;
        loop {
            let t = Instant::now();
            (0..n).for_each(|_| f());
            if t.elapsed().as_millis() >= 10 || n > 1 << 22 {
                return t.elapsed().as_nanos() as f64 / f64::from(n);
            }
            n *= 2;
        }
    }
    fn row(name: &str, mut a: impl FnMut(), mut b: impl FnMut()) {
        let (mut pa, mut pb) = (Vec::new(), Vec::new());
        for _ in 0..9 {
            pa.push(ns(&mut a));
            pb.push(ns(&mut b));
        }
        pa.sort_by(f64::total_cmp);
        pb.sort_by(f64::total_cmp);
        println!(
            "| {name} | {:.0} | {:.0} | {:.2} |",
            pa[4],
            pb[4],
            pa[4] / pb[4]
        );
    }
    let kib = vec![7u8; 1024];
    let k10 = vec![7u8; 10 * 1024];
    let key = [9u8; 32];
    let iv = [1u8; 12];
    println!("| operation | pure ns/op | ring ns/op | pure ÷ ring |");
    row(
        "SHA-256, 32 B",
        || {
            black_box(pure::sha256(black_box(&kib[..32])));
        },
        || {
            black_box(native::sha256(black_box(&kib[..32])));
        },
    );
    row(
        "SHA-256, 1 KiB",
        || {
            black_box(pure::sha256(black_box(&kib)));
        },
        || {
            black_box(native::sha256(black_box(&kib)));
        },
    );
    row(
        "SHA-512, 1 KiB",
        || {
            black_box(pure::sha512(black_box(&kib)));
        },
        || {
            black_box(native::sha512(black_box(&kib)));
        },
    );
    let tag = pure::hmac(Hmac::Sha256, &key, &kib);
    row(
        "HMAC-SHA256 verify, 1 KiB",
        || {
            black_box(pure::hmac_verify(Hmac::Sha256, &key, black_box(&kib), &tag));
        },
        || {
            black_box(native::hmac_verify(
                Hmac::Sha256,
                &key,
                black_box(&kib),
                &tag,
            ));
        },
    );
    row(
        "AES-256-GCM seal, 10 KiB",
        || {
            let mut b = k10.clone();
            black_box(pure::gcm_seal(Gcm::Aes256, &key, &iv, b"aad", &mut b));
        },
        || {
            let mut b = k10.clone();
            black_box(native::gcm_seal(Gcm::Aes256, &key, &iv, b"aad", &mut b));
        },
    );
    let mut sealed = k10.clone();
    let gtag = pure::gcm_seal(Gcm::Aes256, &key, &iv, b"aad", &mut sealed).unwrap();
    row(
        "AES-256-GCM open, 10 KiB",
        || {
            let mut b = sealed.clone();
            assert!(pure::gcm_open(
                Gcm::Aes256,
                &key,
                &iv,
                b"aad",
                &mut b,
                &gtag
            ));
        },
        || {
            let mut b = sealed.clone();
            assert!(native::gcm_open(
                Gcm::Aes256,
                &key,
                &iv,
                b"aad",
                &mut b,
                &gtag
            ));
        },
    );
    for (v, token) in signed() {
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = b64url(sig).unwrap();
        // EdDSA and HS256 are not switched (native_wins): ring's raw verify is timed against
        // the whole pure verifier (which also parses header and claims, ~1–2 µs).
        match v.alg() {
            "EdDSA" => continue,
            "HS256" => {
                row(
                    "JWS HS256 (pure: whole token; ring: HMAC only)",
                    || {
                        assert!(v.verify_with_pure(&token));
                    },
                    || {
                        assert!(native::hmac_verify(
                            Hmac::Sha256,
                            &[7u8; 32],
                            input.as_bytes(),
                            &sig
                        ));
                    },
                );
                continue;
            }
            _ => {}
        }
        row(
            &format!("JWS {} verify (jwt-auth's verifier)", v.alg()),
            || {
                assert!(v.verify_with_pure(&token));
            },
            || {
                assert!(v.verify(&token));
            },
        );
    }
    let ed = jwt::ed25519("d");
    let token = jwt::sign_ed25519(&ed, &claims());
    let v = jws::Verifier::ed25519(&ed.public_key().to_bytes()).unwrap();
    let (input, sig) = token.rsplit_once('.').unwrap();
    let sig = b64url(sig).unwrap();
    let pk = ed.public_key().to_bytes();
    row(
        "JWS EdDSA (pure: whole token; ring: signature only)",
        || {
            assert!(v.verify_with_pure(&token));
        },
        || {
            assert!(native::key_verify("EdDSA", &pk, input.as_bytes(), &sig));
        },
    );
}
