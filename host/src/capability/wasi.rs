//! The WASI context of one call. It starts from nothing: no preopened directories, no
//! environment variables, no arguments, no stdin, no sockets and no name lookups. Clocks
//! and randomness are available. The plugin's stdout and stderr go to the host log. The
//! plugin's policy then adds exactly its grants: mounts (`fs`) and variables (`env`).

use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

use crate::policy::PluginPolicy;
use crate::runtime::output::PluginOutput;

/// Builds the WASI context for one call of a plugin with `policy`.
pub fn context(
    policy: &PluginPolicy,
    stdout: PluginOutput,
    stderr: PluginOutput,
) -> wasmtime::Result<WasiCtx> {
    let mut builder = WasiCtxBuilder::new();
    builder
        .stdout(stdout)
        .stderr(stderr)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }));
    super::fs::apply(&mut builder, &policy.mounts)?;
    for (name, value) in policy.env.iter() {
        builder.env(name, value);
    }
    Ok(builder.build())
}
