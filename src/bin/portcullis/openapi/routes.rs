//! `--jwt-routes`: the contract's `security` requirements on oauth2 / openIdConnect schemes as
//! jwt-auth routes, so that one contract drives api-schema and jwt-auth.
//!
//! Exactness, and where jwt-auth cannot be exact, strictness: a route never admits a request
//! the contract's OAuth requirements refuse.
//! - Paths: a concrete path becomes an `exact` match, a templated one a `regex` in which each
//!   `{name}` is one non-empty segment (`[^/]+`, what api-schema binds), under each server
//!   base, in api-schema's order (bases in order, concrete paths before templated ones). A path
//!   item that a later route could also match gets a trailing `deny` for its undeclared
//!   methods, so they never fall through to the later (possibly weaker) route, as api-schema
//!   would answer 405 for them rather than try another path.
//! - Requirements (OpenAPI 3.1 §4.8.30: a list of alternatives, each an AND of schemes):
//!   `{}` makes the route `allow_anonymous`; alternatives on one scheme each become
//!   `providers` named after the schemes with `scopes_all` / `scopes_any` when that is exact,
//!   else every scope any alternative names (stricter, reported). An alternative needing two
//!   OAuth tokens at once, or a non-OAuth scheme beside OAuth alternatives, cannot be checked
//!   by jwt-auth and is dropped (stricter, reported); an operation whose requirements name no
//!   OAuth scheme at all is jwt-auth's `allow_anonymous` (reported: another control, such as
//!   api-key, must enforce it).

use std::collections::BTreeSet;

use portcullis::controls::api_schema::base_paths;
use portcullis::controls::api_schema::schema::resolve;
use portcullis::path::normalize;
use serde_json::{json, Map, Value};

use super::{Notice, Operation};

/// The jwt-auth fragment, which route came from which operation, what was approximated, and
/// the security schemes its routes name as providers.
pub struct Routes {
    pub fragment: Value,
    pub origins: Vec<String>,
    pub notices: Vec<Notice>,
    pub providers: Vec<String>,
}

/// A path template's segments, after the server base's.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Literal(String),
    Param,
}

/// Segments of `base` + `template` as api-schema compares them with a request's normalised
/// path, or why no normalised path can ever match (then no route is needed: api-schema 404s).
fn segments(base: &str, template: &str) -> Result<Vec<Seg>, String> {
    let mut out = Vec::new();
    let base_segs = base.split('/').skip(1).map(|s| (s, false));
    let tmpl_segs = template.split('/').skip(1).map(|s| (s, true));
    let all: Vec<(&str, bool)> = base_segs.chain(tmpl_segs).collect();
    let last = all.len().saturating_sub(1);
    for (i, (s, in_template)) in all.into_iter().enumerate() {
        if in_template && s.starts_with('{') && s.ends_with('}') {
            out.push(Seg::Param);
            continue;
        }
        // api-schema compares a literal segment, %-decoded, with the normalised request's.
        let lit = if in_template {
            String::from_utf8_lossy(&portcullis::params::percent_decode(s.as_bytes())).into_owned()
        } else {
            s.to_string()
        };
        // Empty only as the last segment (a trailing slash); otherwise normalisation keeps it.
        let fixed_point = if lit.is_empty() {
            i == last
        } else {
            !lit.contains('/') && normalize(&format!("/{lit}")).ok() == Some(format!("/{lit}"))
        };
        if !fixed_point {
            return Err(format!(
                "segment `{s}` never appears in a normalised request path"
            ));
        }
        out.push(Seg::Literal(lit));
    }
    Ok(out)
}

fn path_match(segs: &[Seg]) -> Value {
    if segs.iter().all(|s| matches!(s, Seg::Literal(_))) {
        let mut p = String::new();
        for s in segs {
            if let Seg::Literal(l) = s {
                p.push('/');
                p.push_str(l);
            }
        }
        return json!({ "exact": if p.is_empty() { "/".to_string() } else { p } });
    }
    let mut re = String::new();
    for s in segs {
        re.push('/');
        match s {
            Seg::Literal(l) => re.push_str(&regex_lite::escape(l)),
            Seg::Param => re.push_str("[^/]+"),
        }
    }
    json!({ "regex": re })
}

/// Some normalised path matches both.
fn overlap(a: &[Seg], b: &[Seg]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Seg::Literal(x), Seg::Literal(y)) => x == y,
            _ => true,
        })
}

struct Scheme {
    oauth: bool,
    kind: String,
}

fn scheme(doc: &Value, name: &str, at: &str) -> Result<Scheme, String> {
    let s = doc
        .pointer("/components/securitySchemes")
        .and_then(|s| s.get(name))
        .ok_or_else(|| {
            format!("{at}: security scheme `{name}` is not declared in components.securitySchemes")
        })?;
    let s = match s.get("$ref").and_then(Value::as_str) {
        Some(r) => resolve(doc, r).map_err(|e| format!("{at}: {e}"))?,
        None => s,
    };
    let kind = s
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_string();
    Ok(Scheme {
        oauth: matches!(kind.as_str(), "oauth2" | "openIdConnect"),
        kind,
    })
}

type ScopeSet = BTreeSet<String>;

/// Drop alternatives implied by a weaker one (`[a]` or `[a, b]` is `[a]`).
fn minimal(mut sets: Vec<ScopeSet>) -> Vec<ScopeSet> {
    sets.sort();
    sets.dedup();
    let all = sets.clone();
    sets.retain(|s| !all.iter().any(|t| t != s && t.is_subset(s)));
    sets
}

/// `scopes_all` + `scopes_any` equal to the alternatives `sets` (each needs all of its
/// scopes), when they can be.
fn exact_scopes(sets: &[ScopeSet]) -> Option<(ScopeSet, ScopeSet)> {
    let mut iter = sets.iter();
    let first = iter.next()?;
    let common: ScopeSet = iter.fold(first.clone(), |c, s| &c & s);
    if sets.len() == 1 {
        return Some((common, ScopeSet::new()));
    }
    let mut any = ScopeSet::new();
    for s in sets {
        let extra: Vec<&String> = s.difference(&common).collect();
        let [one] = extra.as_slice() else { return None };
        any.insert((*one).clone());
    }
    Some((common, any))
}

/// The jwt-auth rule (without `match`) for one operation's effective requirements.
fn rule(
    doc: &Value,
    op: &Operation,
    notices: &mut Vec<Notice>,
) -> Result<Map<String, Value>, String> {
    let mut rule = Map::new();
    let (reqs, at) = match op.op.get("security") {
        Some(s) => (s, format!("{}.security", op.at)),
        None => match doc.get("security") {
            Some(s) => (s, "openapi.security".to_string()),
            None => (&Value::Null, String::new()),
        },
    };
    let empty = Vec::new();
    let reqs = match reqs {
        Value::Null => &empty,
        Value::Array(a) => a,
        _ => return Err(format!("{at}: expected an array of security requirements")),
    };
    let mut anonymous = reqs.is_empty();
    // (scheme, scopes) of the alternatives that need exactly one OAuth token.
    let mut alts: Vec<(String, ScopeSet)> = Vec::new();
    let mut unverifiable = Vec::new();
    let mut names_oauth = false;
    for (i, r) in reqs.iter().enumerate() {
        let r_at = format!("{at}[{i}]");
        let r = r
            .as_object()
            .ok_or_else(|| format!("{r_at}: expected a security requirement object"))?;
        if r.is_empty() {
            anonymous = true;
            continue;
        }
        let mut oauth = Vec::new();
        for (name, scopes) in r {
            let s = scheme(doc, name, &r_at)?;
            let scopes: ScopeSet = scopes
                .as_array()
                .and_then(|a| a.iter().map(|s| s.as_str().map(String::from)).collect())
                .ok_or_else(|| format!("{r_at}.{name}: expected an array of scope names"))?;
            if s.oauth {
                oauth.push((name.clone(), scopes));
            } else {
                notices.push(Notice::new(
                    format!("{r_at}.{name}"),
                    format!(
                        "`{name}` ({}) is not a token jwt-auth verifies: enforce it with another \
                         control (api-key, request-signing)",
                        s.kind
                    ),
                ));
            }
        }
        names_oauth |= !oauth.is_empty();
        match oauth.len() {
            0 => unverifiable.push(r_at),
            1 => alts.extend(oauth),
            _ => {
                notices.push(Notice::new(
                    r_at.clone(),
                    "this alternative needs two OAuth tokens at once, which jwt-auth cannot \
                     check",
                ));
                unverifiable.push(r_at);
            }
        }
    }
    if alts.is_empty() {
        if anonymous {
            rule.insert("allow_anonymous".into(), json!(true));
        } else if names_oauth {
            notices.push(Notice::new(
                op.at.clone(),
                "no requirement jwt-auth can check: the route denies (403 jwt.no_route)",
            ));
            rule.insert("deny".into(), json!(true));
        } else {
            notices.push(Notice::new(
                op.at.clone(),
                "requires no OAuth scheme: jwt-auth lets it through (allow_anonymous)",
            ));
            rule.insert("allow_anonymous".into(), json!(true));
        }
        return Ok(rule);
    }
    for a in &unverifiable {
        notices.push(Notice::new(
            a.clone(),
            "an alternative jwt-auth cannot check: the route accepts only the OAuth \
             alternatives (stricter)",
        ));
    }
    let providers: BTreeSet<&String> = alts.iter().map(|(s, _)| s).collect();
    let families: Vec<Vec<ScopeSet>> = providers
        .iter()
        .map(|p| {
            minimal(
                alts.iter()
                    .filter(|(s, _)| s == *p)
                    .map(|(_, t)| t.clone())
                    .collect(),
            )
        })
        .collect();
    let same = families.windows(2).all(|w| w.first() == w.get(1));
    let exact = if same {
        families.first().and_then(|f| exact_scopes(f))
    } else {
        None
    };
    let (all, any) = match exact {
        Some(x) => x,
        None => {
            notices.push(Notice::new(
                at.clone(),
                "jwt-auth cannot express these alternatives exactly: the route requires every \
                 scope any of them names (stricter)",
            ));
            (
                alts.iter().flat_map(|(_, t)| t.iter().cloned()).collect(),
                ScopeSet::new(),
            )
        }
    };
    rule.insert("providers".into(), json!(providers));
    if !all.is_empty() {
        rule.insert("scopes_all".into(), json!(all));
    }
    if !any.is_empty() {
        rule.insert("scopes_any".into(), json!(any));
    }
    if anonymous {
        rule.insert("allow_anonymous".into(), json!(true));
    }
    Ok(rule)
}

/// One path item under one base: its routes (each with the operation it came from).
struct Planned<'a> {
    segs: Vec<Seg>,
    routes: Vec<(Value, String)>,
    template: &'a str,
}

pub fn routes(doc: &Value) -> Result<Routes, String> {
    let mut notices = Vec::new();
    // Path items in api-schema's order: concrete paths before templated ones (a stable sort).
    let mut items: Vec<(&str, Vec<Operation>)> = super::path_items(doc)
        .into_iter()
        .map(|(t, item)| (t, super::operations_of(t, item)))
        .collect();
    items.sort_by_key(|(t, _)| t.split('/').filter(|s| s.starts_with('{')).count());
    let mut planned: Vec<Planned> = Vec::new();
    // The policy compiled: its servers' base paths are well formed.
    for base in base_paths(doc).unwrap_or_default() {
        for (template, ops) in &items {
            let segs = match segments(&base, template) {
                Ok(s) => s,
                Err(e) => {
                    notices.push(Notice::new(
                        format!("openapi.paths.{template}"),
                        format!("{e}: no request can reach it, no route written"),
                    ));
                    continue;
                }
            };
            // One route per distinct rule, its methods together.
            let mut groups: Vec<(Map<String, Value>, Vec<String>, String)> = Vec::new();
            for op in ops {
                let r = rule(doc, op, &mut notices)?;
                match groups.iter_mut().find(|(g, _, _)| *g == r) {
                    Some((_, methods, _)) => methods.push(op.method.to_ascii_uppercase()),
                    None => groups.push((r, vec![op.method.to_ascii_uppercase()], op.at.clone())),
                }
            }
            let m = path_match(&segs);
            let routes = groups
                .into_iter()
                .map(|(mut r, methods, origin)| {
                    let mut m = m.clone();
                    m["methods"] = json!(methods);
                    r.insert("match".into(), m);
                    (Value::Object(r), origin)
                })
                .collect();
            planned.push(Planned {
                segs,
                routes,
                template,
            });
        }
    }
    let mut out = Vec::new();
    let mut origins = Vec::new();
    for (i, p) in planned.iter().enumerate() {
        out.extend(p.routes.iter().map(|(r, _)| r.clone()));
        origins.extend(p.routes.iter().map(|(_, o)| o.clone()));
        if planned
            .iter()
            .skip(i + 1)
            .any(|later| overlap(&p.segs, &later.segs))
        {
            out.push(json!({"match": path_match(&p.segs), "deny": true}));
            origins.push(format!("openapi.paths.{} (undeclared methods)", p.template));
        }
    }
    let mut providers: Vec<String> = out
        .iter()
        .filter_map(|r| r.get("providers").and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect();
    providers.sort();
    providers.dedup();
    Ok(Routes {
        fragment: json!({"routes": out, "default": {"deny": true}}),
        origins,
        notices,
        providers,
    })
}
