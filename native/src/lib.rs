//! The Envoy dynamic module: every hook Envoy looks up is exported by
//! `portcullis::host::native` (linked in here); this crate only makes it a shared library.

pub use portcullis::host::native::ABI_VERSION;
