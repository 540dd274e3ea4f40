//! The portcullis command line: check and explain policies, sign and encrypt requests, manage
//! API keys, package modules, run the demo upstream.
//!
//! Exit status (docs/cli.md): 0 success / valid, 1 invalid policy or failed check
//! (or the command's work failed), 2 usage error.

mod check;
mod completions;
mod echo;
mod explain;
mod jose;
mod keygen;
mod oci;
mod openapi;
mod policies;
mod rotate;
mod schema;
mod sign;
mod values;
mod version;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, Subcommand};

/// API-security controls for Envoy: check and explain policies, sign and encrypt requests,
/// manage API keys, package the wasm modules.
#[derive(Parser)]
#[command(
    name = "portcullis",
    version = version::version(),
    propagate_version = true,
    arg_required_else_help = true,
    after_help = "Exit status: 0 success (policies valid), 1 invalid policy or failed check, \
                  2 usage error."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Check(check::Args),
    Explain(explain::Args),
    Schema(schema::Args),
    Oci(oci::Args),
    EchoUpstream(echo::Args),
    Keygen(keygen::Args),
    Rotate(rotate::Args),
    Sign(sign::Args),
    Encrypt(jose::EncryptArgs),
    Decrypt(jose::DecryptArgs),
    Completions(completions::Args),
    Openapi(openapi::Args),
}

/// The command's work failed (exit status 1; usage errors are clap's, status 2).
pub const FAILED: u8 = 1;

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check(a) => check::run(a),
        Command::Explain(a) => explain::run(a),
        Command::Schema(a) => schema::run(a),
        Command::Oci(a) => oci::run(a),
        Command::EchoUpstream(a) => echo::run(a),
        Command::Keygen(a) => keygen::run(a),
        Command::Rotate(a) => rotate::run(a),
        Command::Sign(a) => sign::run(a),
        Command::Encrypt(a) => jose::encrypt(a),
        Command::Decrypt(a) => jose::decrypt(a),
        Command::Completions(a) => completions::run(a),
        Command::Openapi(a) => openapi::run(a),
    }
}

/// A usage error found after parsing (it needs the file's content), printed the way clap
/// prints its own, with the subcommand's usage line; exit status 2.
pub fn usage_error(subcommand: &str, kind: ErrorKind, msg: &str) -> ExitCode {
    let mut cmd = Cli::command();
    cmd.build();
    let err = match cmd.find_subcommand_mut(subcommand) {
        Some(sub) => sub.error(kind, msg),
        None => cmd.error(kind, msg),
    };
    let _ = err.print();
    ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        // clap's own checks: no clashing names, positionals in a parseable order.
        Cli::command().debug_assert();
    }
}
