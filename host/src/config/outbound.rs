//! `[runtime.outbound]`: how the host sends plugins' outgoing HTTP requests: retries of
//! idempotent requests with exponential backoff and full jitter, the retry budget per host,
//! and the connections per host. See `docs/resilience.md`.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::bounds;
use crate::units::deserialize_duration;

/// `[runtime.outbound]` as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawOutbound {
    /// Retries of a failed idempotent request (GET, HEAD, OPTIONS, PUT, DELETE; never POST or PATCH) after a connection failure or a 502/503/504 (0 to 10; 0 turns retries off).
    #[schemars(extend("default" = 2))]
    pub retries: Option<u32>,
    /// The first retry waits a random time up to this; each further retry up to twice as long (full jitter) (1ms to 1m).
    #[serde(default, deserialize_with = "deserialize_duration")]
    #[schemars(with = "Option<crate::units::DurationText>", extend("default" = "100ms"))]
    pub retry_base_delay: Option<Duration>,
    /// The longest wait before a retry (1ms to 5m).
    #[serde(default, deserialize_with = "deserialize_duration")]
    #[schemars(with = "Option<crate::units::DurationText>", extend("default" = "2s"))]
    pub retry_max_delay: Option<Duration>,
    /// Retries to one host, as a share of the requests to it in `retry-budget-window`, in percent (0 to 100), on top of `retry-budget-min`.
    #[schemars(extend("default" = 20))]
    pub retry_budget_percent: Option<u32>,
    /// Retries to one host always allowed in `retry-budget-window`, however few requests it got (0 to 10000).
    #[schemars(extend("default" = 3))]
    pub retry_budget_min: Option<u32>,
    /// The window the retry budget counts requests and retries over (1s to 60m).
    #[serde(default, deserialize_with = "deserialize_duration")]
    #[schemars(with = "Option<crate::units::DurationText>", extend("default" = "10s"))]
    pub retry_budget_window: Option<Duration>,
    /// Requests in flight to one host (scheme, name, port) over all plugins (1 to 10000); more wait, up to the plugin's `net.timeout`.
    #[schemars(extend("default" = 32))]
    pub max_connections_per_host: Option<u32>,
}

/// `[runtime.outbound]`, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboundSettings {
    /// Retries of a failed idempotent request.
    pub retries: u32,
    /// Upper bound of the first retry's random wait.
    pub retry_base_delay: Duration,
    /// Upper bound of any retry's wait.
    pub retry_max_delay: Duration,
    /// Retries per 100 requests to one host in the window.
    pub retry_budget_percent: u32,
    /// Retries to one host always allowed in the window.
    pub retry_budget_min: u32,
    /// The retry budget's window.
    pub retry_budget_window: Duration,
    /// Requests in flight to one host.
    pub max_connections_per_host: u32,
}

impl Default for OutboundSettings {
    fn default() -> Self {
        Self {
            retries: 2,
            retry_base_delay: Duration::from_millis(100),
            retry_max_delay: Duration::from_secs(2),
            retry_budget_percent: 20,
            retry_budget_min: 3,
            retry_budget_window: Duration::from_secs(10),
            max_connections_per_host: 32,
        }
    }
}

impl RawOutbound {
    /// The settings with defaults filled in, each checked; the error names the key.
    pub fn resolve(&self) -> Result<OutboundSettings, String> {
        let d = OutboundSettings::default();
        let s = OutboundSettings {
            retries: self.retries.unwrap_or(d.retries),
            retry_base_delay: self.retry_base_delay.unwrap_or(d.retry_base_delay),
            retry_max_delay: self.retry_max_delay.unwrap_or(d.retry_max_delay),
            retry_budget_percent: self.retry_budget_percent.unwrap_or(d.retry_budget_percent),
            retry_budget_min: self.retry_budget_min.unwrap_or(d.retry_budget_min),
            retry_budget_window: self.retry_budget_window.unwrap_or(d.retry_budget_window),
            max_connections_per_host: self
                .max_connections_per_host
                .unwrap_or(d.max_connections_per_host),
        };
        let ms = Duration::from_millis;
        let secs = Duration::from_secs;
        bounds::check("runtime.outbound.retries", s.retries, (0, 10))?;
        bounds::check_duration(
            "runtime.outbound.retry-base-delay",
            s.retry_base_delay,
            (ms(1), secs(60)),
        )?;
        bounds::check_duration(
            "runtime.outbound.retry-max-delay",
            s.retry_max_delay,
            (s.retry_base_delay.max(ms(1)), secs(300)),
        )?;
        bounds::check(
            "runtime.outbound.retry-budget-percent",
            s.retry_budget_percent,
            (0, 100),
        )?;
        bounds::check(
            "runtime.outbound.retry-budget-min",
            s.retry_budget_min,
            (0, 10_000),
        )?;
        bounds::check_duration(
            "runtime.outbound.retry-budget-window",
            s.retry_budget_window,
            (secs(1), secs(3600)),
        )?;
        bounds::check(
            "runtime.outbound.max-connections-per-host",
            s.max_connections_per_host,
            (1, 10_000),
        )?;
        Ok(s)
    }
}
