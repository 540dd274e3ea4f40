//! Response checks: the status is declared by the operation, the media type by that response,
//! and a JSON body matches its schema in the response direction (no `writeOnly` property: a
//! password or secret the upstream must never send back). A violation in `enforce` replaces the
//! response by a 502 problem (the upstream's body and headers never reach the client); in
//! `report` it is logged and counted and the response passes unchanged.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use super::schema::Direction;
use super::{ApiSchema, Build, Media};
use crate::control::ConfigError;
use crate::controls::content_type::MediaType;
use crate::controls::error_shield::decode::{decode, Decoded};
use crate::reject::Rejection;
use crate::request::{RequestView, ResponseView};
use crate::verdict::Verdict;

/// Which operation a request matched (path item << 8 | method), for its response phases.
pub(super) const RESP_NOTE: &str = "api_schema.response";

/// What happens when a response breaks the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ResponseMode {
    /// Responses are not looked at (nothing of `responses` is compiled).
    Off,
    /// Logged and counted (`result="reported"`); the response passes unchanged.
    #[default]
    Report,
    /// Replaced by a 502 problem.
    Enforce,
}

/// A key of an operation's `responses` (OpenAPI 3.1 §4.8.16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Exact(u16),
    /// `4XX`: the hundreds digit.
    Range(u16),
    Default,
}

fn key(k: &str) -> Option<Key> {
    if k == "default" {
        return Some(Key::Default);
    }
    let b = k.as_bytes();
    if let [d @ b'1'..=b'5', x, y] = b {
        if x.eq_ignore_ascii_case(&b'X') && y.eq_ignore_ascii_case(&b'X') {
            return Some(Key::Range(u16::from(d - b'0')));
        }
    }
    k.parse::<u16>()
        .ok()
        .filter(|c| (100..=599).contains(c) && k.len() == 3)
        .map(Key::Exact)
}

#[derive(Debug)]
struct Declared {
    key: Key,
    /// Empty: the response declares no `content` (its body is not checked).
    media: Vec<Media>,
}

/// An operation's declared responses.
#[derive(Debug)]
pub(super) struct Responses {
    list: Vec<Declared>,
}

impl Responses {
    /// The response declared for `status`: the exact code before its range before `default`
    /// (OpenAPI 3.1 §4.8.16.2).
    fn find(&self, status: u16) -> Option<&Declared> {
        let by = |k: Key| self.list.iter().find(|d| d.key == k);
        by(Key::Exact(status))
            .or_else(|| by(Key::Range(status / 100)))
            .or_else(|| by(Key::Default))
    }
}

impl<'a> Build<'a> {
    /// An operation's `responses`, `$ref`s to `#/components/responses/…` resolved. Schemas of
    /// JSON media types are compiled; other media types are checked for their type only.
    pub(super) fn responses(&mut self, v: &'a Value, path: &str) -> Result<Responses, ConfigError> {
        let obj = v
            .as_object()
            .ok_or_else(|| ConfigError::new(path, "expected an object"))?;
        let mut list = Vec::new();
        for (k, r) in obj {
            let at = format!("{path}.{k}");
            let key = key(k).ok_or_else(|| {
                ConfigError::new(
                    at.clone(),
                    format!("`{k}` is not a status code, a range (`4XX`) or `default`"),
                )
            })?;
            let r = self.deref(r, &at)?;
            let media = match r.get("content") {
                Some(c) => self.content(c, &format!("{at}.content"), Direction::Response)?,
                None => Vec::new(),
            };
            list.push(Declared { key, media });
        }
        Ok(Responses { list })
    }
}

/// What the response headers decide.
enum Step {
    Pass,
    Fail(Rejection),
    /// The body must be seen: validated against this schema, or (`None`: the response has no
    /// Content-Type) refused if it is not empty.
    Body(Option<usize>),
}

fn fail(code: &'static str, detail: impl Into<String>) -> Step {
    Step::Fail(Rejection::new(502, code, detail))
}

fn too_large(max: usize) -> Rejection {
    Rejection::new(
        502,
        "api_schema.response_too_large",
        format!("the response body is larger than {max} bytes and could not be checked"),
    )
}

impl ApiSchema {
    fn response_verdict(&self, r: Rejection) -> Verdict {
        if self.responses_report {
            Verdict::Report(r)
        } else {
            Verdict::Deny(r)
        }
    }

    /// The operation the request matched, for its response phases.
    fn response_operation(&self, req: &RequestView) -> Option<&super::Operation> {
        let note = req.noted(RESP_NOTE)?;
        let pi = usize::try_from(note >> 8).ok()?;
        let oi = usize::try_from(note & 0xff).ok()?;
        self.paths.get(pi)?.ops.get(oi)
    }

    /// The declared responses of the operation the request matched.
    fn responses_of(&self, req: &RequestView) -> Option<&Responses> {
        self.response_operation(req)?.responses.as_ref()
    }

    /// The `operation` label of the response's violations.
    pub(super) fn response_label(&self, req: &RequestView) -> Option<&Arc<str>> {
        self.response_operation(req).map(|op| &op.label)
    }

    fn response_step(&self, req: &RequestView, resp: &ResponseView) -> Step {
        // No operation matched (a request only reported), or no `responses` declared.
        let Some(responses) = self.responses_of(req) else {
            return Step::Pass;
        };
        let Some(declared) = responses.find(resp.status) else {
            return fail(
                "api_schema.undeclared_status",
                "the upstream answered with a status the operation does not declare",
            );
        };
        // No body to check: none declared, or none can follow (RFC 9110 §9.3.2, §15.3.5, §15.4.5).
        let bodiless = req.method == "HEAD"
            || matches!(resp.status, 204 | 304)
            || resp.header("content-length") == Some("0");
        if declared.media.is_empty() || bodiless {
            return Step::Pass;
        }
        let Some(ct) = resp.header("content-type") else {
            return Step::Body(None);
        };
        let found = MediaType::parse(ct)
            .ok()
            .and_then(|mt| declared.media.iter().find(|m| m.range.matches(&mt)));
        match found {
            None => fail(
                "api_schema.undeclared_media_type",
                "the upstream answered with a media type the response does not declare",
            ),
            Some(m) => match m.schema {
                Some(s) => Step::Body(Some(s)),
                None => Step::Pass,
            },
        }
    }

    pub(super) fn check_response(&self, req: &RequestView, resp: &ResponseView) -> Verdict {
        match self.response_step(req, resp) {
            Step::Pass => Verdict::Continue,
            Step::Fail(r) => self.response_verdict(r),
            Step::Body(_) => Verdict::NeedBody {
                max_bytes: self.max_body,
            },
        }
    }

    pub(super) fn check_response_body(
        &self,
        req: &RequestView,
        resp: &ResponseView,
        body: Option<&[u8]>,
    ) -> Verdict {
        let Step::Body(schema) = self.response_step(req, resp) else {
            return Verdict::Continue;
        };
        let Some(body) = body else {
            // Too large to hold (or unreadable): it cannot be checked. Enforce fails closed;
            // report lets it pass, and the host counts it (`response.too_large_to_inspect`).
            return if self.responses_report {
                Verdict::Continue
            } else {
                Verdict::Deny(too_large(self.max_body))
            };
        };
        if body.is_empty() {
            return Verdict::Continue;
        }
        let Some(schema) = schema else {
            return self.response_verdict(Rejection::new(
                502,
                "api_schema.undeclared_media_type",
                "the upstream answered with a body without a Content-Type",
            ));
        };
        // gzip/deflate (error-shield's bounded decoder); a plain body is read in place.
        let encoding = resp
            .header("content-encoding")
            .filter(|e| !e.trim().eq_ignore_ascii_case("identity"));
        let decoded = match encoding.map(|e| decode(Some(e), body, self.max_body)) {
            None => Cow::Borrowed(body),
            Some(Decoded::Text {
                bytes,
                complete: true,
            }) => Cow::Owned(bytes),
            Some(Decoded::Text { .. } | Decoded::Bomb) => {
                return self.response_verdict(too_large(self.max_body))
            }
            Some(Decoded::Undecodable) => {
                return self.response_verdict(Rejection::new(
                    502,
                    "api_schema.response_undecodable",
                    "the response's content-encoding could not be decoded for checking",
                ))
            }
        };
        let Ok(value) = serde_json::from_slice::<Value>(&decoded) else {
            return self.response_verdict(Rejection::new(
                502,
                "api_schema.invalid_response_body",
                "the response body is not valid JSON",
            ));
        };
        match self.schemas.validate(schema, &value, Direction::Response) {
            Ok(()) => Verdict::Continue,
            Err(f) => {
                let code = if f.keyword == "writeOnly" {
                    "api_schema.write_only_in_response"
                } else {
                    "api_schema.invalid_response_body"
                };
                self.response_verdict(Rejection::new(
                    502,
                    code,
                    format!("the response body fails `{}` at `{}`", f.keyword, f.pointer),
                ))
            }
        }
    }
}
