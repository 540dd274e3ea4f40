//! Real-time alerts on attacks: every module records its denials in Envoy shared data (so all
//! worker threads and modules add up); a module with an alert policy (error-shield) checks the
//! sliding window on its timer and posts one JSON alert per cooldown to a webhook cluster.
//!
//! Shared data is scoped by `vm_id`: modules that should count together share one `vm_id`
//! (`portcullis` in every config we ship).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::callout::{Callout, CalloutResponse};
use crate::control::{ConfigError, Env};
use crate::store::{SharedStore, StoreError};

/// Set while some module alerts: recording is skipped otherwise.
pub const ENABLED_KEY: &str = "portcullis.alerts.enabled";
const WINDOW_KEY: &str = "portcullis.alerts.window";
/// Bucket width of the sliding window.
const BUCKET_SECS: u64 = 5;
/// Longest window a policy may ask for; older buckets are dropped.
pub const MAX_WINDOW_SECS: u64 = 3600;
/// Distinct client addresses kept per bucket (the rest count as `other`).
const MAX_CLIENTS_PER_BUCKET: usize = 64;
const CAS_RETRIES: usize = 4;

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AlertSpec {
    /// The Envoy cluster of the webhook receiver.
    pub cluster: String,
    #[serde(default = "default_authority")]
    pub authority: String,
    pub path: String,
    /// Alert when more than this many matching denials fall in the window.
    pub threshold: u64,
    #[serde(default = "default_window")]
    pub window_secs: u64,
    #[serde(default = "default_cooldown")]
    pub cooldown_secs: u64,
    /// Reason codes that count (`jwt.bad_signature`); empty: every denial.
    #[serde(default)]
    pub codes: Vec<String>,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_authority() -> String {
    "portcullis-alerts".into()
}
fn default_window() -> u64 {
    60
}
fn default_cooldown() -> u64 {
    300
}
fn default_timeout_ms() -> u64 {
    2000
}

#[derive(Debug, Clone)]
pub struct AlertPolicy {
    spec: AlertSpec,
}

impl AlertPolicy {
    pub fn compile(spec: &AlertSpec) -> Result<Self, ConfigError> {
        if spec.cluster.is_empty() {
            return Err(ConfigError::new("cluster", "must name an Envoy cluster"));
        }
        if !spec.path.starts_with('/') {
            return Err(ConfigError::new("path", "must start with '/'"));
        }
        if spec.threshold == 0 {
            return Err(ConfigError::new("threshold", "must be at least 1"));
        }
        if spec.window_secs < BUCKET_SECS || spec.window_secs > MAX_WINDOW_SECS {
            return Err(ConfigError::new(
                "window_secs",
                format!("must be between {BUCKET_SECS} and {MAX_WINDOW_SECS}"),
            ));
        }
        if spec.timeout_ms == 0 || spec.timeout_ms > 60_000 {
            return Err(ConfigError::new(
                "timeout_ms",
                "must be between 1 and 60000",
            ));
        }
        Ok(AlertPolicy { spec: spec.clone() })
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
struct Bucket {
    start: u64,
    codes: BTreeMap<String, u64>,
    clients: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Window {
    buckets: Vec<Bucket>,
    last_alert: Option<u64>,
}

use crate::time::unix_secs as secs;

/// Read-modify-write of the window with compare-and-swap, so concurrent workers never lose
/// each other's updates. Returns what `f` returned, or `None` when the store kept refusing.
fn update<T>(store: &dyn SharedStore, f: impl Fn(&mut Window) -> Option<T>) -> Option<T> {
    for _ in 0..CAS_RETRIES {
        let (mut w, cas) = match store.get(WINDOW_KEY) {
            Some((bytes, cas)) => (
                serde_json::from_slice(&bytes).unwrap_or_default(),
                Some(cas),
            ),
            None => (Window::default(), None),
        };
        let out = f(&mut w)?;
        let bytes = serde_json::to_vec(&w).ok()?;
        match store.set(WINDOW_KEY, &bytes, cas) {
            Ok(()) => return Some(out),
            Err(StoreError::CasMismatch) => continue,
            Err(StoreError::Unavailable) => return None,
        }
    }
    None
}

/// Record one denial (called by the host for every module). Cheap no-op unless alerting is on.
pub fn record_denial(store: &dyn SharedStore, now: SystemTime, code: &str, client: Option<&str>) {
    if store.get(ENABLED_KEY).is_none() {
        return;
    }
    let now = secs(now);
    let start = now - now % BUCKET_SECS;
    // Only the address, not the port: one client, many connections.
    let client = client
        .map(|c| c.rsplit_once(':').map_or(c, |(a, _)| a))
        .unwrap_or("unknown");
    update(store, |w| {
        w.buckets.retain(|b| b.start + MAX_WINDOW_SECS > now);
        if w.buckets.last().is_none_or(|b| b.start != start) {
            w.buckets.push(Bucket {
                start,
                ..Bucket::default()
            });
        }
        let b = w.buckets.last_mut()?;
        *b.codes.entry(code.to_string()).or_default() += 1;
        let key = if b.clients.len() < MAX_CLIENTS_PER_BUCKET || b.clients.contains_key(client) {
            client.to_string()
        } else {
            "other".to_string()
        };
        *b.clients.entry(key).or_default() += 1;
        Some(())
    });
}

/// What the webhook receives.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AlertBody {
    pub alert: String,
    pub at: u64,
    pub window_secs: u64,
    pub threshold: u64,
    pub count: u64,
    pub codes: BTreeMap<String, u64>,
    pub top_clients: Vec<(String, u64)>,
}

/// Decide, from the shared window, whether an alert is due now; claims the cooldown atomically
/// so that only one worker sends it.
pub fn due(store: &dyn SharedStore, now: SystemTime, policy: &AlertPolicy) -> Option<AlertBody> {
    let spec = &policy.spec;
    let now = secs(now);
    update(store, |w| {
        if w.last_alert.is_some_and(|t| now < t + spec.cooldown_secs) {
            return None;
        }
        let mut codes: BTreeMap<String, u64> = BTreeMap::new();
        let mut clients: BTreeMap<String, u64> = BTreeMap::new();
        for b in w
            .buckets
            .iter()
            .filter(|b| b.start + BUCKET_SECS > now.saturating_sub(spec.window_secs))
        {
            let matching: u64 = b
                .codes
                .iter()
                .filter(|(c, _)| spec.codes.is_empty() || spec.codes.contains(c))
                .map(|(c, n)| {
                    *codes.entry(c.clone()).or_default() += n;
                    *n
                })
                .sum();
            if matching > 0 {
                for (c, n) in &b.clients {
                    *clients.entry(c.clone()).or_default() += n;
                }
            }
        }
        let count: u64 = codes.values().sum();
        if count <= spec.threshold {
            return None;
        }
        w.last_alert = Some(now);
        let mut top: Vec<(String, u64)> = clients.into_iter().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top.truncate(5);
        Some(AlertBody {
            alert: "portcullis.denials".into(),
            at: now,
            window_secs: spec.window_secs,
            threshold: spec.threshold,
            count,
            codes,
            top_clients: top,
        })
    })
}

/// The alerting part of a control: turns on recording, checks on each tick, posts alerts.
#[derive(Debug)]
pub struct Alerts {
    policy: AlertPolicy,
    sent: Cell<u64>,
}

impl Alerts {
    pub fn new(policy: AlertPolicy) -> Self {
        Alerts {
            policy,
            sent: Cell::new(0),
        }
    }

    pub fn tick_period(&self) -> Duration {
        Duration::from_secs(1)
    }

    pub fn on_tick(&self, env: &Env) -> Vec<Callout> {
        if env.store.get(ENABLED_KEY).is_none() {
            let _ = env.store.set(ENABLED_KEY, b"1", None);
        }
        let Some(body) = due(env.store, env.now, &self.policy) else {
            return Vec::new();
        };
        let spec = &self.policy.spec;
        log::warn!(
            "portcullis alert: {} denials in {} s (threshold {}), posting to cluster {}",
            body.count,
            body.window_secs,
            body.threshold,
            spec.cluster
        );
        let tag = self.sent.get() + 1;
        self.sent.set(tag);
        vec![Callout {
            tag,
            cluster: spec.cluster.clone(),
            method: "POST".into(),
            authority: spec.authority.clone(),
            path: spec.path.clone(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(&body).ok(),
            timeout: Duration::from_millis(spec.timeout_ms),
        }]
    }

    pub fn on_callout_response(&self, _tag: u64, resp: Option<CalloutResponse>, _env: &Env) {
        match resp {
            Some(r) if (200..300).contains(&r.status) => {
                log::info!("portcullis alert delivered ({})", r.status)
            }
            // Envoy answers 503 itself when the webhook cluster has no healthy host.
            Some(r) => log::warn!(
                "portcullis alert not delivered: the webhook answered {}",
                r.status
            ),
            None => log::warn!("portcullis alert not delivered: the webhook is unreachable"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use std::time::UNIX_EPOCH;

    fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    fn policy(threshold: u64, window: u64, cooldown: u64, codes: &[&str]) -> AlertPolicy {
        AlertPolicy::compile(&AlertSpec {
            cluster: "hooks".into(),
            authority: "x".into(),
            path: "/alert".into(),
            threshold,
            window_secs: window,
            cooldown_secs: cooldown,
            codes: codes.iter().map(|c| c.to_string()).collect(),
            timeout_ms: 1000,
        })
        .unwrap()
    }

    fn enabled() -> MemoryStore {
        let s = MemoryStore::default();
        s.set(ENABLED_KEY, b"1", None).unwrap();
        s
    }

    #[test]
    fn nothing_is_recorded_unless_some_module_alerts() {
        let s = MemoryStore::default();
        record_denial(&s, at(1000), "jwt.expired", Some("1.2.3.4:5"));
        assert!(s.get(WINDOW_KEY).is_none());
    }

    #[test]
    fn alert_fires_when_the_window_exceeds_the_threshold_once_per_cooldown() {
        let s = enabled();
        let p = policy(3, 60, 300, &[]);
        for i in 0..3 {
            record_denial(&s, at(1000 + i), "jwt.bad_signature", Some("10.0.0.9:4000"));
        }
        assert_eq!(due(&s, at(1003), &p), None, "3 is not more than 3");
        record_denial(&s, at(1004), "csrf.origin", Some("10.0.0.8:1"));
        let a = due(&s, at(1004), &p).expect("alert");
        assert_eq!(a.count, 4);
        assert_eq!(a.codes["jwt.bad_signature"], 3);
        assert_eq!(a.top_clients[0], ("10.0.0.9".to_string(), 3));
        // Cooldown: more denials, no second alert until 300 s later.
        for i in 0..10 {
            record_denial(&s, at(1010 + i), "jwt.bad_signature", None);
        }
        assert_eq!(due(&s, at(1100), &p), None);
        assert_eq!(
            due(&s, at(1303), &p),
            None,
            "the burst left the 60 s window"
        );
        for i in 0..5 {
            record_denial(&s, at(1310 + i), "jwt.bad_signature", None);
        }
        assert!(due(&s, at(1315), &p).is_some());
    }

    #[test]
    fn old_denials_leave_the_sliding_window() {
        let s = enabled();
        let p = policy(2, 30, 0, &[]);
        for t in [1000, 1001, 1002] {
            record_denial(&s, at(t), "x", None);
        }
        assert_eq!(
            due(&s, at(1040), &p),
            None,
            "40 s later the burst is outside a 30 s window"
        );
        assert!(due(&policy_store(&s), at(1002), &p).is_some());
    }

    fn policy_store(s: &MemoryStore) -> MemoryStore {
        let copy = MemoryStore::default();
        let (v, _) = s.get(WINDOW_KEY).unwrap();
        copy.set(WINDOW_KEY, &v, None).unwrap();
        copy
    }

    #[test]
    fn only_listed_codes_count() {
        let s = enabled();
        let p = policy(1, 60, 0, &["jwt.bad_signature"]);
        for _ in 0..5 {
            record_denial(&s, at(1000), "content_type.unsupported", None);
        }
        assert_eq!(due(&s, at(1000), &p), None);
        record_denial(&s, at(1000), "jwt.bad_signature", None);
        record_denial(&s, at(1001), "jwt.bad_signature", None);
        assert_eq!(due(&s, at(1001), &p).unwrap().count, 2);
    }

    #[test]
    fn client_addresses_are_bounded_per_bucket() {
        let s = enabled();
        for i in 0..200 {
            record_denial(
                &s,
                at(1000),
                "x",
                Some(&format!("10.1.{}.{}:1", i / 250, i % 250)),
            );
        }
        let (v, _) = s.get(WINDOW_KEY).unwrap();
        let w: Window = serde_json::from_slice(&v).unwrap();
        assert_eq!(w.buckets[0].clients.len(), MAX_CLIENTS_PER_BUCKET + 1);
        assert_eq!(
            w.buckets[0].clients["other"],
            200 - MAX_CLIENTS_PER_BUCKET as u64
        );
    }

    #[test]
    fn policy_errors_name_the_field() {
        let spec = |f: &dyn Fn(&mut AlertSpec)| {
            let mut s: AlertSpec =
                serde_json::from_str(r#"{"cluster":"c","path":"/a","threshold":1}"#).unwrap();
            f(&mut s);
            AlertPolicy::compile(&s).unwrap_err().path
        };
        assert_eq!(spec(&|s| s.path = "a".into()), "path");
        assert_eq!(spec(&|s| s.threshold = 0), "threshold");
        assert_eq!(spec(&|s| s.window_secs = 1), "window_secs");
        assert_eq!(spec(&|s| s.cluster.clear()), "cluster");
    }
}
