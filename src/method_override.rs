//! Method-override headers (`X-HTTP-Method-Override` and its kin), decided once for every module.
//!
//! Many frameworks (Rails, Laravel, Express's method-override, ASP.NET, Spring's
//! HiddenHttpMethodFilter) let such a header replace the request's method. A module matching its
//! rules on `POST` while the upstream performs a `DELETE` would let a key, token or route
//! scoped for one method act as another. The policy's top-level `method_override` says what to
//! do, the same in every module: `refuse` (default, 400 `request.method_override`) or `strip`
//! (the header is removed, so the upstream acts on the method the rules matched).

use std::borrow::Cow;

use serde_json::Value;

use crate::control::ConfigError;
use crate::reject::Rejection;
use crate::request::RequestView;

/// The headers that override a method somewhere: lower case.
pub const HEADERS: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// The top-level policy key every module accepts.
pub const KEY: &str = "method_override";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MethodOverride {
    /// 400 `request.method_override`: nothing reaches the upstream.
    #[default]
    Refuse,
    /// Remove the header: the request goes on with the method the rules matched.
    Strip,
}

impl MethodOverride {
    /// What to do with `req`: `Ok(names)` the override headers to remove (empty: none found),
    /// `Err` the denial.
    pub fn decide(self, req: &RequestView) -> Result<Vec<&'static str>, Rejection> {
        let found: Vec<&'static str> = HEADERS
            .into_iter()
            .filter(|h| req.header_values(h).next().is_some())
            .collect();
        if self == MethodOverride::Refuse && !found.is_empty() {
            return Err(Rejection::new(
                400,
                "request.method_override",
                "a method-override header (x-http-method-override, x-http-method, \
                 x-method-override) is not accepted: the request is checked as the method it is",
            ));
        }
        Ok(found)
    }
}

/// Take `method_override` off the top of a policy document: the setting, and the rest of the
/// document when the key was there (`None`: parse `json` itself).
pub fn split(json: &[u8]) -> Result<(MethodOverride, Option<Value>), ConfigError> {
    // Cheap test first: most policies never name it.
    if !json.windows(KEY.len()).any(|w| w == KEY.as_bytes()) {
        return Ok((MethodOverride::default(), None));
    }
    // Not JSON: the policy parser says what is wrong with it.
    let Ok(mut doc) = serde_json::from_slice::<Value>(json) else {
        return Ok((MethodOverride::default(), None));
    };
    let Some(value) = doc.as_object_mut().and_then(|o| o.remove(KEY)) else {
        return Ok((MethodOverride::default(), None));
    };
    Ok((setting(value)?, Some(doc)))
}

/// [`split`] for a parsed document (the CLI's).
pub fn split_value(doc: &Value) -> Result<(MethodOverride, Cow<'_, Value>), ConfigError> {
    let Some(value) = doc.as_object().and_then(|o| o.get(KEY)) else {
        return Ok((MethodOverride::default(), Cow::Borrowed(doc)));
    };
    let setting = setting(value.clone())?;
    let mut rest = doc.clone();
    if let Some(o) = rest.as_object_mut() {
        o.remove(KEY);
    }
    Ok((setting, Cow::Owned(rest)))
}

// Matched by hand, not derived: a derived enum visitor costs every module kilobytes.
fn setting(value: Value) -> Result<MethodOverride, ConfigError> {
    match value.as_str() {
        Some("refuse") => Ok(MethodOverride::Refuse),
        Some("strip") => Ok(MethodOverride::Strip),
        _ => Err(ConfigError::new(KEY, "must be `refuse` or `strip`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> RequestView {
        RequestView::new("POST", "/orders", headers).unwrap()
    }

    #[test]
    fn every_override_header_is_refused_by_default() {
        for h in HEADERS {
            let r = MethodOverride::default()
                .decide(&req(&[(h, "DELETE")]))
                .unwrap_err();
            assert_eq!((r.status, r.code), (400, "request.method_override"), "{h}");
            assert!(r.detail.contains(h), "{}", r.detail);
        }
        assert_eq!(MethodOverride::Refuse.decide(&req(&[])), Ok(vec![]));
    }

    #[test]
    fn strip_names_every_override_header_to_remove() {
        let r = req(&[("X-HTTP-Method", "PUT"), ("x-method-override", "DELETE")]);
        assert_eq!(
            MethodOverride::Strip.decide(&r),
            Ok(vec!["x-http-method", "x-method-override"])
        );
    }

    #[test]
    fn the_setting_is_taken_off_the_top_of_the_policy() {
        let (s, rest) = split(br#"{"method_override": "strip", "routes": []}"#).unwrap();
        assert_eq!(s, MethodOverride::Strip);
        assert_eq!(rest, Some(serde_json::json!({"routes": []})));
        let (s, rest) = split(br#"{"routes": []}"#).unwrap();
        assert_eq!((s, rest), (MethodOverride::Refuse, None));
        let e = split(br#"{"method_override": "allow"}"#).unwrap_err();
        assert_eq!(e.path, "method_override");
        assert_eq!(e.reason, "must be `refuse` or `strip`");
        // Nested, it is the module's own field (and unknown there): the document is unchanged.
        let (s, rest) = split(br#"{"x": {"method_override": "strip"}}"#).unwrap();
        assert_eq!((s, rest), (MethodOverride::Refuse, None));
    }
}
