//! Prometheus metrics (`[metrics]`, `docs/observability.md`), with `prometheus-client`:
//! typed families in a registry of our own (no global one). [`Metrics`] is a cheap handle
//! shared by the MCP handler, the HTTP layer and the transports; off, it records nothing.
//!
//! Label values are bounded: plugin and tool names come from loaded plugins only (a
//! tool's handles are resolved once, [`ToolSlot`]), outcomes and reasons from fixed lists.
//! A call naming an unknown tool is counted without the name.
//!
//! Other parts report through small typed methods: [`Metrics::auth_failure`],
//! [`Metrics::plugin_event`], [`Metrics::set_breaker_state`]; the call path through
//! [`Metrics::call`] (a call that ran) and [`Metrics::refused`] (one refused before).

mod families;
mod tool;
pub mod top;

use std::fmt::Write;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use prometheus_client::registry::Registry as PromRegistry;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

use crate::audit::Outcome;
use crate::auth::Refusal;
use crate::registry::{RegisteredTool, Registry, ToolSet};
use crate::runtime::{Runtime, Usage};
use families::{AuthLabels, BreakerLabels, Families, PluginEventLabels};
pub use families::{AuthReason, PluginEvent};
use tool::ToolMetrics;
pub use tool::ToolSlot;

/// The `Content-Type` of the exposition: the Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The outcomes of calls refused before anything ran, each timed in
/// `capsule_call_refused_seconds` (from receiving the request to answering it).
pub const REFUSALS: [&str; 3] = ["breaker-open", "degraded", "rejected"];

/// The states `capsule_breaker_state` reports, one series each per plugin.
pub const BREAKER_STATES: [&str; 3] = ["closed", "open", "half-open"];

/// The metrics of one server, or nothing. Clones share the families.
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    registry: PromRegistry,
    families: Families,
    runtime: Arc<Runtime>,
    tools: Arc<Registry>,
    sessions: OnceLock<Arc<LocalSessionManager>>,
}

impl Metrics {
    /// Metrics that record nothing.
    pub fn off() -> Self {
        Self::default()
    }

    /// Metrics of the calls `runtime` runs and the tools `tools` serves; every loaded
    /// tool's series exist from now on (at 0).
    pub fn new(runtime: Arc<Runtime>, tools: Arc<Registry>) -> Self {
        let mut registry = PromRegistry::with_prefix("capsule");
        let families = Families::register(&mut registry);
        let metrics = Self {
            inner: Some(Arc::new(Inner {
                registry,
                families,
                runtime,
                tools: tools.clone(),
                sessions: OnceLock::new(),
            })),
        };
        metrics.tools_loaded(&tools.snapshot());
        metrics
    }

    /// Whether anything is recorded.
    pub fn is_on(&self) -> bool {
        self.inner.is_some()
    }

    /// Resolves the handles of every tool in `set` (call it when a tool set is loaded
    /// or swapped in), so their series exist before the first call.
    pub fn tools_loaded(&self, set: &ToolSet) {
        if let Some(inner) = &self.inner {
            for tool in set.tools() {
                inner.tool(tool);
            }
        }
    }

    /// Counts one `tools/call` of `tool` that ended with `outcome`, and what it used.
    pub fn call(&self, tool: &RegisteredTool, outcome: Outcome, usage: &Usage) {
        if let Some(inner) = &self.inner {
            inner.tool(tool).record(&inner.families, outcome, usage);
        }
    }

    /// Counts one `tools/call` of `tool` refused with `outcome` (one of [`REFUSALS`])
    /// before anything ran, and the time the host took to answer it (`took`, from
    /// receiving the request), so a fail-fast refusal can be checked to be fast.
    pub fn refused(&self, tool: &RegisteredTool, outcome: Outcome, took: Duration) {
        if let Some(inner) = &self.inner {
            inner.tool(tool).refused(&inner.families, outcome, took);
        }
    }

    /// Counts one `tools/call` of a tool that does not exist (or the caller may not see).
    pub fn unknown_tool(&self) {
        if let Some(inner) = &self.inner {
            inner.families.unknown_tool_calls.inc();
        }
    }

    /// Counts one request refused by authentication.
    pub fn auth_failure(&self, refusal: &Refusal) {
        if let Some(inner) = &self.inner {
            let reason = match refusal {
                Refusal::Missing => AuthReason::MissingToken,
                Refusal::InQuery => AuthReason::TokenInQuery,
                Refusal::NotBearer => AuthReason::NotBearer,
                Refusal::Invalid(_) => AuthReason::InvalidToken,
                Refusal::InsufficientScope { .. } => AuthReason::InsufficientScope,
            };
            inner
                .families
                .auth_failures
                .get_or_create(&AuthLabels {
                    reason: reason.as_str(),
                })
                .inc();
        }
    }

    /// Counts `count` plugins that `event` happened to (loaded, failed, replaced, removed).
    pub fn plugin_event(&self, event: PluginEvent, count: u64) {
        if let Some(inner) = &self.inner {
            inner
                .families
                .plugin_events
                .get_or_create(&PluginEventLabels {
                    event: event.as_str(),
                })
                .inc_by(count);
        }
    }

    /// Records that the circuit breaker of `plugin` (a loaded plugin's name) is now in
    /// `state`, one of [`BREAKER_STATES`]: that series 1, the others 0.
    pub fn set_breaker_state(&self, plugin: &str, state: &str) {
        if let Some(inner) = &self.inner {
            for known in BREAKER_STATES {
                let labels = BreakerLabels {
                    plugin: plugin.to_owned(),
                    state: known,
                };
                inner
                    .families
                    .breaker
                    .get_or_create(&labels)
                    .set(i64::from(known == state));
            }
        }
    }

    /// Reports the open HTTP sessions of `sessions` from now on.
    pub fn watch_sessions(&self, sessions: Arc<LocalSessionManager>) {
        if let Some(inner) = &self.inner {
            let _ = inner.sessions.set(sessions);
        }
    }

    /// The exposition, in the Prometheus text format ([`CONTENT_TYPE`]); empty when off.
    /// The gauges of what is running and loaded are read now, and the tools serving now
    /// get their series.
    pub async fn encode(&self) -> String {
        let Some(inner) = &self.inner else {
            return String::new();
        };
        let f = &inner.families;
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        f.queued.set(gauge(inner.runtime.queued_calls()));
        f.running.set(gauge(inner.runtime.running_calls()));
        f.warm.set(gauge(inner.runtime.warm_instances()));
        let set = inner.tools.snapshot();
        // Plugins load in the background and reload live: every tool serving now has its
        // series, also before its first call.
        for tool in set.tools() {
            inner.tool(tool);
        }
        f.plugins.set(gauge(set.plugins().len()));
        f.tools.set(gauge(set.tools().len()));
        if let Some(sessions) = inner.sessions.get() {
            f.sessions.set(gauge(sessions.sessions.read().await.len()));
        }
        let mut text = String::new();
        if let Err(err) =
            prometheus_client::encoding::prometheus_text::encode(&mut text, &inner.registry)
        {
            let _ = writeln!(text, "# cannot encode the metrics: {err}");
        }
        text
    }
}

impl Inner {
    fn tool<'t>(&self, tool: &'t RegisteredTool) -> &'t ToolMetrics {
        tool.metrics.get_or_init(|| {
            ToolMetrics::resolve(&self.families, &tool.plugin.name, &tool.exposed_name)
        })
    }
}
