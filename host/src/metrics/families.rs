//! The metric families and their label sets, registered once per [`super::Metrics`].
//! Every label value comes from a loaded plugin (its name, its tools' exposed names) or
//! from a fixed list (outcomes, reasons); nothing a client sends becomes a label.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// `plugin`, `tool` (the exposed name) and `outcome`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// The plugin's name.
    pub plugin: String,
    /// The tool's exposed name.
    pub tool: String,
    /// How the call ended (`ok`, `tool-error`, a fault kind, `rejected`, `busy`).
    pub outcome: String,
}

/// `plugin` and `tool` (the exposed name).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ToolLabels {
    /// The plugin's name.
    pub plugin: String,
    /// The tool's exposed name.
    pub tool: String,
}

/// `plugin`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabels {
    /// The plugin's name.
    pub plugin: String,
}

/// `plugin` and `outcome`, for calls refused before anything ran.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedLabels {
    /// The plugin's name.
    pub plugin: String,
    /// One of [`super::REFUSALS`].
    pub outcome: &'static str,
}

/// `plugin` and `state`, for the circuit breaker.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BreakerLabels {
    /// The plugin's name.
    pub plugin: String,
    /// One of [`super::BREAKER_STATES`].
    pub state: &'static str,
}

/// Why authentication refused a request.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum AuthReason {
    /// No `Authorization` header.
    MissingToken,
    /// A token in the URL query.
    TokenInQuery,
    /// An `Authorization` header of another scheme.
    NotBearer,
    /// An unknown, expired, or badly signed token.
    InvalidToken,
    /// A valid token without a required scope.
    InsufficientScope,
}

impl AuthReason {
    /// The label value: `missing-token`, `token-in-query`, `not-bearer`, `invalid-token`,
    /// `insufficient-scope`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingToken => "missing-token",
            Self::TokenInQuery => "token-in-query",
            Self::NotBearer => "not-bearer",
            Self::InvalidToken => "invalid-token",
            Self::InsufficientScope => "insufficient-scope",
        }
    }
}

/// `reason`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AuthLabels {
    /// Why ([`AuthReason::as_str`]).
    pub reason: &'static str,
}

/// What happened to a plugin.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum PluginEvent {
    /// Loaded (at start, or a new file while serving).
    Loaded,
    /// Did not load.
    Failed,
    /// Replaced by a new version of its file.
    Replaced,
    /// Removed while serving.
    Removed,
}

impl PluginEvent {
    /// The label value: `loaded`, `failed`, `replaced`, `removed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Loaded => "loaded",
            Self::Failed => "failed",
            Self::Replaced => "replaced",
            Self::Removed => "removed",
        }
    }
}

/// `event`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginEventLabels {
    /// What happened ([`PluginEvent::as_str`]).
    pub event: &'static str,
}

/// `version`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Seconds: 50 µs to 26 s, doubling.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 20))
}

/// Seconds of a call refused before anything ran: 10 µs to 1 s in 1-2.5-5 steps, so
/// that 1 ms, the bound a refusal must stay under (issue #18), is a bucket's upper bound.
fn refusal_seconds() -> Histogram {
    Histogram::new([
        0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01,
        0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    ])
}

/// Fuel units: 1000 to ~2.7e11, ×4.
fn fuel() -> Histogram {
    Histogram::new(exponential_buckets(1_000.0, 4.0, 15))
}

/// Bytes: 64 KiB to 4 GiB, doubling.
fn bytes() -> Histogram {
    Histogram::new(exponential_buckets(65_536.0, 2.0, 17))
}

/// Every family, registered in one [`Registry`].
pub struct Families {
    pub calls: Family<CallLabels, Counter>,
    pub unknown_tool_calls: Counter,
    pub run_seconds: Histograms<ToolLabels>,
    pub queue_wait_seconds: Histograms<PluginLabels>,
    pub refused_seconds: Histograms<RefusedLabels>,
    pub fuel: Histograms<ToolLabels>,
    pub memory_peak: Histograms<PluginLabels>,
    pub instances: Family<PluginLabels, Counter>,
    pub demoted: Family<PluginLabels, Counter>,
    pub queued: Gauge,
    pub running: Gauge,
    pub warm: Gauge,
    pub sessions: Gauge,
    pub plugins: Gauge,
    pub tools: Gauge,
    pub auth_failures: Family<AuthLabels, Counter>,
    pub plugin_events: Family<PluginEventLabels, Counter>,
    pub breaker: Family<BreakerLabels, Gauge>,
}

impl Families {
    /// The families, registered in `registry` under `capsule_`.
    pub fn register(registry: &mut Registry) -> Self {
        let families = Self {
            calls: Family::default(),
            unknown_tool_calls: Counter::default(),
            run_seconds: Family::new_with_constructor(seconds),
            queue_wait_seconds: Family::new_with_constructor(seconds),
            refused_seconds: Family::new_with_constructor(refusal_seconds),
            fuel: Family::new_with_constructor(fuel),
            memory_peak: Family::new_with_constructor(bytes),
            instances: Family::default(),
            demoted: Family::default(),
            queued: Gauge::default(),
            running: Gauge::default(),
            warm: Gauge::default(),
            sessions: Gauge::default(),
            plugins: Gauge::default(),
            tools: Gauge::default(),
            auth_failures: Family::default(),
            plugin_events: Family::default(),
            breaker: Family::default(),
        };
        let version: Family<VersionLabels, Gauge> = Family::default();
        version
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        let r = registry;
        r.register("build_info", "The capsule version serving", version);
        r.register(
            "tool_calls",
            "tools/call requests of loaded tools, by plugin, tool and outcome (ok, tool-error, a sandbox fault kind, rejected, busy)",
            families.calls.clone(),
        );
        r.register(
            "unknown_tool_calls",
            "tools/call requests naming no tool the caller may call (no label: the name is the client's)",
            families.unknown_tool_calls.clone(),
        );
        r.register_with_unit(
            "call_run",
            "Time a call ran on the call threads, instantiation included, by plugin and tool",
            Unit::Seconds,
            families.run_seconds.clone(),
        );
        r.register_with_unit(
            "call_queue_wait",
            "Time a call waited for a call slot, by plugin",
            Unit::Seconds,
            families.queue_wait_seconds.clone(),
        );
        r.register_with_unit(
            "call_refused",
            "Time from receiving a tools/call to answering it, for calls refused before anything ran (breaker-open, degraded, rejected), by plugin and outcome",
            Unit::Seconds,
            families.refused_seconds.clone(),
        );
        r.register(
            "call_fuel_consumed",
            "Fuel units a call consumed, by plugin and tool",
            families.fuel.clone(),
        );
        r.register_with_unit(
            "call_memory_peak",
            "The most linear memory a call held (all its memories), by plugin",
            Unit::Bytes,
            families.memory_peak.clone(),
        );
        r.register(
            "instances_created",
            "Fresh plugin instances created for calls, by plugin",
            families.instances.clone(),
        );
        r.register(
            "demoted_calls",
            "Calls that ran on the low-priority thread because their plugin kept running into its limits (runtime.demote-after), by plugin",
            families.demoted.clone(),
        );
        r.register(
            "calls_queued",
            "Calls waiting for a call slot now",
            families.queued.clone(),
        );
        r.register(
            "calls_running",
            "Calls holding a call slot now",
            families.running.clone(),
        );
        r.register(
            "warm_instances",
            "Instances kept between calls now (isolation = \"reuse\"), idle or serving a call",
            families.warm.clone(),
        );
        r.register(
            "http_sessions",
            "Open MCP HTTP sessions",
            families.sessions.clone(),
        );
        r.register(
            "plugins_loaded",
            "Plugins serving now",
            families.plugins.clone(),
        );
        r.register("tools_loaded", "Tools serving now", families.tools.clone());
        r.register(
            "auth_failures",
            "HTTP requests refused by authentication, by reason",
            families.auth_failures.clone(),
        );
        r.register(
            "plugin_events",
            "Plugins loaded, failed, replaced and removed",
            families.plugin_events.clone(),
        );
        r.register(
            "breaker_state",
            "1 for the state each plugin's circuit breaker is in, 0 for the others",
            families.breaker.clone(),
        );
        families
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_the_limits() {
        let upper = |h: Histogram| {
            let mut text = String::new();
            let mut registry = Registry::default();
            registry.register("h", "h", h);
            prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
            text
        };
        // A call's time limit is at most a few seconds by default; 26 s is the top bucket.
        assert!(upper(seconds()).contains("le=\"26.2144\""));
        assert!(upper(bytes()).contains("le=\"4294967296.0\""));
        // A refusal is checked against 1 ms (tests/e2e/resilience.rs): a bucket ends there.
        assert!(upper(refusal_seconds()).contains("le=\"0.001\""));
    }
}
