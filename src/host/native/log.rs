//! The `log` crate's records go to Envoy's logger for dynamic modules (`[dynamic_modules]`),
//! at Envoy's own level (`-l`, or the admin `/logging` endpoint).

use ::log::{Level, LevelFilter, Metadata, Record};

use super::abi;

struct EnvoyLog;

static LOGGER: EnvoyLog = EnvoyLog;

/// Envoy's level numbers (abi.h `envoy_dynamic_module_type_log_level`).
fn level(l: Level) -> u32 {
    match l {
        Level::Trace => 0,
        Level::Debug => 1,
        Level::Info => 2,
        Level::Warn => 3,
        Level::Error => 4,
    }
}

impl ::log::Log for EnvoyLog {
    fn enabled(&self, m: &Metadata) -> bool {
        abi::log_enabled(level(m.level()))
    }

    fn log(&self, r: &Record) {
        let l = level(r.level());
        if abi::log_enabled(l) {
            abi::log(l, &r.args().to_string());
        }
    }

    fn flush(&self) {}
}

/// Once per process (`on_program_init`); a second call changes nothing.
pub fn install() {
    if ::log::set_logger(&LOGGER).is_ok() {
        ::log::set_max_level(LevelFilter::Debug);
    }
}
