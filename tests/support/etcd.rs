//! A real etcd cluster for the tests: three members of Debian's `etcd-server` (installed by
//! `make setup`) on loopback, free ports, temporary data directories, killed on drop. Members
//! can be stopped and started again (same data) to take quorum away and give it back.
//!
//! Also a minimal executor of a control's [`Callout`]s over plain HTTP/1.1, standing in for
//! Envoy in the tests that drive a control directly: the same request bytes, the callout's
//! timeout, and failures mapped as the host maps them.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Patience;
use portcullis::callout::{Answer, Callout, CalloutFailure, CalloutResponse};

/// A free loopback port below the kernel's ephemeral range (32768 and up), so that no
/// outgoing connection's source port takes it between this probe and etcd's bind.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    let offset = (std::process::id() % 600) * 20;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = u16::try_from(LOW + (offset + n) % SPAN).expect("port");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {LOW}..{}", LOW + SPAN);
}

/// The etcd binary: `PORTCULLIS_ETCD`, or `etcd` on the PATH (`make setup` installs it).
fn etcd_binary() -> PathBuf {
    if let Ok(p) = std::env::var("PORTCULLIS_ETCD") {
        return PathBuf::from(p);
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = PathBuf::from(dir).join("etcd");
        if p.exists() {
            return p;
        }
    }
    panic!("no etcd on the PATH: run `make setup` (Debian's etcd-server)");
}

struct Member {
    name: String,
    client: SocketAddr,
    peer: SocketAddr,
    dir: PathBuf,
    child: Option<Child>,
}

pub struct EtcdCluster {
    members: Vec<Member>,
    initial_cluster: String,
    token: String,
    root: PathBuf,
}

impl EtcdCluster {
    /// Start `n` members and wait until every one reports healthy (a member that could not
    /// start, a port taken after all, say: the whole cluster again on other ports, 3 tries).
    pub fn start(n: usize) -> EtcdCluster {
        let mut last = String::new();
        for _ in 0..3 {
            let mut cluster = Self::launch(n);
            if (0..n).all(|i| cluster.wait_ready(i, 30)) {
                return cluster;
            }
            last = (0..n)
                .map(|i| cluster.log(i))
                .collect::<Vec<_>>()
                .join("\n");
        }
        panic!("etcd cluster did not start; logs:\n{last}");
    }

    fn launch(n: usize) -> EtcdCluster {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let root = std::env::temp_dir().join(format!("portcullis-etcd-{id}"));
        std::fs::create_dir_all(&root).expect("create etcd temp dir");
        let members: Vec<Member> = (0..n)
            .map(|i| Member {
                name: format!("m{i}"),
                client: ([127, 0, 0, 1], free_port()).into(),
                peer: ([127, 0, 0, 1], free_port()).into(),
                dir: root.join(format!("m{i}")),
                child: None,
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://{}", m.name, m.peer))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = EtcdCluster {
            members,
            initial_cluster,
            token: format!("portcullis-{id}"),
            root,
        };
        for i in 0..n {
            cluster.spawn(i);
        }
        cluster
    }

    /// Wait until member `i` is healthy; false if it exited or took longer than `secs`.
    fn wait_ready(&mut self, i: usize, secs: u64) -> bool {
        let mut patience = Patience::secs(secs);
        while patience.holds() {
            if self.healthy(i) {
                return true;
            }
            let exited = match self.members[i].child.as_mut() {
                Some(c) => !matches!(c.try_wait(), Ok(None)),
                None => true,
            };
            if exited {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    fn spawn(&mut self, i: usize) {
        let m = &self.members[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join(format!("{}.log", m.name)))
            .expect("open etcd log");
        let child = Command::new(etcd_binary())
            .args(["--name", &m.name])
            .arg("--data-dir")
            .arg(&m.dir)
            .args(["--listen-client-urls", &format!("http://{}", m.client)])
            .args(["--advertise-client-urls", &format!("http://{}", m.client)])
            .args(["--listen-peer-urls", &format!("http://{}", m.peer)])
            .args([
                "--initial-advertise-peer-urls",
                &format!("http://{}", m.peer),
            ])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", &self.token])
            // Loopback: fast heartbeats, so elections take well under a second.
            .args(["--heartbeat-interval", "100", "--election-timeout", "1000"])
            .args(["--logger", "zap", "--log-outputs", "stderr"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn etcd");
        self.members[i].child = Some(child);
    }

    /// The client address (JSON gateway) of member `i`.
    pub fn client(&self, i: usize) -> SocketAddr {
        self.members[i].client
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Kill member `i` (its data stays).
    pub fn stop(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start member `i` again on its data, and wait until it is healthy (with quorum).
    pub fn restart(&mut self, i: usize) {
        if self.members[i].child.is_none() {
            self.spawn(i);
        }
    }

    /// Wait until member `i` answers `/health` with `"health":"true"` (it has a leader).
    pub fn wait_healthy(&self, i: usize, secs: u64) {
        let mut patience = Patience::secs(secs);
        loop {
            if self.healthy(i) {
                return;
            }
            assert!(
                patience.holds(),
                "etcd member {i} not healthy in {secs} s; log:\n{}",
                self.log(i)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn healthy(&self, i: usize) -> bool {
        let call = Callout {
            tag: 0,
            cluster: "etcd".into(),
            method: "GET".into(),
            authority: "etcd".into(),
            path: "/health".into(),
            headers: vec![],
            body: None,
            timeout: Duration::from_secs(2),
        };
        matches!(execute(&call, self.client(i)), Ok(r) if r.status == 200
            && String::from_utf8_lossy(&r.body).contains("\"health\":\"true\""))
    }

    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.root.join(format!("{}.log", self.members[i].name)))
            .unwrap_or_default()
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.stop(i);
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Make one callout to `addr` as Envoy would: the callout's method, path, authority, headers
/// and body; its timeout for the whole exchange. No connection: `Reset` (Envoy reports a
/// failed connection to a callout as an answer without a status, as it does a reset).
pub fn execute(c: &Callout, addr: SocketAddr) -> Answer {
    let deadline = Instant::now() + c.timeout;
    let mut s = TcpStream::connect_timeout(&addr, c.timeout).map_err(|e| {
        if e.kind() == std::io::ErrorKind::TimedOut {
            CalloutFailure::Timeout
        } else {
            CalloutFailure::Reset
        }
    })?;
    let mut req = format!(
        "{} {} HTTP/1.1\r\nhost: {}\r\n",
        c.method, c.path, c.authority
    );
    for (k, v) in &c.headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = c.body.clone().unwrap_or_default();
    if c.body.is_some() {
        req.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    req.push_str("connection: close\r\n\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(&body);
    s.write_all(&bytes).map_err(|_| CalloutFailure::Reset)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(CalloutFailure::Timeout);
        }
        s.set_read_timeout(Some(left))
            .map_err(|_| CalloutFailure::Reset)?;
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(CalloutFailure::Timeout)
            }
            Err(_) => return Err(CalloutFailure::Reset),
        }
        if complete(&buf) {
            break;
        }
    }
    parse(&buf).ok_or(CalloutFailure::Reset)
}

fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

fn content_length(head: &str) -> Option<usize> {
    head.lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(str::to_string)
        })
        .and_then(|n| n.trim().parse().ok())
}

fn complete(buf: &[u8]) -> bool {
    let Some(end) = head_end(buf) else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let body = &buf[end + 4..];
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return body.ends_with(b"0\r\n\r\n");
    }
    content_length(&head).is_some_and(|n| body.len() >= n)
}

fn parse(buf: &[u8]) -> Option<CalloutResponse> {
    let end = head_end(buf)?;
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let rest = &buf[end + 4..];
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = Vec::new();
        let mut b = rest;
        while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(String::from_utf8_lossy(&b[..i]).trim(), 16).ok()?;
            if size == 0 {
                break;
            }
            let start = i + 2;
            out.extend_from_slice(b.get(start..start + size)?);
            b = b.get(start + size + 2..)?;
        }
        out
    } else {
        let n = content_length(&head).unwrap_or(rest.len());
        rest.get(..n)?.to_vec()
    };
    Some(CalloutResponse { status, body })
}
