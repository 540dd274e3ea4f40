//! Policy pieces every control shares: route matching and the rule table.

use serde::Deserialize;

use crate::control::ConfigError;
use crate::path;
use crate::request::RequestView;

/// How a rule selects requests, as written in a policy:
/// `{"prefix": "/api", "methods": ["POST", "PUT"]}`. Exactly one of `exact`, `prefix`, `regex`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MatchSpec {
    #[serde(default)]
    pub exact: Option<String>,
    /// Segment-aware: `/api` matches `/api` and `/api/…`, never `/apiv2`.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Matched against the whole normalised path (anchored at both ends).
    #[serde(default)]
    pub regex: Option<String>,
    /// Upper-case method names; empty or absent means every method.
    #[serde(default)]
    pub methods: Vec<String>,
}

#[derive(Debug, Clone)]
enum PathMatch {
    Exact(String),
    Prefix(String),
    Regex(regex_lite::Regex),
}

/// A compiled [`MatchSpec`].
#[derive(Debug, Clone)]
pub struct RouteMatch {
    path: PathMatch,
    methods: Vec<String>,
}

const MAX_REGEX_LEN: usize = 1024;

impl RouteMatch {
    pub fn compile(spec: &MatchSpec) -> Result<Self, ConfigError> {
        let path = match (&spec.exact, &spec.prefix, &spec.regex) {
            (Some(p), None, None) => PathMatch::Exact(normalised(p, "exact")?),
            (None, Some(p), None) => PathMatch::Prefix(normalised(p, "prefix")?),
            (None, None, Some(r)) => {
                if r.len() > MAX_REGEX_LEN {
                    return Err(ConfigError::new(
                        "regex",
                        format!("longer than {MAX_REGEX_LEN} characters"),
                    ));
                }
                let re = regex_lite::Regex::new(&format!("^(?:{r})$")).map_err(|e| {
                    ConfigError::new("regex", format!("invalid regular expression: {e}"))
                })?;
                PathMatch::Regex(re)
            }
            _ => {
                return Err(ConfigError::new(
                    "",
                    "exactly one of `exact`, `prefix` or `regex` is required",
                ))
            }
        };
        for (i, m) in spec.methods.iter().enumerate() {
            if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase() || b == b'-') {
                return Err(ConfigError::new(
                    format!("methods[{i}]"),
                    format!("`{m}` is not an upper-case HTTP method name"),
                ));
            }
        }
        Ok(RouteMatch {
            path,
            methods: spec.methods.clone(),
        })
    }

    pub fn matches(&self, req: &RequestView) -> bool {
        if !self.methods.is_empty() && !self.methods.contains(&req.method) {
            return false;
        }
        match &self.path {
            PathMatch::Exact(p) => req.path == *p,
            PathMatch::Prefix(p) => prefix_matches(p, &req.path),
            PathMatch::Regex(re) => re.is_match(&req.path),
        }
    }
}

fn prefix_matches(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// A path in a rule must be written normalised, or it could never match.
fn normalised(p: &str, field: &str) -> Result<String, ConfigError> {
    let n = path::normalize(p).map_err(|e| ConfigError::new(field, e.to_string()))?;
    if n != p {
        return Err(ConfigError::new(
            field,
            format!("`{p}` is not a normalised path (requests are matched on `{n}`)"),
        ));
    }
    Ok(n)
}

/// The note under which [`RouteTable::select`] records the matched rule (`u64::MAX`: default).
pub const ROUTE_NOTE: &str = "route";

/// A policy rule that carries its own `match` (absent on the default rule).
pub trait Routed {
    fn matcher(&self) -> Option<&MatchSpec>;
}

/// Rules tried in order, the first match wins; `default` applies when none matches.
#[derive(Debug, Clone)]
pub struct RouteTable<R> {
    routes: Vec<(RouteMatch, R)>,
    default: R,
}

impl<R> RouteTable<R> {
    /// Compile `routes` and the default rule. `compile_rule` turns one policy rule into its
    /// compiled form; errors are placed at `routes[i]…` or `default…`.
    pub fn compile<S: Routed>(
        routes: &[S],
        default: &S,
        mut compile_rule: impl FnMut(&S) -> Result<R, ConfigError>,
    ) -> Result<Self, ConfigError> {
        let mut compiled = Vec::with_capacity(routes.len());
        for (i, rule) in routes.iter().enumerate() {
            let at = format!("routes[{i}]");
            let spec = rule.matcher().ok_or_else(|| {
                ConfigError::new(format!("{at}.match"), "every route needs a `match`")
            })?;
            let m = RouteMatch::compile(spec).map_err(|e| e.within(&format!("{at}.match")))?;
            let r = compile_rule(rule).map_err(|e| e.within(&at))?;
            compiled.push((m, r));
        }
        if default.matcher().is_some() {
            return Err(ConfigError::new(
                "default.match",
                "the default rule applies to unmatched requests and takes no `match`",
            ));
        }
        let default = compile_rule(default).map_err(|e| e.within("default"))?;
        Ok(RouteTable {
            routes: compiled,
            default,
        })
    }

    /// The rule for a request, and its index (`None` for the default), for logs.
    /// The selection is noted in the request (`route`), so denial logs name the rule.
    pub fn select(&self, req: &RequestView) -> (&R, Option<usize>) {
        let found = self
            .routes
            .iter()
            .enumerate()
            .find(|(_, (m, _))| m.matches(req));
        req.note(ROUTE_NOTE, found.map_or(u64::MAX, |(i, _)| i as u64));
        found
            .map(|(i, (_, r))| (r, Some(i)))
            .unwrap_or((&self.default, None))
    }
}

/// A header a control reads or sets, as a policy names it: lower case, digits, `-` and `_`
/// (no pseudo-headers).
pub fn is_header_name(h: &str) -> bool {
    !h.is_empty()
        && h.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_".contains(&b))
}

/// Header names as a policy lists them: exact names, and prefixes written with a trailing `*`
/// (`x-debug-*`). Case-insensitive; Envoy hands names over in lower case.
#[derive(Debug, Clone, Default)]
pub struct HeaderNames {
    exact: Vec<String>,
    prefixes: Vec<String>,
}

impl HeaderNames {
    /// Compile `names` (the policy field `field`); errors name `field[i]`.
    pub fn compile(names: &[String], field: &str) -> Result<Self, ConfigError> {
        let mut set = HeaderNames::default();
        for (i, h) in names.iter().enumerate() {
            let name = h.to_ascii_lowercase();
            let (base, is_prefix) = match name.strip_suffix('*') {
                Some(p) => (p.to_string(), true),
                None => (name, false),
            };
            if base.is_empty()
                || base.starts_with(':')
                || !base.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(ConfigError::new(
                    format!("{field}[{i}]"),
                    format!("`{h}` is not a header name"),
                ));
            }
            if is_prefix {
                set.prefixes.push(base)
            } else {
                set.exact.push(base)
            }
        }
        // Looked up for every header of every request: binary search.
        set.exact.sort();
        set.exact.dedup();
        Ok(set)
    }

    /// `name` must be in lower case.
    pub fn contains(&self, name: &str) -> bool {
        self.exact
            .binary_search_by(|e| e.as_str().cmp(name))
            .is_ok()
            || self.prefixes.iter().any(|p| name.starts_with(p.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }

    /// A `Remove` for every header of `headers` in the set, each name once.
    pub fn removals(&self, headers: &[(String, Vec<u8>)]) -> Vec<crate::verdict::HeaderOp> {
        let mut names: Vec<&str> = Vec::new();
        for (k, _) in headers {
            if self.contains(k) && !names.contains(&k.as_str()) {
                names.push(k);
            }
        }
        names
            .into_iter()
            .map(|k| crate::verdict::HeaderOp::Remove(k.to_string()))
            .collect()
    }
}

/// Scopes a rule requires (jwt-auth, api-key): every one of `all`, and one of `any` when `any`
/// is not empty.
#[derive(Debug, Clone, Default)]
pub struct RequiredScopes {
    pub all: Vec<String>,
    pub any: Vec<String>,
}

/// Which requirement a credential's scopes fall short of (`all` is checked first).
#[derive(Debug, PartialEq, Eq)]
pub enum ScopeShortfall<'a> {
    All(&'a [String]),
    Any(&'a [String]),
}

impl RequiredScopes {
    /// From a rule's `scopes_all` / `scopes_any`; errors are placed at those fields.
    pub fn compile(all: &[String], any: &[String]) -> Result<Self, ConfigError> {
        check_scope_tokens("scopes_all", all)?;
        check_scope_tokens("scopes_any", any)?;
        Ok(RequiredScopes {
            all: all.to_vec(),
            any: any.to_vec(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty() && self.any.is_empty()
    }

    /// What is missing, given whether the credential holds a scope.
    pub fn shortfall(&self, has: impl Fn(&str) -> bool) -> Option<ScopeShortfall<'_>> {
        if !self.all.iter().all(|s| has(s)) {
            return Some(ScopeShortfall::All(&self.all));
        }
        if !self.any.is_empty() && !self.any.iter().any(|s| has(s)) {
            return Some(ScopeShortfall::Any(&self.any));
        }
        None
    }
}

/// Every entry must be an RFC 6749 §3.3 scope-token (`1*( %x21 / %x23-5B / %x5D-7E )`) without
/// a comma: forwarded scope lists are comma- or space-joined, so a comma would split a scope.
pub fn check_scope_tokens(field: &str, scopes: &[String]) -> Result<(), ConfigError> {
    for (i, s) in scopes.iter().enumerate() {
        let token = !s.is_empty()
            && s.bytes()
                .all(|b| b == 0x21 || ((0x23..=0x7e).contains(&b) && b != 0x5c && b != b','));
        if !token {
            return Err(ConfigError::new(
                format!("{field}[{i}]"),
                format!(
                    "`{s}` is not a scope token (RFC 6749 §3.3: no spaces, quotes, backslashes or commas)"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> MatchSpec {
        serde_json::from_str(json).unwrap()
    }

    fn req(method: &str, path: &str) -> RequestView {
        RequestView::new(method, path, &[]).unwrap()
    }

    #[test]
    fn required_scopes_all_then_any() {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let r = RequiredScopes::compile(&v(&["a", "b"]), &v(&["x", "y"])).unwrap();
        let holds = |held: &'static [&'static str]| move |s: &str| held.contains(&s);
        assert_eq!(r.shortfall(holds(&["a", "b", "y"])), None);
        assert_eq!(
            r.shortfall(holds(&["a", "y"])),
            Some(ScopeShortfall::All(&r.all))
        );
        assert_eq!(
            r.shortfall(holds(&["a", "b"])),
            Some(ScopeShortfall::Any(&r.any))
        );
        assert_eq!(RequiredScopes::default().shortfall(holds(&[])), None);
        let e = RequiredScopes::compile(&v(&["ok", "a b"]), &[]).unwrap_err();
        assert_eq!(e.path, "scopes_all[1]");
        for bad in ["q\"x", "a,b", ""] {
            let e = RequiredScopes::compile(&[], &v(&[bad])).unwrap_err();
            assert_eq!(e.path, "scopes_any[0]", "{bad:?}");
        }
    }

    #[test]
    fn prefix_is_segment_aware() {
        let m = RouteMatch::compile(&spec(r#"{"prefix": "/api"}"#)).unwrap();
        assert!(m.matches(&req("GET", "/api")));
        assert!(m.matches(&req("GET", "/api/orders")));
        assert!(!m.matches(&req("GET", "/apiv2")));
        let m = RouteMatch::compile(&spec(r#"{"prefix": "/"}"#)).unwrap();
        assert!(m.matches(&req("GET", "/anything")));
    }

    #[test]
    fn rules_see_the_normalised_path() {
        let m = RouteMatch::compile(&spec(r#"{"exact": "/orders"}"#)).unwrap();
        for p in [
            "/orders",
            "/./orders",
            "//orders",
            "/%6Frders",
            "/x/../orders",
        ] {
            assert!(m.matches(&req("POST", p)), "{p}");
        }
    }

    #[test]
    fn regex_is_anchored_and_methods_filter() {
        let m = RouteMatch::compile(&spec(
            r#"{"regex": "/v[0-9]+/orders", "methods": ["POST"]}"#,
        ))
        .unwrap();
        assert!(m.matches(&req("POST", "/v2/orders")));
        assert!(
            m.matches(&req("post", "/v2/orders")),
            "what upstreams read as POST"
        );
        assert!(!m.matches(&req("POST", "/v2/orders/1")));
        assert!(!m.matches(&req("GET", "/v2/orders")));
    }

    #[test]
    fn invalid_matchers_are_config_errors() {
        let e = RouteMatch::compile(&spec(r#"{"prefix": "/a", "exact": "/b"}"#)).unwrap_err();
        assert!(e.reason.contains("exactly one"));
        let e = RouteMatch::compile(&spec(r#"{"prefix": "/a//b"}"#)).unwrap_err();
        assert_eq!(e.path, "prefix");
        let e = RouteMatch::compile(&spec(r#"{"regex": "(["}"#)).unwrap_err();
        assert_eq!(e.path, "regex");
        let e = RouteMatch::compile(&spec(r#"{"prefix": "/", "methods": ["get"]}"#)).unwrap_err();
        assert_eq!(e.path, "methods[0]");
    }

    #[test]
    fn first_match_wins_then_default() {
        struct Rule(Option<MatchSpec>, u32);
        impl Routed for Rule {
            fn matcher(&self) -> Option<&MatchSpec> {
                self.0.as_ref()
            }
        }
        let routes = vec![
            Rule(Some(spec(r#"{"prefix": "/a"}"#)), 1),
            Rule(Some(spec(r#"{"prefix": "/a/b"}"#)), 2),
        ];
        let t = RouteTable::compile(&routes, &Rule(None, 0), |r| Ok(r.1)).unwrap();
        assert_eq!(t.select(&req("GET", "/a/b")), (&1, Some(0)));
        assert_eq!(t.select(&req("GET", "/c")), (&0, None));
        let e = RouteTable::compile(&routes, &Rule(None, 0), |r| {
            if r.1 == 2 {
                Err(ConfigError::new("allow", "bad"))
            } else {
                Ok(r.1)
            }
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "routes[1].allow: bad");
        let e = RouteTable::compile(&[Rule(None, 1)], &Rule(None, 0), |r| Ok(r.1)).unwrap_err();
        assert_eq!(e.path, "routes[0].match");
    }
}
