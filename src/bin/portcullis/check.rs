//! `portcullis check [MODULE] FILE`: validate policies with exactly the code the filter runs.

use std::process::ExitCode;

use portcullis::controls::build_module;

use crate::policies::{discover, Found};

pub fn run(module: Option<&str>, file: &str) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{file}: {e}");
            return ExitCode::from(2);
        }
    };
    let found = match discover(file, &text, module) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{file}: {e}");
            return ExitCode::from(2);
        }
    };
    let mut failed = 0;
    for f in &found {
        match validate(f) {
            Ok(()) => println!("{file}: {}: valid {} policy", f.location, f.module),
            Err(e) => {
                eprintln!("{file}: {}: invalid {} policy: {e}", f.location, f.module);
                failed += 1;
            }
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

pub fn validate(f: &Found) -> Result<(), String> {
    if let Some(msg) = f.policy.as_str().and_then(|s| s.strip_prefix('\u{0}')) {
        return Err(msg.to_string());
    }
    match build_module(&f.module, &f.policy) {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(e.to_string()),
        None => Err(format!("unknown module `{}`", f.module)),
    }
}
