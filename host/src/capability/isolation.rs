//! Whether a plugin's calls each get a fresh instance (the default) or may reuse one
//! (`isolation = "reuse"`, [`crate::runtime::warm`]): the plugin's statement, in its
//! sidecar or the operator's `[plugins.NAME]`, that it keeps nothing from one call that
//! the next may not see.

use std::time::Duration;

use serde::Deserialize;

use crate::bounds;
use crate::units::format_duration;

/// `isolation` as written.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum IsolationMode {
    /// A fresh instance for every call: nothing a call leaves in memory reaches the next.
    #[default]
    PerCall,
    /// An instance serves several calls of one caller, one call at a time.
    Reuse,
}

/// How a plugin's calls get their instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Isolation {
    /// A fresh instance for every call.
    #[default]
    PerCall,
    /// Instances are kept between calls ([`crate::runtime::warm`]).
    Reuse(Reuse),
}

/// The bounds of a reused instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reuse {
    /// Calls one instance serves before it is replaced by a fresh one.
    pub calls: u32,
    /// How long an instance nobody calls is kept.
    pub idle: Duration,
}

impl Reuse {
    /// In words, for `capsule list` and `capsule check`.
    pub fn describe(&self) -> String {
        format!(
            "isolation: reuse — an instance serves up to {} calls of one caller, kept {} unused",
            self.calls,
            format_duration(self.idle)
        )
    }

    /// Calls per instance when `reuse-calls` is not set.
    pub const DEFAULT_CALLS: u32 = 1000;
    /// `reuse-idle` when not set.
    pub const DEFAULT_IDLE: Duration = Duration::from_secs(60);
}

impl Isolation {
    /// Resolves `isolation`, `reuse-calls` and `reuse-idle`; the error names the key
    /// (relative to the plugin's section) and what to write instead.
    pub fn resolve(
        mode: Option<IsolationMode>,
        calls: Option<u32>,
        idle: Option<Duration>,
    ) -> Result<Self, (&'static str, String)> {
        if mode != Some(IsolationMode::Reuse) {
            let set = [
                ("reuse-calls", calls.is_some()),
                ("reuse-idle", idle.is_some()),
            ];
            if let Some((key, _)) = set.into_iter().find(|(_, set)| *set) {
                return Err((
                    key,
                    format!(
                        "{key} only applies with isolation = \"reuse\"; add that line or remove {key}"
                    ),
                ));
            }
            return Ok(Self::PerCall);
        }
        let calls = calls.unwrap_or(Reuse::DEFAULT_CALLS);
        bounds::check("reuse-calls", calls, bounds::REUSE_CALLS).map_err(|m| ("reuse-calls", m))?;
        let idle = idle.unwrap_or(Reuse::DEFAULT_IDLE);
        bounds::check_duration("reuse-idle", idle, bounds::REUSE_IDLE)
            .map_err(|m| ("reuse-idle", m))?;
        Ok(Self::Reuse(Reuse { calls, idle }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_call_is_the_default_and_reuse_takes_its_bounds() {
        assert_eq!(Isolation::resolve(None, None, None), Ok(Isolation::PerCall));
        assert_eq!(
            Isolation::resolve(Some(IsolationMode::Reuse), None, None),
            Ok(Isolation::Reuse(Reuse {
                calls: 1000,
                idle: Duration::from_secs(60)
            }))
        );
        assert_eq!(
            Isolation::resolve(
                Some(IsolationMode::Reuse),
                Some(5),
                Some(Duration::from_millis(250))
            ),
            Ok(Isolation::Reuse(Reuse {
                calls: 5,
                idle: Duration::from_millis(250)
            }))
        );
    }

    #[test]
    fn reuse_settings_without_reuse_and_out_of_range_are_refused() {
        assert_eq!(
            Isolation::resolve(Some(IsolationMode::PerCall), Some(5), None),
            Err((
                "reuse-calls",
                "reuse-calls only applies with isolation = \"reuse\"; add that line or remove reuse-calls".into()
            ))
        );
        assert_eq!(
            Isolation::resolve(None, None, Some(Duration::from_secs(1))).map_err(|e| e.0),
            Err("reuse-idle")
        );
        assert_eq!(
            Isolation::resolve(Some(IsolationMode::Reuse), Some(0), None),
            Err((
                "reuse-calls",
                "reuse-calls = 0 is out of range; allowed: 1 to 1000000".into()
            ))
        );
        assert_eq!(
            Isolation::resolve(Some(IsolationMode::Reuse), None, Some(Duration::ZERO)),
            Err((
                "reuse-idle",
                "reuse-idle = 0ms is out of range; allowed: 10ms to 86400s".into()
            ))
        );
    }
}
