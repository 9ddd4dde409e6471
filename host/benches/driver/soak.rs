//! The configuration the two soaks share (`soak.rs` over stdio, `soak_http.rs` over HTTP):
//! 64 call slots, the circuit breaker off (a soak measures the sandbox under a steady
//! stream of faults, which an open breaker would refuse before they run), and the limits
//! that stop every hostile call within 300 ms.

/// What follows `[runtime]`'s keys.
const SHARED: &str = r#"
[runtime.breaker]
enabled = false

[plugins.hostile.limits]
fuel = 50_000_000
timeout = "300ms"
memory = "32MiB"
log-output = "16KiB"
"#;

/// The soaks' `capsule.toml`: `runtime` adds keys to `[runtime]` (one per line), `more`
/// adds tables after the shared ones.
pub fn config(runtime: &str, more: &str) -> String {
    format!("[runtime]\nmax-concurrent-calls = 64\n{runtime}{SHARED}{more}")
}
