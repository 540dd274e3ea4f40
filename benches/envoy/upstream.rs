//! A fast upstream for benchmarks: keep-alive HTTP/1.1, a fixed 2-byte answer, one thread per
//! connection. It must never be the bottleneck (the echo upstream formats JSON).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;

pub struct FastUpstream {
    pub addr: SocketAddr,
}

impl FastUpstream {
    pub fn start() -> Self {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
        let addr = l.local_addr().expect("upstream address");
        thread::spawn(move || {
            for conn in l.incoming().flatten() {
                thread::spawn(move || serve(conn));
            }
        });
        FastUpstream { addr }
    }
}

fn serve(mut c: TcpStream) {
    let _ = c.set_nodelay(true);
    let mut buf = Vec::with_capacity(8192);
    let mut chunk = [0u8; 8192];
    loop {
        // One request: headers, then Content-Length bytes of body.
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            match c.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < end + 4 + len {
            match c.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..end + 4 + len);
        if c.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok",
        )
        .is_err()
        {
            return;
        }
    }
}
