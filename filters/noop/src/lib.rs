//! noop: the floor any wasm filter pays (benchmarks only). See `portcullis::controls::noop`.

proxy_wasm::main! {{
    portcullis::host::register::<portcullis::controls::noop::Noop>();
}}
