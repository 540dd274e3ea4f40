//! Counters, defined on first use (proxy-wasm metric ids are per VM) and then looked up without
//! building their name again: the allowed-request path is hot.

use std::cell::RefCell;
use std::collections::HashMap;

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

use crate::telemetry::{counter_name, operation_counter_name, Outcome};

/// Metric ids by operation label: looked up by `&str`, no allocation once defined.
type ByOperation = HashMap<Box<str>, u32>;

#[derive(Default)]
pub struct Metrics {
    ids: RefCell<HashMap<(Outcome, &'static str), u32>>,
    /// Per (outcome, code), then per operation.
    operation_ids: RefCell<HashMap<(Outcome, &'static str), ByOperation>>,
}

fn define(module: &str, name: &str) -> Option<u32> {
    match hostcalls::define_metric(MetricType::Counter, name) {
        Ok(id) => Some(id),
        Err(e) => {
            log::warn!("portcullis {module}: cannot define metric: {e:?}");
            None
        }
    }
}

impl Metrics {
    pub fn count(&self, module: &str, outcome: Outcome, code: &'static str) {
        let known = self.ids.borrow().get(&(outcome, code)).copied();
        let id = match known {
            Some(id) => id,
            None => {
                let Some(id) = define(module, &counter_name(module, outcome, code)) else {
                    return;
                };
                self.ids.borrow_mut().insert((outcome, code), id);
                id
            }
        };
        let _ = hostcalls::increment_metric(id, 1);
    }

    pub fn count_operation(
        &self,
        module: &str,
        outcome: Outcome,
        code: &'static str,
        operation: &str,
    ) {
        let known = self
            .operation_ids
            .borrow()
            .get(&(outcome, code))
            .and_then(|ops| ops.get(operation))
            .copied();
        let id = match known {
            Some(id) => id,
            None => {
                let name = operation_counter_name(module, outcome, code, operation);
                let Some(id) = define(module, &name) else {
                    return;
                };
                self.operation_ids
                    .borrow_mut()
                    .entry((outcome, code))
                    .or_default()
                    .insert(operation.into(), id);
                id
            }
        };
        let _ = hostcalls::increment_metric(id, 1);
    }
}
