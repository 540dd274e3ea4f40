//! guard: several controls in one VM, in order, from one policy:
//! `{"chain": ["content_type", "error_shield"], "content_type": {…}, "error_shield": {…}}`.
//! Each member's policy is exactly what its own module takes; the first denial wins.

use serde_json::{Map, Value};

use crate::callout::{Answer, Callout, CalloutResponse, Resume};
use crate::chain::Chain;
use crate::control::{ConfigError, Control, Env};
use crate::request::{RequestView, ResponseView};
use crate::verdict::Verdict;

pub struct Guard {
    chain: Chain,
}

impl Guard {
    pub fn members(&self) -> Vec<&'static str> {
        self.chain.names()
    }
}

fn member(name: &str, policy: &Value) -> Result<Box<dyn crate::chain::DynControl>, ConfigError> {
    match super::build_by_name(name, policy) {
        Some(built) => built.map_err(|e| e.within(name)),
        None => Err(ConfigError::new("chain", not_a_member(name))),
    }
}

/// Why `name` cannot be in a chain.
fn not_a_member(name: &str) -> String {
    if super::STANDALONE.contains(&name) {
        return format!(
            "`{name}` runs only as its own module ({}.wasm), not in a guard chain",
            name.replace('_', "-")
        );
    }
    format!(
        "unknown control `{name}` (known: {})",
        super::NAMES.join(", ")
    )
}

/// The guard policy's schema: `chain` plus each member's own policy schema.
#[cfg(feature = "schema")]
pub fn schema() -> Value {
    let mut props = Map::new();
    props.insert(
        "chain".into(),
        serde_json::json!({
            "description": "The controls to run, in order; the first denial wins.",
            "type": "array", "minItems": 1, "uniqueItems": true,
            "items": {"enum": super::NAMES}
        }),
    );
    for name in super::NAMES {
        if let Some(mut s) = super::control_schema(name) {
            if let Some(o) = s.as_object_mut() {
                o.remove("$schema");
            }
            props.insert((*name).to_string(), s);
        }
    }
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "guard policy",
        "type": "object",
        "required": ["chain"],
        "additionalProperties": false,
        "properties": props
    })
}

impl Control for Guard {
    type Policy = Map<String, Value>;
    const NAME: &'static str = "guard";

    fn build(mut policy: Map<String, Value>) -> Result<Self, ConfigError> {
        if let Some(k) = policy
            .keys()
            .find(|k| *k != "chain" && !super::NAMES.contains(&k.as_str()))
        {
            let why = if super::STANDALONE.contains(&k.as_str()) {
                not_a_member(k)
            } else {
                let known = super::NAMES.join(", ");
                format!("unknown field: neither `chain` nor a control ({known})")
            };
            return Err(ConfigError::new(k.clone(), why));
        }
        let names: Vec<String> = match policy.remove("chain") {
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(ConfigError::new(
                        format!("chain[{i}]"),
                        "expected a control name",
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(ConfigError::new(
                    "chain",
                    "expected an array of control names",
                ))
            }
            None => {
                return Err(ConfigError::new(
                    "chain",
                    "missing: the ordered list of controls to run",
                ))
            }
        };
        let mut members = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            if names.get(..i).is_some_and(|before| before.contains(name)) {
                return Err(ConfigError::new(
                    format!("chain[{i}]"),
                    format!("`{name}` is listed twice"),
                ));
            }
            if name == Self::NAME {
                return Err(ConfigError::new(
                    format!("chain[{i}]"),
                    "a guard cannot contain a guard",
                ));
            }
            if !super::NAMES.contains(&name.as_str()) {
                return Err(ConfigError::new(format!("chain[{i}]"), not_a_member(name)));
            }
            let Some(p) = policy.remove(name) else {
                return Err(ConfigError::new(
                    name.clone(),
                    "no policy for this control (write {} for its defaults)",
                ));
            };
            members.push(member(name, &p)?);
        }
        if let Some(extra) = policy.keys().next() {
            return Err(ConfigError::new(
                extra.clone(),
                "a policy for a control that is not in `chain`",
            ));
        }
        Ok(Guard {
            chain: Chain::new(members)?,
        })
    }

    fn on_request(&self, req: &RequestView, env: &Env) -> Verdict {
        self.chain.on_request(req, env)
    }
    fn on_request_body(&self, req: &RequestView, body: &[u8], env: &Env) -> Verdict {
        self.chain.on_request_body(req, body, env)
    }
    fn on_answers(
        &self,
        req: &RequestView,
        body: Option<&[u8]>,
        state: &Resume,
        answers: &[Answer],
        env: &Env,
    ) -> Verdict {
        self.chain.on_answers(req, body, state, answers, env)
    }
    fn on_response(&self, req: &RequestView, resp: &ResponseView, env: &Env) -> Verdict {
        self.chain.on_response(req, resp, env)
    }
    fn on_response_body(
        &self,
        req: &RequestView,
        resp: &ResponseView,
        body: Option<&[u8]>,
        env: &Env,
    ) -> Verdict {
        self.chain.on_response_body(req, resp, body, env)
    }
    fn on_response_body_prefix(
        &self,
        req: &RequestView,
        resp: &ResponseView,
        prefix: &[u8],
        env: &Env,
    ) -> Verdict {
        self.chain.on_response_body_prefix(req, resp, prefix, env)
    }
    fn tick_period(&self) -> Option<std::time::Duration> {
        self.chain.tick_period()
    }
    fn on_tick(&self, env: &Env) -> Vec<Callout> {
        self.chain.on_tick(env)
    }
    fn on_callout_response(&self, tag: u64, resp: Option<CalloutResponse>, env: &Env) {
        self.chain.on_callout_response(tag, resp, env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::configure;
    use crate::store::MemoryStore;
    use std::time::SystemTime;

    fn guard(json: &str) -> Guard {
        configure::<Guard>(json.as_bytes()).unwrap()
    }

    fn err(json: &str) -> ConfigError {
        configure::<Guard>(json.as_bytes()).err().unwrap()
    }

    #[test]
    fn policy_errors_name_the_control_and_the_path() {
        let e = err(
            r#"{"chain": ["content_type"], "content_type": {"routes": [{"match": {"prefix": "/a"}, "allow": ["json"]}]}}"#,
        );
        assert_eq!(e.path, "content_type.routes[0].allow[0]");
        assert_eq!(err(r#"{"chain": ["nope"], "nope": {}}"#).path, "nope");
        assert_eq!(err(r#"{"chain": ["nope"]}"#).path, "chain[0]");
        assert_eq!(err(r#"{"chain": ["content_type"]}"#).path, "content_type");
        assert_eq!(
            err(r#"{"chain": ["content_type"], "content_type": {}, "error_shield": {}}"#).path,
            "error_shield"
        );
        assert_eq!(err(r#"{"content_type": {}}"#).path, "chain");
        assert_eq!(err(r#"{"chain": []}"#).path, "chain");
        let e = err(r#"{"chain": ["content_type"], "content_type": {"default": {"max_body": 1}}}"#);
        assert_eq!(e.path, "content_type.default.max_body");
    }

    #[test]
    fn the_chain_stops_at_the_first_denial_and_uses_each_controls_own_logic() {
        let g = guard(
            r#"{"chain": ["content_type", "error_shield"], "content_type": {}, "error_shield": {}}"#,
        );
        assert_eq!(g.members(), vec!["content_type", "error_shield"]);
        let store = MemoryStore::default();
        let env = Env {
            now: SystemTime::UNIX_EPOCH,
            store: &store,
        };
        let req = RequestView::new(
            "POST",
            "/x",
            &[("content-type", "text/plain"), ("content-length", "1")],
        )
        .unwrap();
        let Verdict::Deny(r) = g.on_request(&req, &env) else {
            panic!()
        };
        assert_eq!(r.code, "content_type.unsupported");
        // JSON: content-type asks for the body, and only it is asked about the body.
        let req = RequestView::new(
            "POST",
            "/x",
            &[
                ("content-type", "application/json"),
                ("content-length", "7"),
            ],
        )
        .unwrap();
        assert_eq!(
            g.on_request(&req, &env),
            Verdict::NeedBody {
                max_bytes: 1024 * 1024
            }
        );
        let v = g.on_request_body(&req, b"{\"a\":1", &env);
        assert!(
            matches!(v, Verdict::Deny(ref r) if r.code == "content_type.body_mismatch"),
            "{v:?}"
        );
    }

    #[test]
    fn responses_pass_members_in_reverse_order() {
        let g = guard(
            r#"{"chain": ["content_type", "error_shield"], "content_type": {}, "error_shield": {}}"#,
        );
        let store = MemoryStore::default();
        let env = Env {
            now: SystemTime::UNIX_EPOCH,
            store: &store,
        };
        let req = RequestView::new("GET", "/x", &[]).unwrap();
        let resp = ResponseView {
            status: 502,
            headers: vec![],
        };
        assert_eq!(
            g.on_response(&req, &resp, &env),
            Verdict::NeedBody {
                max_bytes: 256 * 1024
            }
        );
        let v = g.on_response_body(&req, &resp, Some(b"upstream 10.0.0.1 down"), &env);
        assert!(
            matches!(
                v,
                Verdict::ReplaceBody {
                    code: "error_shield.status",
                    ..
                }
            ),
            "{v:?}"
        );
    }
}
