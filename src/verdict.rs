//! What a control decides about a request or response.

use crate::callout::Ask;
use crate::reject::Rejection;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Let it through unchanged.
    Continue,
    /// Let it through after editing headers.
    Mutate(Vec<HeaderOp>),
    /// Buffer the body (at most `max_bytes`, 413 `body.too_large` beyond) and call
    /// `on_request_body` with it.
    NeedBody { max_bytes: usize },
    /// Answer locally; nothing reaches the upstream.
    Deny(Rejection),
    /// Let it through with a new body (and header edits: `content-length` is fixed by the host).
    /// Only from `on_request_body` / `on_response_body`. `code` is counted with
    /// `result="replaced"` (`error_shield.status_5xx`).
    ReplaceBody {
        code: &'static str,
        headers: Vec<HeaderOp>,
        body: Vec<u8>,
    },
    /// A denial the policy only reports (`mode: report`): logged and counted with
    /// `result="reported"`, and the request continues unchanged.
    Report(Rejection),
    /// The general form of `Continue`, `Mutate` and `Report`: let it through after these header
    /// edits, reporting these denials. What a chain of controls, or a control with several
    /// findings, returns.
    Pass {
        ops: Vec<HeaderOp>,
        reports: Vec<Rejection>,
    },
    /// Pause the request and make these calls (only from `on_request` / `on_request_body`);
    /// the answers go to `Control::on_answers`, whose verdict decides. A host that does not run
    /// request-time callouts answers this with a 500 `internal` (fail closed), never a pass.
    Ask(Ask),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderOp {
    /// Replace every value of the header with this one.
    Set(String, String),
    /// Add a value, keeping existing ones.
    Add(String, String),
    /// Remove every value of the header.
    Remove(String),
}

impl Verdict {
    pub fn deny(rejection: Rejection) -> Self {
        Verdict::Deny(rejection)
    }

    pub fn is_deny(&self) -> bool {
        matches!(self, Verdict::Deny(_))
    }

    /// `Continue`, `Mutate` and `Report` as a `Pass`; other verdicts unchanged.
    pub fn into_pass(self) -> Verdict {
        match self {
            Verdict::Continue => Verdict::Pass {
                ops: Vec::new(),
                reports: Vec::new(),
            },
            Verdict::Mutate(ops) => Verdict::Pass {
                ops,
                reports: Vec::new(),
            },
            Verdict::Report(r) => Verdict::Pass {
                ops: Vec::new(),
                reports: vec![r],
            },
            v => v,
        }
    }
}
