//! noop: reads one header and lets the request through. The floor every wasm filter pays, for
//! `make bench`; not a security control.

use serde::Deserialize;

use crate::control::{ConfigError, Control, Env};
use crate::request::RequestView;
use crate::verdict::Verdict;

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Policy {}

#[derive(Debug)]
pub struct Noop;

impl Control for Noop {
    type Policy = Policy;
    const NAME: &'static str = "noop";

    fn build(_: Policy) -> Result<Self, ConfigError> {
        Ok(Noop)
    }

    fn on_request(&self, req: &RequestView, _env: &Env) -> Verdict {
        // Touch one header so the host work (header map copy) is measured too.
        let _ = req.header("user-agent");
        Verdict::Continue
    }
}
