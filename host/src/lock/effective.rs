//! The effective configuration as the lock sees it: every resolved setting that changes
//! what a plugin may do or how calls run, by its key in `capsule.toml`. Paths of the
//! plugins and cache folders and the log filter are left out (they differ between a build
//! machine and production without changing behaviour); secrets appear by name only.
//! A plugin's own policy is locked in its plugin section.

use std::collections::BTreeMap;

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
        ("runtime.memory-ceiling", r.memory_ceiling.to_string()),
        ("runtime.max-wasm-stack", r.max_wasm_stack.to_string()),
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
        ("audit.tool-calls", s.audit.tool_calls.to_string()),
        ("audit.arguments", s.audit.arguments.to_string()),
    ]);
    if !s.secrets.is_empty() {
        let names: Vec<&str> = s.secrets.keys().map(String::as_str).collect();
        entries.insert("secrets", names.join(", "));
    }
    entries
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// `[server]`: how clients reach the tools and what the HTTP edge refuses.
fn server(s: &ServerSettings) -> [(&'static str, String); 16] {
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
    ]
}
