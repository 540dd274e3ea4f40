//! request-signing: HTTP Message Signatures (RFC 9421), verify or sign. See
//! `portcullis::controls::request_signing`.

proxy_wasm::main! {{
    portcullis::host::register::<portcullis::controls::request_signing::RequestSigning>();
}}
