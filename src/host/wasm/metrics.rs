//! Counters, defined on first use (proxy-wasm metric ids are per VM) and then looked up without
//! building their name again: the allowed-request path is hot.

use std::cell::RefCell;
use std::collections::HashMap;

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

use crate::telemetry::{counter_name, Outcome};

#[derive(Default)]
pub struct Metrics {
    ids: RefCell<HashMap<(Outcome, &'static str), u32>>,
}

impl Metrics {
    pub fn count(&self, module: &str, outcome: Outcome, code: &'static str) {
        let known = self.ids.borrow().get(&(outcome, code)).copied();
        let id = match known {
            Some(id) => id,
            None => match hostcalls::define_metric(
                MetricType::Counter,
                &counter_name(module, outcome, code),
            ) {
                Ok(id) => {
                    self.ids.borrow_mut().insert((outcome, code), id);
                    id
                }
                Err(e) => {
                    log::warn!("portcullis {module}: cannot define metric: {e:?}");
                    return;
                }
            },
        };
        let _ = hostcalls::increment_metric(id, 1);
    }
}
