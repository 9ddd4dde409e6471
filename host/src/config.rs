//! Configuration: `capsule.toml`, overridden by `CAPSULE_*` environment variables and
//! CLI flags (CLI > env > file > defaults). The file is parsed into a *raw* form that
//! rejects unknown keys (errors carry line and column), then *resolved*: paths made
//! absolute, defaults filled in, limits checked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::bounds;
use crate::capability::limits::{Limits, RawLimits};
use crate::capability::secrets;
use crate::policy::{self, PluginPolicy, RawPolicy};
use crate::runtime::engine::RESERVED_INSTANCES;
use crate::trust::{self, GrantCeiling, RawCeiling};
use crate::units::ByteSize;

pub mod server;

pub use server::{ServerOverrides, ServerSettings, Transport};

/// The file looked for in the working directory when `--config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "capsule.toml";

/// A configuration problem, with the file and what to change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: std::io::Error,
    },
    /// The file is not valid TOML or has unknown/mistyped keys.
    #[error("invalid config file {}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line, column and the offending text.
        message: String,
    },
    /// A value is out of range or inconsistent with another.
    #[error("invalid configuration{}: {key}: {message}", source_suffix(path.as_deref()))]
    Invalid {
        /// The file, when the value came from one.
        path: Option<PathBuf>,
        /// The key, e.g. `plugins.text.limits`.
        key: String,
        /// What is wrong and what to write instead.
        message: String,
    },
}

fn source_suffix(path: Option<&Path>) -> String {
    path.map(|p| format!(" in {}", p.display()))
        .unwrap_or_default()
}

/// `capsule.toml` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawConfig {
    /// Folder of `.wasm` plugins (relative to the config file).
    pub plugins_dir: Option<PathBuf>,
    /// Folder for precompiled artifacts (relative to the config file).
    pub cache_dir: Option<PathBuf>,
    /// Log filter for stderr, e.g. `info` or `capsule=debug`.
    pub log_level: Option<String>,
    /// Engine-wide settings.
    #[serde(default)]
    pub runtime: RawRuntime,
    /// How `capsule serve` talks to clients.
    #[serde(default)]
    pub server: server::RawServer,
    /// Default limits for every plugin.
    #[serde(default)]
    pub limits: RawLimits,
    /// Upper bounds no plugin's limits may exceed, whatever its policy or profile says, and
    /// the grants a sidecar policy may take without `capsule approve`.
    #[serde(default)]
    pub ceiling: RawCeiling,
    /// Whether sidecar policies get every grant they ask for without approval (off: they
    /// need `[plugins.NAME]` or a covering `[ceiling]`; see [`crate::trust`]).
    #[serde(default)]
    pub trust_sidecars: bool,
    /// Per-plugin policy, by plugin name.
    #[serde(default)]
    pub plugins: BTreeMap<String, RawPolicy>,
    /// Named policy fragments that plugins build on (`profiles = ["readonly-fs"]`).
    #[serde(default)]
    pub profiles: BTreeMap<String, RawPolicy>,
    /// Named secrets: literal values or `${VAR}` references to the host environment.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// A TOML file of more named secrets (`name = "value"`), kept out of the main config,
    /// e.g. mounted from a secret store. Relative to the config file.
    pub secrets_file: Option<PathBuf>,
}

/// `[runtime]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawRuntime {
    /// See [`RuntimeSettings::max_concurrent_calls`].
    pub max_concurrent_calls: Option<u32>,
    /// See [`RuntimeSettings::max_queued_calls`].
    pub max_queued_calls: Option<u32>,
    /// See [`RuntimeSettings::max_calls_per_plugin`].
    pub max_calls_per_plugin: Option<u32>,
    /// See [`RuntimeSettings::memory_ceiling`].
    pub memory_ceiling: Option<ByteSize>,
    /// See [`RuntimeSettings::max_wasm_stack`].
    pub max_wasm_stack: Option<ByteSize>,
}

/// Engine-wide settings (shared by every plugin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeSettings {
    /// Calls running at once, over all plugins and clients. Also sizes the instance pool.
    pub max_concurrent_calls: u32,
    /// Calls allowed to wait for a slot; beyond that a call fails at once with "busy".
    pub max_queued_calls: u32,
    /// Calls of one plugin running at once, so one slow plugin cannot hold every slot.
    /// Defaults to half of `max_concurrent_calls` (at least 1).
    pub max_calls_per_plugin: u32,
    /// The most memory any one linear memory may have; no plugin limit may exceed it.
    pub memory_ceiling: ByteSize,
    /// WebAssembly stack size for every call.
    pub max_wasm_stack: ByteSize,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        Self {
            max_concurrent_calls: 64,
            max_queued_calls: 1024,
            max_calls_per_plugin: 32,
            memory_ceiling: ByteSize::mib(512),
            max_wasm_stack: ByteSize::kib(512),
        }
    }
}

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
    /// `capsule serve --transport`, `--host`, `--port`, ….
    pub server: ServerOverrides,
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
}

impl Settings {
    /// Reads the config file (the one named in `overrides`, else `./capsule.toml` if it
    /// exists) and applies the overrides.
    pub fn load(overrides: Overrides) -> Result<Self, ConfigError> {
        let cwd = std::env::current_dir().map_err(|reason| ConfigError::Read {
            path: PathBuf::from("."),
            reason,
        })?;
        let file = match &overrides.config_file {
            Some(path) => Some(cwd.join(path)),
            None => Some(cwd.join(DEFAULT_CONFIG_FILE)).filter(|p| p.is_file()),
        };
        let raw = match &file {
            Some(path) => parse_file(path)?,
            None => RawConfig::default(),
        };
        Self::resolve(raw, file, &cwd, overrides)
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

        let defaults = RuntimeSettings::default();
        let max_concurrent_calls = raw
            .runtime
            .max_concurrent_calls
            .unwrap_or(defaults.max_concurrent_calls);
        let runtime = RuntimeSettings {
            max_concurrent_calls,
            max_queued_calls: raw
                .runtime
                .max_queued_calls
                .unwrap_or(defaults.max_queued_calls),
            max_calls_per_plugin: raw
                .runtime
                .max_calls_per_plugin
                .unwrap_or((max_concurrent_calls / 2).max(1)),
            memory_ceiling: raw
                .runtime
                .memory_ceiling
                .unwrap_or(defaults.memory_ceiling),
            max_wasm_stack: raw
                .runtime
                .max_wasm_stack
                .unwrap_or(defaults.max_wasm_stack),
        };
        bounds::check(
            "runtime.max-concurrent-calls",
            runtime.max_concurrent_calls,
            bounds::CONCURRENT_CALLS,
        )
        .and_then(|()| {
            bounds::check(
                "runtime.max-queued-calls",
                runtime.max_queued_calls,
                bounds::QUEUED_CALLS,
            )
        })
        .and_then(|()| {
            bounds::check(
                "runtime.max-calls-per-plugin",
                runtime.max_calls_per_plugin,
                (1, runtime.max_concurrent_calls),
            )
        })
        .and_then(|()| {
            bounds::check(
                "runtime.memory-ceiling",
                runtime.memory_ceiling,
                bounds::MEMORY_CEILING,
            )
        })
        .and_then(|()| {
            bounds::check(
                "runtime.max-wasm-stack",
                runtime.max_wasm_stack,
                bounds::WASM_STACK,
            )
        })
        .map_err(|m| invalid("runtime", m))?;
        bounds::check_reservation(
            runtime.max_concurrent_calls,
            RESERVED_INSTANCES,
            runtime.memory_ceiling,
        )
        .map_err(|m| invalid("runtime", m))?;

        let server = raw
            .server
            .resolve(&overrides.server)
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
        for (name, profile) in &raw.profiles {
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
            default_limits,
            plugins,
            warnings,
            profiles: raw.profiles,
            ceiling,
            grant_ceiling,
            trust_sidecars: raw.trust_sidecars,
            secrets,
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
                PluginPolicy::deny_all(self.default_limits.clone()),
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
        let base = sidecar.parent().unwrap_or(Path::new("."));
        let mut merged = raw.merged("", &self.profiles).map_err(invalid)?;
        let mut warnings = trust::only_lower(&mut merged, &self.default_limits, sidecar, name);
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

/// Reads a secrets file. Errors give the line but never quote it: it may hold a secret.
fn parse_secrets_file(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|reason| ConfigError::Read {
        path: path.to_path_buf(),
        reason,
    })?;
    toml::from_str(&text).map_err(|err| {
        let line = err
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        ConfigError::Parse {
            path: path.to_path_buf(),
            message: format!(
                "line {}: {}; write one `name = \"value\"` per line",
                line.map_or("?".to_string(), |l| l.to_string()),
                err.message()
            ),
        }
    })
}

/// Parses a config file into its raw form.
pub fn parse_file(path: &Path) -> Result<RawConfig, ConfigError> {
    parse_toml(path)
}

/// Reads and parses a TOML file into `T`; errors name the file, line and column.
pub(crate) fn parse_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|reason| ConfigError::Read {
        path: path.to_path_buf(),
        reason,
    })?;
    toml::from_str(&text).map_err(|err| ConfigError::Parse {
        path: path.to_path_buf(),
        message: err.to_string(),
    })
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
mod tests {
    use super::*;

    fn resolve(text: &str, overrides: Overrides) -> Result<Settings, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|err| ConfigError::Parse {
            path: "capsule.toml".into(),
            message: err.to_string(),
        })?;
        Settings::resolve(
            raw,
            Some(PathBuf::from("/etc/capsule/capsule.toml")),
            Path::new("/work"),
            overrides,
        )
    }

    #[test]
    fn cli_overrides_win_over_the_file_and_paths_resolve_from_their_origin() {
        let s = resolve("plugins-dir = \"tools\"", Overrides::default()).unwrap();
        assert_eq!(s.plugins_dir, PathBuf::from("/etc/capsule/tools"));
        let s = resolve(
            "plugins-dir = \"tools\"",
            Overrides {
                plugins_dir: Some("mine".into()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(s.plugins_dir, PathBuf::from("/work/mine"));
    }

    #[test]
    fn plugin_limits_inherit_the_defaults() {
        let s = resolve(
            "[limits]\nfuel = 100\n[plugins.text.limits]\ntimeout = \"1s\"\n",
            Overrides::default(),
        )
        .unwrap();
        let nowhere = Path::new("/nonexistent/plugins/x.wasm");
        let (policy, _) = s.policy("text", nowhere).unwrap();
        assert_eq!(policy.limits.fuel, 100);
        assert_eq!(policy.limits.timeout, std::time::Duration::from_secs(1));
        assert_eq!(s.policy("other", nowhere).unwrap().0.limits.fuel, 100);
    }

    #[test]
    fn unknown_keys_point_at_line_and_column() {
        let err = resolve("[plugins.text]\nlimts = {}\n", Overrides::default()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("line 2, column 1"), "{text}");
        assert!(text.contains("unknown field `limts`"), "{text}");
    }

    #[test]
    fn plugin_memory_above_the_ceiling_is_rejected_with_its_key() {
        let settings = resolve(
            "[runtime]\nmemory-ceiling = \"256MiB\"\n[plugins.big.limits]\nmemory = \"1GiB\"\n",
            Overrides::default(),
        )
        .expect("one plugin's bad policy does not fail the whole config");
        let err = settings
            .policy("big", Path::new("/p/big.wasm"))
            .unwrap_err();
        assert_eq!(
            err,
            "invalid configuration in /etc/capsule/capsule.toml: plugins.big.limits: limits.memory = 1 GiB exceeds the runtime memory ceiling of 256 MiB; lower it or raise runtime.memory-ceiling"
        );
    }

    #[test]
    fn every_bound_is_checked_when_the_config_is_read() {
        let cases = [
            (
                "[runtime]\nmax-concurrent-calls = 10001",
                "runtime: runtime.max-concurrent-calls = 10001 is out of range; allowed: 1 to 10000",
            ),
            (
                "[runtime]\nmax-queued-calls = 1000001",
                "runtime: runtime.max-queued-calls = 1000001 is out of range; allowed: 0 to 1000000",
            ),
            (
                "[runtime]\nmemory-ceiling = \"8GiB\"",
                "runtime: runtime.memory-ceiling = 8 GiB is out of range; allowed: 1 MiB to 4 GiB",
            ),
            (
                "[runtime]\nmax-wasm-stack = \"1KiB\"",
                "runtime: runtime.max-wasm-stack = 1 KiB is out of range; allowed: 64 KiB to 64 MiB",
            ),
            (
                "[runtime]\nmax-concurrent-calls = 2000\nmemory-ceiling = \"512MiB\"",
                "runtime: (max-concurrent-calls 2000 + 4) × 2 × memory-ceiling 512 MiB reserves more than 1024 GiB of virtual memory; lower runtime.max-concurrent-calls or runtime.memory-ceiling",
            ),
            (
                "[limits]\nfuel = 0",
                "limits: limits.fuel = 0 is out of range; allowed: 1 to 10000000000000",
            ),
            (
                "[limits]\nfuel = 10000000000001",
                "limits: limits.fuel = 10000000000001 is out of range; allowed: 1 to 10000000000000",
            ),
            (
                "[limits]\ntimeout = 0",
                "limits: limits.timeout = 0ms is out of range; allowed: 1ms to 86400s",
            ),
            (
                "[limits]\ntimeout = \"1441m\"",
                "limits: limits.timeout = 86460s is out of range; allowed: 1ms to 86400s",
            ),
            (
                "[limits]\nmemory = \"1KiB\"",
                "limits: limits.memory must be at least 64KiB (one WebAssembly page)",
            ),
            (
                "[limits]\ntable-elements = 0",
                "limits: limits.table-elements = 0 is out of range; allowed: 1 to 200000",
            ),
            (
                "[limits]\ntable-elements = 200001",
                "limits: limits.table-elements = 200001 is out of range; allowed: 1 to 200000",
            ),
            (
                "[runtime]\nmax-concurrent-calls = 4\nmax-calls-per-plugin = 5",
                "runtime: runtime.max-calls-per-plugin = 5 is out of range; allowed: 1 to 4",
            ),
            (
                "[limits]\ninstances = 0",
                "limits: limits.instances = 0 is out of range; allowed: 1 to 32",
            ),
            (
                "[limits]\ninstances = 33",
                "limits: limits.instances = 33 is out of range; allowed: 1 to 32",
            ),
            (
                "[limits]\nresult = 10",
                "limits: limits.result = 10 bytes is out of range; allowed: 1 KiB to 256 MiB",
            ),
            (
                "[limits]\nresult = \"1GiB\"",
                "limits: limits.result = 1 GiB is out of range; allowed: 1 KiB to 256 MiB",
            ),
            (
                "[limits]\nlog-output = \"65MiB\"",
                "limits: limits.log-output = 65 MiB is out of range; allowed: 0 bytes to 64 MiB",
            ),
        ];
        for (text, expected) in cases {
            let err = resolve(text, Overrides::default()).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid configuration in /etc/capsule/capsule.toml: {expected}"),
                "{text}"
            );
        }
        for (text, expected) in [
            (
                "timeout = \"61m\"",
                "plugins.x.net: net.timeout = 3660s is out of range; allowed: 1ms to 3600s",
            ),
            (
                "max-response = \"2GiB\"",
                "plugins.x.net: net.max-response = 2 GiB is out of range; allowed: 0 bytes to 1 GiB",
            ),
        ] {
            let settings =
                resolve(&format!("[plugins.x.net]\n{text}"), Overrides::default()).unwrap();
            let err = settings.policy("x", Path::new("/p/x.wasm")).unwrap_err();
            assert_eq!(
                err,
                format!("invalid configuration in /etc/capsule/capsule.toml: {expected}")
            );
        }
    }

    #[test]
    fn the_grants_of_profiles_a_sidecar_names_are_withheld_too() {
        let dir = std::env::temp_dir().join(format!("capsule-sidecar-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sidecar = dir.join("x.toml");
        std::fs::write(
            &sidecar,
            "profiles = [\"wide\"]\nconfig = { mode = \"sidecar\" }\nlimits.fuel = 5\n",
        )
        .unwrap();
        let text =
            "[profiles.wide]\nenv.set = { TOKEN = \"t\" }\nnet.allow = [\"api.example.com\"]\n";
        let settings = resolve(text, Overrides::default()).unwrap();
        let (policy, warnings) = settings.policy("x", &dir.join("x.wasm")).unwrap();
        assert!(policy.env.is_empty() && !policy.has_network(), "{policy:?}");
        assert!(policy.profiles.is_empty(), "no profile is shown as applied");
        assert_eq!(policy.config_value("mode").as_deref(), Some("sidecar"));
        assert_eq!(policy.limits.fuel, 5, "lowering a limit needs no approval");
        assert_eq!(
            policy.withheld.as_deref(),
            Some(format!(
                "net api.example.com, env TOKEN (asked for by {}; approve with `capsule approve x`)",
                sidecar.display()
            )
            .as_str())
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");

        let trusted = resolve(
            &format!("trust-sidecars = true\n{text}"),
            Overrides::default(),
        )
        .unwrap();
        let (policy, warnings) = trusted.policy("x", &dir.join("x.wasm")).unwrap();
        assert_eq!(*policy.env, [("TOKEN".to_string(), "t".to_string())]);
        assert!(policy.has_network() && policy.withheld.is_none() && warnings.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
