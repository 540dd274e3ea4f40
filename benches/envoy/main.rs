//! `make bench`: Envoy with no filter, Envoy's native filters and portcullis modules, under the
//! same load, interleaved (A B C … A B C …) so machine drift cancels; medians and ratios to the
//! no-filter limit go to bench/results.md and bench/results.json (plotted by bench/plot.py).
//! Then micro-benchmarks of each control's hot path, in ns/op, natively and as wasm in V8.
//!
//! Envoy runs with --concurrency 1 pinned to core 0; wrk and the upstream share core 1.
//! Knobs: BENCH_ROUNDS (3), BENCH_SECONDS (5), BENCH_CONNECTIONS (16); BENCH_DEBUG=1 shows the
//! first non-2xx answer wrk got.

mod fleet;
mod micro;
#[path = "../../tests/support/mod.rs"]
mod support;
mod upstream;
mod variants;

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use support::envoy;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Debug, Clone, Default)]
struct Sample {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
    requests: u64,
    /// Envoy's CPU time per request of the measured run, in µs (all its threads).
    cpu_us: f64,
}

/// wrk's "50%  1.23ms" → 1.23.
fn parse_latency(v: &str) -> f64 {
    let v = v.trim();
    let (num, scale) = if let Some(n) = v.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (v, 1.0)
    };
    num.parse::<f64>().unwrap_or(f64::NAN) * scale
}

/// `first`: where in a variant's single-use request list (signatures) wrk starts, so that the
/// measured run does not replay what the warm-up sent to the same Envoy.
fn run_wrk(
    url: &str,
    script: &std::path::Path,
    seconds: u64,
    connections: u64,
    first: usize,
) -> Sample {
    let out = Command::new("taskset")
        .args([
            "-c",
            "1",
            "wrk",
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(script)
        .arg(url)
        .env("BENCH_FIRST", first.to_string())
        .output()
        .expect("run wrk (make bench installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    let errors = String::from_utf8_lossy(&out.stderr);
    if !errors.trim().is_empty() {
        eprintln!("wrk: {}", errors.trim());
    }
    let mut s = Sample::default();
    for line in text.lines() {
        let l = line.trim();
        if let Some(v) = l.strip_prefix("Requests/sec:") {
            s.rps = v.trim().parse().unwrap_or(0.0);
        } else if let Some(v) = l.strip_prefix("50%") {
            s.p50_ms = parse_latency(v);
        } else if let Some(v) = l.strip_prefix("99%") {
            s.p99_ms = parse_latency(v);
        } else if let Some(v) = l.strip_prefix("Non-2xx or 3xx responses:") {
            s.non_2xx = v.trim().parse().unwrap_or(0);
        } else if let Some((n, _)) = l.split_once(" requests in ") {
            s.requests = n.trim().parse().unwrap_or(0);
        }
    }
    assert!(
        s.rps > 0.0,
        "wrk printed no rate:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s
}

/// The same micro-benchmarks as a wasm32-wasip1 program (built by `make bench` with the
/// modules' release profile) under Node's V8: what each hot path costs inside a wasm VM.
fn micro_in_v8() -> std::collections::BTreeMap<String, f64> {
    let root = support::repo_root();
    let wasm = root.join("target/wasm32-wasip1/release/examples/micro.wasm");
    let out = Command::new("node")
        .arg("--no-warnings")
        .arg("--single-threaded")
        .arg(root.join("bench/wasi.mjs"))
        .arg(&wasm)
        .output()
        .unwrap_or_else(|e| panic!("node (for the wasm micro-benchmarks): {e}"));
    assert!(
        out.status.success(),
        "{} under node failed ({}; `make bench` builds it): {}",
        wasm.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                v["name"].as_str().unwrap().to_string(),
                v["ns_per_op"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() {
    // `cargo bench` passes --bench; any other argument filters variants by name.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let rounds = env_or("BENCH_ROUNDS", 3);
    let seconds = env_or("BENCH_SECONDS", 5);
    let connections = env_or("BENCH_CONNECTIONS", 16);

    let mut all = variants::all();
    // The fleet rows need a real etcd cluster and an introspection endpoint: started only when
    // one of them is chosen.
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let servers = fleet::NAMES
        .iter()
        .any(|n| wanted(n))
        .then(fleet::Servers::start);
    if let Some(s) = &servers {
        all.extend(fleet::variants(s));
    }
    let chosen: Vec<&variants::Variant> = all
        .iter()
        .filter(|v| filter.as_deref().is_none_or(|f| v.name.contains(f)))
        .collect();
    if let Ok(path) = std::env::var("BENCH_DUMP") {
        // `make profile`: the chosen wasm variants' modules, policies and requests, nothing run.
        let dump: Vec<serde_json::Value> = chosen
            .iter()
            .filter(|v| v.runtime == support::Runtime::Wasm)
            .map(|v| v.dump())
            .collect();
        std::fs::write(&path, serde_json::to_string(&dump).unwrap()).unwrap();
        return;
    }
    let dir = std::env::temp_dir().join(format!("portcullis-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let up = upstream::FastUpstream::start();
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); chosen.len()];
    let mut rss: Vec<Option<u64>> = vec![None; chosen.len()];
    for round in 1..=rounds {
        for (i, v) in chosen.iter().enumerate() {
            let mut b = envoy().upstream(up.addr).cpu(0);
            for f in &v.native {
                b = b.native_filter(f.clone());
            }
            for (module, policy) in &v.wasm {
                let mut f = support::Filter::new(
                    module,
                    policy.replace(variants::ROUND, &round.to_string()),
                )
                .runtime(v.runtime);
                for (k, val) in &v.vm_env {
                    f = f.vm_env(k, val);
                }
                b = b.filter(f);
            }
            for (name, addr) in &v.clusters {
                b = b.cluster(name, *addr);
            }
            let e = b.start();
            let script = dir.join(format!("{i}.lua"));
            std::fs::write(&script, &v.wrk_script).unwrap();
            // Check the verdict once before loading: a bench of 4xx responses measures nothing.
            // A filter that calls out may answer 503 until its first background call is
            // answered (the etcd store's first lease): wait for it, a few seconds at most.
            let mut probe = v.probe(&e);
            for _ in 0..50 {
                if probe.status != 503 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
                probe = v.probe(&e);
            }
            assert!(
                probe.status == 200,
                "{}: probe got {}: {}",
                v.name,
                probe.status,
                probe.text()
            );
            let url = format!("http://{}{}", e.listener, v.path);
            // Warm up (VM JIT, token caches), then measure.
            run_wrk(&url, &script, 1, connections, 0);
            let cpu_before = e.cpu_ns();
            let mut s = run_wrk(
                &url,
                &script,
                seconds,
                connections,
                variants::WARM_UP_REQUESTS,
            );
            s.cpu_us = match (cpu_before, e.cpu_ns()) {
                (Some(a), Some(b)) if s.requests > 0 => (b - a) as f64 / 1000.0 / s.requests as f64,
                _ => f64::NAN,
            };
            assert_eq!(
                s.non_2xx, 0,
                "{}: {} non-2xx responses under load",
                v.name, s.non_2xx
            );
            eprintln!(
                "round {round} {:<40} {:>9.0} req/s  p50 {:.3} ms  p99 {:.3} ms  {:.1} µs CPU",
                v.name, s.rps, s.p50_ms, s.p99_ms, s.cpu_us
            );
            samples[i].push(s);
            if round == rounds {
                rss[i] = e.rss_kib();
            }
            drop(e);
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    let base = samples
        .first()
        .map(|s| median(s.iter().map(|x| x.rps).collect()))
        .unwrap_or(f64::NAN);
    let base_cpu = samples
        .first()
        .map(|s| median(s.iter().map(|x| x.cpu_us).collect()))
        .unwrap_or(f64::NAN);
    let mut rows = Vec::new();
    // A filtered run has no "no filter" variant: its ratios are to the first one it ran.
    let base_name = chosen.first().map_or("", |v| v.name.as_str());
    let mut md = format!(
        "| variant | runtime | req/s (median) | × {base_name} | Envoy CPU µs/req over {base_name} | p50 ms | p99 ms | Envoy RSS MiB |\n|---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for (i, v) in chosen.iter().enumerate() {
        let rps = median(samples[i].iter().map(|x| x.rps).collect());
        let p50 = median(samples[i].iter().map(|x| x.p50_ms).collect());
        let p99 = median(samples[i].iter().map(|x| x.p99_ms).collect());
        let mib = rss[i].map_or(f64::NAN, |k| k as f64 / 1024.0);
        let cpu = median(samples[i].iter().map(|x| x.cpu_us).collect()) - base_cpu;
        md.push_str(&format!(
            "| {} | {} | {rps:.0} | {:.2} | {cpu:+.1} | {p50:.3} | {p99:.3} | {mib:.0} |\n",
            v.name,
            v.runtime_label(),
            rps / base
        ));
        rows.push(json!({"variant": v.name, "runtime": v.runtime_label(), "rps": rps, "ratio": rps / base,
                         "cpu_us_over_base": cpu, "p50_ms": p50, "p99_ms": p99,
                         "rss_mib": mib, "rounds": samples[i].iter().map(|x| x.rps).collect::<Vec<_>>()}));
    }
    let mut sizes = String::from("\n| module | .wasm bytes |\n|---|---:|\n");
    let mut entries: Vec<_> = std::fs::read_dir(support::repo_root().join("dist"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "wasm"))
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        sizes.push_str(&format!(
            "| {} | {} |\n",
            e.file_name().to_string_lossy(),
            e.metadata().map(|m| m.len()).unwrap_or(0)
        ));
    }
    let micro = micro::run();
    let in_v8 = micro_in_v8();
    let mut micro_md = String::from(
        "\n| hot path | native ns/op | wasm in V8 ns/op | V8 ÷ native |\n|---|---:|---:|---:|\n",
    );
    for (name, ns) in &micro {
        let v8 = in_v8.get(name).copied().unwrap_or(f64::NAN);
        micro_md.push_str(&format!(
            "| {name} | {ns:.0} | {v8:.0} | {:.1} |\n",
            v8 / ns
        ));
    }
    let header = format!(
        "Envoy 1.40 (--concurrency 1, pinned to core 0), wrk -t1 -c{connections} -d{seconds}s on core 1, {rounds} interleaved rounds, medians.\n\n"
    );
    println!("{header}{md}{sizes}{micro_md}");
    let _ = std::fs::remove_dir_all(&dir);
    if filter.is_some() {
        eprintln!("a filtered run: bench/results.* are left as they were");
        return;
    }
    let out = support::repo_root().join("bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("results.md"),
        format!("{header}{md}{sizes}{micro_md}"),
    )
    .unwrap();
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(
            &json!({"variants": rows, "micro_ns_per_op": micro, "micro_v8_ns_per_op": in_v8}),
        )
        .unwrap(),
    )
    .unwrap();
}
