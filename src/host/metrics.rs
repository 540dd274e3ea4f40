//! Counters, defined on first use (proxy-wasm metric ids are per VM).

use std::cell::RefCell;
use std::collections::HashMap;

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

use crate::telemetry::{counter_name, Outcome};

#[derive(Default)]
pub struct Metrics {
    ids: RefCell<HashMap<String, u32>>,
}

impl Metrics {
    pub fn count(&self, module: &str, outcome: Outcome, code: &str) {
        let name = counter_name(module, outcome, code);
        let id = {
            let mut ids = self.ids.borrow_mut();
            match ids.get(&name) {
                Some(id) => Some(*id),
                None => match hostcalls::define_metric(MetricType::Counter, &name) {
                    Ok(id) => {
                        ids.insert(name, id);
                        Some(id)
                    }
                    Err(e) => {
                        log::warn!("portcullis {module}: cannot define metric: {e:?}");
                        None
                    }
                },
            }
        };
        if let Some(id) = id {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }
}
