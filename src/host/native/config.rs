//! One filter configuration (`config_new` … `config_destroy`): the policy, the counters, the
//! timer of background ticks, their callouts in flight and the answers every thread's instance
//! takes.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::abi::{CalloutRefused, ConfigEnvoy, Scheduler};
use super::instances::Kind;
use crate::callout::CalloutResponse;
use crate::inflight::Dispatch;

/// The scheduler event of a background tick.
const TICK: u64 = 1;
/// Answers kept for instances built later: the latest per tag, at most this many tags.
const KEPT_ANSWERS: usize = 64;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub struct Config {
    id: u64,
    kind: &'static dyn Kind,
    policy: Vec<u8>,
    envoy: ConfigEnvoy,
    /// `portcullis_requests_total{module, result, code}` (None: Envoy refused to define it).
    counter: Option<usize>,
    /// `portcullis_operation_violations_total{module, result, code, operation}`.
    operation_counter: Option<usize>,
    /// Shared with the timer thread; `None` once the configuration is destroyed.
    scheduler: Arc<Mutex<Option<Scheduler>>>,
    stopped: Arc<AtomicBool>,
    /// Background callouts in flight: Envoy's callout id -> the control's tag.
    in_flight: Mutex<HashMap<u64, u64>>,
    answers: Answers,
}

impl Config {
    /// `None`: the filter name or the policy is refused (logged with the JSON path and reason).
    pub fn new(envoy: ConfigEnvoy, name: &[u8], policy: &[u8]) -> Option<Arc<Config>> {
        let name = String::from_utf8_lossy(name);
        let Some(kind) = super::kind(&name) else {
            ::log::error!(
                "portcullis: unknown filter_name {name:?}: expected one of {}",
                super::FILTER_NAMES
            );
            return None;
        };
        let counter =
            envoy.define_counter(crate::telemetry::COUNTER, &["module", "result", "code"]);
        if counter.is_none() {
            ::log::warn!("portcullis {name}: Envoy refused to define the request counter");
        }
        let operation_counter = envoy.define_counter(
            crate::telemetry::OPERATION_COUNTER,
            &["module", "result", "code", "operation"],
        );
        if operation_counter.is_none() {
            ::log::warn!("portcullis {name}: Envoy refused to define the operation counter");
        }
        let cfg = Arc::new(Config {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            kind,
            policy: policy.to_vec(),
            envoy,
            counter,
            operation_counter,
            scheduler: Arc::new(Mutex::new(None)),
            stopped: Arc::new(AtomicBool::new(false)),
            in_flight: Mutex::new(HashMap::new()),
            answers: Answers::default(),
        });
        let period = match kind.instantiate(&cfg) {
            Ok(p) => p,
            Err(e) => {
                ::log::error!("portcullis {}: invalid policy: {e}", kind.name());
                return None;
            }
        };
        if let Some(period) = period {
            cfg.start_ticks(period);
        }
        ::log::info!("portcullis {}: policy loaded (native)", kind.name());
        Some(cfg)
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn policy(&self) -> &[u8] {
        &self.policy
    }

    pub fn kind(&self) -> &'static dyn Kind {
        self.kind
    }

    pub fn counter(&self) -> Option<usize> {
        self.counter
    }

    pub fn operation_counter(&self) -> Option<usize> {
        self.operation_counter
    }

    pub fn answers(&self) -> &Answers {
        &self.answers
    }

    /// Dynamic modules have no timer for a configuration: a thread of ours wakes every period
    /// and schedules the tick on Envoy's main thread. The first tick is scheduled at once.
    fn start_ticks(&self, period: Duration) {
        let Some(s) = self.envoy.scheduler() else {
            ::log::error!(
                "portcullis {}: Envoy gave no scheduler: background work (key refresh, alerts) will not run",
                self.kind.name()
            );
            return;
        };
        s.commit(TICK);
        *self
            .scheduler
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(s);
        let scheduler = self.scheduler.clone();
        let stopped = self.stopped.clone();
        let spawned = std::thread::Builder::new()
            .name("portcullis-tick".into())
            .spawn(move || loop {
                std::thread::sleep(period);
                if stopped.load(Ordering::Acquire) {
                    return;
                }
                match scheduler
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .as_ref()
                {
                    Some(s) => s.commit(TICK),
                    None => return,
                }
            });
        if let Err(e) = spawned {
            ::log::error!("portcullis {}: no timer thread: {e}", self.kind.name());
        }
    }

    /// `config_destroy`: stop the timer (the scheduler is deleted under its lock, so the timer
    /// never commits to a deleted one) and let every thread drop its instance.
    pub fn shutdown(&self) {
        self.stopped.store(true, Ordering::Release);
        drop(
            self.scheduler
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        super::instances::forget(self.id);
    }

    /// A scheduled event, on the main thread.
    pub fn on_scheduled(&self, event: u64) {
        if event == TICK && !self.stopped.load(Ordering::Acquire) {
            self.kind.tick(self);
        }
    }

    /// Send a background callout from the main thread.
    pub fn send(&self, tag: u64, d: &Dispatch) -> Result<(), CalloutRefused> {
        let id = self
            .envoy
            .callout(d.cluster, &d.headers, d.body, d.timeout)?;
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, tag);
        Ok(())
    }

    /// A background callout's answer (no status: it failed), on the main thread.
    pub fn on_callout_done(&self, id: u64, status: Option<u16>, body: Vec<u8>) {
        let tag = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        let Some(tag) = tag else {
            return;
        };
        self.answers
            .publish(tag, status.map(|status| CalloutResponse { status, body }));
        self.kind.deliver(self);
    }
}

impl std::fmt::Display for CalloutRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CalloutRefused::NoCluster => write!(f, "no such cluster"),
            CalloutRefused::Other(code) => write!(f, "Envoy refused it (result {code})"),
        }
    }
}

/// The background callouts' answers, in order, for every thread's instance: each takes those
/// after the last one it was given. Only the latest answer per tag is kept, so an instance
/// built later (a worker's first stream) still learns the keys fetched before it existed.
#[derive(Default)]
pub struct Answers {
    latest: AtomicU64,
    log: Mutex<VecDeque<(u64, u64, Option<CalloutResponse>)>>,
}

impl Answers {
    pub fn publish(&self, tag: u64, resp: Option<CalloutResponse>) {
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        let seq = self.latest.load(Ordering::Acquire) + 1;
        log.retain(|(_, t, _)| *t != tag);
        log.push_back((seq, tag, resp));
        while log.len() > KEPT_ANSWERS {
            log.pop_front();
        }
        self.latest.store(seq, Ordering::Release);
    }

    /// The sequence number of the latest answer (0: none yet). Lock-free: the hot path.
    pub fn latest(&self) -> u64 {
        self.latest.load(Ordering::Acquire)
    }

    pub fn since(&self, seen: u64) -> Vec<(u64, u64, Option<CalloutResponse>)> {
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        log.iter()
            .filter(|(seq, _, _)| *seq > seen)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> Option<CalloutResponse> {
        Some(CalloutResponse {
            status: 200,
            body: body.into(),
        })
    }

    #[test]
    fn an_instance_built_late_gets_the_latest_answer_per_tag_in_order() {
        let a = Answers::default();
        a.publish(1, ok("discovery"));
        a.publish(0, ok("jwks v1"));
        a.publish(0, ok("jwks v2"));
        let all = a.since(0);
        let tags: Vec<_> = all.iter().map(|(_, t, r)| (*t, r.clone())).collect();
        assert_eq!(tags, vec![(1, ok("discovery")), (0, ok("jwks v2"))]);
        assert_eq!(a.latest(), 3);
        assert!(a.since(3).is_empty());
    }

    #[test]
    fn answers_kept_are_bounded() {
        let a = Answers::default();
        for tag in 0..1000 {
            a.publish(tag, None);
        }
        assert_eq!(a.since(0).len(), KEPT_ANSWERS);
        assert_eq!(a.since(0).last().map(|e| e.1), Some(999));
    }
}
