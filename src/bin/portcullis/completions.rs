//! `portcullis completions SHELL`: a completion script, generated from the same clap
//! definition as the parser, so it never drifts from the commands.

use std::io::Write;
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

/// A shell completion script on stdout
///
/// E.g. `portcullis completions bash > /etc/bash_completion.d/portcullis`.
#[derive(clap::Args)]
pub struct Args {
    /// The shell to complete in.
    shell: Shell,
}

pub fn run(a: Args) -> ExitCode {
    // Into a buffer first: clap_complete panics on a write error (`… | head` closes the pipe);
    // a closed stdout is a failed write, status 1, not a panic.
    let mut script = Vec::new();
    clap_complete::generate(
        a.shell,
        &mut crate::Cli::command(),
        "portcullis",
        &mut script,
    );
    match std::io::stdout().write_all(&script) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(crate::FAILED),
    }
}
