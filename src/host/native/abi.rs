//! The Envoy dynamic module C ABI: the subset portcullis uses, declared by hand from Envoy's
//! `source/extensions/dynamic_modules/abi/abi.h` (Envoy's Rust SDK is not on crates.io), the
//! event hooks Envoy looks up, and safe wrappers over the callbacks.
//!
//! This is the only module of the crate with `unsafe`. Each hook turns Envoy's raw pointers into
//! the references [`super`] works with and runs it under `catch_unwind` ([`super::guarded`]); each
//! callback wrapper passes only pointers to live Rust memory, sized as the ABI says.
//!
//! Envoy binds every hook and callback when it loads the library: a hook missing from the
//! exports fails the filter config, a callback Envoy lacks fails the load. All 29
//! `envoy_dynamic_module_on_http_filter_*` hooks of Envoy 1.40 are exported; the ones portcullis
//! has no use for (streamed callouts, watermarks, per-route config) do nothing.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_void};
use std::ptr;

use super::config::Config;
use super::stream::Filter;

/// The ABI version of the Envoy we pin (1.40); a mismatch is only a warning in Envoy's log.
pub const ABI_VERSION: &std::ffi::CStr = c"v0.2.0";

// ----- types (abi.h "Common Types") -----

/// A buffer owned by Envoy (valid until the end of the current hook).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EnvoyBuffer {
    ptr: *const u8,
    len: usize,
}

/// A buffer owned by the module, lent to Envoy for the duration of one call.
#[repr(C)]
#[derive(Clone, Copy)]
struct ModuleBuffer {
    ptr: *const u8,
    len: usize,
}

impl ModuleBuffer {
    fn of(b: &[u8]) -> Self {
        ModuleBuffer {
            ptr: b.as_ptr(),
            len: b.len(),
        }
    }

    /// The null buffer: "no value" (a header set to it is removed).
    const NULL: ModuleBuffer = ModuleBuffer {
        ptr: ptr::null(),
        len: 0,
    };
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct EnvoyHeader {
    key_ptr: *const u8,
    key_len: usize,
    value_ptr: *const u8,
    value_len: usize,
}

#[repr(C)]
struct ModuleHeader {
    key_ptr: *const u8,
    key_len: usize,
    value_ptr: *const u8,
    value_len: usize,
}

impl ModuleHeader {
    fn of(k: &str, v: &str) -> Self {
        ModuleHeader {
            key_ptr: k.as_ptr(),
            key_len: k.len(),
            value_ptr: v.as_ptr(),
            value_len: v.len(),
        }
    }
}

/// `envoy_dynamic_module_type_http_header_type`.
const REQUEST_HEADERS: u32 = 0;
const RESPONSE_HEADERS: u32 = 2;
/// `envoy_dynamic_module_type_http_body_type`.
const RECEIVED_REQUEST_BODY: u32 = 0;
const BUFFERED_REQUEST_BODY: u32 = 1;
const RECEIVED_RESPONSE_BODY: u32 = 2;
const BUFFERED_RESPONSE_BODY: u32 = 3;
/// `envoy_dynamic_module_type_attribute_id`.
pub const ATTRIBUTE_SOURCE_ADDRESS: u32 = 24;
pub const ATTRIBUTE_TLS_VERSION: u32 = 31;
/// `envoy_dynamic_module_type_http_callout_init_result`.
const CALLOUT_SUCCESS: u32 = 0;
const CALLOUT_CLUSTER_NOT_FOUND: u32 = 2;
/// `envoy_dynamic_module_type_http_callout_result`.
const CALLOUT_RESULT_SUCCESS: u32 = 0;

extern "C" {
    fn envoy_dynamic_module_callback_log(level: u32, message: ModuleBuffer);
    fn envoy_dynamic_module_callback_log_enabled(level: u32) -> bool;

    fn envoy_dynamic_module_callback_http_get_headers_size(filter: *mut c_void, kind: u32)
        -> usize;
    fn envoy_dynamic_module_callback_http_get_headers(
        filter: *mut c_void,
        kind: u32,
        out: *mut EnvoyHeader,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_set_header(
        filter: *mut c_void,
        kind: u32,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_add_header(
        filter: *mut c_void,
        kind: u32,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_send_response(
        filter: *mut c_void,
        status: u32,
        headers: *mut ModuleHeader,
        headers_len: usize,
        body: ModuleBuffer,
        details: ModuleBuffer,
    );
    fn envoy_dynamic_module_callback_http_get_body_chunks_size(
        filter: *mut c_void,
        kind: u32,
    ) -> usize;
    fn envoy_dynamic_module_callback_http_get_body_chunks(
        filter: *mut c_void,
        kind: u32,
        out: *mut EnvoyBuffer,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_get_body_size(filter: *mut c_void, kind: u32) -> usize;
    fn envoy_dynamic_module_callback_http_append_body(
        filter: *mut c_void,
        kind: u32,
        data: ModuleBuffer,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_drain_body(
        filter: *mut c_void,
        kind: u32,
        len: usize,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_received_buffered_request_body(
        filter: *mut c_void,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_received_buffered_response_body(
        filter: *mut c_void,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_filter_get_attribute_string(
        filter: *mut c_void,
        id: u32,
        out: *mut EnvoyBuffer,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_filter_http_callout(
        filter: *mut c_void,
        id_out: *mut u64,
        cluster: ModuleBuffer,
        headers: *mut ModuleHeader,
        headers_len: usize,
        body: ModuleBuffer,
        timeout_ms: u64,
    ) -> u32;
    fn envoy_dynamic_module_callback_http_filter_continue_decoding(filter: *mut c_void);

    fn envoy_dynamic_module_callback_http_filter_config_define_counter(
        config: *mut c_void,
        name: ModuleBuffer,
        labels: *mut ModuleBuffer,
        labels_len: usize,
        id_out: *mut usize,
    ) -> u32;
    fn envoy_dynamic_module_callback_http_filter_increment_counter(
        filter: *mut c_void,
        id: usize,
        values: *mut ModuleBuffer,
        values_len: usize,
        by: u64,
    ) -> u32;
    fn envoy_dynamic_module_callback_http_filter_config_scheduler_new(
        config: *mut c_void,
    ) -> *mut c_void;
    fn envoy_dynamic_module_callback_http_filter_config_scheduler_commit(
        scheduler: *mut c_void,
        event: u64,
    );
    fn envoy_dynamic_module_callback_http_filter_config_scheduler_delete(scheduler: *mut c_void);
    fn envoy_dynamic_module_callback_http_filter_config_http_callout(
        config: *mut c_void,
        id_out: *mut u64,
        cluster: ModuleBuffer,
        headers: *mut ModuleHeader,
        headers_len: usize,
        body: ModuleBuffer,
        timeout_ms: u64,
    ) -> u32;
}

// ----- safe wrappers -----

/// Envoy's logger for dynamic modules (`[dynamic_modules]` in its log). Levels as in abi.h
/// (trace 0 … critical 5).
pub fn log(level: u32, message: &str) {
    // SAFETY: the buffer points to `message`, alive for the call; Envoy copies it.
    unsafe { envoy_dynamic_module_callback_log(level, ModuleBuffer::of(message.as_bytes())) }
}

pub fn log_enabled(level: u32) -> bool {
    // SAFETY: no pointer is passed.
    unsafe { envoy_dynamic_module_callback_log_enabled(level) }
}

/// Copy Envoy's bytes into a Vec (empty for a null or empty buffer).
fn bytes(ptr: *const u8, len: usize) -> Vec<u8> {
    if ptr.is_null() || len == 0 {
        return Vec::new();
    }
    // SAFETY: Envoy handed us `len` readable bytes at `ptr`, valid until the end of the hook
    // (abi.h, the OWNERSHIP note of every buffer it returns); we copy them at once.
    unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec()
}

fn headers_of(list: &[EnvoyHeader]) -> Vec<(String, Vec<u8>)> {
    list.iter()
        .map(|h| {
            (
                String::from_utf8_lossy(&bytes(h.key_ptr, h.key_len)).into_owned(),
                bytes(h.value_ptr, h.value_len),
            )
        })
        .collect()
}

/// A callout's answer as Envoy hands it to a `*_http_callout_done` hook: its status (none when
/// the call failed or came back without one) and body.
fn callout_answer(
    result: u32,
    headers: *const EnvoyHeader,
    headers_len: usize,
    chunks: *const EnvoyBuffer,
    chunks_len: usize,
) -> (Option<u16>, Vec<u8>) {
    if result != CALLOUT_RESULT_SUCCESS {
        return (None, Vec::new());
    }
    let headers = if headers.is_null() || headers_len == 0 {
        &[][..]
    } else {
        // SAFETY: Envoy passes `headers_len` headers, valid until the end of the hook.
        unsafe { std::slice::from_raw_parts(headers, headers_len) }
    };
    let status = headers_of(headers)
        .into_iter()
        .find(|(k, _)| k == ":status")
        .and_then(|(_, v)| std::str::from_utf8(&v).ok()?.parse().ok());
    let chunks = if chunks.is_null() || chunks_len == 0 {
        &[][..]
    } else {
        // SAFETY: as above, `chunks_len` buffers.
        unsafe { std::slice::from_raw_parts(chunks, chunks_len) }
    };
    let mut body = Vec::new();
    for c in chunks {
        body.extend_from_slice(&bytes(c.ptr, c.len));
    }
    (status, body)
}

fn module_headers(headers: &[(&str, &str)]) -> Vec<ModuleHeader> {
    headers
        .iter()
        .map(|(k, v)| ModuleHeader::of(k, v))
        .collect()
}

fn timeout_ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Why a callout was not sent: the cluster is unknown, or Envoy refused it otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalloutRefused {
    NoCluster,
    Other(u32),
}

fn callout_result(code: u32, id: u64) -> Result<u64, CalloutRefused> {
    match code {
        CALLOUT_SUCCESS => Ok(id),
        CALLOUT_CLUSTER_NOT_FOUND => Err(CalloutRefused::NoCluster),
        other => Err(CalloutRefused::Other(other)),
    }
}

/// Envoy's per-stream filter object (`DynamicModuleHttpFilter`): valid from `filter_new` until
/// `filter_destroy`, and only used on the worker thread of its stream, inside a hook.
#[derive(Clone, Copy)]
pub struct FilterEnvoy(*mut c_void);

/// Which header map or body of a stream.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Half {
    Request,
    Response,
}

impl FilterEnvoy {
    fn header_kind(half: Half) -> u32 {
        match half {
            Half::Request => REQUEST_HEADERS,
            Half::Response => RESPONSE_HEADERS,
        }
    }

    fn body_kinds(half: Half) -> (u32, u32) {
        match half {
            Half::Request => (BUFFERED_REQUEST_BODY, RECEIVED_REQUEST_BODY),
            Half::Response => (BUFFERED_RESPONSE_BODY, RECEIVED_RESPONSE_BODY),
        }
    }

    pub fn headers(self, half: Half) -> Vec<(String, Vec<u8>)> {
        let kind = Self::header_kind(half);
        // SAFETY: `self.0` is live (type invariant).
        let n = unsafe { envoy_dynamic_module_callback_http_get_headers_size(self.0, kind) };
        if n == 0 {
            return Vec::new();
        }
        let empty = EnvoyHeader {
            key_ptr: ptr::null(),
            key_len: 0,
            value_ptr: ptr::null(),
            value_len: 0,
        };
        let mut out = vec![empty; n];
        // SAFETY: `out` has room for the `n` headers Envoy just counted (abi.h PRECONDITION).
        let ok = unsafe {
            envoy_dynamic_module_callback_http_get_headers(self.0, kind, out.as_mut_ptr())
        };
        if ok {
            headers_of(&out)
        } else {
            Vec::new()
        }
    }

    /// Set (`Some`) or remove (`None`) a header; false if Envoy refused.
    pub fn set_header(self, half: Half, name: &str, value: Option<&str>) -> bool {
        let value = value.map_or(ModuleBuffer::NULL, |v| ModuleBuffer::of(v.as_bytes()));
        // SAFETY: both buffers point to memory alive for the call; Envoy copies them.
        unsafe {
            envoy_dynamic_module_callback_http_set_header(
                self.0,
                Self::header_kind(half),
                ModuleBuffer::of(name.as_bytes()),
                value,
            )
        }
    }

    pub fn add_header(self, half: Half, name: &str, value: &str) -> bool {
        // SAFETY: as in `set_header`.
        unsafe {
            envoy_dynamic_module_callback_http_add_header(
                self.0,
                Self::header_kind(half),
                ModuleBuffer::of(name.as_bytes()),
                ModuleBuffer::of(value.as_bytes()),
            )
        }
    }

    pub fn send_response(self, status: u16, headers: &[(&str, &str)], body: Option<&[u8]>) {
        let mut hs = module_headers(headers);
        let body = body.map_or(ModuleBuffer::NULL, ModuleBuffer::of);
        // SAFETY: `hs` holds `hs.len()` headers pointing into `headers`, all alive for the
        // call; Envoy copies what it keeps.
        unsafe {
            envoy_dynamic_module_callback_http_send_response(
                self.0,
                u32::from(status),
                hs.as_mut_ptr(),
                hs.len(),
                body,
                ModuleBuffer::of(b"portcullis"),
            )
        }
    }

    fn chunks(self, kind: u32, max: usize, out: &mut Vec<u8>) -> bool {
        // SAFETY: `self.0` is live.
        let n = unsafe { envoy_dynamic_module_callback_http_get_body_chunks_size(self.0, kind) };
        if n == 0 {
            return true;
        }
        let mut list = vec![
            EnvoyBuffer {
                ptr: ptr::null(),
                len: 0
            };
            n
        ];
        // SAFETY: `list` has room for the `n` chunks Envoy just counted.
        let ok = unsafe {
            envoy_dynamic_module_callback_http_get_body_chunks(self.0, kind, list.as_mut_ptr())
        };
        if !ok {
            return false;
        }
        for c in list {
            let room = max.saturating_sub(out.len());
            if room == 0 {
                break;
            }
            let take = c.len.min(room);
            out.extend_from_slice(&bytes(c.ptr, take));
        }
        true
    }

    /// Whether the data of this body hook is the buffer Envoy holds for us (an earlier filter
    /// buffered it and resumed): then it must not be counted twice.
    fn received_is_buffered(self, half: Half) -> bool {
        // SAFETY: `self.0` is live.
        unsafe {
            match half {
                Half::Request => {
                    envoy_dynamic_module_callback_http_received_buffered_request_body(self.0)
                }
                Half::Response => {
                    envoy_dynamic_module_callback_http_received_buffered_response_body(self.0)
                }
            }
        }
    }

    /// The bytes of body held now: what Envoy buffered for us, then (inside a body hook) this
    /// hook's data.
    pub fn body_size(self, half: Half, in_body_hook: bool) -> usize {
        let (buffered, received) = Self::body_kinds(half);
        // SAFETY: `self.0` is live.
        let b = unsafe { envoy_dynamic_module_callback_http_get_body_size(self.0, buffered) };
        if !in_body_hook || self.received_is_buffered(half) {
            return b;
        }
        // SAFETY: as above; the received body exists inside a body hook.
        b + unsafe { envoy_dynamic_module_callback_http_get_body_size(self.0, received) }
    }

    /// At most `max` bytes of the body held now (see [`Self::body_size`]).
    pub fn body(self, half: Half, in_body_hook: bool, max: usize) -> Option<Vec<u8>> {
        let (buffered, received) = Self::body_kinds(half);
        let mut out = Vec::new();
        if !self.chunks(buffered, max, &mut out) {
            return None;
        }
        if in_body_hook && !self.received_is_buffered(half) && !self.chunks(received, max, &mut out)
        {
            return None;
        }
        Some(out)
    }

    /// Replace the body held now by `value`: drain what Envoy buffered and this hook's data,
    /// then append `value` (to this hook's data inside a body hook, else to the buffer).
    pub fn replace_body(self, half: Half, in_body_hook: bool, value: &[u8]) -> bool {
        let (buffered, received) = Self::body_kinds(half);
        let in_received = in_body_hook && !self.received_is_buffered(half);
        // A body that does not exist (nothing buffered yet) is not drained: Envoy refuses that.
        let drain = |kind| {
            // SAFETY: `self.0` is live.
            unsafe {
                envoy_dynamic_module_callback_http_get_body_size(self.0, kind) == 0
                    || envoy_dynamic_module_callback_http_drain_body(self.0, kind, usize::MAX)
            }
        };
        let drained = drain(buffered) && (!in_received || drain(received));
        let target = if in_body_hook { received } else { buffered };
        // SAFETY: `value` is alive for the call and copied by Envoy.
        drained
            && unsafe {
                envoy_dynamic_module_callback_http_append_body(
                    self.0,
                    target,
                    ModuleBuffer::of(value),
                )
            }
    }

    pub fn attribute(self, id: u32) -> Option<String> {
        let mut out = EnvoyBuffer {
            ptr: ptr::null(),
            len: 0,
        };
        // SAFETY: `out` is a valid place for Envoy to write one buffer.
        let ok = unsafe {
            envoy_dynamic_module_callback_http_filter_get_attribute_string(self.0, id, &mut out)
        };
        if !ok {
            return None;
        }
        String::from_utf8(bytes(out.ptr, out.len)).ok()
    }

    /// Start a request-time callout; its answer comes to `on_http_filter_http_callout_done`.
    pub fn callout(
        self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout: std::time::Duration,
    ) -> Result<u64, CalloutRefused> {
        let mut hs = module_headers(headers);
        let mut id = 0u64;
        // SAFETY: every pointer refers to memory alive for the call (Envoy copies the request);
        // `id` is a valid place for the callout id.
        let code = unsafe {
            envoy_dynamic_module_callback_http_filter_http_callout(
                self.0,
                &mut id,
                ModuleBuffer::of(cluster.as_bytes()),
                hs.as_mut_ptr(),
                hs.len(),
                body.map_or(ModuleBuffer::NULL, ModuleBuffer::of),
                timeout_ms(timeout),
            )
        };
        callout_result(code, id)
    }

    pub fn continue_decoding(self) {
        // SAFETY: `self.0` is live.
        unsafe { envoy_dynamic_module_callback_http_filter_continue_decoding(self.0) }
    }

    /// A labelled counter += 1 (`counter`: its id, defined on the config this stream belongs
    /// to; `labels`: one value per label it was defined with, in order).
    pub fn count<const N: usize>(self, counter: usize, labels: [&str; N]) -> bool {
        let mut values = labels.map(|l| ModuleBuffer::of(l.as_bytes()));
        // SAFETY: `values` holds the N label values the counter was defined with, alive for the
        // call.
        let r = unsafe {
            envoy_dynamic_module_callback_http_filter_increment_counter(
                self.0,
                counter,
                values.as_mut_ptr(),
                values.len(),
                1,
            )
        };
        r == 0
    }
}

/// Envoy's filter config object (`DynamicModuleHttpFilterConfig`): used on the main thread only
/// (config hooks, scheduled events, config callouts).
#[derive(Clone, Copy)]
pub struct ConfigEnvoy(*mut c_void);

// SAFETY: the pointer is only dereferenced by Envoy, in calls made on the main thread (config
// hooks and `on_http_filter_config_scheduled`); other threads only carry it.
unsafe impl Send for ConfigEnvoy {}
// SAFETY: as above.
unsafe impl Sync for ConfigEnvoy {}

impl ConfigEnvoy {
    pub fn define_counter(self, name: &str, labels: &[&str]) -> Option<usize> {
        let mut names: Vec<ModuleBuffer> = labels
            .iter()
            .map(|l| ModuleBuffer::of(l.as_bytes()))
            .collect();
        let mut id = 0usize;
        // SAFETY: every buffer is alive for the call; `id` is a valid place for the id.
        let r = unsafe {
            envoy_dynamic_module_callback_http_filter_config_define_counter(
                self.0,
                ModuleBuffer::of(name.as_bytes()),
                names.as_mut_ptr(),
                names.len(),
                &mut id,
            )
        };
        (r == 0).then_some(id)
    }

    pub fn scheduler(self) -> Option<Scheduler> {
        // SAFETY: called on the main thread with a live config.
        let s = unsafe { envoy_dynamic_module_callback_http_filter_config_scheduler_new(self.0) };
        (!s.is_null()).then_some(Scheduler(s))
    }

    /// A background callout; its answer comes to `on_http_filter_config_http_callout_done`.
    pub fn callout(
        self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout: std::time::Duration,
    ) -> Result<u64, CalloutRefused> {
        let mut hs = module_headers(headers);
        let mut id = 0u64;
        // SAFETY: as in `FilterEnvoy::callout`, on the main thread.
        let code = unsafe {
            envoy_dynamic_module_callback_http_filter_config_http_callout(
                self.0,
                &mut id,
                ModuleBuffer::of(cluster.as_bytes()),
                hs.as_mut_ptr(),
                hs.len(),
                body.map_or(ModuleBuffer::NULL, ModuleBuffer::of),
                timeout_ms(timeout),
            )
        };
        callout_result(code, id)
    }
}

/// Posts events to the main thread (`on_http_filter_config_scheduled`), from any thread.
pub struct Scheduler(*mut c_void);

// SAFETY: Envoy's config scheduler exists to be committed to from other threads (abi.h); the
// owner (`Config`) serialises commit and delete behind a mutex.
unsafe impl Send for Scheduler {}

impl Scheduler {
    pub fn commit(&self, event: u64) {
        // SAFETY: the scheduler is live until `drop`.
        unsafe { envoy_dynamic_module_callback_http_filter_config_scheduler_commit(self.0, event) }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        // SAFETY: deleted once, here; nothing commits to it afterwards (it is gone).
        unsafe { envoy_dynamic_module_callback_http_filter_config_scheduler_delete(self.0) }
    }
}

// ----- event hooks -----

fn slice<'a>(b: EnvoyBuffer) -> &'a [u8] {
    if b.ptr.is_null() || b.len == 0 {
        return &[];
    }
    // SAFETY: Envoy passes `len` readable bytes, valid for the duration of the hook.
    unsafe { std::slice::from_raw_parts(b.ptr, b.len) }
}

/// The filter a module pointer stands for.
///
/// SAFETY (for callers): `module` must be a pointer returned by `on_http_filter_new` and not yet
/// passed to `on_http_filter_destroy`. Envoy calls a stream's hooks one at a time on its worker
/// thread, so the `&mut` is unique.
unsafe fn filter<'a>(module: *const c_void) -> Option<&'a mut Filter> {
    (module as *mut Filter).as_mut()
}

/// SAFETY (for callers): `config` must come from `on_http_filter_config_new`, not yet destroyed.
unsafe fn config<'a>(config: *const c_void) -> Option<&'a std::sync::Arc<Config>> {
    (config as *const std::sync::Arc<Config>).as_ref()
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const c_char {
    super::log::install();
    ABI_VERSION.as_ptr()
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    config_envoy: *mut c_void,
    name: EnvoyBuffer,
    config: EnvoyBuffer,
) -> *const c_void {
    let made = super::guarded("config_new", || {
        Config::new(ConfigEnvoy(config_envoy), slice(name), slice(config))
    });
    match made.flatten() {
        Some(c) => Box::into_raw(Box::new(c)) as *const c_void,
        // Envoy refuses the filter config.
        None => ptr::null(),
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(config: *const c_void) {
    if config.is_null() {
        return;
    }
    // SAFETY: `config` came from `Box::into_raw` in `config_new`; Envoy destroys it once.
    let c = unsafe { Box::from_raw(config as *mut std::sync::Arc<Config>) };
    super::guarded("config_destroy", || c.shutdown());
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_new(
    _name: EnvoyBuffer,
    _config: EnvoyBuffer,
) -> *const c_void {
    // Per-route policies are not supported: refuse them rather than ignore them.
    ::log::error!(
        "portcullis: per-route configuration is not supported; set the policy on the filter"
    );
    ptr::null()
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_destroy(
    _config: *const c_void,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_new(
    config_module: *const c_void,
    filter_envoy: *mut c_void,
) -> *const c_void {
    // SAFETY: Envoy passes the pointer `config_new` returned, alive while its filters are.
    let Some(c) = (unsafe { config(config_module) }) else {
        return ptr::null();
    };
    let made = super::guarded("filter_new", || Filter::new(c, FilterEnvoy(filter_envoy)));
    match made {
        Some(f) => Box::into_raw(Box::new(f)) as *const c_void,
        // Envoy closes the stream: nothing passes unchecked.
        None => ptr::null(),
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_destroy(module: *const c_void) {
    if module.is_null() {
        return;
    }
    // SAFETY: `module` came from `Box::into_raw` in `filter_new`; Envoy destroys it once.
    drop(unsafe { Box::from_raw(module as *mut Filter) });
}

/// Envoy's status codes: 0 is Continue for every phase; 1 is StopIteration (headers,
/// trailers) or StopIterationAndBuffer (body).
const CONTINUE: u32 = 0;
const STOP: u32 = 1;

fn status(flow: Option<super::super::primitives::Flow>) -> u32 {
    match flow {
        Some(super::super::primitives::Flow::Continue) => CONTINUE,
        _ => STOP,
    }
}

macro_rules! stream_hook {
    ($name:ident, $method:ident $(, $end:ident)?) => {
        #[no_mangle]
        pub extern "C" fn $name(
            filter_envoy: *mut c_void,
            module: *const c_void,
            $($end: bool,)?
        ) -> u32 {
            let _ = filter_envoy;
            // SAFETY: Envoy passes the pointer `filter_new` returned, not yet destroyed.
            match unsafe { filter(module) } {
                Some(f) => status(Some(f.$method($($end)?))),
                None => STOP,
            }
        }
    };
}

stream_hook!(
    envoy_dynamic_module_on_http_filter_request_headers,
    request_headers,
    end
);
stream_hook!(
    envoy_dynamic_module_on_http_filter_request_body,
    request_body,
    end
);
stream_hook!(
    envoy_dynamic_module_on_http_filter_request_trailers,
    request_trailers
);
stream_hook!(
    envoy_dynamic_module_on_http_filter_response_headers,
    response_headers,
    end
);
stream_hook!(
    envoy_dynamic_module_on_http_filter_response_body,
    response_body,
    end
);
stream_hook!(
    envoy_dynamic_module_on_http_filter_response_trailers,
    response_trailers
);

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(
    _filter_envoy: *mut c_void,
    _module: *const c_void,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_callout_done(
    _filter_envoy: *mut c_void,
    module: *const c_void,
    callout_id: u64,
    result: u32,
    headers: *const EnvoyHeader,
    headers_len: usize,
    chunks: *const EnvoyBuffer,
    chunks_len: usize,
) {
    let (status, body) = callout_answer(result, headers, headers_len, chunks, chunks_len);
    // SAFETY: as for the stream hooks.
    if let Some(f) = unsafe { filter(module) } {
        f.answer(callout_id, status, body);
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_scheduled(
    _config_envoy: *mut c_void,
    config_module: *const c_void,
    event: u64,
) {
    // SAFETY: Envoy passes the pointer `config_new` returned, not yet destroyed.
    if let Some(c) = unsafe { config(config_module) } {
        super::guarded("config_scheduled", || c.on_scheduled(event));
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_callout_done(
    _config_envoy: *mut c_void,
    config_module: *const c_void,
    callout_id: u64,
    result: u32,
    headers: *const EnvoyHeader,
    headers_len: usize,
    chunks: *const EnvoyBuffer,
    chunks_len: usize,
) {
    let (status, body) = callout_answer(result, headers, headers_len, chunks, chunks_len);
    // SAFETY: as in `config_scheduled`.
    if let Some(c) = unsafe { config(config_module) } {
        super::guarded("config_callout_done", || {
            c.on_callout_done(callout_id, status, body)
        });
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_local_reply(
    _filter_envoy: *mut c_void,
    _module: *const c_void,
    _code: u32,
    _details: EnvoyBuffer,
    _reset_imminent: bool,
) -> u32 {
    // Continue: the local reply goes out as Envoy built it.
    0
}

// Hooks for features portcullis does not use; Envoy requires them all.

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(
    _filter_envoy: *mut c_void,
    _module: *const c_void,
    _event: u64,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(
    _filter_envoy: *mut c_void,
    _module: *const c_void,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(
    _filter_envoy: *mut c_void,
    _module: *const c_void,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_headers(
    _filter_envoy: *mut c_void,
    _module: *const c_void,
    _stream: u64,
    _headers: *const EnvoyHeader,
    _headers_len: usize,
    _end: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_data(
    _filter_envoy: *mut c_void,
    _module: *const c_void,
    _stream: u64,
    _data: *const EnvoyBuffer,
    _data_len: usize,
    _end: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_trailers(
    _filter_envoy: *mut c_void,
    _module: *const c_void,
    _stream: u64,
    _trailers: *const EnvoyHeader,
    _trailers_len: usize,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_complete(
    _filter_envoy: *mut c_void,
    _module: *const c_void,
    _stream: u64,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_reset(
    _filter_envoy: *mut c_void,
    _module: *const c_void,
    _stream: u64,
    _reason: u32,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_headers(
    _config_envoy: *mut c_void,
    _config_module: *const c_void,
    _stream: u64,
    _headers: *const EnvoyHeader,
    _headers_len: usize,
    _end: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_data(
    _config_envoy: *mut c_void,
    _config_module: *const c_void,
    _stream: u64,
    _data: *const EnvoyBuffer,
    _data_len: usize,
    _end: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_trailers(
    _config_envoy: *mut c_void,
    _config_module: *const c_void,
    _stream: u64,
    _trailers: *const EnvoyHeader,
    _trailers_len: usize,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_complete(
    _config_envoy: *mut c_void,
    _config_module: *const c_void,
    _stream: u64,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_reset(
    _config_envoy: *mut c_void,
    _config_module: *const c_void,
    _stream: u64,
    _reason: u32,
) {
}
