//! jwt-auth: JWT / OpenID Connect authentication with per-route OAuth 2.0 scopes.
//! See `portcullis::controls::jwt_auth`.

proxy_wasm::main! {{
    portcullis::host::register::<portcullis::controls::jwt_auth::JwtAuth>();
}}
