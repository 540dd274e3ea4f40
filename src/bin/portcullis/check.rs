//! `portcullis check [MODULE] FILE`: validate policies with exactly the code the filter runs.

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::ValueEnum;
use portcullis::controls::build_module;
use serde_json::json;

use crate::policies::{discover, Found, NotFound};
use crate::values::{self, TextFile};

/// Validate policies with the code the filters run
///
/// FILE is a policy JSON (MODULE needed unless it is a guard policy), an Envoy bootstrap or
/// listener YAML, or Istio WasmPlugin manifests. One line per policy found; exit status 1 if
/// any is invalid.
#[derive(clap::Args)]
#[command(allow_missing_positional = true)]
pub struct Args {
    /// The module a bare policy JSON is for (`content-type`, …); not needed for a guard
    /// policy, a bootstrap or manifests, which name their modules.
    #[arg(value_parser = values::module(&["noop"]))]
    module: Option<String>,
    /// The policy JSON, Envoy bootstrap/listener YAML or Istio manifests to check.
    #[arg(value_parser = values::text_file)]
    file: TextFile,
    /// `text`: `FILE: LOCATION: valid MODULE policy` on stdout, invalid ones on stderr;
    /// `json`: one JSON object per policy on stdout (JSON Lines).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

pub fn run(a: Args) -> ExitCode {
    let file = a.file.path.as_str();
    let found = match discover(file, &a.file.text, a.module.as_deref()) {
        Ok(f) => f,
        Err(NotFound::NeedsModule) => {
            return crate::usage_error(
                "check",
                ErrorKind::MissingRequiredArgument,
                &format!(
                    "{file} is a bare policy: name its module, `portcullis check MODULE {file}`"
                ),
            )
        }
        Err(NotFound::Invalid(e)) => {
            match a.format {
                Format::Text => eprintln!("{file}: {e}"),
                Format::Json => println!("{}", json!({"file": file, "valid": false, "error": e})),
            }
            return ExitCode::from(crate::FAILED);
        }
    };
    let mut failed = 0;
    for f in &found {
        let result = validate(f);
        failed += usize::from(result.is_err());
        match (a.format, result) {
            (Format::Text, Ok(())) => println!("{file}: {}: valid {} policy", f.location, f.module),
            (Format::Text, Err(e)) => {
                eprintln!("{file}: {}: invalid {} policy: {e}", f.location, f.module)
            }
            (Format::Json, r) => {
                let mut line = json!({
                    "file": file, "location": f.location, "module": f.module, "valid": r.is_ok()
                });
                if let Err(e) = r {
                    line["error"] = json!(e);
                }
                println!("{line}");
            }
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::FAILED)
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
