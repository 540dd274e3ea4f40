//! Real-Envoy test harness: starts Envoy (from `make setup`'s venv) with the built `.wasm`
//! modules in front of an in-process echo upstream, on free loopback ports, and stops it on drop.
//! When a test fails, Envoy's log is printed.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub use portcullis::echo::{EchoServer, Seen};

pub mod etcd;
pub mod introspection;

/// A wait budget that a paused machine does not burn. CI runs in VMs that get paused: one run's
/// Envoy log jumped two hours between two lines, and a plain deadline failed a healthy start.
/// Each poll step is charged its real time up to one second, so a pause costs one second.
pub struct Patience {
    left: Duration,
    last: Instant,
}

impl Patience {
    pub fn secs(secs: u64) -> Patience {
        Patience {
            left: Duration::from_secs(secs),
            last: Instant::now(),
        }
    }

    /// Charge the time since the last call; false once the budget is spent.
    pub fn holds(&mut self) -> bool {
        let now = Instant::now();
        let step = now.duration_since(self.last).min(Duration::from_secs(1));
        self.last = now;
        self.left = self.left.saturating_sub(step);
        !self.left.is_zero()
    }
}

/// Poll `f` every 100 ms for at most `secs`; true once it holds.
pub fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let mut patience = Patience::secs(secs);
    loop {
        if f() {
            return true;
        }
        if !patience.holds() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn envoy_binary() -> PathBuf {
    if let Ok(p) = std::env::var("PORTCULLIS_ENVOY") {
        return PathBuf::from(p);
    }
    let p = repo_root().join(".venv/envoy");
    assert!(
        p.exists(),
        "no Envoy at {}: run `make setup` (or `make test`)",
        p.display()
    );
    p
}

pub fn wasm_path(module: &str) -> PathBuf {
    let p = repo_root().join("dist").join(format!("{module}.wasm"));
    assert!(
        p.exists(),
        "{} is missing: run `make build` (or `make test`)",
        p.display()
    );
    p
}

/// One wasm filter in the chain.
#[derive(Clone)]
pub struct Filter {
    pub module: String,
    pub policy: String,
    pub env: Vec<(String, String)>,
    /// Another build of the module (default: dist/<module>.wasm).
    pub wasm: Option<PathBuf>,
    /// The runtime to load it in (default: the one under test, [`runtime`]).
    pub runtime: Option<Runtime>,
}

impl Filter {
    pub fn new(module: &str, policy: impl ToString) -> Self {
        Filter {
            module: module.into(),
            policy: policy.to_string(),
            env: Vec::new(),
            wasm: None,
            runtime: None,
        }
    }

    /// Load it in this runtime whatever `PORTCULLIS_RUNTIME` says (the bench runs both).
    pub fn runtime(mut self, r: Runtime) -> Self {
        self.runtime = Some(r);
        self
    }

    /// Load this `.wasm` (relative to the repository) instead of dist/<module>.wasm.
    pub fn wasm_file(mut self, path: &str) -> Self {
        let p = repo_root().join(path);
        assert!(p.exists(), "{} is missing: run `make test`", p.display());
        self.wasm = Some(p);
        self
    }

    /// An environment variable passed to the VM (`vm_config.environment_variables`).
    pub fn vm_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
}

#[derive(Default)]
pub struct EnvoyBuilder {
    filters: Vec<Filter>,
    /// Extra clusters (name, address) for callouts (JWKS, webhooks).
    clusters: Vec<(String, SocketAddr)>,
    /// Extra native HTTP filters (JSON typed configs) placed before the wasm filters.
    native_filters: Vec<Value>,
    upstream: Option<SocketAddr>,
    /// Pin Envoy to this CPU core (benchmarks).
    cpu: Option<usize>,
    /// Fields set on the HTTP connection manager over the defaults below.
    hcm: serde_json::Map<String, Value>,
    /// Serve the listener over TLS with this certificate chain and key (PEM files).
    tls: Option<(PathBuf, PathBuf)>,
}

pub fn envoy() -> EnvoyBuilder {
    EnvoyBuilder::default()
}

impl EnvoyBuilder {
    pub fn filter(mut self, f: Filter) -> Self {
        self.filters.push(f);
        self
    }

    pub fn wasm(self, module: &str, policy: impl ToString) -> Self {
        self.filter(Filter::new(module, policy))
    }

    pub fn cluster(mut self, name: &str, addr: SocketAddr) -> Self {
        self.clusters.push((name.into(), addr));
        self
    }

    pub fn native_filter(mut self, filter: Value) -> Self {
        self.native_filters.push(filter);
        self
    }

    /// Route to this upstream instead of a fresh echo server.
    pub fn upstream(mut self, addr: SocketAddr) -> Self {
        self.upstream = Some(addr);
        self
    }

    pub fn cpu(mut self, core: usize) -> Self {
        self.cpu = Some(core);
        self
    }

    /// Set a field of the HTTP connection manager (`normalize_path`, say).
    /// The listener speaks TLS with `cert` and `key` (see [`self_signed`]); send with [`https`].
    pub fn tls(mut self, cert: &Path, key: &Path) -> Self {
        self.tls = Some((cert.to_path_buf(), key.to_path_buf()));
        self
    }

    pub fn hcm(mut self, field: &str, value: Value) -> Self {
        self.hcm.insert(field.into(), value);
        self
    }

    fn bootstrap(&self, upstream: SocketAddr) -> Value {
        let mut http_filters: Vec<Value> = self.native_filters.clone();
        for f in &self.filters {
            http_filters.push(wasm_filter(f));
        }
        http_filters.push(json!({
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
        }));
        let mut clusters = vec![cluster("upstream", upstream)];
        clusters.extend(self.clusters.iter().map(|(n, a)| cluster(n, *a)));
        let mut hcm = json!({
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "ingress",
            "normalize_path": true,
            "merge_slashes": true,
            "server_header_transformation": "PASS_THROUGH",
            "route_config": {"virtual_hosts": [{
                "name": "all", "domains": ["*"],
                "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "upstream", "timeout": "5s"}}]
            }]},
            "http_filters": http_filters
        });
        if let Some(o) = hcm.as_object_mut() {
            o.extend(self.hcm.clone());
        }
        let mut chain = json!({"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": hcm
        }]});
        if let Some((cert, key)) = &self.tls {
            chain["transport_socket"] = json!({
                "name": "envoy.transport_sockets.tls",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                    "common_tls_context": {"tls_certificates": [{
                        "certificate_chain": {"filename": cert},
                        "private_key": {"filename": key}
                    }]}
                }
            });
        }
        json!({
            "admin": {"address": socket(([127, 0, 0, 1], 0).into())},
            // xDS (tests/ecds.rs) needs the node named.
            "node": {"id": "portcullis-test", "cluster": "portcullis-test"},
            "stats_config": stats_config(),
            "static_resources": {
                "listeners": [{
                    "name": "main",
                    "address": socket(([127, 0, 0, 1], 0).into()),
                    "filter_chains": [chain]
                }],
                "clusters": clusters
            }
        })
    }

    pub fn start(self) -> Envoy {
        let echo = EchoServer::start("127.0.0.1:0").expect("start echo upstream");
        let upstream = self.upstream.unwrap_or(echo.addr);
        let bootstrap = self.bootstrap(upstream);
        Envoy::launch_with(
            &bootstrap.to_string(),
            Some(echo),
            self.cpu,
            &self.process_env(),
        )
    }

    /// What Envoy's process needs for the native module: its search path, and the filters'
    /// `vm_env` (a dynamic module reads the process environment; wasm VMs ignore it).
    fn process_env(&self) -> Vec<(String, String)> {
        let mut env = vec![(
            "ENVOY_DYNAMIC_MODULES_SEARCH_PATH".to_string(),
            native_dir(&self.filters).display().to_string(),
        )];
        env.extend(self.filters.iter().flat_map(|f| f.env.iter().cloned()));
        env
    }

    /// Start Envoy expecting it to refuse the configuration and exit; returns its log.
    pub fn start_expect_exit(self) -> String {
        let bootstrap = self.bootstrap(([127, 0, 0, 1], 9).into());
        let dir = tempdir();
        let (mut child, log_path, _) =
            spawn_envoy(&dir, &bootstrap.to_string(), None, &self.process_env());
        let mut patience = Patience::secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                assert!(!status.success(), "Envoy exited successfully");
                return read_log(&log_path);
            }
            if !patience.holds() {
                let _ = child.kill();
                panic!(
                    "Envoy did not exit on an invalid policy; log:\n{}",
                    read_log(&log_path)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Which runtime the real-Envoy tests load the controls in: `PORTCULLIS_RUNTIME=native` for the
/// dynamic module (dist/native/libportcullis.so), wasm otherwise. `make test` runs every test
/// under both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    Wasm,
    Native,
}

pub fn runtime() -> Runtime {
    match std::env::var("PORTCULLIS_RUNTIME").as_deref() {
        Ok("native") => Runtime::Native,
        _ => Runtime::Wasm,
    }
}

/// The directory Envoy loads libportcullis.so from; the fault-injection build when a filter
/// asks for a module of dist/fault/.
fn native_dir(filters: &[Filter]) -> PathBuf {
    let fault = filters.iter().any(|f| {
        f.wasm
            .as_ref()
            .is_some_and(|w| w.starts_with(repo_root().join("dist/fault")))
    });
    let dir = repo_root().join(if fault {
        "dist/fault/native"
    } else {
        "dist/native"
    });
    assert!(
        dir.join("libportcullis.so").exists(),
        "{}/libportcullis.so is missing: run `make build build-fault` (or `make test`)",
        dir.display()
    );
    dir
}

/// Envoy's own words for a filter config the module refused, in the runtime under test.
pub fn refused_at_load(log: &str) -> bool {
    match runtime() {
        Runtime::Wasm => {
            log.contains("Unable to create Wasm HTTP filter")
                || log.contains("Unable to create Wasm plugin")
        }
        Runtime::Native => log.contains("Failed to initialize dynamic module"),
    }
}

/// One control in the filter chain, in the runtime under test.
pub fn wasm_filter(f: &Filter) -> Value {
    if f.runtime.unwrap_or_else(runtime) == Runtime::Native {
        return native_module_filter(f);
    }
    wasm_module_filter(f)
}

/// The control as Envoy's dynamic module filter: `filter_name` selects it, `filter_config`
/// carries the same policy.
pub fn native_module_filter(f: &Filter) -> Value {
    json!({
        "name": f.module,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
            "dynamic_module_config": {"name": "portcullis"},
            "filter_name": f.module,
            "filter_config": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": f.policy}
        }
    })
}

pub fn wasm_module_filter(f: &Filter) -> Value {
    let env: serde_json::Map<String, Value> = f
        .env
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({
        "name": f.module,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": f.module,
                "root_id": f.module,
                "failure_policy": "FAIL_RELOAD",
                "allow_on_headers_stop_iteration": true,
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": f.policy},
                "vm_config": {
                    // One vm_id for every module: shared data (alert counts) adds up across them.
                    "vm_id": "portcullis",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": f.wasm.clone().unwrap_or_else(|| wasm_path(&f.module))}},
                    "environment_variables": {"key_values": env}
                }
            }
        }
    })
}

fn socket(addr: SocketAddr) -> Value {
    json!({"socket_address": {"address": addr.ip().to_string(), "port_value": addr.port()}})
}

fn cluster(name: &str, addr: SocketAddr) -> Value {
    json!({
        "name": name,
        "connect_timeout": "1s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": socket(addr)}}]}]}
    })
}

/// The same `stats_tags` as envoy/envoy.yaml: counters become labelled Prometheus series.
pub fn stats_config() -> Value {
    let text = std::fs::read_to_string(repo_root().join("envoy/envoy.yaml"))
        .expect("read envoy/envoy.yaml");
    let start = text
        .find("stats_config:")
        .expect("stats_config in envoy.yaml");
    let mut tags = Vec::new();
    let mut name = None;
    for line in text[start..].lines().skip(1) {
        let l = line.trim();
        if !line.starts_with(' ') && !l.is_empty() {
            break;
        }
        if let Some(n) = l.strip_prefix("- tag_name: ") {
            name = Some(n.to_string());
        } else if let Some(r) = l.strip_prefix("regex: ") {
            let r = r.trim_matches('\'').replace("''", "'");
            tags.push(json!({"tag_name": name.take().expect("tag_name before regex"), "regex": r}));
        }
    }
    assert!(!tags.is_empty(), "no stats_tags found in envoy/envoy.yaml");
    json!({"stats_tags": tags})
}

pub fn tempdir() -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "portcullis-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

fn spawn_envoy(
    dir: &Path,
    bootstrap: &str,
    cpu: Option<usize>,
    env: &[(String, String)],
) -> (Child, PathBuf, PathBuf) {
    // Envoy picks the parser by extension.
    let ext = if bootstrap.trim_start().starts_with('{') {
        "json"
    } else {
        "yaml"
    };
    let config = dir.join(format!("envoy.{ext}"));
    let log = dir.join("envoy.log");
    let admin = dir.join("admin.txt");
    std::fs::write(&config, bootstrap).expect("write bootstrap");
    let mut cmd = match cpu {
        Some(core) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(core.to_string()).arg(envoy_binary());
            c
        }
        None => Command::new(envoy_binary()),
    };
    let child = cmd
        .current_dir(repo_root())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .arg("-c")
        .arg(&config)
        .args(["--disable-hot-restart", "--concurrency", "1", "-l", "info"])
        .args(["--file-flush-interval-msec", "100"])
        .arg("--log-path")
        .arg(&log)
        .arg("--admin-address-path")
        .arg(&admin)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn envoy");
    (child, log, admin)
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

pub struct Envoy {
    child: Child,
    pub admin: SocketAddr,
    pub listener: SocketAddr,
    pub echo: Option<EchoServer>,
    log_path: PathBuf,
    dir: PathBuf,
}

impl Envoy {
    /// Start Envoy from a bootstrap (JSON or YAML) whose listener is named `main`.
    pub fn launch(bootstrap: &str, echo: Option<EchoServer>) -> Envoy {
        let env = vec![(
            "ENVOY_DYNAMIC_MODULES_SEARCH_PATH".to_string(),
            native_dir(&[]).display().to_string(),
        )];
        Self::launch_with(bootstrap, echo, None, &env)
    }

    fn launch_with(
        bootstrap: &str,
        echo: Option<EchoServer>,
        cpu: Option<usize>,
        env: &[(String, String)],
    ) -> Envoy {
        let dir = tempdir();
        let (mut child, log_path, admin_path) = spawn_envoy(&dir, bootstrap, cpu, env);
        let mut patience = Patience::secs(60);
        let admin = loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "Envoy exited at start ({status}); log:\n{}",
                    read_log(&log_path)
                );
            }
            if let Some(addr) = std::fs::read_to_string(&admin_path)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                break addr;
            }
            assert!(
                patience.holds(),
                "Envoy did not start; log:\n{}",
                read_log(&log_path)
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut envoy = Envoy {
            child,
            admin,
            listener: admin,
            echo,
            log_path,
            dir,
        };
        loop {
            let ready = http(admin, "GET", "/ready", &[], b"")
                .map(|r| r.status == 200)
                .unwrap_or(false);
            if ready {
                break;
            }
            assert!(
                patience.holds(),
                "Envoy never became ready; log:\n{}",
                envoy.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        envoy.listener = envoy.listener_address("main");
        envoy
    }

    fn listener_address(&self, name: &str) -> SocketAddr {
        let r =
            http(self.admin, "GET", "/listeners?format=json", &[], b"").expect("GET /listeners");
        let v: Value = serde_json::from_slice(&r.body).expect("listeners JSON");
        let l = v["listener_statuses"]
            .as_array()
            .and_then(|a| a.iter().find(|l| l["name"] == name))
            .unwrap_or_else(|| panic!("no listener {name}: {v}"));
        let sa = &l["local_address"]["socket_address"];
        format!(
            "{}:{}",
            sa["address"].as_str().unwrap_or("127.0.0.1"),
            sa["port_value"]
        )
        .parse()
        .expect("listener address")
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        http(self.listener, method, path, headers, body).expect("request through Envoy")
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        self.request("GET", path, headers, b"")
    }

    pub fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        self.request("POST", path, headers, body)
    }

    /// Send raw bytes (for requests no client library would send) and read the response.
    pub fn raw(&self, bytes: &[u8]) -> Response {
        raw_exchange(self.listener, bytes).expect("raw exchange with Envoy")
    }

    /// What the echo upstream received so far.
    pub fn upstream_seen(&self) -> Vec<Seen> {
        self.echo.as_ref().map(EchoServer::seen).unwrap_or_default()
    }

    /// A `portcullis_requests_total` series from `/stats/prometheus` (0 when absent).
    pub fn counter(&self, module: &str, result: &str, code: &str) -> u64 {
        self.series(
            "portcullis_requests_total",
            &[("module", module), ("result", result), ("code", code)],
        )
    }

    /// A `portcullis_operation_violations_total` series from `/stats/prometheus` (0 when absent).
    pub fn operation_counter(
        &self,
        module: &str,
        operation: &str,
        result: &str,
        code: &str,
    ) -> u64 {
        self.series(
            "portcullis_operation_violations_total",
            &[
                ("module", module),
                ("result", result),
                ("code", code),
                ("operation", operation),
            ],
        )
    }

    /// The value of the series of counter `name` with exactly these labels (0 when absent), in
    /// either runtime's name: Envoy names a dynamic module's counters
    /// `dynamicmodulescustom.<name>` (`envoy_dynamicmodulescustom_<name>` in Prometheus).
    pub fn series(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let r =
            http(self.admin, "GET", "/stats/prometheus", &[], b"").expect("GET /stats/prometheus");
        let text = String::from_utf8_lossy(&r.body);
        let mut want: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        want.sort();
        let prefixes = [
            format!("{name}{{"),
            format!("envoy_dynamicmodulescustom_{name}{{"),
        ];
        text.lines()
            .filter_map(|l| prefixes.iter().find_map(|p| l.strip_prefix(p.as_str())))
            .filter_map(|rest| rest.rsplit_once("} "))
            .find(|(got, _)| {
                // Split on `",` so a value holding a comma stays whole.
                let mut got: Vec<String> = got
                    .split("\",")
                    .map(|x| x.trim_end_matches('"').to_string() + "\"")
                    .collect();
                got.sort();
                got == want
            })
            .and_then(|(_, n)| n.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Envoy's resident memory in KiB (from /proc), for reports.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
    }

    /// CPU time Envoy's threads have used so far, in ns (from /proc: schedstat per thread), for
    /// the bench's cost per request.
    pub fn cpu_ns(&self) -> Option<u64> {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.child.id())).ok()?;
        let ns = |t: std::fs::DirEntry| -> Option<u64> {
            let stat = std::fs::read_to_string(t.path().join("schedstat")).ok()?;
            stat.split_whitespace().next()?.parse().ok()
        };
        Some(tasks.flatten().filter_map(ns).sum())
    }

    pub fn admin_get(&self, path: &str) -> Response {
        http(self.admin, "GET", path, &[], b"").expect("admin request")
    }

    /// Wait (at most `secs`) until Envoy's log contains `needle`.
    pub fn wait_for_log(&self, needle: &str, secs: u64) -> bool {
        eventually(secs, || read_log(&self.log_path).contains(needle))
    }

    /// Envoy's log so far (flushed every 100 ms).
    pub fn log(&self) -> String {
        std::thread::sleep(Duration::from_millis(250));
        read_log(&self.log_path)
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "----- Envoy log -----\n{}\n----- end of Envoy log -----",
                self.log()
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// The upstream's echo of the request (for requests that reached it).
    pub fn echoed(&self) -> Seen {
        let v = self.json();
        Seen {
            method: v["method"].as_str().unwrap_or_default().into(),
            path: v["path"].as_str().unwrap_or_default().into(),
            headers: v["headers"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|p| {
                            (
                                p[0].as_str().unwrap_or("").into(),
                                p[1].as_str().unwrap_or("").into(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            body: v["body"].as_str().unwrap_or_default().into(),
        }
    }

    /// Assert a portcullis denial: status, problem+json content type, and code.
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "body: {}", self.text());
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{self:?}"
        );
        let v = self.json();
        assert_eq!(v["code"], code, "{v}");
        assert_eq!(v["status"], status, "{v}");
    }
}

/// A minimal HTTP/1.1 client: one request per connection, so every byte sent is ours.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut req = format!("{method} {path} HTTP/1.1\r\n").into_bytes();
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.extend_from_slice(b"host: localhost\r\n");
    }
    for (k, v) in headers {
        req.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    let framed = headers.iter().any(|(k, _)| {
        k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding")
    });
    if !framed && (!body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH")) {
        req.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    req.extend_from_slice(b"connection: close\r\n\r\n");
    req.extend_from_slice(body);
    raw_exchange(addr, &req)
}

pub fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> std::io::Result<Response> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(bytes)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    // Stop as soon as the response is complete: after a local reply sent before the request
    // body was read, Envoy only closes after its delayed-close timeout (1 s).
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if response_complete(&buf) {
            break;
        }
    }
    parse_response(&buf)
}

fn response_complete(buf: &[u8]) -> bool {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let body = &buf[end + 4..];
    if head.contains("transfer-encoding: chunked") {
        return body.ends_with(b"0\r\n\r\n");
    }
    match head.lines().find_map(|l| l.strip_prefix("content-length:")) {
        Some(n) => n.trim().parse::<usize>().is_ok_and(|n| body.len() >= n),
        None => head.starts_with("http/1.1 204") || head.starts_with("http/1.1 304"),
    }
}

fn parse_response(buf: &[u8]) -> std::io::Result<Response> {
    let bad = |m: &str| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{m}: {:?}", String::from_utf8_lossy(buf)),
        )
    };
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no response head"))?;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &buf[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..i]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = i + 2;
        out.extend_from_slice(&b[start..(start + size).min(b.len())]);
        b = &b[(start + size + 2).min(b.len())..];
    }
    out
}

/// A self-signed certificate for `localhost` and its key, made by `openssl` in a fresh
/// directory: (certificate, key).
pub fn self_signed() -> (PathBuf, PathBuf) {
    let dir = tempdir();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// A GET over TLS with curl (the certificate is not checked): the status.
pub fn https(e: &Envoy, path: &str, headers: &[(&str, &str)]) -> u16 {
    let mut c = std::process::Command::new("curl");
    c.args(["-sk", "-o", "/dev/null", "-w", "%{http_code}"]);
    for (k, v) in headers {
        c.arg("-H").arg(format!("{k}: {v}"));
    }
    let out = c
        .arg(format!("https://localhost:{}{path}", e.listener.port()))
        .arg("--resolve")
        .arg(format!("localhost:{}:127.0.0.1", e.listener.port()))
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}
