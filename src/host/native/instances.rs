//! Each thread's instance of each configuration's control. Controls keep caches in `RefCell`s
//! (they are not `Sync`), so each thread builds its own from the policy, as each wasm VM does,
//! and takes the background callouts' answers from [`super::config::Answers`].

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use super::config::Config;
use super::store::STORE;
use super::stream::Hooks;
use crate::control::{configure_module, ConfigError, Control, Env};
use crate::host::driver::{Shared, Stream};
use crate::inflight::Dispatch;

/// What the configuration needs of its control, without knowing its type.
pub trait Kind: Sync {
    fn name(&self) -> &'static str;
    /// Build this thread's instance (on the main thread, in `config_new`: the policy check).
    /// Returns the control's tick period.
    fn instantiate(&self, cfg: &Config) -> Result<Option<Duration>, ConfigError>;
    /// A stream on this thread; the instance is built on the thread's first stream.
    fn stream(&self, cfg: &Config) -> Box<dyn Hooks>;
    /// Background work, on the main thread.
    fn tick(&self, cfg: &Config);
    /// Hand this thread's instance the answers it has not seen.
    fn deliver(&self, cfg: &Config);
}

pub struct Typed<C>(PhantomData<fn() -> C>);

impl<C> Typed<C> {
    pub const KIND: Typed<C> = Typed(PhantomData);
}

struct Instance<C> {
    shared: Rc<Shared<C>>,
    /// The last answer (its sequence number) this instance was given.
    applied: Cell<u64>,
}

thread_local! {
    static INSTANCES: RefCell<HashMap<u64, Rc<dyn Any>>> = RefCell::new(HashMap::new());
    static SEEN_GONE: Cell<u64> = const { Cell::new(0) };
}

/// Configurations destroyed so far: each thread drops its instances of them.
static GONE: Mutex<Vec<u64>> = Mutex::new(Vec::new());
static GONE_COUNT: AtomicU64 = AtomicU64::new(0);

pub fn forget(config: u64) {
    GONE.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(config);
    GONE_COUNT.fetch_add(1, Ordering::Release);
}

fn purge() {
    let now = GONE_COUNT.load(Ordering::Acquire);
    if SEEN_GONE.get() == now {
        return;
    }
    SEEN_GONE.set(now);
    let gone = GONE.lock().unwrap_or_else(PoisonError::into_inner).clone();
    INSTANCES.with_borrow_mut(|m| m.retain(|id, _| !gone.contains(id)));
}

fn env() -> Env<'static> {
    Env {
        now: SystemTime::now(),
        store: &*STORE,
    }
}

impl<C: Control + 'static> Typed<C> {
    fn build(cfg: &Config) -> Result<Rc<Instance<C>>, ConfigError> {
        let (control, method_override) = configure_module::<C>(cfg.policy())?;
        let inst = Rc::new(Instance {
            shared: Rc::new(Shared {
                control,
                method_override,
            }),
            applied: Cell::new(0),
        });
        let any: Rc<dyn Any> = inst.clone();
        INSTANCES.with_borrow_mut(|m| m.insert(cfg.id(), any));
        Ok(inst)
    }

    fn get(cfg: &Config) -> Option<Rc<Instance<C>>> {
        purge();
        let found = INSTANCES.with_borrow(|m| m.get(&cfg.id()).cloned());
        match found {
            Some(any) => any.downcast::<Instance<C>>().ok(),
            None => match Self::build(cfg) {
                Ok(inst) => Some(inst),
                // Checked on the main thread already; should it fail here, the stream fails
                // closed (503 `internal.unconfigured`).
                Err(e) => {
                    ::log::error!("portcullis {}: invalid policy: {e}", C::NAME);
                    None
                }
            },
        }
    }

    fn deliver_to(cfg: &Config, inst: &Instance<C>) {
        let seen = inst.applied.get();
        if cfg.answers().latest() <= seen {
            return;
        }
        let env = env();
        for (seq, tag, resp) in cfg.answers().since(seen) {
            inst.shared.control.on_callout_response(tag, resp, &env);
            inst.applied.set(seq);
        }
    }
}

impl<C: Control + 'static> Kind for Typed<C> {
    fn name(&self) -> &'static str {
        C::NAME
    }

    fn instantiate(&self, cfg: &Config) -> Result<Option<Duration>, ConfigError> {
        Ok(Self::build(cfg)?.shared.control.tick_period())
    }

    fn stream(&self, cfg: &Config) -> Box<dyn Hooks> {
        let inst = Self::get(cfg);
        if let Some(i) = &inst {
            Self::deliver_to(cfg, i);
        }
        Box::new(Stream::<C>::new(inst.map(|i| i.shared.clone())))
    }

    fn tick(&self, cfg: &Config) {
        let Some(inst) = Self::get(cfg) else {
            return;
        };
        Self::deliver_to(cfg, &inst);
        for c in inst.shared.control.on_tick(&env()) {
            let d = Dispatch::of(&c);
            if let Err(e) = cfg.send(c.tag, &d) {
                ::log::warn!(
                    "portcullis {}: callout to cluster {} failed: {e}",
                    C::NAME,
                    c.cluster
                );
                cfg.answers().publish(c.tag, None);
            }
        }
        Self::deliver_to(cfg, &inst);
    }

    fn deliver(&self, cfg: &Config) {
        if let Some(inst) = Self::get(cfg) {
            Self::deliver_to(cfg, &inst);
        }
    }
}
