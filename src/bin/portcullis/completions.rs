//! `portcullis completions SHELL`: a completion script, generated from the same clap
//! definition as the parser, so it never drifts from the commands.

use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

/// A shell completion script on stdout, e.g. `portcullis completions bash >
/// /etc/bash_completion.d/portcullis`.
#[derive(clap::Args)]
pub struct Args {
    /// The shell to complete in.
    shell: Shell,
}

pub fn run(a: Args) -> ExitCode {
    clap_complete::generate(
        a.shell,
        &mut crate::Cli::command(),
        "portcullis",
        &mut std::io::stdout(),
    );
    ExitCode::SUCCESS
}
