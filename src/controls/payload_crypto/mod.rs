//! payload-crypto: encrypted API payloads (JWE, RFC 7516) end to end through the proxy.
//!
//! Per route:
//! - **decrypt_request**: the client sends `Content-Type: application/jose` with a compact JWE;
//!   the upstream gets the plaintext typed by the JWE `cty`. Anything else: 400/413/415, and the
//!   upstream sees nothing.
//! - **encrypt_response**: the upstream's body goes to the client as a compact JWE
//!   (`application/jose`, `cty` = the original type) for the key the policy names, or the key
//!   a request header names (`x-jwt-sub` forwarded by jwt-auth, say).
//! - **request_fields / response_fields**: in JSON bodies, only the values at configured paths
//!   are encrypted into compact JWE strings (`cty: "json"`) or decrypted from them.
//!
//! Algorithms: `dir`, `A128KW`, `A256KW`, `ECDH-ES+A256KW` (P-256) with `A128GCM` / `A256GCM`.
//! No RSA, no `none`, no `zip`, no `crit`.

pub mod fields;
pub mod jwe;
pub mod keys;

use serde::Deserialize;
use serde_json::Value;

use crate::config::{MatchSpec, RouteTable, Routed};
use crate::control::{ConfigError, Control, Env};
use crate::reject::Rejection;
use crate::request::{RequestView, ResponseView};
use crate::verdict::{HeaderOp, Verdict};

use fields::JsonPath;
use jwe::{Alg, Enc, JweError, Recipient};
use keys::{KeySet, KeySpec};

pub const JOSE: &str = "application/jose";

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Every key the module knows: ours (to decrypt) and clients' (to encrypt for).
    #[serde(default)]
    pub keys: Vec<KeySpec>,
    #[serde(default)]
    pub routes: Vec<RuleSpec>,
    /// The rule for requests no route matches (default: nothing is encrypted or decrypted).
    #[serde(default)]
    pub default: RuleSpec,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    #[serde(rename = "match", default)]
    pub matcher: Option<MatchSpec>,
    /// Request bodies must be a compact JWE (`application/jose`); the upstream gets plaintext.
    #[serde(default)]
    pub decrypt_request: bool,
    /// Response bodies are encrypted for this recipient.
    #[serde(default)]
    pub encrypt_response: Option<TargetSpec>,
    /// Values at JSON paths of the request body, encrypted or decrypted.
    #[serde(default)]
    pub request_fields: Option<FieldsSpec>,
    /// Values at JSON paths of the response body, encrypted or decrypted.
    #[serde(default)]
    pub response_fields: Option<FieldsSpec>,
    /// Largest body holding ciphertext (the JWE, or a JSON body with JWE fields): 413 beyond.
    #[serde(default = "default_max_bytes")]
    pub max_ciphertext_bytes: usize,
    /// Largest plaintext to encrypt or decrypted: 413 (requests) / 502 (responses) beyond.
    #[serde(default = "default_max_bytes")]
    pub max_plaintext_bytes: usize,
    /// Most values one body may have encrypted or decrypted (paths with `[*]`): 413 beyond.
    #[serde(default = "default_max_fields")]
    pub max_fields: usize,
}

fn default_max_bytes() -> usize {
    1024 * 1024
}
fn default_max_fields() -> usize {
    64
}

impl Default for RuleSpec {
    fn default() -> Self {
        RuleSpec {
            matcher: None,
            decrypt_request: false,
            encrypt_response: None,
            request_fields: None,
            response_fields: None,
            max_ciphertext_bytes: default_max_bytes(),
            max_plaintext_bytes: default_max_bytes(),
            max_fields: default_max_fields(),
        }
    }
}

impl Routed for RuleSpec {
    fn matcher(&self) -> Option<&MatchSpec> {
        self.matcher.as_ref()
    }
}

/// Whom to encrypt for: a fixed key, or the key a request header names.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// The `kid` of a key in `keys`.
    #[serde(default)]
    pub kid: Option<String>,
    /// A request header whose value is the `kid` (e.g. `x-jwt-sub` from jwt-auth).
    #[serde(default)]
    pub kid_header: Option<String>,
    /// `A256GCM` (default) or `A128GCM`; `dir` keys use the one their size fits.
    #[serde(default)]
    pub enc: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct FieldsSpec {
    /// Paths whose values become compact JWE strings.
    #[serde(default)]
    pub encrypt: Vec<String>,
    /// Paths whose compact JWE string values are decrypted back to JSON values.
    #[serde(default)]
    pub decrypt: Vec<String>,
    /// The recipient of `encrypt` (required when `encrypt` is not empty).
    #[serde(default)]
    pub to: Option<TargetSpec>,
}

#[derive(Debug)]
enum Target {
    Fixed(usize),
    Header(String),
}

#[derive(Debug)]
struct Recip {
    target: Target,
    enc: Option<Enc>,
}

#[derive(Debug)]
struct Fields {
    encrypt: Vec<JsonPath>,
    decrypt: Vec<JsonPath>,
    to: Option<Recip>,
}

#[derive(Debug)]
struct Rule {
    decrypt_request: bool,
    encrypt_response: Option<Recip>,
    request_fields: Option<Fields>,
    response_fields: Option<Fields>,
    max_ciphertext: usize,
    max_plaintext: usize,
    max_fields: usize,
}

#[derive(Debug)]
pub struct PayloadCrypto {
    keys: KeySet,
    routes: RouteTable<Rule>,
}

const MAX_LIMIT: usize = 16 * 1024 * 1024;
const REQ_KEY_NOTE: &str = "payload_crypto.request_key";
const RESP_KEY_NOTE: &str = "payload_crypto.response_key";

fn compile_recip(spec: &TargetSpec, keys: &KeySet) -> Result<Recip, ConfigError> {
    let enc = match &spec.enc {
        None => None,
        Some(e) => Some(Enc::parse(e).ok_or_else(|| {
            ConfigError::new("enc", format!("`{e}` is not supported (A128GCM, A256GCM)"))
        })?),
    };
    let target = match (&spec.kid, &spec.kid_header) {
        (Some(kid), None) => {
            let i = keys
                .position(kid)
                .ok_or_else(|| ConfigError::new("kid", format!("no key `{kid}` in `keys`")))?;
            if let (Some(key), Some(enc)) = (keys.get(i), enc) {
                if let (Alg::Dir, jwe::KeyMaterial::Oct(k)) = (key.alg, &key.material) {
                    if k.len() != enc.key_len() {
                        return Err(ConfigError::new(
                            "enc",
                            format!("the `dir` key `{kid}` does not fit {}", enc.name()),
                        ));
                    }
                }
            }
            Target::Fixed(i)
        }
        (None, Some(h)) => {
            let h = h.to_ascii_lowercase();
            if h.is_empty() || !h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(ConfigError::new("kid_header", "not a header name"));
            }
            Target::Header(h)
        }
        _ => {
            return Err(ConfigError::new(
                "",
                "exactly one of `kid` or `kid_header` is required",
            ))
        }
    };
    Ok(Recip { target, enc })
}

fn compile_fields(spec: &FieldsSpec, keys: &KeySet) -> Result<Fields, ConfigError> {
    let paths = |list: &[String], name: &str| -> Result<Vec<JsonPath>, ConfigError> {
        list.iter()
            .enumerate()
            .map(|(i, p)| JsonPath::parse(p).map_err(|e| e.within(&format!("{name}[{i}]"))))
            .collect()
    };
    let encrypt = paths(&spec.encrypt, "encrypt")?;
    let decrypt = paths(&spec.decrypt, "decrypt")?;
    if encrypt.is_empty() && decrypt.is_empty() {
        return Err(ConfigError::new(
            "",
            "names no path in `encrypt` or `decrypt`",
        ));
    }
    let to = match (&spec.to, encrypt.is_empty()) {
        (Some(t), _) => Some(compile_recip(t, keys).map_err(|e| e.within("to"))?),
        (None, false) => return Err(ConfigError::new("to", "`encrypt` needs a recipient (`to`)")),
        (None, true) => None,
    };
    Ok(Fields {
        encrypt,
        decrypt,
        to,
    })
}

fn compile_rule(spec: &RuleSpec, keys: &KeySet) -> Result<Rule, ConfigError> {
    for (name, v) in [
        ("max_ciphertext_bytes", spec.max_ciphertext_bytes),
        ("max_plaintext_bytes", spec.max_plaintext_bytes),
    ] {
        if v == 0 || v > MAX_LIMIT {
            return Err(ConfigError::new(name, "must be between 1 and 16777216"));
        }
    }
    if spec.max_fields == 0 || spec.max_fields > 10_000 {
        return Err(ConfigError::new(
            "max_fields",
            "must be between 1 and 10000",
        ));
    }
    if spec.decrypt_request && spec.request_fields.is_some() {
        return Err(ConfigError::new(
            "request_fields",
            "a rule decrypts the whole request body or fields of it, not both",
        ));
    }
    if spec.encrypt_response.is_some() && spec.response_fields.is_some() {
        return Err(ConfigError::new(
            "response_fields",
            "a rule encrypts the whole response body or fields of it, not both",
        ));
    }
    let opt_fields = |f: &Option<FieldsSpec>, name: &str| {
        f.as_ref()
            .map(|f| compile_fields(f, keys).map_err(|e| e.within(name)))
            .transpose()
    };
    Ok(Rule {
        decrypt_request: spec.decrypt_request,
        encrypt_response: spec
            .encrypt_response
            .as_ref()
            .map(|t| compile_recip(t, keys).map_err(|e| e.within("encrypt_response")))
            .transpose()?,
        request_fields: opt_fields(&spec.request_fields, "request_fields")?,
        response_fields: opt_fields(&spec.response_fields, "response_fields")?,
        max_ciphertext: spec.max_ciphertext_bytes,
        max_plaintext: spec.max_plaintext_bytes,
        max_fields: spec.max_fields,
    })
}

fn reject(status: u16, e: JweError) -> Rejection {
    Rejection::new(status, e.code(), e.detail())
}

/// The media type essence of a `Content-Type` value, lower case.
fn essence(ct: &str) -> String {
    ct.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The response is content-encoded: any `Content-Encoding` field line (each checked, raw bytes)
/// with a coding other than `identity`. Encrypting it would need decoding first.
fn encoded(resp: &ResponseView) -> bool {
    resp.headers
        .iter()
        .filter(|(k, _)| k == "content-encoding")
        .flat_map(|(_, v)| v.split(|b| *b == b','))
        .any(|c| {
            let c = c.trim_ascii();
            !c.is_empty() && !c.eq_ignore_ascii_case(b"identity")
        })
}

fn is_json(ct: Option<&str>) -> bool {
    ct.map(essence).is_some_and(|e| {
        e == "application/json" || (e.starts_with("application/") && e.ends_with("+json"))
    })
}

/// The media type a `cty` names (RFC 7515 §4.1.10: without a `/`, `application/` is implied),
/// if it is safe to put in a header.
fn cty_media_type(cty: &str) -> Option<String> {
    let ok = !cty.is_empty()
        && cty.len() <= 256
        && cty.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        && !cty.contains(',');
    if !ok {
        return None;
    }
    Some(if cty.contains('/') {
        cty.to_string()
    } else {
        format!("application/{cty}")
    })
}

/// The `cty` to write for a media type (RFC 7515 §4.1.10: drop a leading `application/`
/// when no other `/` follows).
fn media_type_cty(ct: &str) -> String {
    match ct.strip_prefix("application/") {
        Some(rest) if !rest.contains('/') => rest.to_string(),
        _ => ct.to_string(),
    }
}

impl PayloadCrypto {
    /// The key a recipient resolves to for this request (index into the key set).
    fn resolve(&self, r: &Recip, req: &RequestView, env: &Env) -> Result<usize, Rejection> {
        let i = match &r.target {
            Target::Fixed(i) => *i,
            Target::Header(h) => {
                let kid = req.header(h).map(str::trim).unwrap_or("");
                self.keys.position(kid).ok_or_else(|| {
                    Rejection::new(
                        400,
                        "payload_crypto.unknown_client_key",
                        format!("`{h}` names no client key"),
                    )
                })?
            }
        };
        match self.keys.get(i) {
            Some(k) if k.valid_at(env.now) => Ok(i),
            Some(_) if matches!(r.target, Target::Header(_)) => Err(Rejection::new(
                400,
                "payload_crypto.client_key_not_valid",
                "the client key is outside its validity period",
            )),
            _ => Err(Rejection::new(
                503,
                "payload_crypto.key_not_valid",
                "the encryption key is outside its validity period",
            )),
        }
    }

    /// The key resolved for this request in `on_request` (noted), or resolved again: a chain
    /// (guard) hands members copies of the request, so a note may not survive.
    fn key_for(
        &self,
        note: &str,
        r: &Recip,
        req: &RequestView,
        env: &Env,
    ) -> Result<usize, Rejection> {
        match req.noted(note).and_then(|i| usize::try_from(i).ok()) {
            Some(i) => Ok(i),
            None => self.resolve(r, req, env),
        }
    }

    fn recipient<'a>(&'a self, i: usize, r: &Recip) -> Result<Recipient<'a>, Rejection> {
        let key = self
            .keys
            .get(i)
            .ok_or_else(|| Rejection::new(500, "internal", "key state lost"))?;
        let enc = match (key.alg, &key.material) {
            (Alg::Dir, jwe::KeyMaterial::Oct(k)) if k.len() == 16 => Enc::A128Gcm,
            (Alg::Dir, _) => Enc::A256Gcm,
            _ => r.enc.unwrap_or(Enc::A256Gcm),
        };
        if let (Alg::Dir, Some(want)) = (key.alg, r.enc) {
            if want != enc {
                return Err(Rejection::new(
                    400,
                    "payload_crypto.unknown_client_key",
                    "the client key does not fit the configured `enc`",
                ));
            }
        }
        Ok(Recipient {
            kid: Some(&key.kid),
            alg: key.alg,
            enc,
            key: &key.material,
        })
    }

    /// Decrypt a compact JWE with the key set.
    fn open(&self, compact: &str, env: &Env) -> Result<(Vec<u8>, Option<String>), JweError> {
        let p = jwe::parse(compact)?;
        let key = self.keys.for_decrypt(p.kid(), p.alg, env.now)?;
        let plain = jwe::decrypt(&p, &key.material)?;
        Ok((plain, p.cty().map(str::to_string)))
    }

    /// Encrypt or decrypt the configured fields of a JSON document in place.
    fn transform(
        &self,
        doc: &mut Value,
        f: &Fields,
        key: Option<usize>,
        rule: &Rule,
        status: u16,
        env: &Env,
    ) -> Result<(), Rejection> {
        let mut count = 0usize;
        let mut bump = || -> Result<(), Rejection> {
            count = count.saturating_add(1);
            if count > rule.max_fields {
                return Err(Rejection::new(
                    413,
                    "payload_crypto.too_many_fields",
                    format!("more than {} encrypted fields", rule.max_fields),
                ));
            }
            Ok(())
        };
        for path in &f.decrypt {
            path.for_each(doc, &mut |v: &mut Value| {
                bump()?;
                let Value::String(s) = v else {
                    return Err(Rejection::new(
                        status,
                        "payload_crypto.field_not_jwe",
                        format!("`{}` is not a JWE string", path.text),
                    ));
                };
                let (plain, _) = self.open(s, env).map_err(|e| reject(status, e))?;
                if plain.len() > rule.max_plaintext {
                    return Err(Rejection::new(
                        413,
                        "payload_crypto.plaintext_too_large",
                        "a decrypted field is too large",
                    ));
                }
                *v = serde_json::from_slice(&plain).map_err(|_| {
                    Rejection::new(
                        status,
                        "payload_crypto.field_not_json",
                        format!("`{}` does not decrypt to a JSON value", path.text),
                    )
                })?;
                Ok(())
            })?;
        }
        if let (Some(to), Some(i)) = (&f.to, key) {
            let recipient = self.recipient(i, to)?;
            for path in &f.encrypt {
                path.for_each(doc, &mut |v: &mut Value| {
                    bump()?;
                    let plain = serde_json::to_vec(v)
                        .map_err(|_| Rejection::new(500, "internal", "serialisation failed"))?;
                    let jwe = jwe::encrypt(&plain, &recipient, Some("json"))
                        .map_err(|e| reject(500, e))?;
                    *v = Value::String(jwe);
                    Ok(())
                })?;
            }
        }
        Ok(())
    }

    fn fields_body(
        &self,
        body: &[u8],
        f: &Fields,
        key: Option<usize>,
        rule: &Rule,
        status: u16,
        env: &Env,
    ) -> Result<Vec<u8>, Rejection> {
        let mut doc: Value = serde_json::from_slice(body).map_err(|_| {
            Rejection::new(status, "payload_crypto.not_json", "the body is not JSON")
        })?;
        self.transform(&mut doc, f, key, rule, status, env)?;
        serde_json::to_vec(&doc)
            .map_err(|_| Rejection::new(500, "internal", "serialisation failed"))
    }

    fn decrypt_body(
        &self,
        body: &[u8],
        rule: &Rule,
        env: &Env,
    ) -> Result<(Vec<u8>, String), Rejection> {
        let text = std::str::from_utf8(body)
            .map_err(|_| reject(400, JweError::Malformed))?
            .trim_matches(|c: char| c.is_ascii_whitespace());
        let (plain, cty) = self.open(text, env).map_err(|e| reject(400, e))?;
        if plain.len() > rule.max_plaintext {
            return Err(Rejection::new(
                413,
                "payload_crypto.plaintext_too_large",
                format!("the plaintext is larger than {} bytes", rule.max_plaintext),
            ));
        }
        let media = match cty {
            None => "application/octet-stream".to_string(),
            Some(c) => cty_media_type(&c).ok_or_else(|| {
                Rejection::new(
                    400,
                    "payload_crypto.bad_cty",
                    "the JWE `cty` is not a media type",
                )
            })?,
        };
        Ok((plain, media))
    }
}

fn too_large(status: u16, code: &'static str, max: usize) -> Rejection {
    Rejection::new(status, code, format!("the body is larger than {max} bytes"))
}

fn content_length(h: Option<&str>) -> Option<usize> {
    h.and_then(|v| v.trim().parse().ok())
}

impl Control for PayloadCrypto {
    type Policy = Policy;
    const NAME: &'static str = "payload_crypto";

    fn build(policy: Policy) -> Result<Self, ConfigError> {
        let keys = KeySet::compile(&policy.keys)?;
        let routes =
            RouteTable::compile(&policy.routes, &policy.default, |r| compile_rule(r, &keys))?;
        Ok(PayloadCrypto { keys, routes })
    }

    fn on_request(&self, req: &RequestView, env: &Env) -> Verdict {
        let (rule, _) = self.routes.select(req);
        let mut ops = Vec::new();
        let resp_recip = rule
            .encrypt_response
            .as_ref()
            .or(rule.response_fields.as_ref().and_then(|f| f.to.as_ref()));
        if let Some(r) = resp_recip {
            match self.resolve(r, req, env) {
                Ok(i) => req.note(RESP_KEY_NOTE, i as u64),
                Err(e) => return Verdict::Deny(e),
            }
        }
        if rule.encrypt_response.is_some() || rule.response_fields.is_some() {
            // A compressed response could not be encrypted (or its fields found).
            ops.push(HeaderOp::Remove("accept-encoding".into()));
        }
        if let Some(r) = rule.request_fields.as_ref().and_then(|f| f.to.as_ref()) {
            match self.resolve(r, req, env) {
                Ok(i) => req.note(REQ_KEY_NOTE, i as u64),
                Err(e) => return Verdict::Deny(e),
            }
        }
        let len = content_length(req.header("content-length"));
        if rule.decrypt_request && req.has_body {
            if req.header("content-type").map(essence).as_deref() != Some(JOSE) {
                return Verdict::Deny(
                    Rejection::new(
                        415,
                        "payload_crypto.not_jwe",
                        "the body must be a JWE (application/jose)",
                    )
                    .with_header("accept-post", JOSE),
                );
            }
            if len.is_some_and(|l| l > rule.max_ciphertext) {
                return Verdict::Deny(too_large(
                    413,
                    "payload_crypto.too_large",
                    rule.max_ciphertext,
                ));
            }
            return Verdict::NeedBody {
                max_bytes: rule.max_ciphertext,
            };
        }
        if rule.request_fields.is_some() && req.has_body {
            if !is_json(req.header("content-type")) {
                return Verdict::Deny(Rejection::new(
                    415,
                    "payload_crypto.not_json",
                    "fields are encrypted in JSON bodies only",
                ));
            }
            let max = rule.max_ciphertext.max(rule.max_plaintext);
            if len.is_some_and(|l| l > max) {
                return Verdict::Deny(too_large(413, "payload_crypto.too_large", max));
            }
            return Verdict::NeedBody { max_bytes: max };
        }
        Verdict::Mutate(ops)
    }

    fn on_request_body(&self, req: &RequestView, body: &[u8], env: &Env) -> Verdict {
        let (rule, _) = self.routes.select(req);
        let mut ops = Vec::new();
        if rule.encrypt_response.is_some() || rule.response_fields.is_some() {
            ops.push(HeaderOp::Remove("accept-encoding".into()));
        }
        if rule.decrypt_request {
            if body.is_empty() {
                return Verdict::Deny(reject(400, JweError::Malformed));
            }
            return match self.decrypt_body(body, rule, env) {
                Ok((plain, media)) => {
                    ops.push(HeaderOp::Set("content-type".into(), media));
                    ops.push(HeaderOp::Remove("content-encoding".into()));
                    Verdict::ReplaceBody {
                        code: "payload_crypto.decrypted",
                        headers: ops,
                        body: plain,
                    }
                }
                Err(r) => Verdict::Deny(r),
            };
        }
        if let Some(f) = &rule.request_fields {
            if body.is_empty() {
                return Verdict::Mutate(ops);
            }
            let key = match &f.to {
                Some(r) => match self.key_for(REQ_KEY_NOTE, r, req, env) {
                    Ok(i) => Some(i),
                    Err(e) => return Verdict::Deny(e),
                },
                None => None,
            };
            return match self.fields_body(body, f, key, rule, 400, env) {
                Ok(body) => Verdict::ReplaceBody {
                    code: "payload_crypto.fields",
                    headers: ops,
                    body,
                },
                Err(r) => Verdict::Deny(r),
            };
        }
        Verdict::Mutate(ops)
    }

    fn on_response(&self, req: &RequestView, resp: &ResponseView, _env: &Env) -> Verdict {
        let (rule, _) = self.routes.select(req);
        if rule.encrypt_response.is_none() && rule.response_fields.is_none() {
            return Verdict::Continue;
        }
        // Every response body on the route is read and must parse as JSON, whatever its label
        // says (`text/json`, none, a second Content-Type line, `text/plain` from a mislabelling
        // upstream): a body that could not be encrypted never passes in clear (#17 class 5).
        if encoded(resp) {
            return Verdict::Deny(Rejection::new(
                502,
                "payload_crypto.encoded_response",
                "the upstream response is content-encoded and cannot be encrypted",
            ));
        }
        if content_length(resp.header("content-length")).is_some_and(|l| l > rule.max_plaintext) {
            return Verdict::Deny(too_large(
                502,
                "payload_crypto.response_too_large",
                rule.max_plaintext,
            ));
        }
        Verdict::NeedBody {
            max_bytes: rule.max_plaintext,
        }
    }

    fn on_response_body(
        &self,
        req: &RequestView,
        resp: &ResponseView,
        body: Option<&[u8]>,
        env: &Env,
    ) -> Verdict {
        let (rule, _) = self.routes.select(req);
        let Some(body) = body else {
            // Too large to encrypt: it must not pass in clear.
            return Verdict::Deny(too_large(
                502,
                "payload_crypto.response_too_large",
                rule.max_plaintext,
            ));
        };
        if body.is_empty() {
            return Verdict::Continue;
        }
        let recip = rule
            .encrypt_response
            .as_ref()
            .or(rule.response_fields.as_ref().and_then(|f| f.to.as_ref()));
        let key = match recip.map(|r| self.key_for(RESP_KEY_NOTE, r, req, env)) {
            Some(Ok(i)) => Some(i),
            // Checked on the request already; only a key expiring in between gets here.
            Some(Err(e)) => return Verdict::Deny(Rejection { status: 502, ..e }),
            None => None,
        };
        if let (Some(r), Some(i)) = (&rule.encrypt_response, key) {
            let recipient = match self.recipient(i, r) {
                Ok(rc) => rc,
                Err(e) => return Verdict::Deny(e),
            };
            let cty = resp
                .header("content-type")
                .map(|c| media_type_cty(c.trim()));
            return match jwe::encrypt(body, &recipient, cty.as_deref()) {
                Ok(jwe) => Verdict::ReplaceBody {
                    code: "payload_crypto.encrypted",
                    headers: vec![
                        HeaderOp::Set("content-type".into(), JOSE.into()),
                        HeaderOp::Remove("content-encoding".into()),
                        HeaderOp::Remove("etag".into()),
                    ],
                    body: jwe.into_bytes(),
                },
                Err(e) => Verdict::Deny(reject(500, e)),
            };
        }
        if let Some(f) = &rule.response_fields {
            return match self.fields_body(body, f, key, rule, 502, env) {
                Ok(body) => Verdict::ReplaceBody {
                    code: "payload_crypto.fields",
                    headers: vec![HeaderOp::Remove("etag".into())],
                    body,
                },
                Err(r) => Verdict::Deny(r),
            };
        }
        Verdict::Continue
    }
}

#[cfg(test)]
mod tests;
