//! The echo upstream used by `make run` and the integration tests: it answers every request with
//! a JSON description of what it received (method, path, headers, body) and records it, so tests
//! can assert exactly what reached the upstream.
//!
//! To play a failing or leaky service, a request may ask for its own response:
//! `x-echo-status: 500` answers with that status and the request body verbatim as the response
//! body, typed by `x-echo-content-type`, with each `x-echo-header: name: value` added;
//! `x-echo-body: …` answers with that text instead of the request body (a GET cannot carry one).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread;

use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Lower-case names, in order, repeated names kept.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

pub struct EchoServer {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl EchoServer {
    /// Start serving on `addr` (port 0 picks a free one) in background threads.
    pub fn start(addr: &str) -> std::io::Result<Self> {
        let server = tiny_http::Server::http(addr).map_err(std::io::Error::other)?;
        let local = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| std::io::Error::other("echo upstream: not an IP listener"))?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let server = Arc::new(server);
        for _ in 0..4 {
            let (server, seen) = (server.clone(), seen.clone());
            thread::spawn(move || {
                for req in server.incoming_requests() {
                    handle(req, &seen);
                }
            });
        }
        Ok(EchoServer { addr: local, seen })
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

fn handle(mut req: tiny_http::Request, seen: &Mutex<Vec<Seen>>) {
    let mut body = Vec::new();
    let _ = req.as_reader().read_to_end(&mut body);
    let record = Seen {
        method: req.method().as_str().to_string(),
        path: req.url().to_string(),
        headers: req
            .headers()
            .iter()
            .map(|h| {
                (
                    h.field.as_str().as_str().to_ascii_lowercase(),
                    h.value.as_str().to_string(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let scripted = record
        .header("x-echo-status")
        .and_then(|s| s.parse::<u16>().ok());
    let (status, content_type, payload) = match scripted {
        Some(status) => {
            let ct = record
                .header("x-echo-content-type")
                .unwrap_or("text/plain")
                .to_string();
            let payload = match record.header("x-echo-body") {
                Some(b) => b.as_bytes().to_vec(),
                None => body,
            };
            (status, ct, payload)
        }
        None => {
            let json = serde_json::to_string_pretty(&record).unwrap_or_default();
            (200, "application/json".to_string(), json.into_bytes())
        }
    };
    let extra: Vec<tiny_http::Header> = record
        .headers
        .iter()
        .filter(|(k, _)| k == "x-echo-header")
        .filter_map(|(_, v)| v.split_once(':'))
        .filter_map(|(k, v)| tiny_http::Header::from_bytes(k.trim(), v.trim()).ok())
        .collect();
    if let Ok(mut s) = seen.lock() {
        s.push(record);
    }
    let mut resp = tiny_http::Response::from_data(payload).with_status_code(status);
    if let Ok(h) = tiny_http::Header::from_bytes("content-type", content_type) {
        resp.add_header(h);
    }
    for h in extra {
        resp.add_header(h);
    }
    let _ = req.respond(resp);
}
