//! `[runtime]`: engine-wide settings shared by every plugin, and their bounds.

use serde::Deserialize;

use super::breaker::{BreakerSettings, RawBreaker};
use super::outbound::{OutboundSettings, RawOutbound};
use crate::bounds;
use crate::runtime::engine::RESERVED_INSTANCES;
use crate::units::ByteSize;

/// How plugins are compiled to native code (`runtime.compiler`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Compiler {
    /// `capsule serve`: a plugin without a precompiled artifact is compiled by the
    /// baseline compiler (Winch, several times faster to compile) and served at once,
    /// while the optimizing compiler (Cranelift) compiles it in the background; its calls
    /// switch to the optimized code, which is cached, when that is ready. One-shot
    /// commands (`check`, `call`, `list`, ...) compile optimized code only.
    #[default]
    Tiered,
    /// The optimizing compiler only: a plugin is served once its optimized code is ready.
    Cranelift,
    /// The baseline compiler only: the fastest start, slower calls for compute-heavy
    /// plugins (interpreters such as Python and JavaScript components).
    Winch,
}

impl std::fmt::Display for Compiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Tiered => "tiered",
            Self::Cranelift => "cranelift",
            Self::Winch => "winch",
        })
    }
}

/// `[runtime]`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawRuntime {
    /// Calls running at once over all plugins and clients (1 to 10000); also sizes the instance pool.
    #[schemars(extend("default" = 64, "x-flag" = "--max-concurrent-calls"))]
    pub max_concurrent_calls: Option<u32>,
    /// Calls allowed to wait for a slot (0 to 1000000); beyond that a call fails at once with "busy".
    #[schemars(extend("default" = 1024, "x-flag" = "--max-queued-calls"))]
    pub max_queued_calls: Option<u32>,
    /// Calls of one plugin running at once (1 to max-concurrent-calls); default: half of max-concurrent-calls.
    #[schemars(extend("x-flag" = "--max-calls-per-plugin"))]
    pub max_calls_per_plugin: Option<u32>,
    /// Demote a plugin when this many of its last 16 calls ran into a limit (fuel, time, memory, result, ...): its calls then run on one low-priority thread until fewer do (0 to 16; 0 never demotes).
    #[schemars(extend("default" = 4))]
    pub demote_after: Option<u32>,
    /// Instances kept between calls for plugins with isolation = "reuse", over all plugins (0 to 1024; 0 gives every call a fresh instance); also sizes the instance pool.
    #[schemars(extend("default" = 8))]
    pub max_warm_instances: Option<u32>,
    /// How plugins are compiled: `tiered` (serve: a quick baseline compile first, optimized code from the background), `cranelift` (optimized only) or `winch` (baseline only).
    #[schemars(extend("default" = "tiered"))]
    pub compiler: Option<Compiler>,
    /// The most memory any one linear memory may have (1MiB to 4GiB); no plugin limit may exceed it.
    #[schemars(extend("default" = "512MiB", "x-flag" = "--memory-ceiling"))]
    pub memory_ceiling: Option<ByteSize>,
    /// WebAssembly stack size of every call (64KiB to 64MiB).
    #[schemars(extend("default" = "512KiB", "x-flag" = "--max-wasm-stack"))]
    pub max_wasm_stack: Option<ByteSize>,
    /// Circuit breakers: when sandbox faults stop a plugin's calls for a while (per plugin: `[plugins.NAME.breaker]`).
    #[serde(default)]
    pub breaker: RawBreaker,
    /// Plugins' outgoing HTTP: retries of idempotent requests, the retry budget and connections per host.
    #[serde(default)]
    pub outbound: RawOutbound,
}

/// Engine-wide settings (shared by every plugin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeSettings {
    /// Calls running at once, over all plugins and clients. Also sizes the instance pool.
    pub max_concurrent_calls: u32,
    /// Calls allowed to wait for a slot; beyond that a call fails at once with "busy".
    pub max_queued_calls: u32,
    /// Calls of one plugin running at once, so one slow plugin cannot hold every slot.
    /// Defaults to half of `max_concurrent_calls` (at least 1).
    pub max_calls_per_plugin: u32,
    /// Limit faults among a plugin's last 16 calls that demote it to the low-priority
    /// thread (`runtime::conduct`); 0 never demotes.
    pub demote_after: u32,
    /// Instances kept between calls for plugins with `isolation = "reuse"`, over all
    /// plugins (`runtime::warm`); each holds one call's share of the instance pool.
    pub max_warm_instances: u32,
    /// How plugins are compiled to native code.
    pub compiler: Compiler,
    /// The most memory any one linear memory may have; no plugin limit may exceed it.
    pub memory_ceiling: ByteSize,
    /// WebAssembly stack size for every call.
    pub max_wasm_stack: ByteSize,
    /// The circuit breaker of plugins without their own `[plugins.NAME.breaker]`.
    pub breaker: BreakerSettings,
    /// Plugins' outgoing HTTP: retries, retry budget, connections per host.
    pub outbound: OutboundSettings,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        Self {
            max_concurrent_calls: 64,
            max_queued_calls: 1024,
            max_calls_per_plugin: 32,
            demote_after: 4,
            max_warm_instances: 8,
            compiler: Compiler::Tiered,
            memory_ceiling: ByteSize::mib(512),
            max_wasm_stack: ByteSize::kib(512),
            breaker: BreakerSettings::default(),
            outbound: OutboundSettings::default(),
        }
    }
}

impl RawRuntime {
    /// The settings with defaults filled in, each checked against its bounds; the error
    /// names the key and the allowed range.
    pub fn resolve(&self) -> Result<RuntimeSettings, String> {
        let defaults = RuntimeSettings::default();
        let max_concurrent_calls = self
            .max_concurrent_calls
            .unwrap_or(defaults.max_concurrent_calls);
        let runtime = RuntimeSettings {
            max_concurrent_calls,
            max_queued_calls: self.max_queued_calls.unwrap_or(defaults.max_queued_calls),
            max_calls_per_plugin: self
                .max_calls_per_plugin
                .unwrap_or((max_concurrent_calls / 2).max(1)),
            demote_after: self.demote_after.unwrap_or(defaults.demote_after),
            max_warm_instances: self
                .max_warm_instances
                .unwrap_or(defaults.max_warm_instances),
            compiler: self.compiler.unwrap_or(defaults.compiler),
            memory_ceiling: self.memory_ceiling.unwrap_or(defaults.memory_ceiling),
            max_wasm_stack: self.max_wasm_stack.unwrap_or(defaults.max_wasm_stack),
            breaker: self
                .breaker
                .apply_to(&defaults.breaker, "runtime.breaker.")
                .map_err(|(_, message)| message)?,
            outbound: self.outbound.resolve()?,
        };
        bounds::check(
            "runtime.max-concurrent-calls",
            runtime.max_concurrent_calls,
            bounds::CONCURRENT_CALLS,
        )
        .and_then(|()| {
            bounds::check(
                "runtime.max-queued-calls",
                runtime.max_queued_calls,
                bounds::QUEUED_CALLS,
            )
        })
        .and_then(|()| {
            bounds::check(
                "runtime.max-calls-per-plugin",
                runtime.max_calls_per_plugin,
                (1, runtime.max_concurrent_calls),
            )
        })
        .and_then(|()| {
            bounds::check(
                "runtime.demote-after",
                runtime.demote_after,
                bounds::DEMOTE_AFTER,
            )
        })
        .and_then(|()| {
            bounds::check(
                "runtime.max-warm-instances",
                runtime.max_warm_instances,
                bounds::WARM_INSTANCES,
            )
        })
        .and_then(|()| {
            bounds::check(
                "runtime.memory-ceiling",
                runtime.memory_ceiling,
                bounds::MEMORY_CEILING,
            )
        })
        .and_then(|()| {
            bounds::check(
                "runtime.max-wasm-stack",
                runtime.max_wasm_stack,
                bounds::WASM_STACK,
            )
        })?;
        bounds::check_reservation(
            runtime.max_concurrent_calls,
            RESERVED_INSTANCES + runtime.max_warm_instances,
            runtime.memory_ceiling,
        )?;
        Ok(runtime)
    }
}
