//! The data of one call's `Store`: its WASI context, its limiter and what the `host`
//! import needs (plugin name, settings, cancellation, progress and log forwarding).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::{Level, capsule::plugin};
use super::engine::PoolShare;
use super::events::{EventGate, EventSender};
use super::output::PluginOutput;
use crate::auth::Principal;
use crate::capability::limits::Limits;
use crate::capability::net::PolicyHttp;
use crate::capability::net::outbound::Outbound;
use crate::policy::PluginPolicy;

/// What the caller provides for one call. Nothing else of the client's request reaches a
/// call: no headers, so no inbound token can be forwarded by a plugin's outgoing requests
/// (`capability::net::send` sends only what the plugin built).
#[derive(Clone, Default)]
pub struct CallContext {
    /// Cancelled when the client cancels the request.
    pub cancel: CancellationToken,
    /// Where progress and log events go, if the client wants them. Bounded: log events
    /// are dropped when the client is slow, progress is coalesced to its latest value.
    pub events: Option<EventSender>,
    /// The authenticated caller (HTTP with `[auth]`), told to plugins whose policy grants
    /// `caller-identity` through `host.caller`. Its token is never part of it.
    pub caller: Option<Principal>,
    /// The caller's threads have other requests to serve (a stateless HTTP server, while
    /// other requests are in flight): the call runs on the call threads from the start and never
    /// starts on the caller's thread (see [`super::Runtime::call`]).
    pub crowded: bool,
}

/// Enforces a call's memory, table and instance limits and records which one was hit,
/// so a trap can be reported as the limit it really was.
///
/// The memory limit bounds the sum over all of the call's linear memories, and the
/// counts of core instances, memories and tables never exceed one call's share of the
/// instance pool ([`PoolShare`]), whatever `limits.instances` says.
pub struct SandboxLimiter {
    memory: usize,
    memory_used: usize,
    table_elements: usize,
    share: PoolShare,
    /// Set when the call's memories tried to grow past the limit: the total they asked for.
    pub memory_hit: Option<usize>,
    /// Set when a table tried to grow past the limit.
    pub table_hit: bool,
}

impl SandboxLimiter {
    /// A limiter enforcing `limits` within one pool share.
    pub fn new(limits: &Limits) -> Self {
        let per_call = PoolShare::PER_CALL;
        let instances = limits.instances.min(per_call.core_instances);
        Self {
            memory: usize::try_from(limits.memory.bytes()).unwrap_or(usize::MAX),
            memory_used: 0,
            table_elements: limits.table_elements as usize,
            share: PoolShare {
                core_instances: instances,
                memories: per_call.memories.min(instances),
                tables: per_call.tables.min(instances),
            },
            memory_hit: None,
            table_hit: false,
        }
    }

    /// Starts another call of the same instance ([`super::warm`]): the limits it hit are
    /// forgotten; the memory it holds still counts (memories never shrink).
    pub fn begin_call(&mut self) {
        self.memory_hit = None;
        self.table_hit = false;
    }

    /// The linear memory the call holds now, in bytes, over all its memories (memories
    /// never shrink, so at the end of a call this is its peak).
    pub fn memory_used(&self) -> usize {
        self.memory_used
    }

    /// The memory limit in bytes (over all of the call's memories).
    pub fn memory_limit(&self) -> usize {
        self.memory
    }

    /// The table element limit.
    pub fn table_limit(&self) -> u32 {
        u32::try_from(self.table_elements).unwrap_or(u32::MAX)
    }

    /// What this call may take from the pool.
    pub fn share(&self) -> PoolShare {
        self.share
    }
}

impl ResourceLimiter for SandboxLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Creating a memory is a growth from 0, so the sum covers every memory.
        let total = self
            .memory_used
            .saturating_sub(current)
            .saturating_add(desired);
        if total > self.memory {
            self.memory_hit = Some(total);
            return Ok(false);
        }
        self.memory_used = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.table_elements {
            self.table_hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.share.core_instances as usize
    }

    fn tables(&self) -> usize {
        self.share.tables as usize
    }

    fn memories(&self) -> usize {
        self.share.memories as usize
    }
}

/// The `T` of every `Store<T>`.
pub struct CallState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) http: WasiHttpCtx,
    pub(crate) http_hooks: PolicyHttp,
    pub(crate) limiter: SandboxLimiter,
    pub(crate) plugin: Arc<str>,
    pub(crate) policy: PluginPolicy,
    pub(crate) context: CallContext,
    pub(crate) stderr: PluginOutput,
    pub(crate) stdout: PluginOutput,
    events: EventGate,
}

impl CallState {
    /// Fresh state for one call of `plugin` under `policy`; its outgoing HTTP goes through
    /// the runtime's `outbound`.
    pub fn new(
        plugin: Arc<str>,
        policy: &PluginPolicy,
        context: CallContext,
        outbound: Arc<Outbound>,
    ) -> Self {
        let limits = &policy.limits;
        let budget = usize::try_from(limits.log_output.bytes()).unwrap_or(usize::MAX);
        let stdout = PluginOutput::new(plugin.clone(), "stdout", budget);
        let stderr = PluginOutput::new(plugin.clone(), "stderr", budget);
        Self {
            wasi: crate::capability::wasi::context(policy, stdout.clone(), stderr.clone()),
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            http_hooks: PolicyHttp::new(plugin.clone(), policy.net.clone(), outbound),
            limiter: SandboxLimiter::new(limits),
            plugin,
            policy: policy.clone(),
            context,
            stderr,
            stdout,
            events: EventGate::default(),
        }
    }

    /// Readies the state of a kept instance ([`super::warm`]) for another call with
    /// `context`: everything that is per call starts again.
    pub(crate) fn begin_call(&mut self, context: CallContext) {
        self.context = context;
        self.events = EventGate::default();
        self.limiter.begin_call();
        self.stdout.begin_call();
        self.stderr.begin_call();
    }

    /// Lets go of what belonged to the call that just ended before its instance is kept
    /// ([`super::warm`]): its event sender (the client's answer waits until every sender
    /// is gone), cancellation token and caller.
    pub(crate) fn end_call(&mut self) {
        self.context = CallContext::default();
    }

    /// Flushes the plugin's output streams to the log.
    pub fn finish_output(&self) {
        self.stdout.finish();
        self.stderr.finish();
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_hooks,
        }
    }
}

impl plugin::types::Host for CallState {}

impl plugin::host::Host for CallState {
    fn log(&mut self, level: Level, message: String) {
        let plugin = &*self.plugin;
        let Some(message) = self.events.log(plugin, message) else {
            return;
        };
        match level {
            Level::Trace => tracing::trace!(target: "capsule::plugin", plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "capsule::plugin", plugin, "{message}"),
            Level::Info => tracing::info!(target: "capsule::plugin", plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "capsule::plugin", plugin, "{message}"),
            Level::Error => tracing::error!(target: "capsule::plugin", plugin, "{message}"),
        }
        if let Some(events) = &self.context.events {
            events.log(level, message);
        }
    }

    fn progress(&mut self, done: f64, total: Option<f64>, message: Option<String>) {
        let Some(events) = &self.context.events else {
            return;
        };
        if let Some(progress) = self.events.progress(&self.plugin, done, total, message) {
            events.progress(progress);
        }
    }

    fn cancelled(&mut self) -> bool {
        self.context.cancel.is_cancelled()
    }

    fn config(&mut self, key: String) -> Option<String> {
        self.policy.config_value(&key)
    }

    fn caller(&mut self) -> Option<plugin::host::Principal> {
        if !self.policy.caller_identity {
            return None;
        }
        self.context
            .caller
            .as_ref()
            .map(|principal| plugin::host::Principal {
                name: principal.name.to_string(),
                scopes: principal.scopes.to_vec(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::ByteSize;

    /// A reused instance's memory counts over its life: what an earlier call grew stays
    /// counted after [`SandboxLimiter::begin_call`], so growth across calls meets the limit.
    #[test]
    fn memory_grown_by_earlier_calls_of_an_instance_still_counts() {
        let limits = Limits {
            memory: ByteSize::mib(1),
            ..Limits::default()
        };
        let mut limiter = SandboxLimiter::new(&limits);
        assert!(limiter.memory_growing(0, 768 << 10, None).unwrap());
        limiter.begin_call();
        assert_eq!(limiter.memory_used(), 768 << 10);
        assert!(!limiter.memory_growing(768 << 10, 1536 << 10, None).unwrap());
        assert_eq!(limiter.memory_hit, Some(1536 << 10));
        limiter.begin_call();
        assert_eq!(
            limiter.memory_hit, None,
            "a new call starts with no limit hit"
        );
    }
}
