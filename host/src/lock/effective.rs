//! The effective configuration as the lock sees it: every resolved setting that changes
//! what a plugin may do or how calls run, by its key in `capsule.toml`. Paths of the
//! plugins and cache folders and the log filter are left out (they differ between a build
//! machine and production without changing behaviour); secrets appear by name only.
//! A plugin's own policy is locked in its plugin section. A unit test fails when a key of
//! `capsule.toml` is neither recorded here nor excluded with a reason, so a new section
//! cannot slip past `serve --locked`.

use std::collections::BTreeMap;

use crate::config::auth::{AuthSettings, KeySource};
use crate::config::{ServerSettings, Settings};
use crate::units::format_duration;

use super::state::{LockedConfig, sha256};

/// The locked view of `settings`.
pub(super) fn config(settings: &Settings) -> LockedConfig {
    let settings = entries(settings);
    LockedConfig {
        digest: digest(&settings),
        settings,
    }
}

/// `sha256:` of one `key = value` line per setting, in key order.
pub(super) fn digest(settings: &BTreeMap<String, String>) -> String {
    let canonical: String = settings
        .iter()
        .map(|(key, value)| format!("{key} = {value}\n"))
        .collect();
    sha256(canonical.as_bytes())
}

fn entries(s: &Settings) -> BTreeMap<String, String> {
    let r = &s.runtime;
    let o = &r.outbound;
    let l = &s.default_limits;
    let mut entries = BTreeMap::from([
        (
            "runtime.max-concurrent-calls",
            r.max_concurrent_calls.to_string(),
        ),
        ("runtime.max-queued-calls", r.max_queued_calls.to_string()),
        (
            "runtime.max-calls-per-plugin",
            r.max_calls_per_plugin.to_string(),
        ),
        ("runtime.demote-after", r.demote_after.to_string()),
        (
            "runtime.max-warm-instances",
            r.max_warm_instances.to_string(),
        ),
        ("runtime.compiler", r.compiler.to_string()),
        ("runtime.memory-ceiling", r.memory_ceiling.to_string()),
        ("runtime.max-wasm-stack", r.max_wasm_stack.to_string()),
        ("runtime.breaker.enabled", r.breaker.enabled.to_string()),
        (
            "runtime.breaker.consecutive-faults",
            r.breaker.consecutive_faults.to_string(),
        ),
        (
            "runtime.breaker.fault-percent",
            r.breaker.fault_percent.to_string(),
        ),
        ("runtime.breaker.window", format_duration(r.breaker.window)),
        ("runtime.breaker.min-calls", r.breaker.min_calls.to_string()),
        (
            "runtime.breaker.cool-down",
            format_duration(r.breaker.cool_down),
        ),
        (
            "runtime.breaker.open-tools",
            r.breaker.open_tools.to_string(),
        ),
        ("runtime.outbound.retries", o.retries.to_string()),
        (
            "runtime.outbound.retry-base-delay",
            format_duration(o.retry_base_delay),
        ),
        (
            "runtime.outbound.retry-max-delay",
            format_duration(o.retry_max_delay),
        ),
        (
            "runtime.outbound.retry-budget-percent",
            o.retry_budget_percent.to_string(),
        ),
        (
            "runtime.outbound.retry-budget-min",
            o.retry_budget_min.to_string(),
        ),
        (
            "runtime.outbound.retry-budget-window",
            format_duration(o.retry_budget_window),
        ),
        (
            "runtime.outbound.max-connections-per-host",
            o.max_connections_per_host.to_string(),
        ),
        ("limits.fuel", l.fuel.to_string()),
        ("limits.timeout", format_duration(l.timeout)),
        ("limits.memory", l.memory.to_string()),
        ("limits.table-elements", l.table_elements.to_string()),
        ("limits.instances", l.instances.to_string()),
        ("limits.result", l.result.to_string()),
        ("limits.log-output", l.log_output.to_string()),
        ("trust-sidecars", s.trust_sidecars.to_string()),
    ]);
    let c = &s.ceiling;
    let ceiling = [
        ("ceiling.fuel", c.fuel.map(|v| v.to_string())),
        ("ceiling.timeout", c.timeout.map(format_duration)),
        ("ceiling.memory", c.memory.map(|v| v.to_string())),
        (
            "ceiling.table-elements",
            c.table_elements.map(|v| v.to_string()),
        ),
        ("ceiling.instances", c.instances.map(|v| v.to_string())),
        ("ceiling.result", c.result.map(|v| v.to_string())),
        ("ceiling.log-output", c.log_output.map(|v| v.to_string())),
    ];
    entries.extend(ceiling.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
    let grants = s.grant_ceiling.items();
    if !grants.is_empty() {
        entries.insert("ceiling.grants", grants.join(", "));
    }
    entries.extend(server(&s.server));
    // What the audit log records (its file differs between machines, like the folders).
    entries.extend([
        ("audit.enabled", s.audit.enabled.to_string()),
        // Whether /metrics is served (its own listener's address is machine-specific).
        ("metrics.enabled", s.metrics.enabled.to_string()),
        ("audit.tool-calls", s.audit.tool_calls.to_string()),
        ("audit.arguments", s.audit.arguments.to_string()),
        (
            "audit.max-argument-bytes",
            s.audit.max_argument_bytes.to_string(),
        ),
        (
            "authorization.default-tool-scopes",
            s.default_tool_scopes.join(", "),
        ),
    ]);
    // Who may sign plugins from registries (the key by fingerprint: its path differs
    // between machines), and which registries are reached without TLS.
    let d = &s.distribution;
    entries.extend([
        (
            "distribution.require-signature",
            d.require_signature.to_string(),
        ),
        (
            "distribution.public-key",
            d.public_key
                .as_ref()
                .map_or("none".into(), |k| k.fingerprint.to_string()),
        ),
        (
            "distribution.insecure-registries",
            d.insecure_registries.join(", "),
        ),
    ]);
    if let Some(limit) = &s.per_principal_rate_limit {
        entries.insert("rate-limits.per-principal", limit.to_string());
    }
    if let Some(auth_settings) = &s.auth {
        entries.extend(auth(auth_settings));
    }
    if !s.secrets.is_empty() {
        let names: Vec<&str> = s.secrets.keys().map(String::as_str).collect();
        entries.insert("secrets", names.join(", "));
    }
    entries
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// `[auth]`: who may call. Static tokens by name and scopes (a hash is a credential's
/// stand-in, not a setting: a rotated token is not a config change).
fn auth(a: &AuthSettings) -> Vec<(&'static str, String)> {
    let list = |items: &[String]| items.join(", ");
    let mut entries = vec![
        (
            "auth.resource",
            a.resource
                .clone()
                .unwrap_or_else(|| "from the listen address".into()),
        ),
        ("auth.authorization-servers", list(&a.authorization_servers)),
        ("auth.required-scopes", list(&a.required_scopes)),
        (
            "auth.tokens",
            a.tokens
                .iter()
                .map(|t| format!("{} ({})", t.name, t.scopes.join(" ")))
                .collect::<Vec<_>>()
                .join(", "),
        ),
    ];
    if let Some(jwt) = &a.jwt {
        let keys = match &jwt.keys {
            KeySource::Url(url) => ("auth.jwt.jwks-url", url.to_string()),
            KeySource::File(path) => ("auth.jwt.key-file", path.display().to_string()),
        };
        let algorithms: Vec<String> = jwt.algorithms.iter().map(|a| a.to_string()).collect();
        entries.extend([
            ("auth.jwt.issuer", jwt.issuer.clone()),
            ("auth.jwt.audience", jwt.audience.clone()),
            keys,
            ("auth.jwt.algorithms", algorithms.join(", ")),
            ("auth.jwt.leeway", format_duration(jwt.leeway)),
        ]);
    }
    entries
}

/// `[server]`: how clients reach the tools and what the HTTP edge refuses.
fn server(s: &ServerSettings) -> [(&'static str, String); 20] {
    let list = |items: &[String]| items.join(", ");
    [
        ("server.transport", s.transport.to_string()),
        ("server.host", s.host.to_string()),
        ("server.port", s.port.to_string()),
        ("server.path", s.path.clone()),
        ("server.stateless", s.stateless.to_string()),
        ("server.json-response", s.json_response.to_string()),
        (
            "server.session-idle-timeout",
            format_duration(s.session_idle_timeout),
        ),
        ("server.max-sessions", s.max_sessions.to_string()),
        (
            "server.max-requests-per-session",
            s.max_requests_per_session.to_string(),
        ),
        ("server.io-threads", s.io_threads.to_string()),
        ("server.max-body-size", s.max_body_size.to_string()),
        (
            "server.header-read-timeout",
            format_duration(s.header_read_timeout),
        ),
        (
            "server.body-read-timeout",
            format_duration(s.body_read_timeout),
        ),
        ("server.allowed-hosts", list(&s.allowed_hosts)),
        (
            "server.allowed-origins",
            s.allowed_origins
                .as_deref()
                .map_or("same host".into(), list),
        ),
        ("server.drain-timeout", format_duration(s.drain_timeout)),
        (
            "server.allow-unauthenticated",
            s.allow_unauthenticated.to_string(),
        ),
        ("server.degraded", s.degraded.to_string()),
        (
            "server.background-compile-above",
            s.background_compile_above.to_string(),
        ),
        ("server.list-wait", format_duration(s.list_wait)),
    ]
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::config::keys::keys;
    use crate::config::schema::json_schema;
    use crate::config::{Overrides, RawConfig};

    /// Keys whose value differs between a build machine and production without changing
    /// what plugins may do: not locked.
    const MACHINE_SPECIFIC: &[&str] = &[
        "audit.path",
        "cache-dir",
        "log-level",
        "metrics.addr",
        "plugins-dir",
        // Where and how spans are exported: observability only, per environment.
        "telemetry.export-interval",
        "telemetry.otlp-endpoint",
        "telemetry.sample-ratio",
        "telemetry.service",
    ];
    /// Keys that change when or how plugins are (re)loaded, never what a loaded one may
    /// do: with `--locked` a load accepts only the digests in the lock.
    const NOT_BEHAVIOUR: &[&str] = &["distribution.fetch-timeout", "server.watch"];
    /// Sections locked per plugin, in the plugin's own part of the lock.
    const PER_PLUGIN: &[&str] = &["plugins.", "profiles."];
    /// Keys the lock records under another name.
    const RECORDED_AS: &[(&str, &str)] = &[
        ("ceiling.env", "ceiling.grants"),
        ("ceiling.hosts", "ceiling.grants"),
        ("ceiling.mount-roots", "ceiling.grants"),
        ("ceiling.secrets", "ceiling.grants"),
        ("ceiling.tcp", "ceiling.grants"),
        ("ceiling.writable-mount-roots", "ceiling.grants"),
        ("secrets.NAME", "secrets"),
        ("auth.tokens.NAME.hash", "auth.tokens"),
        ("auth.tokens.NAME.scopes", "auth.tokens"),
        // One of the two sources of keys is set at a time.
        ("auth.jwt.key-file", "auth.jwt.jwks-url"),
        ("secrets-file", "secrets"),
    ];

    /// A config that sets every optional key the lock records only when set.
    const EVERY_OPTIONAL_KEY: &str = r#"
        [ceiling]
        fuel = 4000000000
        timeout = "1m"
        memory = "1GiB"
        table-elements = 1000000
        instances = 100
        result = "16MiB"
        log-output = "1MiB"
        hosts = ["example.com"]

        [secrets]
        TOKEN = "value"

        [rate-limits]
        per-principal = "20/s"

        [auth]
        resource = "https://mcp.example.com/mcp"

        [auth.jwt]
        issuer = "https://idp.example.com"
        audience = "https://mcp.example.com/mcp"
        jwks-url = "https://idp.example.com/jwks.json"
    "#;

    /// A new key in `capsule.toml` must either change the lock or say why not: otherwise
    /// `serve --locked` would accept a production config that differs in that key.
    #[test]
    fn every_key_of_the_config_is_locked_or_excluded_with_a_reason() {
        let raw: RawConfig = toml::from_str(EVERY_OPTIONAL_KEY).expect("valid config");
        let cwd = std::env::temp_dir();
        let settings =
            Settings::resolve(raw, None, &cwd, Overrides::default()).expect("config resolves");
        let locked: BTreeSet<String> = entries(&settings).into_keys().collect();
        let missing: Vec<String> = keys(&json_schema())
            .iter()
            .map(|key| key.dotted())
            .filter(|key| !MACHINE_SPECIFIC.contains(&key.as_str()))
            .filter(|key| !NOT_BEHAVIOUR.contains(&key.as_str()))
            .filter(|key| !PER_PLUGIN.iter().any(|p| key.starts_with(p)))
            .filter(|key| {
                let recorded = RECORDED_AS
                    .iter()
                    .find(|(k, _)| k == key)
                    .map_or(key.as_str(), |(_, as_)| as_);
                !locked.contains(recorded)
            })
            .collect();
        assert!(
            missing.is_empty(),
            "keys of capsule.toml that capsule.lock does not record: {missing:?}; add each to \
             `entries` in host/src/lock/effective.rs (and a value to EVERY_OPTIONAL_KEY if it is \
             recorded only when set), or to MACHINE_SPECIFIC with the reason"
        );
    }
}
