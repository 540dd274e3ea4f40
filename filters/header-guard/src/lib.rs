//! header-guard: header injection and request-smuggling defence. See
//! `portcullis::controls::header_guard`.

proxy_wasm::main! {{
    portcullis::host::register::<portcullis::controls::header_guard::HeaderGuard>();
}}
