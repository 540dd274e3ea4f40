//! api-key: API keys stored as SHA-256 hashes, with rotation. See `portcullis::controls::api_key`.

proxy_wasm::main! {{
    portcullis::host::register::<portcullis::controls::api_key::ApiKey>();
}}
