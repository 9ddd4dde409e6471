//! The WASI context of one call. It starts from nothing: no preopened directories, no
//! environment variables, no arguments, no stdin, no sockets and no name lookups. Clocks
//! and randomness are available. The plugin's stdout and stderr go to the host log.

use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

use crate::runtime::output::PluginOutput;

/// Builds the deny-by-default WASI context for one call.
pub fn deny_by_default(stdout: PluginOutput, stderr: PluginOutput) -> WasiCtx {
    let mut builder = WasiCtxBuilder::new();
    builder
        .stdout(stdout)
        .stderr(stderr)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }));
    builder.build()
}
