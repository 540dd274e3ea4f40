//! guard: a chain of portcullis controls in one VM. See `portcullis::controls::guard`.

proxy_wasm::main! {{
    portcullis::host::register::<portcullis::controls::guard::Guard>();
}}
