//! A plugin's policy: what it may touch and how much it may use. Written under
//! `[plugins.NAME]` (optionally building on named `[profiles.NAME]`), resolved here into
//! one [`PluginPolicy`] by the capability modules, each checking its own part.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::auth::access::{Access, RawToolPolicy};
use crate::auth::rate::RateLimit;
use crate::bounds;
use crate::capability::env::RawEnv;
use crate::capability::fs::{Mode, Mounts, RawFs};
use crate::capability::isolation::{Isolation, IsolationMode};
use crate::capability::limits::{Limits, RawLimits};
use crate::capability::net::{NetPolicy, RawNet};
use crate::capability::secrets::{self, Secret};
use crate::config::breaker::{BreakerSettings, RawBreaker};
use crate::units::{ByteSize, deserialize_duration};

/// `[plugins.NAME]` or `[profiles.NAME]` as written.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawPolicy {
    /// Profiles this policy builds on, in order; its own settings come last and win.
    #[serde(default)]
    pub profiles: Vec<String>,
    /// Overrides of the default limits.
    #[serde(default)]
    pub limits: RawLimits,
    /// Host folders mounted into the plugin.
    #[serde(default)]
    pub fs: RawFs,
    /// Hosts the plugin may reach over HTTP.
    #[serde(default)]
    pub net: RawNet,
    /// Environment variables the plugin sees.
    #[serde(default)]
    pub env: RawEnv,
    /// Names of `[secrets]` the plugin may read with `host.config(name)`.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Settings the plugin reads with `host.config(key)`.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Whether the plugin may learn who calls it (the HTTP principal's name and scopes,
    /// never the token) with `host.caller()`.
    #[schemars(extend("default" = false))]
    pub caller_identity: Option<bool>,
    /// "per-call": a fresh instance for every call; "reuse": the plugin keeps nothing between calls, so an instance may serve several calls of one caller, one at a time (faster for big guests; docs/isolation.md).
    #[schemars(extend("default" = "per-call"))]
    pub isolation: Option<IsolationMode>,
    /// With isolation = "reuse": calls one instance serves before a fresh one replaces it (1 to 1000000).
    #[schemars(extend("default" = 1000))]
    pub reuse_calls: Option<u32>,
    /// With isolation = "reuse": how long an instance nobody calls is kept (10ms to 24h).
    #[serde(default, deserialize_with = "deserialize_duration")]
    #[schemars(with = "Option<crate::units::DurationText>", extend("default" = "60s"))]
    pub reuse_idle: Option<std::time::Duration>,
    /// Scopes any one of which lets an HTTP caller call this plugin's tools (default: `[authorization] default-tool-scopes`); ignored in a sidecar.
    pub scopes: Option<Vec<String>>,
    /// Calls of each of this plugin's tools over all callers and transports, e.g. "5/s" or "5/s burst 10" (each tool its own bucket).
    pub rate_limit: Option<RateLimit>,
    /// Settings of single tools, by the plugin's own tool name: `scopes`, `rate-limit`.
    #[serde(default)]
    pub tools: BTreeMap<String, RawToolPolicy>,
    /// This plugin's circuit breaker, over `[runtime.breaker]`; ignored in a sidecar.
    #[serde(default)]
    pub breaker: RawBreaker,
    /// Where the plugin comes from instead of `NAME.wasm` in the plugins folder: `oci://REGISTRY/REPO:TAG[@sha256:…]` or `https://…` (with `sha256`). Only in `[plugins.NAME]`.
    pub source: Option<String>,
    /// The sha256 the plugin's `.wasm` must have (`sha256:…`); any other is refused. Only in `[plugins.NAME]`.
    pub sha256: Option<String>,
    /// Refuse this `oci://` plugin unless a cosign signature by `[distribution] public-key` signs it (default: `[distribution] require-signature`). Only in `[plugins.NAME]`.
    pub require_signature: Option<bool>,
}

impl RawPolicy {
    /// The distribution keys set here (`source`, `sha256`, `require-signature`), which only
    /// a `[plugins.NAME]` entry of `capsule.toml` may set.
    pub fn distribution_keys(&self) -> Vec<&'static str> {
        [
            ("source", self.source.is_some()),
            ("sha256", self.sha256.is_some()),
            ("require-signature", self.require_signature.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect()
    }
}

/// The resolved policy of one plugin.
#[derive(Debug, Clone)]
pub struct PluginPolicy {
    /// Limits of each call.
    pub limits: Limits,
    /// Mounted folders.
    pub mounts: Arc<Mounts>,
    /// Outgoing HTTP grant.
    pub net: Arc<NetPolicy>,
    /// Environment variables.
    pub env: Arc<Vec<(String, String)>>,
    /// Values of `host.config(key)`.
    pub settings: Arc<BTreeMap<String, String>>,
    /// Secrets granted to this plugin, also read with `host.config(name)`.
    pub secrets: Arc<BTreeMap<String, Secret>>,
    /// Whether `host.caller()` tells it who calls (`caller-identity`).
    pub caller_identity: bool,
    /// Whether its calls each get a fresh instance or reuse one (`isolation`).
    pub isolation: Isolation,
    /// The profiles it was built from.
    pub profiles: Vec<String>,
    /// Grants its sidecar asks for that the operator has not approved, in words, with how
    /// to approve them (see [`crate::trust`]).
    pub withheld: Option<String>,
    /// The scopes and rate limits of its tools.
    pub access: Arc<Access>,
    /// Its circuit breaker's settings that differ from `[runtime.breaker]` (checked).
    pub breaker: RawBreaker,
}

impl PluginPolicy {
    /// The policy of a plugin nobody configured: default limits, no grants, the default
    /// scopes.
    pub fn deny_all(limits: Limits, default_scopes: &[String]) -> Self {
        Self {
            limits,
            mounts: Arc::default(),
            net: Arc::default(),
            env: Arc::default(),
            settings: Arc::default(),
            secrets: Arc::default(),
            caller_identity: false,
            isolation: Isolation::PerCall,
            profiles: Vec::new(),
            withheld: None,
            access: Arc::new(Access::default_for(default_scopes)),
            breaker: RawBreaker::default(),
        }
    }

    /// `host.config(key)`: a setting, else a granted secret.
    pub fn config_value(&self, key: &str) -> Option<String> {
        self.settings
            .get(key)
            .cloned()
            .or_else(|| self.secrets.get(key).map(|s| s.expose().to_string()))
    }

    /// Whether any mount is writable.
    pub fn can_write(&self) -> bool {
        self.mounts.iter().any(|m| m.mode == Mode::ReadWrite)
    }

    /// Whether it may reach the network.
    pub fn has_network(&self) -> bool {
        !self.net.rules.is_empty() || !self.net.tcp.is_empty()
    }

    /// The grants, one line each, for `capsule list` and `capsule check`. Secret values
    /// are never shown, only their names.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = vec![format!("limits: {}", self.limits.summary())];
        if !self.profiles.is_empty() {
            lines.push(format!("profiles: {}", self.profiles.join(", ")));
        }
        for mount in self.mounts.iter() {
            lines.push(format!("fs: {}", crate::capability::fs::describe(mount)));
        }
        if self.has_network() {
            lines.push(format!("net: {}", self.net.describe()));
        }
        if !self.env.is_empty() {
            let names: Vec<&str> = self.env.iter().map(|(n, _)| n.as_str()).collect();
            lines.push(format!("env: {}", names.join(", ")));
        }
        if !self.secrets.is_empty() {
            let names: Vec<&str> = self.secrets.keys().map(String::as_str).collect();
            lines.push(format!("secrets: {}", names.join(", ")));
        }
        if self.caller_identity {
            lines.push("caller identity: the HTTP caller's name and scopes".into());
        }
        if self.mounts.is_empty()
            && !self.has_network()
            && self.env.is_empty()
            && self.secrets.is_empty()
            && !self.caller_identity
        {
            lines.push("grants: none (no files, network, environment or secrets)".into());
        }
        if let Isolation::Reuse(reuse) = &self.isolation {
            lines.push(reuse.describe());
        }
        if let Some(withheld) = &self.withheld {
            lines.push(format!("withheld: {withheld}"));
        }
        lines.extend(self.access.describe());
        lines
    }
}

/// What resolving needs besides the policy itself.
pub struct Context<'a> {
    /// The limits of plugins without their own.
    pub default_limits: &'a Limits,
    /// No plugin's memory limit may exceed it.
    pub memory_ceiling: ByteSize,
    /// The operator's `[ceiling]`: no plugin's limits may exceed it.
    pub ceiling: &'a RawLimits,
    /// Folder that relative paths are relative to (the config file's).
    pub base: &'a Path,
    /// The defined profiles.
    pub profiles: &'a BTreeMap<String, RawPolicy>,
    /// The defined secrets.
    pub secrets: &'a secrets::Defined,
    /// Reads the host's environment.
    pub host_env: &'a dyn Fn(&str) -> Option<String>,
    /// The scopes of tools whose policy names none (`[authorization] default-tool-scopes`).
    pub default_scopes: &'a [String],
}

/// A resolved policy plus what deserves a warning.
pub struct Resolved {
    /// The policy.
    pub policy: PluginPolicy,
    /// e.g. listed host variables that are not set.
    pub warnings: Vec<String>,
}

impl RawPolicy {
    /// Resolves a policy: its profiles in order, then its own settings. Errors are
    /// `(key, message)`, the key as written in its file: `prefix` is `plugins.NAME.` in
    /// `capsule.toml` and empty in a sidecar file.
    pub fn resolve(&self, prefix: &str, cx: &Context<'_>) -> Result<Resolved, (String, String)> {
        self.merged(prefix, cx.profiles)?.resolve_merged(prefix, cx)
    }

    /// This policy with the profiles it names merged in, in order, its own settings last:
    /// limits, settings, scopes and rate limits override (per tool for `tools`), mounts,
    /// hosts, variables and secrets add up. The result keeps the profile names (for
    /// display) but needs no profile to resolve.
    pub fn merged(
        &self,
        prefix: &str,
        profiles: &BTreeMap<String, RawPolicy>,
    ) -> Result<RawPolicy, (String, String)> {
        let mut layers: Vec<&RawPolicy> = Vec::new();
        for profile in &self.profiles {
            let Some(layer) = profiles.get(profile) else {
                let defined: Vec<&str> = profiles.keys().map(String::as_str).collect();
                return Err((
                    format!("{prefix}profiles"),
                    format!(
                        "no profile named `{profile}`; define [profiles.{profile}] (defined: {})",
                        crate::units::list_or_none(&defined)
                    ),
                ));
            };
            layers.push(layer);
        }
        layers.push(self);
        let mut merged = RawPolicy {
            profiles: self.profiles.clone(),
            ..RawPolicy::default()
        };
        for layer in layers {
            merged.limits = layer.limits.over(&merged.limits);
            merged.fs.mounts.extend(layer.fs.mounts.iter().cloned());
            let net = &mut merged.net;
            net.allow.extend(layer.net.allow.iter().cloned());
            net.allow_private
                .extend(layer.net.allow_private.iter().cloned());
            net.hosts.extend(layer.net.hosts.clone());
            net.tcp.extend(layer.net.tcp.iter().cloned());
            net.timeout = layer.net.timeout.or(net.timeout);
            net.max_response = layer.net.max_response.or(net.max_response);
            merged.env.pass.extend(layer.env.pass.iter().cloned());
            merged.env.set.extend(layer.env.set.clone());
            merged.secrets.extend(layer.secrets.iter().cloned());
            merged.config.extend(layer.config.clone());
            merged.caller_identity = layer.caller_identity.or(merged.caller_identity);
            merged.isolation = layer.isolation.or(merged.isolation);
            merged.reuse_calls = layer.reuse_calls.or(merged.reuse_calls);
            merged.reuse_idle = layer.reuse_idle.or(merged.reuse_idle);
            merged.scopes = layer.scopes.clone().or(merged.scopes);
            merged.rate_limit = layer.rate_limit.or(merged.rate_limit);
            merged.breaker = merged.breaker.under(&layer.breaker);
            for (tool, settings) in &layer.tools {
                let entry = merged.tools.entry(tool.clone()).or_default();
                *entry = entry.under(settings);
            }
        }
        Ok(merged)
    }

    /// Resolves a policy whose profiles are already [merged](Self::merged) in.
    pub fn resolve_merged(
        &self,
        prefix: &str,
        cx: &Context<'_>,
    ) -> Result<Resolved, (String, String)> {
        let key = |part: &str| format!("{prefix}{part}");
        let limits = self.limits.apply_to(cx.default_limits);
        limits
            .validate(cx.memory_ceiling)
            .and_then(|()| limits.check_ceiling(cx.ceiling))
            .map_err(|m| (key("limits"), m))?;
        let mounts = self.fs.resolve(cx.base).map_err(|m| (key("fs"), m))?;
        let isolation = Isolation::resolve(self.isolation, self.reuse_calls, self.reuse_idle)
            .map_err(|(part, m)| (key(part), m))?;
        if let Some(timeout) = self.net.timeout {
            bounds::check_duration("net.timeout", timeout, bounds::NET_TIMEOUT)
                .map_err(|m| (key("net"), m))?;
        }
        if let Some(size) = self.net.max_response {
            bounds::check("net.max-response", size, bounds::NET_RESPONSE)
                .map_err(|m| (key("net"), m))?;
        }
        let net = self.net.resolve().map_err(|m| (key("net"), m))?;
        self.breaker
            .apply_to(&BreakerSettings::default(), &key("breaker."))?;
        let env = self.env.resolve(cx.host_env).map_err(|m| (key("env"), m))?;
        let mut secret_names = self.secrets.clone();
        secret_names.sort();
        secret_names.dedup();
        let secrets = secrets::grant(&secret_names, cx.secrets).map_err(|m| (key("secrets"), m))?;
        let access = Access::resolve(
            self.scopes.as_deref(),
            self.rate_limit,
            &self.tools,
            cx.default_scopes,
            prefix,
        )?;
        let warnings = env
            .missing
            .into_iter()
            .map(|var| {
                format!(
                    "{}: host variable {var} is not set, so the plugin does not get it",
                    key("env.pass")
                )
            })
            .collect();
        Ok(Resolved {
            policy: PluginPolicy {
                limits,
                mounts: Arc::new(mounts),
                net: Arc::new(net),
                env: Arc::new(env.vars),
                settings: Arc::new(self.config.clone()),
                secrets: Arc::new(secrets),
                caller_identity: self.caller_identity.unwrap_or(false),
                isolation,
                profiles: self.profiles.clone(),
                withheld: None,
                access: Arc::new(access),
                breaker: self.breaker.clone(),
            },
            warnings,
        })
    }
}
