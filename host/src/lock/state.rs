//! What the lock records of each loaded plugin: file, digest, effective grants and limits,
//! settings, and a digest of each tool's descriptor.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::capability::fs;
use crate::capability::isolation::Isolation;
use crate::policy::PluginPolicy;
use crate::registry::ToolSet;
use crate::units::format_duration;

/// The effective configuration: each setting that changes behaviour, and their digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LockedConfig {
    /// `sha256:` of the canonical form of `settings` (one `key = value` line each, sorted).
    pub digest: String,
    /// The settings, by their key in `capsule.toml` (`runtime.max-concurrent-calls`).
    pub settings: BTreeMap<String, String>,
}

/// One plugin as locked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LockedPlugin {
    /// The `.wasm` file's name in the plugins folder.
    pub file: String,
    /// `sha256:` of the `.wasm`.
    pub sha256: String,
    /// Where a remote plugin is fetched from (`oci://…`, `https://…`); `file` is then
    /// the source too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Effective grants, one item each (`fs /docs -> /srv/docs (read-only)`,
    /// `net https://api.example.com:443`, `env TZ`, `secret API_TOKEN`), sorted.
    #[serde(default)]
    pub grants: Vec<String>,
    /// Effective limits of each call, with units (`memory = "128 MiB"`).
    pub limits: BTreeMap<String, String>,
    /// `host.config` settings of `[plugins.NAME.config]` (secrets are grants, by name).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub settings: BTreeMap<String, String>,
    /// Each exposed tool's name and the `sha256:` of its descriptor (name, description,
    /// input and output schemas, annotations) in canonical JSON.
    #[serde(default)]
    pub tools: BTreeMap<String, String>,
}

/// `sha256:HEX` of `bytes`.
pub(super) fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Every plugin of `tools`, by name.
pub(super) fn plugins(tools: &ToolSet) -> BTreeMap<String, LockedPlugin> {
    tools
        .plugins()
        .iter()
        .map(|plugin| {
            let exposed = tools
                .tools()
                .iter()
                .filter(|t| Arc::ptr_eq(&t.plugin, plugin))
                .map(|t| {
                    let descriptor = serde_json::to_value(&t.descriptor).unwrap_or(Value::Null);
                    (
                        t.exposed_name.clone(),
                        sha256(canonical(&descriptor).as_bytes()),
                    )
                })
                .collect();
            let file = match &plugin.source {
                Some(source) => source.clone(),
                None => plugin
                    .path
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            };
            let locked = LockedPlugin {
                file,
                sha256: format!("sha256:{}", plugin.digest),
                source: plugin.source.clone(),
                grants: grants(&plugin.policy),
                limits: limits(&plugin.policy),
                settings: (*plugin.policy.settings).clone(),
                tools: exposed,
            };
            (plugin.name.to_string(), locked)
        })
        .collect()
}

/// What the lock records of `policy`, one line each (grants, limits, settings): two
/// policies with equal items let a plugin do the same things (hot reload compares them).
pub fn policy_items(policy: &PluginPolicy) -> Vec<String> {
    let mut items = grants(policy);
    items.extend(
        limits(policy)
            .into_iter()
            .map(|(k, v)| format!("limit {k} = {v}")),
    );
    items.extend(
        policy
            .settings
            .iter()
            .map(|(k, v)| format!("setting {k} = {v}")),
    );
    items
}

/// The policy's grants, one item each, sorted. Secret and variable values are left out.
fn grants(policy: &PluginPolicy) -> Vec<String> {
    let mut items: Vec<String> = Vec::new();
    items.extend(
        policy
            .mounts
            .iter()
            .map(|m| format!("fs {}", fs::describe(m))),
    );
    items.extend(policy.net.rules.iter().map(|r| format!("net {r}")));
    items.extend(policy.net.tcp.iter().map(|a| format!("net tcp://{a}")));
    items.extend(
        policy
            .net
            .hosts
            .iter()
            .map(|(name, ip)| format!("net host {name} = {ip}")),
    );
    items.extend(policy.env.iter().map(|(name, _)| format!("env {name}")));
    items.extend(policy.secrets.keys().map(|name| format!("secret {name}")));
    if policy.caller_identity {
        items.push("caller-identity".into());
    }
    items.sort();
    items.dedup();
    items
}

/// The policy's limits by key, with units; the network's when it has any, and the
/// circuit breaker settings its own section sets.
fn limits(policy: &PluginPolicy) -> BTreeMap<String, String> {
    let l = &policy.limits;
    let mut limits = BTreeMap::from([
        ("fuel".to_string(), l.fuel.to_string()),
        ("timeout".to_string(), format_duration(l.timeout)),
        ("memory".to_string(), l.memory.to_string()),
        ("table-elements".to_string(), l.table_elements.to_string()),
        ("instances".to_string(), l.instances.to_string()),
        ("result".to_string(), l.result.to_string()),
        ("log-output".to_string(), l.log_output.to_string()),
    ]);
    if let Isolation::Reuse(reuse) = policy.isolation {
        limits.insert("reuse-calls".to_string(), reuse.calls.to_string());
        limits.insert("reuse-idle".to_string(), format_duration(reuse.idle));
    }
    if policy.has_network() {
        limits.insert(
            "net.timeout".to_string(),
            format_duration(policy.net.timeout),
        );
        limits.insert(
            "net.max-response".to_string(),
            policy.net.max_response.to_string(),
        );
    }
    // Only what `[plugins.NAME.breaker]` sets; the rest is `runtime.breaker.*` of the config.
    let b = &policy.breaker;
    let breaker = [
        ("breaker.enabled", b.enabled.map(|v| v.to_string())),
        (
            "breaker.consecutive-faults",
            b.consecutive_faults.map(|v| v.to_string()),
        ),
        (
            "breaker.fault-percent",
            b.fault_percent.map(|v| v.to_string()),
        ),
        ("breaker.window", b.window.map(format_duration)),
        ("breaker.min-calls", b.min_calls.map(|v| v.to_string())),
        ("breaker.cool-down", b.cool_down.map(format_duration)),
        ("breaker.open-tools", b.open_tools.map(|v| v.to_string())),
    ];
    limits.extend(
        breaker
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v))),
    );
    limits
}

/// `value` as compact JSON with every object's keys sorted, so equal values give equal text.
pub(super) fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&map[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"d":[{"y":1,"x":2}],"c":"s"}}"#)
            .expect("valid JSON");
        assert_eq!(
            canonical(&a),
            r#"{"a":{"c":"s","d":[{"x":2,"y":1}]},"b":1}"#
        );
    }
}
