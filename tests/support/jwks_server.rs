//! A tiny JWKS / OIDC server for the jwt-auth tests: answers every GET from a table the test
//! changes while it runs, can be slow, answer garbage, or drop connections.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub enum Mode {
    /// Answer the documents in the table (404 for other paths).
    Serve,
    /// Close every connection without answering.
    Drop,
    /// Wait this long, then answer as `Serve`.
    Slow(Duration),
    /// 200 with a body that is not JSON.
    Garbage,
}

struct State {
    mode: Mode,
    docs: HashMap<String, String>,
}

#[derive(Clone)]
pub struct JwksServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    hits: Arc<AtomicUsize>,
}

impl JwksServer {
    pub fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap())
    }

    /// Bind `addr` (retrying a while: a port just probed free may be in TIME_WAIT).
    pub fn start_on(addr: SocketAddr) -> Self {
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(addr) {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("bind {addr}: {e}"),
            }
        };
        let server = JwksServer {
            addr: listener.local_addr().unwrap(),
            state: Arc::new(Mutex::new(State {
                mode: Mode::Serve,
                docs: HashMap::new(),
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

    /// A free loopback address nobody listens on (yet).
    pub fn free_addr() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    }

    pub fn set(&self, path: &str, body: impl ToString) {
        self.state
            .lock()
            .unwrap()
            .docs
            .insert(path.into(), body.to_string());
    }

    pub fn mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn handle(&self, mut conn: TcpStream) {
        let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
        loop {
            let mut buf = Vec::new();
            let mut byte = [0u8; 1];
            while !buf.ends_with(b"\r\n\r\n") {
                match conn.read(&mut byte) {
                    Ok(1) => buf.push(byte[0]),
                    _ => return,
                }
            }
            self.hits.fetch_add(1, Ordering::SeqCst);
            let head = String::from_utf8_lossy(&buf).into_owned();
            let path = head.split(' ').nth(1).unwrap_or("/").to_string();
            let (mode, doc) = {
                let st = self.state.lock().unwrap();
                (st.mode.clone(), st.docs.get(&path).cloned())
            };
            let (status, body) = match mode {
                Mode::Drop => return,
                Mode::Garbage => (200, "<html>not json".to_string()),
                Mode::Slow(d) => {
                    std::thread::sleep(d);
                    doc.map_or((404, String::new()), |b| (200, b))
                }
                Mode::Serve => doc.map_or((404, String::new()), |b| (200, b)),
            };
            let resp = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            if conn.write_all(resp.as_bytes()).is_err() {
                return;
            }
        }
    }
}
