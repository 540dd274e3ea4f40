//! HTTP calls a control makes through a named Envoy cluster.
//!
//! - Background calls (JWKS refresh, alert webhooks, etcd lease grants): the control asks for
//!   them from `on_tick`; the host dispatches them and hands each response back to
//!   `on_callout_response`.
//! - Request-time calls (a shared replay store, token introspection): a control returns
//!   [`Verdict::Ask`](crate::verdict::Verdict::Ask) from `on_request` or `on_request_body`; the
//!   host pauses the stream, makes the calls, and hands every answer (or its absence) to
//!   [`Control::on_answers`](crate::control::Control::on_answers), which returns the next
//!   verdict. The control stays pure: tests feed the answers.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callout {
    /// Chosen by the control to recognise the answer.
    pub tag: u64,
    /// The Envoy cluster to send it through.
    pub cluster: String,
    pub method: String,
    pub authority: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout: Duration,
}

/// The answer to a callout. `None` in its place means it failed (no connection, timeout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalloutResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Why a request-time callout has no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalloutFailure {
    /// No answer within the callout's `timeout`.
    Timeout,
    /// The connection was reset or closed before a whole answer arrived.
    Reset,
    /// The cluster does not exist or has no healthy host: the call could not be dispatched.
    NoCluster,
    /// The host refused to dispatch the call (a header or body it cannot send).
    Refused,
}

impl CalloutFailure {
    /// A stable word for logs and details (never an address).
    pub fn as_str(self) -> &'static str {
        match self {
            CalloutFailure::Timeout => "timeout",
            CalloutFailure::Reset => "reset",
            CalloutFailure::NoCluster => "no cluster",
            CalloutFailure::Refused => "refused",
        }
    }
}

/// One request-time answer: the response, whatever its status, or why there is none.
pub type Answer = Result<CalloutResponse, CalloutFailure>;

/// Most calls one [`Ask`] may make at once.
pub const MAX_CALLOUTS_PER_ASK: usize = 4;
/// Most asks (rounds of calls) one request may make in all, over every control of a chain.
/// The driver denies the request (500 `internal`) when a control asks once more.
pub const MAX_ASKS_PER_REQUEST: usize = 4;

/// What the running host can do; a policy needing more is refused at configure time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostCapabilities {
    /// The host pauses a stream for [`Ask`] and resumes it with the answers.
    pub request_callouts: bool,
}

impl HostCapabilities {
    /// What this build's host does: the proxy-wasm host pauses the request for an `Ask`,
    /// dispatches its calls and resumes with the control's verdict on the answers.
    pub const CURRENT: HostCapabilities = HostCapabilities {
        request_callouts: true,
    };
    /// Everything (unit tests of the controls' callout paths).
    pub const ALL: HostCapabilities = HostCapabilities {
        request_callouts: true,
    };
    /// A host that cannot pause a request for callouts: policies needing them are refused.
    pub const NONE: HostCapabilities = HostCapabilities {
        request_callouts: false,
    };
}

/// The reason a policy is refused when it needs request-time callouts this build lacks.
pub const NEEDS_REQUEST_CALLOUTS: &str =
    "needs request-time callouts, which this host does not run";

/// Per-request state a control keeps across an [`Ask`]: any value, handed back as it was to
/// `on_answers` (downcast with [`Resume::get`]). Two `Resume`s are equal when they are the same
/// value (not a copy of it).
#[derive(Clone)]
pub struct Resume(Arc<dyn Any + Send + Sync>);

impl Resume {
    pub fn new<T: Any + Send + Sync>(state: T) -> Self {
        Resume(Arc::new(state))
    }

    /// The state, if it is a `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.downcast_ref::<T>()
    }
}

impl fmt::Debug for Resume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Resume(..)")
    }
}

impl PartialEq for Resume {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Resume {}

/// A control's request to pause the request while it calls other services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    /// 1 to [`MAX_CALLOUTS_PER_ASK`] calls, made concurrently. Their answers come back in this
    /// order (the `tag`s are the control's own).
    pub callouts: Vec<Callout>,
    /// Handed back to `on_answers`.
    pub state: Resume,
}

impl Ask {
    /// `None` for no call or more than [`MAX_CALLOUTS_PER_ASK`].
    pub fn new(callouts: Vec<Callout>, state: Resume) -> Option<Self> {
        (1..=MAX_CALLOUTS_PER_ASK)
            .contains(&callouts.len())
            .then_some(Ask { callouts, state })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(tag: u64) -> Callout {
        Callout {
            tag,
            cluster: "c".into(),
            method: "POST".into(),
            authority: "c".into(),
            path: "/".into(),
            headers: vec![],
            body: None,
            timeout: Duration::from_millis(100),
        }
    }

    #[test]
    fn an_ask_makes_one_to_four_calls() {
        assert!(Ask::new(vec![], Resume::new(())).is_none());
        assert!(Ask::new(vec![call(1)], Resume::new(())).is_some());
        assert!(Ask::new((0..4).map(call).collect(), Resume::new(())).is_some());
        assert!(Ask::new((0..5).map(call).collect(), Resume::new(())).is_none());
    }

    #[test]
    fn resume_hands_back_the_same_value_and_only_as_its_own_type() {
        let r = Resume::new(42u32);
        assert_eq!(r.get::<u32>(), Some(&42));
        assert!(r.get::<u64>().is_none());
        assert_eq!(r.clone(), r);
        assert_ne!(Resume::new(42u32), r);
    }
}
