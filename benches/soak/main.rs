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

/// (request bytes, expected status)
fn mix() -> Vec<(Vec<u8>, u16)> {
    let req = |method: &str, headers: &str, body: &str| {
        format!("{method} /api/orders HTTP/1.1\r\nhost: soak\r\n{headers}content-length: {}\r\n\r\n{body}", body.len())
            .into_bytes()
    };
    vec![
        (
            req(
                "POST",
                "content-type: application/json\r\n",
                r#"{"sku":"a1","qty":2}"#,
            ),
            200,
        ),
        (req("GET", "", ""), 200),
        (req("POST", "content-type: text/plain\r\n", "hello"), 415),
        (
            req("POST", "content-type: application/json\r\n", r#"{"sku":"#),
            400,
        ),
        (
            req(
                "POST",
                "content-type: application/json;charset=utf-7\r\n",
                "{}",
            ),
            415,
        ),
        (
            req(
                "POST",
                "content-type: application/json\r\n",
                &"[".repeat(40),
            ),
            400,
        ),
        (
            req(
                "PUT",
                "content-type: application/merge-patch+json\r\n",
                r#"{"qty":3}"#,
            ),
            200,
        ),
    ]
}

const POLICY: &str = r#"{
  "chain": ["content_type", "error_shield"],
  "content_type": {"default": {"allow": ["application/json", "application/*+json"], "json_max_depth": 16}},
  "error_shield": {}
}"#;

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
        .wasm("guard", POLICY)
        .start();
    let rss_start = e.rss_kib().unwrap_or(0);
    let mix = Arc::new(mix());
    let (sent, wrong, unexpected_5xx, io_errors) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (mix, sent, wrong, five, io) = (
                mix.clone(),
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
                    let (req, want) = &mix[i % mix.len()];
                    i += 1;
                    match c.exchange(req) {
                        Ok(got) if got == *want => {}
                        Ok(got) => {
                            wrong.fetch_add(1, Ordering::Relaxed);
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
        "soak: {total} requests in {secs:.1} s ({:.0} req/s) through guard [content_type, error_shield]\n\
         wrong verdicts: {}\nunexpected 5xx: {}\nreconnects after a closed connection: {}\n\
         Envoy RSS: {:.1} MiB at start, {:.1} MiB at end\n",
        total as f64 / secs,
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
