//! Configuration: `capsule.toml`, overridden by `CAPSULE_*` environment variables and
//! CLI flags (CLI > env > file > defaults). The layers are merged into one document
//! ([`layer`]; `${VAR}` expanded by [`expand`], variables and flags read by `overrides`,
//! named by [`keys`], their text read by [`value`], all driven by the JSON Schema of
//! [`schema`]), which is read into a
//! *raw* form that rejects unknown keys (errors carry line and column), then *resolved*:
//! paths made absolute, defaults filled in, limits checked. [`show`] prints the effective
//! configuration and [`table`] the docs' table of keys.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::auth::rate::RateLimit;
use crate::capability::limits::{Limits, RawLimits};
use crate::capability::secrets;
use crate::distribution::Origin;
use crate::policy::{self, PluginPolicy, RawPolicy};
use crate::trust::{self, GrantCeiling};

pub mod audit;
pub mod auth;
pub mod authorization;
pub mod breaker;
pub mod distribution;
mod error;
pub mod expand;
mod file;
pub mod keys;
pub mod layer;
pub mod metrics;
pub mod outbound;
mod overrides;
pub mod rate_limits;
mod raw;
mod runtime;
pub mod schema;
pub mod server;
pub mod show;
pub mod table;
pub mod telemetry;
pub mod value;

pub use audit::{AuditSettings, AuditTarget};
pub use auth::AuthSettings;
pub use distribution::DistributionSettings;
pub use error::ConfigError;
pub use file::parse_file;
use file::parse_secrets_file;
pub(crate) use file::parse_toml;
pub use layer::{Entry, FlagValue, Source};
pub use metrics::MetricsSettings;
pub use raw::RawConfig;
pub use runtime::{Compiler, RawRuntime, RuntimeSettings};
pub use server::{ServerSettings, Transport};
pub use telemetry::{OtlpSettings, TelemetrySettings};

/// The file looked for in the working directory when `--config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "capsule.toml";

/// Values given on the command line or in `CAPSULE_*` variables; they win over the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--config` / `CAPSULE_CONFIG`.
    pub config_file: Option<PathBuf>,
    /// `--plugins` / `CAPSULE_PLUGINS`.
    pub plugins_dir: Option<PathBuf>,
    /// `--cache-dir` / `CAPSULE_CACHE_DIR`.
    pub cache_dir: Option<PathBuf>,
    /// `--no-cache` / `CAPSULE_NO_CACHE`.
    pub no_cache: bool,
    /// `--log-level` / `CAPSULE_LOG`.
    pub log_level: Option<String>,
    /// Other keys set on the command line (`--max-concurrent-calls 8`).
    pub flags: Vec<FlagValue>,
}

impl Overrides {
    /// Every key the command line sets, the named fields included.
    fn all_flags(&self) -> Vec<FlagValue> {
        let named = [
            ("plugins-dir", "--plugins", self.plugins_dir.as_ref()),
            ("cache-dir", "--cache-dir", self.cache_dir.as_ref()),
        ];
        let mut flags: Vec<FlagValue> = named
            .into_iter()
            .filter_map(|(key, flag, path)| {
                path.map(|p| FlagValue {
                    key: key.into(),
                    flag: flag.into(),
                    value: p.display().to_string(),
                })
            })
            .collect();
        if let Some(level) = &self.log_level {
            flags.push(FlagValue {
                key: "log-level".into(),
                flag: "--log-level".into(),
                value: level.clone(),
            });
        }
        flags.extend(self.flags.iter().cloned());
        flags
    }
}

/// Everything the host runs with, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The config file used, if any.
    pub config_file: Option<PathBuf>,
    /// Absolute folder of plugins.
    pub plugins_dir: PathBuf,
    /// Absolute folder of precompiled artifacts; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Log filter for stderr.
    pub log_level: String,
    /// Engine-wide settings.
    pub runtime: RuntimeSettings,
    /// How `capsule serve` talks to clients.
    pub server: ServerSettings,
    /// The audit log of `capsule serve`.
    pub audit: AuditSettings,
    /// `[metrics]`: the Prometheus exposition.
    pub metrics: MetricsSettings,
    /// `[telemetry]`: OTLP export of the calls' spans.
    pub telemetry: TelemetrySettings,
    /// `[auth]`: who may call over HTTP; `None` when the section is absent.
    pub auth: Option<AuthSettings>,
    /// Limits of plugins without their own.
    pub default_limits: Limits,
    /// Per-plugin policies from the file, by plugin name.
    /// A policy that does not resolve (e.g. a mount whose folder is missing) keeps only
    /// that plugin from loading; the message names the file, key and fix.
    pub plugins: BTreeMap<String, Result<PluginPolicy, String>>,
    /// Things worth fixing that do not stop the host (e.g. a listed variable that is unset).
    pub warnings: Vec<String>,
    /// The limit part of `[ceiling]`, for sidecar policies.
    pub ceiling: RawLimits,
    /// The grant part of `[ceiling]`: what a sidecar may take without approval.
    pub grant_ceiling: GrantCeiling,
    /// `trust-sidecars`.
    pub trust_sidecars: bool,
    /// `[profiles]`, for sidecar policies.
    pub profiles: BTreeMap<String, RawPolicy>,
    /// `[secrets]`, expanded; values never printed.
    pub secrets: secrets::Defined,
    /// `[authorization] default-tool-scopes`: what tools without `scopes` need.
    pub default_tool_scopes: Vec<String>,
    /// `[rate-limits] per-principal`.
    pub per_principal_rate_limit: Option<RateLimit>,
    /// `[distribution]`: signature key, insecure registries.
    pub distribution: DistributionSettings,
    /// Where plugins come from and what they must be (`source`, `sha256`,
    /// `require-signature`), for the plugins whose entry says; an error keeps only that
    /// plugin from loading.
    pub origins: BTreeMap<String, Result<Origin, String>>,
}

impl Settings {
    /// Reads the config file (the one named in `overrides`, else `./capsule.toml` if it
    /// exists) and applies the overrides.
    pub fn load(overrides: Overrides) -> Result<Self, ConfigError> {
        Self::load_with_sources(overrides).map(|(settings, _)| settings)
    }

    /// [`Settings::load`], and every key's effective value with where it came from (for
    /// `capsule config show`).
    pub fn load_with_sources(overrides: Overrides) -> Result<(Self, Vec<Entry>), ConfigError> {
        let cwd = std::env::current_dir().map_err(|reason| ConfigError::Read {
            path: PathBuf::from("."),
            reason,
        })?;
        let file = match &overrides.config_file {
            Some(path) => Some(cwd.join(path)),
            None => Some(cwd.join(DEFAULT_CONFIG_FILE)).filter(|p| p.is_file()),
        };
        let text = match &file {
            Some(path) => file::read_text(path)?,
            None => String::new(),
        };
        let env: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        let layered = layer::layer(file.as_deref(), &text, &cwd, &env, &overrides.all_flags())?;
        let mut settings = Self::resolve(layered.raw, file, &cwd, overrides)?;
        settings.warnings.extend(layered.warnings);
        Ok((settings, layered.entries))
    }

    /// Resolves a raw config read from `file` (paths in it are relative to its folder;
    /// paths in `overrides` are relative to `cwd`).
    pub fn resolve(
        raw: RawConfig,
        file: Option<PathBuf>,
        cwd: &Path,
        overrides: Overrides,
    ) -> Result<Self, ConfigError> {
        let base = file
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_else(|| cwd.to_path_buf());
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            path: file.clone(),
            key: key.to_string(),
            message,
        };

        let plugins_dir = match (overrides.plugins_dir, raw.plugins_dir) {
            (Some(cli), _) => cwd.join(cli),
            (None, Some(from_file)) => base.join(from_file),
            (None, None) => cwd.join("plugins"),
        };
        let cache_dir = if overrides.no_cache {
            None
        } else {
            match (overrides.cache_dir, raw.cache_dir) {
                (Some(cli), _) => Some(cwd.join(cli)),
                (None, Some(from_file)) => Some(base.join(from_file)),
                (None, None) => default_cache_dir(),
            }
        };

        let runtime = raw.runtime.resolve().map_err(|m| invalid("runtime", m))?;
        let server = raw
            .server
            .resolve()
            .map_err(|(key, message)| invalid(&key, message))?;
        let audit = raw
            .audit
            .resolve(&base)
            .map_err(|(key, message)| invalid(&key, message))?;
        let metrics = raw
            .metrics
            .resolve()
            .map_err(|(key, message)| invalid(&key, message))?;
        let telemetry = raw
            .telemetry
            .resolve()
            .map_err(|(key, message)| invalid(&key, message))?;
        let auth = raw
            .auth
            .map(|auth| auth.resolve(&base))
            .transpose()
            .map_err(|(key, message)| invalid(&key, message))?;

        let default_tool_scopes = raw
            .authorization
            .default_tool_scopes()
            .map_err(|(key, message)| invalid(&key, message))?;

        let ceiling = raw.ceiling.limits();
        let grant_ceiling = raw
            .ceiling
            .grants(&base)
            .map_err(|(key, message)| invalid(&key, message))?;
        let default_limits = raw.limits.apply_to(&Limits::default());
        default_limits
            .validate(runtime.memory_ceiling)
            .and_then(|()| default_limits.check_ceiling(&ceiling))
            .map_err(|m| invalid("limits", m))?;

        let host_env = |name: &str| std::env::var(name).ok();
        let mut secret_definitions = raw.secrets.clone();
        if let Some(file) = &raw.secrets_file {
            let file = base.join(file);
            let from_file = parse_secrets_file(&file)?;
            for (name, value) in from_file {
                if secret_definitions.contains_key(&name) {
                    return Err(invalid(
                        "secrets-file",
                        format!(
                            "secret `{name}` is defined both in [secrets] and in {}; keep one",
                            file.display()
                        ),
                    ));
                }
                secret_definitions.insert(name, value);
            }
        }
        let secrets = secrets::resolve(&secret_definitions, host_env);
        let distribution = raw
            .distribution
            .resolve(&base)
            .map_err(|(key, message)| invalid(&key, message))?;
        for (name, profile) in &raw.profiles {
            if let Some(key) = profile.distribution_keys().first() {
                return Err(invalid(
                    &format!("profiles.{name}.{key}"),
                    format!("`{key}` belongs to one plugin; set it in its [plugins.NAME] entry"),
                ));
            }
            if !profile.profiles.is_empty() {
                return Err(invalid(
                    &format!("profiles.{name}.profiles"),
                    "a profile cannot build on other profiles; list them all in the plugin's `profiles`".into(),
                ));
            }
        }
        let context = policy::Context {
            default_limits: &default_limits,
            memory_ceiling: runtime.memory_ceiling,
            ceiling: &ceiling,
            base: &base,
            profiles: &raw.profiles,
            secrets: &secrets,
            host_env: &host_env,
            default_scopes: &default_tool_scopes,
        };
        let mut plugins = BTreeMap::new();
        let mut warnings = Vec::new();
        for (name, raw_policy) in &raw.plugins {
            let policy = match raw_policy.resolve(&format!("plugins.{name}."), &context) {
                Ok(resolved) => {
                    warnings.extend(resolved.warnings);
                    Ok(resolved.policy)
                }
                Err((key, message)) => Err(invalid(&key, message).to_string()),
            };
            plugins.insert(name.clone(), policy);
        }
        let origins = raw
            .plugins
            .iter()
            .filter_map(|(name, raw_policy)| {
                let origin = distribution::origin(name, raw_policy, &distribution)?;
                Some((
                    name.clone(),
                    origin.map_err(|(key, message)| invalid(&key, message).to_string()),
                ))
            })
            .collect();

        Ok(Self {
            config_file: file,
            plugins_dir,
            cache_dir,
            log_level: overrides
                .log_level
                .or(raw.log_level)
                .unwrap_or_else(|| "info".into()),
            runtime,
            server,
            audit,
            metrics,
            telemetry,
            auth,
            default_limits,
            plugins,
            warnings,
            profiles: raw.profiles,
            ceiling,
            grant_ceiling,
            trust_sidecars: raw.trust_sidecars,
            secrets,
            default_tool_scopes,
            per_principal_rate_limit: raw.rate_limits.per_principal,
            distribution,
            origins,
        })
    }

    /// The policy of the plugin named `name` loaded from `wasm`, and warnings about it.
    /// `[plugins.NAME]` in `capsule.toml` is the whole grant: a sidecar `NAME.toml` next to
    /// the `.wasm` is then ignored. Without it, the sidecar is used, its grants only if the
    /// operator approved them (see [`crate::trust`]); without either, the plugin gets the
    /// default limits and no grants. The error is the whole message, naming the file, key
    /// and fix.
    pub fn policy(&self, name: &str, wasm: &Path) -> Result<(PluginPolicy, Vec<String>), String> {
        let sidecar = wasm.with_extension("toml");
        if let Some(policy) = self.plugins.get(name) {
            let mut warnings = Vec::new();
            if sidecar.is_file() {
                warnings.push(format!(
                    "{} is ignored: [plugins.{name}] in the config file wins; move its settings there or remove one",
                    sidecar.display()
                ));
            }
            return policy.clone().map(|policy| (policy, warnings));
        }
        if !sidecar.is_file() {
            return Ok((
                PluginPolicy::deny_all(self.default_limits.clone(), &self.default_tool_scopes),
                Vec::new(),
            ));
        }
        self.sidecar_policy(name, &sidecar, self.trust_sidecars)
    }

    /// The policy in the sidecar file `sidecar` of plugin `name`. Its limits may only lower
    /// the operator's; its grants take effect when `trusted` or when `[ceiling]` covers
    /// them all, and are withheld (and reported) otherwise.
    pub fn sidecar_policy(
        &self,
        name: &str,
        sidecar: &Path,
        trusted: bool,
    ) -> Result<(PluginPolicy, Vec<String>), String> {
        let invalid = |(key, message): (String, String)| {
            ConfigError::Invalid {
                path: Some(sidecar.to_path_buf()),
                key,
                message,
            }
            .to_string()
        };
        let raw: RawPolicy = parse_toml(sidecar).map_err(|err| err.to_string())?;
        let ignored = raw.distribution_keys();
        let base = sidecar.parent().unwrap_or(Path::new("."));
        let mut merged = raw.merged("", &self.profiles).map_err(invalid)?;
        let mut warnings = trust::only_lower(&mut merged, &self.default_limits, sidecar, name);
        if !ignored.is_empty() {
            warnings.push(format!(
                "{}: {} ignored: only [plugins.{name}] in the config file says where a plugin comes from and what it must be",
                sidecar.display(),
                ignored.join(", ")
            ));
        }
        warnings.extend(trust::without_scopes(&mut merged, sidecar, name));
        let request = trust::Request::of(&merged, base);
        let approved = trusted || request.is_empty() || request.covered_by(&self.grant_ceiling);
        if !approved {
            merged = trust::without_grants(&merged);
            warnings.push(trust::withheld_message(name, sidecar, &request));
        }
        let host_env = |name: &str| std::env::var(name).ok();
        let context = policy::Context {
            default_limits: &self.default_limits,
            memory_ceiling: self.runtime.memory_ceiling,
            ceiling: &self.ceiling,
            base,
            profiles: &self.profiles,
            secrets: &self.secrets,
            host_env: &host_env,
            default_scopes: &self.default_tool_scopes,
        };
        let mut resolved = merged.resolve_merged("", &context).map_err(invalid)?;
        if !approved {
            resolved.policy.withheld = Some(format!(
                "{} (asked for by {}; approve with `capsule approve {name}`)",
                request.items().join(", "),
                sidecar.display()
            ));
        }
        warnings.extend(resolved.warnings);
        Ok((resolved.policy, warnings))
    }
}

/// `$XDG_CACHE_HOME/capsule`, else `$HOME/.cache/capsule`, else no cache.
fn default_cache_dir() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(|h| PathBuf::from(h).join(".cache"));
    xdg.or(home).map(|dir| dir.join("capsule"))
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests;
