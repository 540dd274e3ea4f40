//! api-schema: an OpenAPI contract as the policy. See `portcullis::controls::api_schema`.

proxy_wasm::main! {{
    portcullis::host::register::<portcullis::controls::api_schema::ApiSchema>();
}}
