//! Per-call resource limits: fuel, wall-clock deadline, memory, tables, instances and
//! result size. Defaults apply to every plugin; a plugin's policy may override them.

use std::time::Duration;

use serde::Deserialize;

use crate::bounds;
use crate::runtime::engine::POOL_TABLE_ELEMENTS;
use crate::units::{ByteSize, deserialize_duration, format_duration};

/// The limits one call of one plugin runs under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Fuel per call (roughly one unit per WebAssembly instruction executed).
    pub fuel: u64,
    /// Wall-clock deadline per call, including time spent blocked in host calls.
    pub timeout: Duration,
    /// Maximum size of each linear memory of the instance.
    pub memory: ByteSize,
    /// Maximum number of elements of each table.
    pub table_elements: u32,
    /// Maximum number of core instances, memories and tables an instance may create.
    pub instances: u32,
    /// Maximum total size of a result (text, binary content and structured JSON).
    pub result: ByteSize,
    /// Maximum bytes of stdout/stderr per call forwarded to the host log; the rest is dropped.
    pub log_output: ByteSize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: 2_000_000_000,
            timeout: Duration::from_secs(10),
            memory: ByteSize::mib(128),
            table_elements: 100_000,
            instances: 32,
            result: ByteSize::mib(4),
            log_output: ByteSize::kib(64),
        }
    }
}

/// Limits as written in config: every field optional, unknown keys rejected.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawLimits {
    /// Fuel per call, about one unit per WebAssembly instruction (1 to 10^13).
    #[schemars(extend("default" = 2_000_000_000u64))]
    pub fuel: Option<u64>,
    /// Wall-clock time per call, including time blocked in WASI (1ms to 24h).
    #[serde(default, deserialize_with = "deserialize_duration")]
    #[schemars(with = "Option<crate::units::DurationText>", extend("default" = "10s"))]
    pub timeout: Option<Duration>,
    /// Linear memory of one call, summed over its memories (64KiB to runtime.memory-ceiling).
    #[schemars(extend("default" = "128MiB"))]
    pub memory: Option<ByteSize>,
    /// Elements per table (1 to 200000).
    #[schemars(extend("default" = 100_000))]
    pub table_elements: Option<u32>,
    /// Core instances one call may create (1 to 32).
    #[schemars(extend("default" = 32))]
    pub instances: Option<u32>,
    /// Total size of a result, and half of what one transfer out of the plugin may copy (1KiB to 256MiB).
    #[schemars(extend("default" = "4MiB"))]
    pub result: Option<ByteSize>,
    /// Plugin stdout and stderr forwarded to the host log per call (0 to 64MiB).
    #[schemars(extend("default" = "64KiB"))]
    pub log_output: Option<ByteSize>,
}

impl RawLimits {
    /// Returns `base` with every field that is set here replaced.
    pub fn apply_to(&self, base: &Limits) -> Limits {
        Limits {
            fuel: self.fuel.unwrap_or(base.fuel),
            timeout: self.timeout.unwrap_or(base.timeout),
            memory: self.memory.unwrap_or(base.memory),
            table_elements: self.table_elements.unwrap_or(base.table_elements),
            instances: self.instances.unwrap_or(base.instances),
            result: self.result.unwrap_or(base.result),
            log_output: self.log_output.unwrap_or(base.log_output),
        }
    }
}

impl RawLimits {
    /// These limits laid over `base`: each key set here wins, the others come from `base`.
    pub fn over(&self, base: &RawLimits) -> RawLimits {
        RawLimits {
            fuel: self.fuel.or(base.fuel),
            timeout: self.timeout.or(base.timeout),
            memory: self.memory.or(base.memory),
            table_elements: self.table_elements.or(base.table_elements),
            instances: self.instances.or(base.instances),
            result: self.result.or(base.result),
            log_output: self.log_output.or(base.log_output),
        }
    }
}

impl Limits {
    /// Checks the limits are usable; the error names the key and what to write instead.
    pub fn validate(&self, memory_ceiling: ByteSize) -> Result<(), String> {
        bounds::check("limits.fuel", self.fuel, bounds::FUEL)?;
        bounds::check_duration("limits.timeout", self.timeout, bounds::TIMEOUT)?;
        if self.memory > memory_ceiling {
            return Err(format!(
                "limits.memory = {} exceeds the runtime memory ceiling of {}; lower it or raise runtime.memory-ceiling",
                self.memory, memory_ceiling
            ));
        }
        if self.memory < bounds::MIN_MEMORY {
            return Err("limits.memory must be at least 64KiB (one WebAssembly page)".into());
        }
        bounds::check(
            "limits.table-elements",
            self.table_elements,
            (1, POOL_TABLE_ELEMENTS),
        )?;
        bounds::check("limits.instances", self.instances, bounds::INSTANCES)?;
        bounds::check("limits.result", self.result, bounds::RESULT)?;
        bounds::check("limits.log-output", self.log_output, bounds::LOG_OUTPUT)
    }

    /// Checks the limits against the operator's `[ceiling]`: no policy may go above it.
    pub fn check_ceiling(&self, ceiling: &RawLimits) -> Result<(), String> {
        fn over<T: PartialOrd + std::fmt::Display>(
            key: &str,
            value: T,
            max: Option<T>,
        ) -> Result<(), String> {
            match max {
                Some(max) if value > max => Err(format!(
                    "limits.{key} = {value} exceeds the ceiling of {max} set in [ceiling]; lower it or raise the ceiling"
                )),
                _ => Ok(()),
            }
        }
        over("fuel", self.fuel, ceiling.fuel)?;
        if let Some(max) = ceiling.timeout
            && self.timeout > max
        {
            return Err(format!(
                "limits.timeout = {} exceeds the ceiling of {} set in [ceiling]; lower it or raise the ceiling",
                format_duration(self.timeout),
                format_duration(max)
            ));
        }
        over("memory", self.memory, ceiling.memory)?;
        over(
            "table-elements",
            self.table_elements,
            ceiling.table_elements,
        )?;
        over("instances", self.instances, ceiling.instances)?;
        over("result", self.result, ceiling.result)?;
        over("log-output", self.log_output, ceiling.log_output)
    }

    /// One line for `capsule list`/`check`: the effective limits.
    pub fn summary(&self) -> String {
        format!(
            "fuel {}, timeout {}, memory {}, result {}",
            self.fuel,
            format_duration(self.timeout),
            self.memory,
            self.result
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_limits_override_only_what_they_set() {
        let raw: RawLimits = toml::from_str("fuel = 5\ntimeout = \"250ms\"").unwrap();
        let limits = raw.apply_to(&Limits::default());
        assert_eq!(limits.fuel, 5);
        assert_eq!(limits.timeout, Duration::from_millis(250));
        assert_eq!(limits.memory, Limits::default().memory);
    }

    #[test]
    fn unknown_limit_keys_are_rejected() {
        let err = toml::from_str::<RawLimits>("fule = 5").unwrap_err();
        assert!(err.to_string().contains("unknown field `fule`"), "{err}");
    }

    #[test]
    fn memory_above_ceiling_is_rejected() {
        let limits = Limits {
            memory: ByteSize::mib(1024),
            ..Limits::default()
        };
        let err = limits.validate(ByteSize::mib(512)).unwrap_err();
        assert!(err.contains("exceeds the runtime memory ceiling"), "{err}");
    }
}
