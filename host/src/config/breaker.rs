//! `[runtime.breaker]` and `[plugins.NAME.breaker]`: when a plugin's circuit breaker opens
//! (consecutive sandbox faults, or a fault rate over a window), how long it stays open, and
//! what `tools/list` shows of an open plugin. See `docs/resilience.md`.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::bounds;
use crate::units::deserialize_duration;

/// What `tools/list` does with the tools of a plugin whose breaker is open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OpenTools {
    /// Listed, with a description that starts with why and until when they are unavailable.
    #[default]
    Mark,
    /// Left out of the list until the breaker closes.
    Hide,
}

impl std::fmt::Display for OpenTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Mark => "mark",
            Self::Hide => "hide",
        })
    }
}

/// `[runtime.breaker]` (every plugin) or `[plugins.NAME.breaker]` (one plugin, over it) as
/// written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawBreaker {
    /// Whether sandbox faults open the plugin's circuit breaker (false: calls always run).
    #[schemars(extend("default" = true))]
    pub enabled: Option<bool>,
    /// Sandbox faults in a row (traps, fuel, time, memory, stack, result size; not tool errors) that open the breaker (1 to 1000).
    #[schemars(extend("default" = 5))]
    pub consecutive_faults: Option<u32>,
    /// Share of calls in `window` ending in a sandbox fault, in percent, that opens the breaker (1 to 100), once `min-calls` calls ended in it.
    #[schemars(extend("default" = 50))]
    pub fault_percent: Option<u32>,
    /// The window `fault-percent` is measured over (1s to 60m).
    #[serde(default, deserialize_with = "deserialize_duration")]
    #[schemars(with = "Option<crate::units::DurationText>", extend("default" = "60s"))]
    pub window: Option<Duration>,
    /// Calls that must have ended in `window` before `fault-percent` applies (1 to 1000000).
    #[schemars(extend("default" = 20))]
    pub min_calls: Option<u32>,
    /// How long an open breaker refuses calls before it lets one probe call through (100ms to 60m).
    #[serde(default, deserialize_with = "deserialize_duration")]
    #[schemars(with = "Option<crate::units::DurationText>", extend("default" = "30s"))]
    pub cool_down: Option<Duration>,
    /// What `tools/list` does with the tools of an open plugin: `mark` (description prefix) or `hide`.
    #[schemars(extend("default" = "mark"))]
    pub open_tools: Option<OpenTools>,
}

/// A circuit breaker's settings, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Whether faults open the breaker at all.
    pub enabled: bool,
    /// Faults in a row that open it.
    pub consecutive_faults: u32,
    /// Faults per 100 calls in `window` that open it.
    pub fault_percent: u32,
    /// The window of `fault_percent`.
    pub window: Duration,
    /// Calls in the window before the rate counts.
    pub min_calls: u32,
    /// Time open before a probe call.
    pub cool_down: Duration,
    /// `tools/list` of an open plugin.
    pub open_tools: OpenTools,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            consecutive_faults: 5,
            fault_percent: 50,
            window: Duration::from_secs(60),
            min_calls: 20,
            cool_down: Duration::from_secs(30),
            open_tools: OpenTools::Mark,
        }
    }
}

const CONSECUTIVE: (u32, u32) = (1, 1000);
const PERCENT: (u32, u32) = (1, 100);
const WINDOW: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(3600));
const MIN_CALLS: (u32, u32) = (1, 1_000_000);
const COOL_DOWN: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(3600));

impl RawBreaker {
    /// These settings over `base` (a plugin's section over `[runtime.breaker]`), each value
    /// checked against its bounds; the error is `(key, message)` with `prefix` before the
    /// key (`runtime.breaker.`, `plugins.NAME.breaker.`).
    pub fn apply_to(
        &self,
        base: &BreakerSettings,
        prefix: &str,
    ) -> Result<BreakerSettings, (String, String)> {
        let settings = self.over(base);
        let key = |name: &str| format!("{prefix}{name}");
        let checks = [
            bounds::check(
                &key("consecutive-faults"),
                settings.consecutive_faults,
                CONSECUTIVE,
            )
            .map_err(|m| (key("consecutive-faults"), m)),
            bounds::check(&key("fault-percent"), settings.fault_percent, PERCENT)
                .map_err(|m| (key("fault-percent"), m)),
            bounds::check_duration(&key("window"), settings.window, WINDOW)
                .map_err(|m| (key("window"), m)),
            bounds::check(&key("min-calls"), settings.min_calls, MIN_CALLS)
                .map_err(|m| (key("min-calls"), m)),
            bounds::check_duration(&key("cool-down"), settings.cool_down, COOL_DOWN)
                .map_err(|m| (key("cool-down"), m)),
        ];
        checks.into_iter().collect::<Result<Vec<()>, _>>()?;
        Ok(settings)
    }

    /// These settings over `base`, unchecked: for settings [`RawBreaker::apply_to`] has
    /// already checked (a resolved policy's, on every call).
    pub fn over(&self, base: &BreakerSettings) -> BreakerSettings {
        BreakerSettings {
            enabled: self.enabled.unwrap_or(base.enabled),
            consecutive_faults: self.consecutive_faults.unwrap_or(base.consecutive_faults),
            fault_percent: self.fault_percent.unwrap_or(base.fault_percent),
            window: self.window.unwrap_or(base.window),
            min_calls: self.min_calls.unwrap_or(base.min_calls),
            cool_down: self.cool_down.unwrap_or(base.cool_down),
            open_tools: self.open_tools.unwrap_or(base.open_tools),
        }
    }

    /// This section with `over`'s values where it sets them (a profile or a plugin's own
    /// section over what it builds on).
    pub fn under(&self, over: &RawBreaker) -> RawBreaker {
        RawBreaker {
            enabled: over.enabled.or(self.enabled),
            consecutive_faults: over.consecutive_faults.or(self.consecutive_faults),
            fault_percent: over.fault_percent.or(self.fault_percent),
            window: over.window.or(self.window),
            min_calls: over.min_calls.or(self.min_calls),
            cool_down: over.cool_down.or(self.cool_down),
            open_tools: over.open_tools.or(self.open_tools),
        }
    }

    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == RawBreaker::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_section_overrides_the_defaults_and_is_bounded() {
        let base = BreakerSettings::default();
        let raw = RawBreaker {
            consecutive_faults: Some(2),
            open_tools: Some(OpenTools::Hide),
            ..RawBreaker::default()
        };
        let resolved = raw.apply_to(&base, "plugins.p.breaker.").unwrap();
        assert_eq!(resolved.consecutive_faults, 2);
        assert_eq!(resolved.open_tools, OpenTools::Hide);
        assert_eq!(resolved.cool_down, base.cool_down);
        let bad = RawBreaker {
            fault_percent: Some(0),
            ..RawBreaker::default()
        };
        assert_eq!(
            bad.apply_to(&base, "runtime.breaker.").unwrap_err(),
            (
                "runtime.breaker.fault-percent".into(),
                "runtime.breaker.fault-percent = 0 is out of range; allowed: 1 to 100".into()
            )
        );
    }
}
