//! Method-override headers (`X-HTTP-Method-Override` and its kin), decided once for every module.
//!
//! Many frameworks (Rails, Laravel, Express's method-override, ASP.NET, Spring's
//! HiddenHttpMethodFilter) let such a header replace the request's method. A module matching its
//! rules on `POST` while the upstream performs a `DELETE` would let a key, token or route
//! scoped for one method act as another. The policy's top-level `method_override` says what to
//! do, the same in every module: `refuse` (default, 400 `request.method_override`) or `strip`
//! (the header is removed, so the upstream acts on the method the rules matched).

use std::borrow::Cow;

use serde::Deserialize;
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

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
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
        match (self, found.first()) {
            (MethodOverride::Refuse, Some(name)) => Err(Rejection::new(
                400,
                "request.method_override",
                format!(
                    "`{name}` is not accepted: the request is checked as the {} it is",
                    req.method
                ),
            )),
            _ => Ok(found),
        }
    }
}

/// Take `method_override` off the top of a policy document: the setting, and the document the
/// module's own policy is parsed from (unchanged unless the key was there).
pub fn split(json: &[u8]) -> Result<(MethodOverride, Cow<'_, [u8]>), ConfigError> {
    // Cheap test first: most policies never name it.
    if !json.windows(KEY.len()).any(|w| w == KEY.as_bytes()) {
        return Ok((MethodOverride::default(), Cow::Borrowed(json)));
    }
    // Not JSON: the policy parser says what is wrong with it.
    let Ok(doc) = serde_json::from_slice::<Value>(json) else {
        return Ok((MethodOverride::default(), Cow::Borrowed(json)));
    };
    match split_value(&doc)? {
        (setting, Cow::Owned(rest)) => {
            let rest =
                serde_json::to_vec(&rest).map_err(|e| ConfigError::new("", e.to_string()))?;
            Ok((setting, Cow::Owned(rest)))
        }
        (setting, Cow::Borrowed(_)) => Ok((setting, Cow::Borrowed(json))),
    }
}

/// [`split`] for a parsed document.
pub fn split_value(doc: &Value) -> Result<(MethodOverride, Cow<'_, Value>), ConfigError> {
    let Some(value) = doc.as_object().and_then(|o| o.get(KEY)) else {
        return Ok((MethodOverride::default(), Cow::Borrowed(doc)));
    };
    let setting = MethodOverride::deserialize(value)
        .map_err(|e| ConfigError::new(KEY, format!("{e} (`refuse` or `strip`)")))?;
    let mut rest = doc.clone();
    if let Some(o) = rest.as_object_mut() {
        o.remove(KEY);
    }
    Ok((setting, Cow::Owned(rest)))
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
            assert!(
                r.detail.contains(h) && r.detail.contains("POST"),
                "{}",
                r.detail
            );
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
        assert_eq!(&*rest, br#"{"routes":[]}"#);
        let plain = br#"{"routes": []}"#;
        let (s, rest) = split(plain).unwrap();
        assert_eq!((s, &*rest), (MethodOverride::Refuse, &plain[..]));
        let e = split(br#"{"method_override": "allow"}"#).unwrap_err();
        assert_eq!(e.path, "method_override");
        assert!(e.reason.contains("refuse"), "{}", e.reason);
        // Nested, it is the module's own field (and unknown there): the document is unchanged.
        let nested = br#"{"x": {"method_override": "strip"}}"#;
        let (s, rest) = split(nested).unwrap();
        assert_eq!((s, &*rest), (MethodOverride::Refuse, &nested[..]));
    }
}
