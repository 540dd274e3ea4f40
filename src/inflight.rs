//! HTTP calls as every host dispatches them ([`Dispatch`]), and a control's request-time
//! callouts in flight for one request, as every host keeps them:
//! which call tokens answer which of its calls, the answers so far, and what to hand back to
//! `on_answers`. Runtime-free, so it is written (and tested) once.

use std::time::Duration;

use crate::callout::{Answer, Ask, Callout, CalloutFailure, CalloutResponse, Resume};

/// Longest a callout may take when the control gives no timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Pending {
    /// Envoy's token of each dispatched call, and its place in `answers`.
    tokens: Vec<(u64, usize)>,
    answers: Vec<Option<Answer>>,
    pub state: Resume,
    /// What the control asked from: `None` for `on_request`; the body (and the size of the
    /// buffer Envoy holds) for `on_request_body`.
    pub body: Option<(Vec<u8>, Option<usize>)>,
}

/// The pieces of one call as a host dispatches it (proxy-wasm's `dispatch_http_call`).
pub struct Dispatch<'a> {
    pub cluster: &'a str,
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: Option<&'a [u8]>,
    pub timeout: Duration,
}

impl<'a> Dispatch<'a> {
    pub fn of(c: &'a Callout) -> Self {
        let mut headers: Vec<(&str, &str)> = vec![
            (":method", c.method.as_str()),
            (":path", c.path.as_str()),
            (":authority", c.authority.as_str()),
        ];
        headers.extend(c.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        Dispatch {
            cluster: &c.cluster,
            headers,
            body: c.body.as_deref(),
            timeout: if c.timeout.is_zero() {
                DEFAULT_TIMEOUT
            } else {
                c.timeout
            },
        }
    }
}

impl Pending {
    /// Dispatch every call of `ask` with `send` (Envoy's token, or why it could not be sent);
    /// a call that could not be sent is answered at once with its failure.
    pub fn start(
        ask: &Ask,
        body: Option<(Vec<u8>, Option<usize>)>,
        mut send: impl FnMut(Dispatch) -> Result<u64, CalloutFailure>,
    ) -> Self {
        let mut tokens = Vec::with_capacity(ask.callouts.len());
        let mut answers = Vec::with_capacity(ask.callouts.len());
        for (i, c) in ask.callouts.iter().enumerate() {
            match send(Dispatch::of(c)) {
                Ok(token) => {
                    tokens.push((token, i));
                    answers.push(None);
                }
                Err(failure) => answers.push(Some(Err(failure))),
            }
        }
        Pending {
            tokens,
            answers,
            state: ask.state.clone(),
            body,
        }
    }

    /// Record the answer Envoy gave for `token`; false if the token is not one of ours.
    pub fn answer(&mut self, token: u64, status: Option<u16>, body: Vec<u8>) -> bool {
        let Some(at) = self.tokens.iter().position(|(t, _)| *t == token) else {
            return false;
        };
        let (_, i) = self.tokens.swap_remove(at);
        // Envoy answers a timeout or an unreachable cluster with its own 504 / 503 response;
        // a call that ends without any response (reset, closed) comes without a `:status`.
        let answer = match status {
            Some(status) => Ok(CalloutResponse { status, body }),
            None => Err(CalloutFailure::Reset),
        };
        if let Some(slot) = self.answers.get_mut(i) {
            *slot = Some(answer);
        }
        true
    }

    /// Every call answered (or failed to be sent).
    pub fn done(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The answers in the order the control asked; a missing one (impossible once `done`)
    /// counts as a reset, never as a response.
    pub fn answers(&self) -> Vec<Answer> {
        self.answers
            .iter()
            .map(|a| a.clone().unwrap_or(Err(CalloutFailure::Reset)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(tag: u64, cluster: &str) -> Callout {
        Callout {
            tag,
            cluster: cluster.into(),
            method: "POST".into(),
            authority: "etcd".into(),
            path: "/v3/kv/txn".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: Some(b"{}".to_vec()),
            timeout: Duration::ZERO,
        }
    }

    #[test]
    fn answers_come_back_in_the_order_asked_whatever_order_they_arrive_in() {
        let ask = Ask::new(vec![call(1, "a"), call(2, "b")], Resume::new(7u8)).unwrap();
        let mut next = 10;
        let mut p = Pending::start(&ask, None, |d| {
            assert_eq!(d.timeout, DEFAULT_TIMEOUT);
            assert_eq!(d.headers[0], (":method", "POST"));
            next += 1;
            Ok(next)
        });
        assert!(!p.done());
        assert!(p.answer(12, Some(200), b"second".to_vec()));
        assert!(!p.done());
        assert!(!p.answer(99, Some(200), vec![]), "not our token");
        assert!(p.answer(11, None, vec![]));
        assert!(p.done());
        let answers = p.answers();
        assert_eq!(answers[0], Err(CalloutFailure::Reset));
        assert_eq!(answers[1].as_ref().map(|r| r.status), Ok(200));
        assert_eq!(p.state.get::<u8>(), Some(&7));
    }

    #[test]
    fn a_call_that_cannot_be_sent_is_answered_at_once_with_its_failure() {
        let ask = Ask::new(vec![call(1, "missing")], Resume::new(())).unwrap();
        let p = Pending::start(&ask, Some((b"body".to_vec(), Some(4))), |_| {
            Err(CalloutFailure::NoCluster)
        });
        assert!(p.done());
        assert_eq!(p.answers(), vec![Err(CalloutFailure::NoCluster)]);
        assert_eq!(
            p.body.as_ref().map(|(b, _)| b.as_slice()),
            Some(&b"body"[..])
        );
    }
}
