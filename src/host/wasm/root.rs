//! The root context: policy, background ticks, callouts.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use super::http::Http;
use super::metrics::Metrics;
use super::store::ProxyStore;
use crate::callout::CalloutResponse;
use crate::control::{configure_module, Control, Env};
use crate::host::driver::Shared;
use crate::inflight::Dispatch;

pub struct Root<C: Control> {
    /// What every HTTP context of this VM shares.
    shared: Option<Rc<Shared<C>>>,
    metrics: Rc<Metrics>,
    /// proxy-wasm call token -> the control's tag.
    pending: RefCell<HashMap<u32, u64>>,
}

impl<C: Control> Root<C> {
    pub fn new() -> Self {
        Root {
            shared: None,
            metrics: Rc::new(Metrics::default()),
            pending: RefCell::new(HashMap::new()),
        }
    }

    fn env_now(&self) -> std::time::SystemTime {
        self.get_current_time()
    }
}

impl<C: Control> Context for Root<C> {
    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let Some(tag) = self.pending.borrow_mut().remove(&token) else {
            return;
        };
        let Some(shared) = self.shared.clone() else {
            return;
        };
        // A failed call (reset, timeout, no healthy host) arrives without a :status.
        let (status, body) = super::call_answer(self, body_size);
        let resp = status.map(|status| CalloutResponse { status, body });
        let env = Env {
            now: self.env_now(),
            store: &ProxyStore,
        };
        shared.control.on_callout_response(tag, resp, &env);
    }
}

impl<C: Control> RootContext for Root<C> {
    fn on_configure(&mut self, _size: usize) -> bool {
        let Some(config) = self.get_plugin_configuration() else {
            log::error!(
                "portcullis {}: invalid policy: the plugin configuration is empty",
                C::NAME
            );
            return false;
        };
        match configure_module::<C>(&config) {
            Ok((control, method_override)) => {
                let period = control.tick_period();
                self.shared = Some(Rc::new(Shared {
                    control,
                    method_override,
                }));
                if let Some(p) = period {
                    self.set_tick_period(p);
                    // Do the first round of background work now, not one period from now.
                    self.on_tick();
                }
                log::info!("portcullis {}: policy loaded", C::NAME);
                true
            }
            Err(e) => {
                log::error!("portcullis {}: invalid policy: {e}", C::NAME);
                false
            }
        }
    }

    fn on_tick(&mut self) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        let env = Env {
            now: self.env_now(),
            store: &ProxyStore,
        };
        for c in shared.control.on_tick(&env) {
            let d = Dispatch::of(&c);
            match self.dispatch_http_call(d.cluster, d.headers, d.body, vec![], d.timeout) {
                Ok(token) => {
                    self.pending.borrow_mut().insert(token, c.tag);
                }
                Err(e) => {
                    log::warn!(
                        "portcullis {}: callout to cluster {} failed: {e:?}",
                        C::NAME,
                        c.cluster
                    );
                    shared.control.on_callout_response(c.tag, None, &env);
                }
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http::new(
            self.shared.clone(),
            self.metrics.clone(),
        )))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
