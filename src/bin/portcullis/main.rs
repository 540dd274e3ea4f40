//! The portcullis command line: check and explain policies, package modules, run the demo
//! upstream.

mod check;
mod explain;
mod jose;
mod keygen;
mod oci;
mod policies;
mod rotate;
mod sign;

use std::process::ExitCode;

const USAGE: &str = "usage:
  portcullis check [MODULE] FILE        validate policies with the code the filters run: a policy
                                        JSON (MODULE needed unless it is a guard policy), an Envoy
                                        bootstrap/listener YAML, or Istio WasmPlugin manifests
  portcullis explain FILE --method M --path P [--header 'name: value']...
                                        which rule of which module applies to a request, and what
                                        each module would do with it
  portcullis schema MODULE              the JSON Schema of a module's policy
  portcullis oci MODULE.wasm OUTDIR [TAG]
                                        an Istio/Envoy wasm OCI image (layout dir + OUTDIR.tar)
  portcullis echo-upstream [ADDR]       serve the echo upstream (default 127.0.0.1:8081)
  portcullis keygen [--client C] [--id ID]
                                        a new API key and its SHA-256 policy entry (JSON)
  portcullis rotate POLICY_FILE --client C [--overlap 7d] [--id ID]
                                        the api-key policy with a new key for C and C's old
                                        keys ending after the overlap (new key on stderr)
  portcullis sign --key-id ID --secret-env VAR --method M --url URL [--body FILE]
                  [--header 'name: value']... [--components 'c1 c2 ...'] [--label L]
                  [--expires-in SECS] [--no-nonce]
                                        the Content-Digest, Signature-Input and Signature header
                                        fields that sign the request (RFC 9421, hmac-sha256;
                                        the base64 secret is read from environment variable VAR)
  portcullis encrypt|decrypt ...        JWE compact serialization of stdin (see `portcullis encrypt`)
modules: header-guard, jwt-auth, api-key, csrf, request-signing, content-type, payload-crypto,
         error-shield, guard";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["check", file] => check::run(None, file),
        ["check", module, file] => check::run(Some(module), file),
        ["explain", file, rest @ ..] => match explain_args(rest) {
            Some((method, path, headers)) => explain::run(file, &method, &path, &headers),
            None => usage(),
        },
        ["schema", module] => schema(module),
        ["oci", wasm, out] => oci::run(wasm, out, "latest"),
        ["oci", wasm, out, tag] => oci::run(wasm, out, tag),
        ["echo-upstream"] => echo("127.0.0.1:8081"),
        ["echo-upstream", addr] => echo(addr),
        ["keygen", rest @ ..] => keygen::run(rest),
        ["rotate", file, rest @ ..] => rotate::run(file, rest),
        ["encrypt", rest @ ..] => jose::encrypt(rest),
        ["decrypt", rest @ ..] => jose::decrypt(rest),
        ["sign", rest @ ..] => sign::run(rest),
        _ => usage(),
    }
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    eprintln!("{}", jose::USAGE);
    ExitCode::from(2)
}

/// (method, path, headers)
type ExplainArgs = (String, String, Vec<(String, String)>);

/// `--method M --path P --header 'k: v'…`
fn explain_args(rest: &[&str]) -> Option<ExplainArgs> {
    let (mut method, mut path, mut headers) = (None, None, Vec::new());
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let value = it.next()?;
        match *flag {
            "--method" => method = Some(value.to_ascii_uppercase()),
            "--path" => path = Some(value.to_string()),
            "--header" => {
                let (k, v) = value.split_once(':')?;
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
            _ => return None,
        }
    }
    Some((method.unwrap_or_else(|| "GET".into()), path?, headers))
}

fn schema(module: &str) -> ExitCode {
    match portcullis::controls::module_schema(module) {
        Some(s) => {
            println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
            ExitCode::SUCCESS
        }
        None => {
            eprintln!("unknown module `{module}`");
            ExitCode::from(2)
        }
    }
}

fn echo(addr: &str) -> ExitCode {
    match portcullis::echo::EchoServer::start(addr) {
        Ok(server) => {
            println!("echo upstream listening on http://{}", server.addr);
            loop {
                std::thread::park();
            }
        }
        Err(e) => {
            eprintln!("echo upstream: cannot listen on {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}
