//! An OAuth 2.0 Token Introspection endpoint (RFC 7662) for the tests: `POST` a form with
//! `token=…`, client authentication by HTTP Basic (RFC 6749 §2.3.1), answers from a table the
//! test changes while it runs: active tokens with their members, revoked and unknown ones
//! inactive, expired ones inactive (the server's own clock). It can also be slow, fail (500),
//! or drop connections.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{json, Value};

#[derive(Clone, Debug)]
pub enum Mode {
    Serve,
    /// Wait this long, then answer as `Serve`.
    Slow(Duration),
    /// 500 with a JSON error.
    Fail,
    /// Close the connection without answering.
    Drop,
}

struct State {
    mode: Mode,
    /// token -> members of its active answer (`exp` included).
    tokens: HashMap<String, Value>,
    client_id: String,
    client_secret: String,
    /// The form bodies received, in order.
    forms: Vec<HashMap<String, String>>,
}

#[derive(Clone)]
pub struct IntrospectionServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    hits: Arc<AtomicUsize>,
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl IntrospectionServer {
    /// A server that accepts `client_id` / `client_secret`.
    pub fn start(client_id: &str, client_secret: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let server = IntrospectionServer {
            addr: listener.local_addr().expect("addr"),
            state: Arc::new(Mutex::new(State {
                mode: Mode::Serve,
                tokens: HashMap::new(),
                client_id: client_id.into(),
                client_secret: client_secret.into(),
                forms: Vec::new(),
            })),
            hits: Arc::new(AtomicUsize::new(0)),
        };
        let s = server.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || s.handle(conn));
            }
        });
        server
    }

    /// An active token with these members (`active: true` is added).
    pub fn issue(&self, token: &str, members: Value) {
        self.state
            .lock()
            .unwrap()
            .tokens
            .insert(token.into(), members);
    }

    /// The token is inactive from now on.
    pub fn revoke(&self, token: &str) {
        self.state.lock().unwrap().tokens.remove(token);
    }

    pub fn mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// The forms received so far (for checking what the client sent).
    pub fn forms(&self) -> Vec<HashMap<String, String>> {
        self.state.lock().unwrap().forms.clone()
    }

    fn handle(&self, mut conn: TcpStream) {
        let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            match conn.read(&mut byte) {
                Ok(1) => buf.push(byte[0]),
                _ => return,
            }
        }
        let head = String::from_utf8_lossy(&buf).into_owned();
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
        };
        let len: usize = header("content-length")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        if conn.read_exact(&mut body).is_err() {
            return;
        }
        self.hits.fetch_add(1, Ordering::SeqCst);
        let mode = self.state.lock().unwrap().mode.clone();
        let (status, answer) = match mode {
            Mode::Drop => return,
            Mode::Fail => (500, json!({"error": "server_error"})),
            Mode::Slow(d) => {
                std::thread::sleep(d);
                self.answer(
                    &head,
                    header("authorization"),
                    header("content-type"),
                    &body,
                )
            }
            Mode::Serve => self.answer(
                &head,
                header("authorization"),
                header("content-type"),
                &body,
            ),
        };
        let text = answer.to_string();
        let resp = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncache-control: no-store\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
            text.len()
        );
        let _ = conn.write_all(resp.as_bytes());
    }

    fn answer(
        &self,
        head: &str,
        authorization: Option<String>,
        content_type: Option<String>,
        body: &[u8],
    ) -> (u16, Value) {
        if !head.starts_with("POST ") {
            return (405, json!({"error": "invalid_request"}));
        }
        if content_type.as_deref() != Some("application/x-www-form-urlencoded") {
            return (400, json!({"error": "invalid_request"}));
        }
        let mut st = self.state.lock().unwrap();
        // RFC 6749 §2.3.1: id and secret form-encoded, then `id:secret` in Basic.
        let credentials = authorization
            .as_deref()
            .and_then(|a| a.strip_prefix("Basic "))
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|pair| {
                let (id, secret) = pair.split_once(':')?;
                Some((form_decode(id), form_decode(secret)))
            });
        if credentials != Some((st.client_id.clone(), st.client_secret.clone())) {
            return (401, json!({"error": "invalid_client"}));
        }
        let form: HashMap<String, String> = String::from_utf8_lossy(body)
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (form_decode(k), form_decode(v)))
            .collect();
        st.forms.push(form.clone());
        let Some(token) = form.get("token") else {
            return (400, json!({"error": "invalid_request"}));
        };
        match st.tokens.get(token) {
            // RFC 7662 §2.2: an expired token is not active.
            Some(m) if m["exp"].as_i64().is_none_or(|e| e > unix_now()) => {
                let mut m = m.clone();
                m["active"] = json!(true);
                (200, m)
            }
            _ => (200, json!({"active": false})),
        }
    }
}
