//! `portcullis openapi import SPEC`: an OpenAPI contract (YAML or JSON) as the api-schema
//! policy, compiled with the code the filter runs; what it accepts but does not enforce on
//! stderr; with `--jwt-routes`, the jwt-auth routes of its `security` requirements.

mod notices;
mod routes;
mod yaml;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, Subcommand, ValueEnum};
use portcullis::controls::api_schema::schema::resolve;
use portcullis::controls::build_module;
use serde_json::{json, Value};

use crate::values::{self, TextFile};

/// Work with OpenAPI contracts (the api-schema module's policy)
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Import(ImportArgs),
}

/// Write the api-schema policy of an OpenAPI 3.0/3.1 contract (YAML or JSON)
///
/// The policy is compiled with the code the filter runs: a contract api-schema cannot
/// enforce is refused (exit status 1, the JSON path and the reason). What it accepts but does
/// not enforce (security unless --jwt-routes, responses unless --responses enforce, annotations
/// such as `format: password`) is listed on stderr.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// The OpenAPI document: `.json`, or `.yaml`/`.yml` (one document; anchors and `<<` merge
    /// keys are expanded; tags are refused).
    #[arg(value_parser = values::text_file)]
    spec: TextFile,
    /// `enforce` refuses violations; `report` only logs and counts them.
    #[arg(long, value_enum, default_value_t = Mode::Enforce)]
    mode: Mode,
    /// Responses against the contract: `report` (the policy's default) logs and counts
    /// violations, `enforce` replaces a violating response by a 502 problem, `off` skips them.
    #[arg(long, value_enum, default_value_t = Responses::Report)]
    responses: Responses,
    /// Refuse query parameters an operation does not declare.
    #[arg(long)]
    reject_undeclared_query: bool,
    /// Largest JSON request body buffered for validation (the policy's default if absent).
    #[arg(long, value_name = "BYTES")]
    max_body_bytes: Option<usize>,
    /// Write the policy here instead of stdout.
    #[arg(short, long, value_name = "OUT")]
    output: Option<String>,
    /// Also write jwt-auth `routes` (and `default`) from the contract's `security` on
    /// oauth2/openIdConnect schemes, one provider per scheme name, to merge with your
    /// `providers` (docs/api-schema.md).
    #[arg(long, value_name = "OUT2")]
    jwt_routes: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Enforce,
    Report,
}

/// api-schema's `responses`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Responses {
    Off,
    Report,
    Enforce,
}

impl Responses {
    fn as_str(self) -> &'static str {
        match self {
            Responses::Off => "off",
            Responses::Report => "report",
            Responses::Enforce => "enforce",
        }
    }
}

/// Something the contract says that the policy does not enforce, at a JSON path of the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub path: String,
    pub what: String,
}

impl Notice {
    pub fn new(path: impl Into<String>, what: impl Into<String>) -> Self {
        Notice {
            path: path.into(),
            what: what.into(),
        }
    }
}

/// One operation of the contract, with its JSON path in the policy (`openapi.paths./a.get`).
pub struct Operation<'a> {
    pub template: &'a str,
    pub method: &'static str,
    pub op: &'a Value,
    pub at: String,
}

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The path items (a `$ref`'d item resolved), in document order.
pub fn path_items(doc: &Value) -> Vec<(&str, &Value)> {
    doc.get("paths")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(t, item)| {
            let item = match item.get("$ref").and_then(Value::as_str) {
                Some(r) => resolve(doc, r).unwrap_or(item),
                None => item,
            };
            (t.as_str(), item)
        })
        .collect()
}

pub fn operations_of<'a>(template: &'a str, item: &'a Value) -> Vec<Operation<'a>> {
    METHODS
        .iter()
        .filter_map(|m| {
            item.get(*m).map(|op| Operation {
                template,
                method: m,
                op,
                at: format!("openapi.paths.{template}.{m}"),
            })
        })
        .collect()
}

pub fn operations(doc: &Value) -> Vec<Operation<'_>> {
    path_items(doc)
        .into_iter()
        .flat_map(|(t, item)| operations_of(t, item))
        .collect()
}

fn usage_error(msg: &str) -> ExitCode {
    let mut cmd = crate::Cli::command();
    cmd.build();
    let err = match cmd
        .find_subcommand_mut("openapi")
        .and_then(|c| c.find_subcommand_mut("import"))
    {
        Some(sub) => sub.error(ErrorKind::ArgumentConflict, msg),
        None => cmd.error(ErrorKind::ArgumentConflict, msg),
    };
    let _ = err.print();
    ExitCode::from(2)
}

fn failed(file: &str, msg: &str) -> ExitCode {
    eprintln!("{file}: {msg}");
    ExitCode::from(crate::FAILED)
}

fn write(path: Option<&str>, v: &Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(v).map_err(|e| e.to_string())? + "\n";
    match path {
        None => {
            print!("{text}");
            Ok(())
        }
        Some(p) => std::fs::write(p, text).map_err(|e| format!("cannot write {p}: {e}")),
    }
}

/// Compile the routes with a stand-in provider per scheme: every route, matcher and scope the
/// fragment holds is checked now, not when the user has merged it.
fn check_routes(r: &routes::Routes) -> Result<(), String> {
    let mut names = r.providers.clone();
    if names.is_empty() {
        names.push("portcullis-import-check".into());
    }
    let providers: Vec<Value> = names
        .iter()
        .map(|n| {
            json!({"name": n, "issuer": format!("portcullis-import-check:{n}"),
                   "algorithms": ["HS256"],
                   "jwks": {"keys": [{"kty": "oct", "k": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"}]}})
        })
        .collect();
    let mut policy = r.fragment.clone();
    policy["providers"] = json!(providers);
    match build_module("jwt-auth", &policy) {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => {
            let origin = e
                .path
                .strip_prefix("routes[")
                .and_then(|rest| rest.split(']').next())
                .and_then(|i| i.parse::<usize>().ok())
                .and_then(|i| r.origins.get(i))
                .map(|o| format!(" (from {o})"))
                .unwrap_or_default();
            Err(format!("jwt-auth refuses the routes: {e}{origin}"))
        }
        None => Err("jwt-auth is not a module".into()),
    }
}

pub fn run(a: Args) -> ExitCode {
    match a.command {
        Command::Import(a) => import(a),
    }
}

fn import(a: ImportArgs) -> ExitCode {
    let file = a.spec.path.as_str();
    if a.output.is_some() && a.output == a.jwt_routes {
        return usage_error("--output and --jwt-routes name the same file");
    }
    let doc = match yaml::parse(file, &a.spec.text) {
        Ok(d) => d,
        Err(e) => return failed(file, &e),
    };
    let mut policy = json!({
        "openapi": doc,
        "mode": match a.mode { Mode::Enforce => "enforce", Mode::Report => "report" },
        "reject_undeclared_query": a.reject_undeclared_query,
        "responses": a.responses.as_str(),
    });
    if let Some(n) = a.max_body_bytes {
        policy["max_body_bytes"] = json!(n);
    }
    // Exactly what `portcullis check api-schema` and the filter run.
    match build_module("api-schema", &policy) {
        Some(Ok(_)) => {}
        Some(Err(e)) => return failed(file, &format!("refused by api-schema: {e}")),
        None => return failed(file, "api-schema is not a module"),
    }
    let doc = &policy["openapi"];
    let mut notices = notices::collect(doc, a.jwt_routes.is_some(), a.responses);
    let routes = match a.jwt_routes.as_deref() {
        None => None,
        Some(_) => match routes::routes(doc).and_then(|r| check_routes(&r).map(|()| r)) {
            Ok(r) => Some(r),
            Err(e) => return failed(file, &e),
        },
    };
    if let Some(r) = &routes {
        notices.extend(r.notices.iter().cloned());
    }
    let mut seen = Vec::new();
    for n in notices {
        if !seen.contains(&n) {
            eprintln!("{file}: not enforced: {}: {}", n.path, n.what);
            seen.push(n);
        }
    }
    if let Err(e) = write(a.output.as_deref(), &policy) {
        return failed(file, &e);
    }
    if let (Some(r), Some(out)) = (&routes, a.jwt_routes.as_deref()) {
        if let Err(e) = write(Some(out), &r.fragment) {
            return failed(file, &e);
        }
        let names: Vec<String> = r.providers.iter().map(|p| format!("`{p}`")).collect();
        if !names.is_empty() {
            eprintln!(
                "{file}: {out}: add jwt-auth `providers` named {} (issuer, algorithms, jwks or \
                 remote_jwks) before `portcullis check jwt-auth`",
                names.join(", ")
            );
        }
        for (name, url) in oidc_urls(doc, &r.providers) {
            if let Some(issuer) = url.strip_suffix("/.well-known/openid-configuration") {
                eprintln!(
                    "{file}: {out}: provider `{name}`: openIdConnectUrl names issuer `{issuer}`: \
                     `remote_jwks: {{\"cluster\": …, \"discovery\": true}}`"
                );
            }
        }
    }
    ExitCode::SUCCESS
}

/// `openIdConnectUrl` of the named openIdConnect schemes.
fn oidc_urls<'a>(doc: &'a Value, names: &[String]) -> Vec<(&'a str, &'a str)> {
    doc.pointer("/components/securitySchemes")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(n, _)| names.contains(n))
        .filter_map(|(n, s)| Some((n.as_str(), s.get("openIdConnectUrl")?.as_str()?)))
        .collect()
}

#[cfg(test)]
mod tests;
