//! csrf: Cross-Site Request Forgery defence. See `portcullis::controls::csrf`.

proxy_wasm::main! {{
    portcullis::host::register::<portcullis::controls::csrf::Csrf>();
}}
