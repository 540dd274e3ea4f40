//! `portcullis schema MODULE`: the JSON Schema of a module's policy (what `make schemas` writes
//! to schemas/).

use std::process::ExitCode;

use crate::values;

/// The JSON Schema (draft 2020-12) of a module's policy.
#[derive(clap::Args)]
pub struct Args {
    /// The module (`content-type`, `guard`, …).
    #[arg(value_parser = values::module(&[]))]
    module: String,
}

pub fn run(a: Args) -> ExitCode {
    match portcullis::controls::module_schema(&a.module) {
        Some(s) => {
            println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
            ExitCode::SUCCESS
        }
        // Every name the parser accepts has a schema; a missing one is a bug, not a usage error.
        None => {
            eprintln!("schema: no schema for module `{}`", a.module);
            ExitCode::from(crate::FAILED)
        }
    }
}
