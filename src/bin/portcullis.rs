//! The portcullis command line: check policies, run the demo upstream.

use std::process::ExitCode;

use portcullis::control::{configure, ConfigError};
use portcullis::controls::{self, guard::Guard};

const USAGE: &str = "usage:
  portcullis check MODULE FILE       validate a policy file with the code the filter runs
  portcullis echo-upstream [ADDR]    serve the echo upstream (default 127.0.0.1:8081)
modules: the module names (content-type, error-shield, …, guard)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["check", module, file] => check(module, file),
        ["echo-upstream"] => echo("127.0.0.1:8081"),
        ["echo-upstream", addr] => echo(addr),
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// Validate a policy for a module, printing the error with its JSON path.
fn check(module: &str, file: &str) -> ExitCode {
    let json = match std::fs::read(file) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("{file}: {e}");
            return ExitCode::from(2);
        }
    };
    let result = check_policy(module, &json);
    match result {
        Ok(()) => {
            println!("{file}: valid {module} policy");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{file}: invalid {module} policy: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Validate with exactly the code the filter runs. Module names use dashes (`content-type`).
fn check_policy(module: &str, json: &[u8]) -> Result<(), ConfigError> {
    if module == "guard" {
        return configure::<Guard>(json).map(drop);
    }
    let value: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| ConfigError::new("", format!("not JSON: {e}")))?;
    match controls::build_by_name(&module.replace('-', "_"), &value) {
        Some(built) => built.map(drop),
        None => Err(ConfigError::new("", format!("unknown module `{module}`"))),
    }
}

fn echo(addr: &str) -> ExitCode {
    match portcullis::echo::EchoServer::start(addr) {
        Ok(server) => {
            println!("echo upstream listening on http://{}", server.addr);
            loop {
                std::thread::park();
            }
        }
        Err(e) => {
            eprintln!("echo upstream: cannot listen on {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}
