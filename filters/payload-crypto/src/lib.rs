//! payload-crypto: JWE payload encryption and decryption. See `portcullis::controls::payload_crypto`.

proxy_wasm::main! {{
    portcullis::host::register::<portcullis::controls::payload_crypto::PayloadCrypto>();
}}
