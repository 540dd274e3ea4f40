//! The proxy-wasm calls that write to a stream, declared here so that a call Envoy refuses comes
//! back as an error instead of a trap.
//!
//! The SDK (proxy-wasm 0.2.5) panics on any status it does not expect, and a panic traps the VM
//! for every stream it serves: replacing the body of a bodiless 5xx took a service down (#23).
//! Writes depend on the stream's state (a body Envoy holds, headers not yet sent), so they go
//! through here, and the HTTP context turns a refusal into a fail-closed answer. Reads stay on
//! the SDK: each is made only in the callback where its map or buffer exists, and an absent one
//! comes back as `NotFound`, which the SDK handles.
#![allow(unsafe_code)]

use proxy_wasm::types::{BufferType, MapType, StreamType};

use crate::host::primitives::Refused;

// The ABI's status is a u32 (0 = Ok); taken as a plain integer, not the SDK's enum, so that a
// status the SDK does not know is an error here too, never an invalid enum value.
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_set_buffer_bytes(
        buffer_type: u32,
        start: usize,
        size: usize,
        data: *const u8,
        len: usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key: *const u8,
        key_len: usize,
        value: *const u8,
        value_len: usize,
    ) -> u32;
    fn proxy_add_header_map_value(
        map_type: u32,
        key: *const u8,
        key_len: usize,
        value: *const u8,
        value_len: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key: *const u8, key_len: usize) -> u32;
    #[allow(clippy::too_many_arguments)]
    fn proxy_send_local_response(
        status_code: u32,
        details: *const u8,
        details_len: usize,
        body: *const u8,
        body_len: usize,
        headers: *const u8,
        headers_len: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_close_stream(stream_type: u32) -> u32;
    fn proxy_continue_stream(stream_type: u32) -> u32;
}

fn status(call: &'static str, status: u32) -> Result<(), Refused> {
    match status {
        0 => Ok(()),
        status => Err(Refused { call, status }),
    }
}

/// Replace `size` bytes at `start` of a body buffer with `value`.
pub fn set_body(
    buffer: BufferType,
    start: usize,
    size: usize,
    value: &[u8],
) -> Result<(), Refused> {
    // SAFETY: `value` is a live slice for the duration of the call; the host copies from it and
    // keeps no pointer.
    let s =
        unsafe { proxy_set_buffer_bytes(buffer as u32, start, size, value.as_ptr(), value.len()) };
    status("set_buffer_bytes", s)
}

/// Set (`Some`) or remove (`None`) a header.
pub fn set_header(map: MapType, name: &str, value: Option<&str>) -> Result<(), Refused> {
    let s = match value {
        // SAFETY: both strings are live for the call; the host copies them.
        Some(v) => unsafe {
            proxy_replace_header_map_value(
                map as u32,
                name.as_ptr(),
                name.len(),
                v.as_ptr(),
                v.len(),
            )
        },
        // SAFETY: as above.
        None => unsafe { proxy_remove_header_map_value(map as u32, name.as_ptr(), name.len()) },
    };
    status("header_map_value", s)
}

pub fn add_header(map: MapType, name: &str, value: &str) -> Result<(), Refused> {
    // SAFETY: both strings are live for the call; the host copies them.
    let s = unsafe {
        proxy_add_header_map_value(
            map as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    };
    status("add_header_map_value", s)
}

/// Answer the stream locally (Envoy's `sendLocalReply`).
pub fn send_response(
    status_code: u32,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<(), Refused> {
    let map = serialize_map(headers);
    let (body_ptr, body_len) = body.map_or((std::ptr::null(), 0), |b| (b.as_ptr(), b.len()));
    // SAFETY: `map` and `body` are live for the call (a null body with length 0 means none, as
    // in the SDK); the host copies them. No details string, no gRPC status (-1).
    let s = unsafe {
        proxy_send_local_response(
            status_code,
            std::ptr::null(),
            0,
            body_ptr,
            body_len,
            map.as_ptr(),
            map.len(),
            -1,
        )
    };
    status("send_local_response", s)
}

/// Let a request paused for request-time callouts go on (its headers, and the body Envoy
/// buffered meanwhile).
pub fn resume_request() -> Result<(), Refused> {
    // SAFETY: no pointers.
    let s = unsafe { proxy_continue_stream(StreamType::HttpRequest as u32) };
    status("continue_stream", s)
}

/// Reset the HTTP stream: the last resort when even a local reply is refused.
pub fn reset_stream() -> Result<(), Refused> {
    // SAFETY: no pointers.
    let s = unsafe { proxy_close_stream(StreamType::HttpRequest as u32) };
    status("close_stream", s)
}

/// The proxy-wasm header map encoding: the pair count, each key and value length (u32 little
/// endian), then each key and value followed by a NUL.
fn serialize_map(pairs: &[(&str, &str)]) -> Vec<u8> {
    let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    let mut out = Vec::with_capacity(
        4 + pairs
            .iter()
            .map(|(k, v)| 10 + k.len() + v.len())
            .sum::<usize>(),
    );
    out.extend_from_slice(&len(pairs.len()));
    for (k, v) in pairs {
        out.extend_from_slice(&len(k.len()));
        out.extend_from_slice(&len(v.len()));
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}
