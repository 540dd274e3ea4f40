//! The micro-benchmarks alone, one JSON line per hot path. `make bench` builds this for
//! wasm32-wasip1 with the modules' release profile and runs it under Node's V8
//! (`bench/wasi.mjs`), so the native and the wasm cost of each control sit side by side.

#[path = "../envoy/micro.rs"]
mod micro;

fn main() {
    for (name, ns) in micro::run() {
        println!("{}", serde_json::json!({"name": name, "ns_per_op": ns}));
    }
}
