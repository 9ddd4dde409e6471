//! `capsule.toml` as written: the top-level keys and one field per section. Unknown keys
//! are rejected, so a misspelt key is an error with its line and column.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::audit::RawAudit;
use super::auth::RawAuth;
use super::authorization::RawAuthorization;
use super::distribution::RawDistribution;
use super::metrics::RawMetrics;
use super::rate_limits::RawRateLimits;
use super::runtime::RawRuntime;
use super::server::RawServer;
use super::telemetry::RawTelemetry;
use crate::capability::limits::RawLimits;
use crate::policy::RawPolicy;
use crate::trust::RawCeiling;

/// `capsule.toml` as written.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawConfig {
    /// Folder of `.wasm` plugins (relative to the config file; from the environment or the
    /// command line, relative to the current folder).
    #[schemars(extend("default" = "plugins", "x-path" = true, "x-flag" = "--plugins", "x-env-alias" = "CAPSULE_PLUGINS"))]
    pub plugins_dir: Option<PathBuf>,
    /// Folder for precompiled artifacts (default: $XDG_CACHE_HOME/capsule or ~/.cache/capsule).
    #[schemars(extend("x-path" = true, "x-flag" = "--cache-dir"))]
    pub cache_dir: Option<PathBuf>,
    /// Log filter for stderr, e.g. `info` or `capsule=debug` (one-shot commands log at `warn` unless set by flag or environment).
    #[schemars(extend("default" = "info", "x-flag" = "--log-level", "x-env-alias" = "CAPSULE_LOG"))]
    pub log_level: Option<String>,
    /// Engine-wide settings.
    #[serde(default)]
    pub runtime: RawRuntime,
    /// How `capsule serve` talks to clients: stdio or streamable HTTP, and the HTTP edge.
    #[serde(default)]
    pub server: RawServer,
    /// The audit log of `capsule serve`: JSON lines to a file or stderr (docs/audit.md).
    #[serde(default)]
    pub audit: RawAudit,
    /// Prometheus metrics at `/metrics` (docs/observability.md).
    #[serde(default)]
    pub metrics: RawMetrics,
    /// Traces of calls exported over OTLP/HTTP to a collector (docs/observability.md).
    #[serde(default)]
    pub telemetry: RawTelemetry,
    /// Who may call over HTTP: static tokens, JWTs, the protected resource metadata (stdio ignores it).
    pub auth: Option<RawAuth>,
    /// What HTTP callers need to call tools (per plugin and tool: `scopes` in their policy).
    #[serde(default)]
    pub authorization: RawAuthorization,
    /// Request rates of HTTP callers (per tool: `rate-limit` in its policy).
    #[serde(default)]
    pub rate_limits: RawRateLimits,
    /// Plugins from registries and downloads: signature key, plain-HTTP registries (docs/distribution.md).
    #[serde(default)]
    pub distribution: RawDistribution,
    /// Default limits for every plugin.
    #[serde(default)]
    pub limits: RawLimits,
    /// Upper bounds no plugin's limits may exceed, whatever its policy or profile says, and
    /// the grants a sidecar policy may take without `capsule approve`.
    #[serde(default)]
    pub ceiling: RawCeiling,
    /// Whether sidecar policies get every grant they ask for without approval (off: they
    /// need `[plugins.NAME]` or a covering `[ceiling]`).
    #[serde(default)]
    pub trust_sidecars: bool,
    /// Per-plugin policy, by plugin name.
    #[serde(default)]
    pub plugins: BTreeMap<String, RawPolicy>,
    /// Named policy fragments that plugins build on (`profiles = ["readonly-fs"]`).
    #[serde(default)]
    pub profiles: BTreeMap<String, RawPolicy>,
    /// Named secrets: literal values or `${VAR}` references to the host environment. Never
    /// printed; a missing variable only stops the plugins granted the secret.
    #[serde(default)]
    #[schemars(extend("x-secret" = true))]
    pub secrets: BTreeMap<String, String>,
    /// A TOML file of more named secrets (`name = "value"`), kept out of the main config,
    /// e.g. mounted from a secret store. Relative to the config file.
    #[schemars(extend("x-path" = true))]
    pub secrets_file: Option<PathBuf>,
}
