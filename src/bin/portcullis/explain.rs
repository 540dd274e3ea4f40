//! `portcullis explain FILE --method M --path P [--header 'k: v' …]`: which rule of which module
//! matches a request, and what each module would do with it.

use std::process::ExitCode;
use std::time::SystemTime;

use portcullis::config::ROUTE_NOTE;
use portcullis::control::Env;
use portcullis::controls::build_module;
use portcullis::store::MemoryStore;
use portcullis::{RequestView, Verdict};

use crate::policies::{discover, NotFound};
use crate::values::{self, TextFile};

/// Which rule of which module applies to a request, and what each module would do
///
/// The modules' own code runs, with an in-memory store and the current time.
#[derive(clap::Args)]
pub struct Args {
    /// A guard policy JSON, an Envoy bootstrap/listener YAML or Istio WasmPlugin manifests.
    #[arg(value_parser = values::text_file)]
    file: TextFile,
    /// The request's method.
    #[arg(long, default_value = "GET", value_parser = values::method)]
    method: String,
    /// The request's path and query, as the client sends it (`/v1//orders?id=1`).
    #[arg(long)]
    path: String,
    /// A request header; repeat for more.
    #[arg(long = "header", value_name = "'NAME: VALUE'", value_parser = values::header)]
    headers: Vec<(String, String)>,
}

pub fn run(a: Args) -> ExitCode {
    let (file, method, path) = (a.file.path.as_str(), a.method.as_str(), a.path.as_str());
    let found = match discover(file, &a.file.text, None) {
        Ok(f) => f,
        Err(NotFound::NeedsModule) => {
            return crate::usage_error(
                "explain",
                clap::error::ErrorKind::InvalidValue,
                &format!(
                    "{file} is a bare policy that names no module: explain takes a guard \
                     policy, a bootstrap or manifests"
                ),
            )
        }
        Err(NotFound::Invalid(e)) => {
            eprintln!("{file}: {e}");
            return ExitCode::from(crate::FAILED);
        }
    };
    let h: Vec<(&str, &str)> = a
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let req = match RequestView::new(method, path, &h) {
        Ok(r) => r,
        Err(e) => {
            println!("{method} {path}: refused before any module: 400 request.bad_path ({e})");
            return ExitCode::SUCCESS;
        }
    };
    println!("{method} {path} (normalised: {})", req.path);
    let store = MemoryStore::default();
    let env = Env {
        now: SystemTime::now(),
        store: &store,
    };
    for f in &found {
        let control = match build_module(&f.module, &f.policy) {
            Some(Ok(c)) => c,
            Some(Err(e)) => {
                println!("  {} ({}): invalid policy: {e}", f.module, f.location);
                continue;
            }
            None => {
                println!("  {} ({}): unknown module", f.module, f.location);
                continue;
            }
        };
        req.notes.borrow_mut().clear();
        let verdict = control.on_request(&req, &env);
        let route = match req.noted(ROUTE_NOTE) {
            Some(u64::MAX) => "the default rule".to_string(),
            Some(i) => format!("routes[{i}]"),
            None => "no per-route rule".to_string(),
        };
        println!("  {}: {route} applies; {}", f.module, describe(&verdict));
    }
    ExitCode::SUCCESS
}

fn describe(v: &Verdict) -> String {
    match v {
        Verdict::Continue => "the request passes".into(),
        Verdict::Mutate(ops) | Verdict::Pass { ops, .. } if !ops.is_empty() => {
            format!("the request passes with header edits {ops:?}")
        }
        Verdict::Pass { reports, .. } if !reports.is_empty() => {
            format!(
                "the request passes; reported: {}",
                reports
                    .iter()
                    .map(|r| r.code)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        Verdict::Mutate(_) | Verdict::Pass { .. } => "the request passes".into(),
        Verdict::Report(r) => format!("the request passes; reported: {} ({})", r.code, r.detail),
        Verdict::NeedBody { max_bytes } => {
            format!("the body is read (at most {max_bytes} bytes) and checked")
        }
        Verdict::ReplaceBody { code, .. } => format!("the body is replaced ({code})"),
        Verdict::Deny(r) => format!("denied: {} {} ({})", r.status, r.code, r.detail),
        Verdict::Ask(a) => format!(
            "the request waits for {} call(s) through cluster(s) {}",
            a.callouts.len(),
            a.callouts
                .iter()
                .map(|c| c.cluster.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
