//! Running the `portcullis` binary from a test: exit status and both outputs. Outside
//! tests/support because `CARGO_BIN_EXE_*` exists for integration tests only (the benches
//! include tests/support too).

use std::process::Command;

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// `portcullis ARGS…` run from the repository root.
pub fn portcullis(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run portcullis");
    Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
