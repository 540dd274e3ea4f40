//! content-type: strict Content-Type validation. See `portcullis::controls::content_type`.

proxy_wasm::main! {{
    portcullis::host::register::<portcullis::controls::content_type::ContentType>();
}}
