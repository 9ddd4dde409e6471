//! `[audit]`: the audit log of `capsule serve` (see `docs/audit.md`). Off by default;
//! when on, one JSON object per line to a file or to stderr.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;

use crate::bounds;
use crate::units::ByteSize;

/// `[audit]` as written.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawAudit {
    /// Write the audit log: server start/stop, config loaded, plugins loaded/failed, authentication failures (and tool calls with `tool-calls`).
    #[schemars(extend("default" = false))]
    pub enabled: Option<bool>,
    /// Where: a file (appended to, created with mode 0600; relative to the config file) or `-` / `stderr`.
    #[schemars(extend("default" = "-"))]
    pub path: Option<String>,
    /// Also record every `tools/call`: principal, tool, duration and outcome.
    #[schemars(extend("default" = false))]
    pub tool_calls: Option<bool>,
    /// Also record each call's arguments (needs `tool-calls`; they may hold personal data).
    #[schemars(extend("default" = false))]
    pub arguments: Option<bool>,
    /// Arguments longer than this (as JSON, 16 bytes to 1MiB) are recorded by size only.
    #[schemars(extend("default" = "4KiB"))]
    pub max_argument_bytes: Option<ByteSize>,
}

/// Where audit events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditTarget {
    /// The process's stderr (beside the log lines).
    Stderr,
    /// This file, appended to.
    File(PathBuf),
}

impl std::fmt::Display for AuditTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stderr => f.write_str("stderr"),
            Self::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// `[audit]`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSettings {
    /// Whether `capsule serve` writes the audit log (default off).
    pub enabled: bool,
    /// Where it goes (default stderr).
    pub target: AuditTarget,
    /// Whether every `tools/call` is recorded (default off).
    pub tool_calls: bool,
    /// Whether a recorded call carries its arguments (default off; only with `tool_calls`).
    pub arguments: bool,
    /// Arguments whose JSON is longer are recorded by size only (default 4 KiB).
    pub max_argument_bytes: ByteSize,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            target: AuditTarget::Stderr,
            tool_calls: false,
            arguments: false,
            max_argument_bytes: ByteSize::kib(4),
        }
    }
}

/// `audit.max-argument-bytes`.
const ARGUMENT_BYTES: (ByteSize, ByteSize) = (ByteSize(16), ByteSize::mib(1));

impl RawAudit {
    /// Fills in defaults and checks every value; a relative `path` is relative to `base`
    /// (the config file's folder). The error is the key and what to write instead.
    pub fn resolve(self, base: &Path) -> Result<AuditSettings, (String, String)> {
        let defaults = AuditSettings::default();
        let target = match self.path.as_deref() {
            None | Some("-" | "stderr") => AuditTarget::Stderr,
            Some("") => {
                return Err((
                    "audit.path".into(),
                    "the path is empty; name a file (e.g. \"/var/log/capsule/audit.jsonl\") or write \"-\" for stderr".into(),
                ));
            }
            Some(path) => AuditTarget::File(base.join(path)),
        };
        let tool_calls = self.tool_calls.unwrap_or(defaults.tool_calls);
        let arguments = self.arguments.unwrap_or(defaults.arguments);
        if arguments && !tool_calls {
            return Err((
                "audit.arguments".into(),
                "arguments are recorded with each tool call, and audit.tool-calls is off; set audit.tool-calls = true as well, or remove audit.arguments".into(),
            ));
        }
        let max_argument_bytes = self
            .max_argument_bytes
            .unwrap_or(defaults.max_argument_bytes);
        bounds::check(
            "audit.max-argument-bytes",
            max_argument_bytes,
            ARGUMENT_BYTES,
        )
        .map_err(|m| ("audit.max-argument-bytes".to_string(), m))?;
        Ok(AuditSettings {
            enabled: self.enabled.unwrap_or(defaults.enabled),
            target,
            tool_calls,
            arguments,
            max_argument_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(text: &str) -> Result<AuditSettings, (String, String)> {
        let raw: RawAudit = toml::from_str(text).unwrap();
        raw.resolve(Path::new("/etc/capsule"))
    }

    #[test]
    fn defaults_are_off_and_to_stderr() {
        assert_eq!(resolve("").unwrap(), AuditSettings::default());
        assert_eq!(
            resolve("enabled = true\npath = \"stderr\"").unwrap().target,
            AuditTarget::Stderr
        );
    }

    #[test]
    fn a_relative_file_is_beside_the_config_file() {
        let settings = resolve("enabled = true\npath = \"audit.jsonl\"").unwrap();
        assert_eq!(
            settings.target,
            AuditTarget::File(PathBuf::from("/etc/capsule/audit.jsonl"))
        );
    }

    #[test]
    fn arguments_without_tool_calls_and_odd_sizes_are_refused() {
        assert_eq!(
            resolve("arguments = true").unwrap_err().0,
            "audit.arguments"
        );
        assert_eq!(
            resolve("max-argument-bytes = 2").unwrap_err(),
            (
                "audit.max-argument-bytes".into(),
                "audit.max-argument-bytes = 2 bytes is out of range; allowed: 16 bytes to 1 MiB"
                    .into()
            )
        );
        assert_eq!(resolve("path = \"\"").unwrap_err().0, "audit.path");
    }
}
