//! What a plugin may touch, one module per capability. Everything starts denied; a
//! policy adds grants explicitly (the way `WasiCtxBuilder` starts from nothing).

pub mod env;
pub mod fs;
pub mod isolation;
pub mod limits;
pub mod net;
pub mod secrets;
pub mod symlinks;
pub mod wasi;
