//! error-shield: no information leaks in error responses. See `portcullis::controls::error_shield`.

proxy_wasm::main! {{
    portcullis::host::register::<portcullis::controls::error_shield::ErrorShield>();
}}
