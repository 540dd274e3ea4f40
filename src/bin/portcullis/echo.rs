//! `portcullis echo-upstream [ADDR]`: the demo upstream (`make run`, the tests' upstream): it
//! answers every request with a JSON description of what it received.

use std::process::ExitCode;

/// Serve the echo upstream: every request answered with the JSON of what it received.
#[derive(clap::Args)]
pub struct Args {
    /// The address to listen on.
    #[arg(default_value = "127.0.0.1:8081", value_name = "ADDR")]
    addr: String,
}

pub fn run(a: Args) -> ExitCode {
    match portcullis::echo::EchoServer::start(&a.addr) {
        Ok(server) => {
            println!("echo upstream listening on http://{}", server.addr);
            loop {
                std::thread::park();
            }
        }
        Err(e) => {
            eprintln!("echo upstream: cannot listen on {}: {e}", a.addr);
            ExitCode::from(crate::FAILED)
        }
    }
}
