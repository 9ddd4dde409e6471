//! What a plugin may touch, one module per capability. Everything starts denied; a
//! policy adds grants explicitly (the way `WasiCtxBuilder` starts from nothing).

pub mod http;
pub mod limits;
pub mod wasi;
