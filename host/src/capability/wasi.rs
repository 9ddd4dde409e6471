//! The WASI context of one call. It starts from nothing: no preopened directories, no
//! environment variables, no arguments, no stdin, no sockets and no name lookups. Clocks
//! and randomness are available. The plugin's stdout and stderr go to the host log. The
//! plugin's policy then adds exactly its grants: mounts (`fs`), variables (`env`) and
//! raw TCP connections (`net.tcp`).

use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

use crate::policy::PluginPolicy;
use crate::runtime::output::PluginOutput;

/// Builds the WASI context for one call of a plugin with `policy`. It cannot fail: every
/// grant was checked and every mount folder opened when the policy was resolved.
pub fn context(policy: &PluginPolicy, stdout: PluginOutput, stderr: PluginOutput) -> WasiCtx {
    let mut builder = WasiCtxBuilder::new();
    let net = policy.net.clone();
    builder
        .stdout(stdout)
        .stderr(stderr)
        .allow_tcp(!net.tcp.is_empty())
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(move |addr, use_| {
            let allowed = net.allows_socket(addr, use_);
            if !allowed {
                tracing::warn!(%addr, ?use_, "denied socket operation: not in this plugin's net.tcp list");
            }
            Box::pin(async move { allowed })
        });
    for (name, value) in policy.env.iter() {
        builder.env(name, value);
    }
    let mut ctx = builder.build();
    policy.mounts.apply(&mut ctx);
    ctx
}
