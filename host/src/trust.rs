//! Sidecar trust. A sidecar policy (`NAME.toml` beside `NAME.wasm`) is written by the
//! plugin's author, so the grants it asks for — mounts, hosts, TCP addresses, environment
//! variables, secrets, and the grants of the profiles it names — take effect only when the
//! operator has approved them: `trust-sidecars = true`, or `[ceiling]` covers every one of
//! them. Otherwise they are withheld (the plugin runs as pure compute) and the operator is
//! told what was asked for and how to approve it (`capsule approve NAME`). Limits in a
//! sidecar may only lower the operator's: a raise is ignored with a warning naming the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::capability::fs::Mode;
use crate::capability::limits::{Limits, RawLimits};
use crate::capability::net::{HostRule, NetPolicy};
use crate::policy::RawPolicy;
use crate::units::{ByteSize, deserialize_duration, format_duration};

/// `[ceiling]` as written: upper bounds of every policy's limits, and the grants a sidecar
/// policy may take without `capsule approve`. The limit keys repeat [`RawLimits`]'s because
/// serde cannot combine `flatten` with `deny_unknown_fields`, and a misspelt ceiling key must
/// be an error.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawCeiling {
    /// The most `limits.fuel` any policy may set.
    pub fuel: Option<u64>,
    /// The most `limits.timeout` any policy may set.
    #[serde(default, deserialize_with = "deserialize_duration")]
    #[schemars(with = "Option<crate::units::DurationText>")]
    pub timeout: Option<Duration>,
    /// The most `limits.memory` any policy may set.
    pub memory: Option<ByteSize>,
    /// The most `limits.table-elements` any policy may set.
    pub table_elements: Option<u32>,
    /// The most `limits.instances` any policy may set.
    pub instances: Option<u32>,
    /// The most `limits.result` any policy may set.
    pub result: Option<ByteSize>,
    /// The most `limits.log-output` any policy may set.
    pub log_output: Option<ByteSize>,
    /// Folders a sidecar may mount read-only: any folder inside one of these.
    #[serde(default)]
    #[schemars(extend("x-path" = true))]
    pub mount_roots: Vec<PathBuf>,
    /// Folders a sidecar may mount read-write (or read-only): any folder inside one of these.
    #[serde(default)]
    #[schemars(extend("x-path" = true))]
    pub writable_mount_roots: Vec<PathBuf>,
    /// Host patterns a sidecar's `net.allow` may list (a `*.example.com` here covers any
    /// name under it, and `*.` patterns under it).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// TCP addresses a sidecar's `net.tcp` may list.
    #[serde(default)]
    pub tcp: Vec<String>,
    /// Environment variable names a sidecar's `env.pass` / `env.set` may name.
    #[serde(default)]
    pub env: Vec<String>,
    /// Secret names a sidecar's `secrets` may name.
    #[serde(default)]
    pub secrets: Vec<String>,
}

/// The grant part of `[ceiling]`, resolved: roots canonical, host patterns parsed.
#[derive(Debug, Clone, Default)]
pub struct GrantCeiling {
    read_roots: Vec<PathBuf>,
    write_roots: Vec<PathBuf>,
    hosts: Vec<HostRule>,
    tcp: Vec<SocketAddr>,
    env: Vec<String>,
    secrets: Vec<String>,
}

impl RawCeiling {
    /// The limit bounds.
    pub fn limits(&self) -> RawLimits {
        RawLimits {
            fuel: self.fuel,
            timeout: self.timeout,
            memory: self.memory,
            table_elements: self.table_elements,
            instances: self.instances,
            result: self.result,
            log_output: self.log_output,
        }
    }

    /// Resolves the grant part; roots are relative to `base` (the config file's folder) and
    /// must exist. Errors are `(key, message)`.
    pub fn grants(&self, base: &Path) -> Result<GrantCeiling, (String, String)> {
        let roots = |key: &str, roots: &[PathBuf]| {
            roots
                .iter()
                .enumerate()
                .map(|(i, root)| {
                    let path = base.join(root);
                    path.canonicalize().map_err(|err| {
                        (
                            format!("ceiling.{key}[{i}]"),
                            format!(
                                "{} cannot be used: {err}; create it or fix the path",
                                path.display()
                            ),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let hosts = self
            .hosts
            .iter()
            .map(|p| HostRule::parse(p).map_err(|m| ("ceiling.hosts".to_string(), m)))
            .collect::<Result<Vec<_>, _>>()?;
        let tcp = self
            .tcp
            .iter()
            .map(|a| {
                a.parse::<SocketAddr>().map_err(|_| {
                    (
                        "ceiling.tcp".to_string(),
                        format!("invalid TCP address `{a}`: write an IP address and port, e.g. \"127.0.0.1:5432\""),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(GrantCeiling {
            read_roots: roots("mount-roots", &self.mount_roots)?,
            write_roots: roots("writable-mount-roots", &self.writable_mount_roots)?,
            hosts,
            tcp,
            env: self.env.clone(),
            secrets: self.secrets.clone(),
        })
    }
}

impl GrantCeiling {
    /// Every grant it covers, one item each (`mount-root /srv/docs`, `host *.example.com`),
    /// for the lock file's view of the effective configuration.
    pub fn items(&self) -> Vec<String> {
        let mut items: Vec<String> = Vec::new();
        items.extend(
            self.read_roots
                .iter()
                .map(|r| format!("mount-root {}", r.display())),
        );
        items.extend(
            self.write_roots
                .iter()
                .map(|r| format!("writable-mount-root {}", r.display())),
        );
        items.extend(self.hosts.iter().map(|h| format!("host {h}")));
        items.extend(self.tcp.iter().map(|a| format!("tcp {a}")));
        items.extend(self.env.iter().map(|e| format!("env {e}")));
        items.extend(self.secrets.iter().map(|s| format!("secret {s}")));
        items.sort();
        items.dedup();
        items
    }
}

/// One mount a sidecar asks for, its host folder resolved from the sidecar's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AskedMount {
    /// The host folder (canonical when it exists).
    pub host: PathBuf,
    /// Where the plugin would see it.
    pub guest: String,
    /// Read-only or read-write.
    pub mode: Mode,
}

/// Every grant a sidecar policy (with the profiles it names, merged) asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// `fs.mounts`.
    pub mounts: Vec<AskedMount>,
    /// `net.allow` patterns.
    pub hosts: Vec<String>,
    /// `net.tcp` addresses.
    pub tcp: Vec<String>,
    /// `net.allow-private` patterns and `net.hosts` entries (`name = address`): reaching
    /// private networks is never covered by `[ceiling]`; only the operator's own entry
    /// (or `trust-sidecars`) grants it.
    pub private: Vec<String>,
    /// Names in `env.pass` and `env.set`.
    pub env: Vec<String>,
    /// `secrets`.
    pub secrets: Vec<String>,
    /// `caller-identity = true`: never covered by `[ceiling]`; only the operator's own
    /// entry (or `trust-sidecars`) grants it.
    pub caller_identity: bool,
}

impl Request {
    /// What `merged` (a policy with its profiles merged in) asks for; mount paths are
    /// relative to `base` (the sidecar's folder).
    pub fn of(merged: &RawPolicy, base: &Path) -> Self {
        let mounts = merged
            .fs
            .mounts
            .iter()
            .map(|m| {
                let host = base.join(&m.host);
                AskedMount {
                    host: host.canonicalize().unwrap_or(host),
                    guest: m.guest.clone(),
                    mode: m.mode,
                }
            })
            .collect();
        let mut env: Vec<String> = merged.env.pass.clone();
        env.extend(merged.env.set.keys().cloned());
        env.sort();
        env.dedup();
        let mut secrets = merged.secrets.clone();
        secrets.sort();
        secrets.dedup();
        Self {
            mounts,
            hosts: merged.net.allow.clone(),
            tcp: merged.net.tcp.clone(),
            private: merged
                .net
                .allow_private
                .iter()
                .cloned()
                .chain(
                    merged
                        .net
                        .hosts
                        .iter()
                        .map(|(name, ip)| format!("{name} = {ip}")),
                )
                .collect(),
            env,
            secrets,
            caller_identity: merged.caller_identity == Some(true),
        }
    }

    /// Whether it asks for nothing.
    pub fn is_empty(&self) -> bool {
        self.mounts.is_empty()
            && self.hosts.is_empty()
            && self.tcp.is_empty()
            && self.private.is_empty()
            && self.env.is_empty()
            && self.secrets.is_empty()
            && !self.caller_identity
    }

    /// Each grant, in words: `fs /data -> /srv/data (read-write)`, `net api.example.com`,
    /// `env LANG`, `secrets token`.
    pub fn items(&self) -> Vec<String> {
        let mut items: Vec<String> = self
            .mounts
            .iter()
            .map(|m| {
                let mode = match m.mode {
                    Mode::ReadOnly => "read-only",
                    Mode::ReadWrite => "read-write",
                };
                format!("fs {} -> {} ({mode})", m.guest, m.host.display())
            })
            .collect();
        items.extend(self.hosts.iter().map(|h| format!("net {h}")));
        items.extend(self.tcp.iter().map(|a| format!("tcp {a}")));
        items.extend(self.private.iter().map(|p| format!("private network {p}")));
        items.extend(self.env.iter().map(|e| format!("env {e}")));
        items.extend(self.secrets.iter().map(|s| format!("secret {s}")));
        if self.caller_identity {
            items.push("caller-identity".into());
        }
        items
    }

    /// Whether `ceiling` covers every grant asked for.
    pub fn covered_by(&self, ceiling: &GrantCeiling) -> bool {
        let inside = |host: &Path, roots: &[PathBuf]| roots.iter().any(|r| host.starts_with(r));
        self.mounts.iter().all(|m| match m.mode {
            Mode::ReadOnly => {
                inside(&m.host, &ceiling.read_roots) || inside(&m.host, &ceiling.write_roots)
            }
            Mode::ReadWrite => inside(&m.host, &ceiling.write_roots),
        }) && self.private.is_empty()
            && !self.caller_identity
            && self.hosts.iter().all(|pattern| {
                HostRule::parse(pattern)
                    .is_ok_and(|asked| ceiling.hosts.iter().any(|rule| host_covers(rule, &asked)))
            })
            && self.tcp.iter().all(|addr| {
                addr.parse::<SocketAddr>()
                    .is_ok_and(|addr| ceiling.tcp.contains(&addr))
            })
            && self.env.iter().all(|name| ceiling.env.contains(name))
            && self
                .secrets
                .iter()
                .all(|name| ceiling.secrets.contains(name))
    }
}

/// Whether the ceiling's host rule `rule` allows everything the rule `asked` allows.
fn host_covers(rule: &HostRule, asked: &HostRule) -> bool {
    if rule.scheme != asked.scheme || rule.port != asked.port {
        return false;
    }
    let under = |host: &str| host.ends_with(&format!(".{}", rule.host));
    match (rule.wildcard, asked.wildcard) {
        (false, false) => rule.host == asked.host,
        (false, true) => false,
        (true, false) => under(&asked.host),
        (true, true) => asked.host == rule.host || under(&asked.host),
    }
}

/// `merged` without any grant: its limits, rate limits, plain `config` settings and
/// isolation only.
pub fn without_grants(merged: &RawPolicy) -> RawPolicy {
    RawPolicy {
        limits: merged.limits.clone(),
        config: merged.config.clone(),
        rate_limit: merged.rate_limit,
        tools: merged.tools.clone(),
        isolation: merged.isolation,
        reuse_calls: merged.reuse_calls,
        reuse_idle: merged.reuse_idle,
        ..RawPolicy::default()
    }
}

/// Drops the `scopes` of a sidecar's `merged` policy (its own, its profiles' and its
/// tools') and its `[breaker]`, and returns one warning for each that was there. Who may
/// call a tool is the operator's to say: a sidecar could otherwise open its tools to
/// callers the default scopes keep out, or turn off its own circuit breaker. Its rate
/// limits stay: they only ever refuse more.
pub fn without_scopes(merged: &mut RawPolicy, sidecar: &Path, name: &str) -> Vec<String> {
    let mut had = merged.scopes.take().is_some();
    for tool in merged.tools.values_mut() {
        had |= tool.scopes.take().is_some();
    }
    let mut warnings = Vec::new();
    if had {
        warnings.push(format!(
            "{}: scopes are ignored in a sidecar policy (who may call a tool is the operator's choice); to require scopes, set them under [plugins.{name}] in capsule.toml",
            sidecar.display()
        ));
    }
    if !std::mem::take(&mut merged.breaker).is_empty() {
        warnings.push(format!(
            "{}: [breaker] is ignored in a sidecar policy (when a faulting plugin is stopped is the operator's choice); set it under [plugins.{name}.breaker] in capsule.toml",
            sidecar.display()
        ));
    }
    warnings
}

/// Drops every limit in a sidecar's `merged` policy that is above the operator's (`defaults`,
/// i.e. `[limits]`, and the host's net defaults), and returns one warning per dropped key.
pub fn only_lower(
    merged: &mut RawPolicy,
    defaults: &Limits,
    sidecar: &Path,
    name: &str,
) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut raised = |key: &str, asked: String, allowed: String| {
        warnings.push(format!(
            "{}: {key} = {asked} is ignored: it is above the operator's {allowed}, and a sidecar may only lower limits; to raise it, set it under [plugins.{name}] in capsule.toml",
            sidecar.display()
        ));
    };
    let limits = &mut merged.limits;
    if let Some(v) = limits.fuel.filter(|v| *v > defaults.fuel) {
        raised("limits.fuel", v.to_string(), defaults.fuel.to_string());
        limits.fuel = None;
    }
    if let Some(v) = limits.timeout.filter(|v| *v > defaults.timeout) {
        raised(
            "limits.timeout",
            format_duration(v),
            format_duration(defaults.timeout),
        );
        limits.timeout = None;
    }
    if let Some(v) = limits.memory.filter(|v| *v > defaults.memory) {
        raised("limits.memory", v.to_string(), defaults.memory.to_string());
        limits.memory = None;
    }
    if let Some(v) = limits
        .table_elements
        .filter(|v| *v > defaults.table_elements)
    {
        raised(
            "limits.table-elements",
            v.to_string(),
            defaults.table_elements.to_string(),
        );
        limits.table_elements = None;
    }
    if let Some(v) = limits.instances.filter(|v| *v > defaults.instances) {
        raised(
            "limits.instances",
            v.to_string(),
            defaults.instances.to_string(),
        );
        limits.instances = None;
    }
    if let Some(v) = limits.result.filter(|v| *v > defaults.result) {
        raised("limits.result", v.to_string(), defaults.result.to_string());
        limits.result = None;
    }
    if let Some(v) = limits.log_output.filter(|v| *v > defaults.log_output) {
        raised(
            "limits.log-output",
            v.to_string(),
            defaults.log_output.to_string(),
        );
        limits.log_output = None;
    }
    let net = NetPolicy::default();
    if let Some(v) = merged.net.timeout.filter(|v| *v > net.timeout) {
        raised(
            "net.timeout",
            format_duration(v),
            format_duration(net.timeout),
        );
        merged.net.timeout = None;
    }
    if let Some(v) = merged.net.max_response.filter(|v| *v > net.max_response) {
        raised(
            "net.max-response",
            v.to_string(),
            net.max_response.to_string(),
        );
        merged.net.max_response = None;
    }
    warnings
}

/// The warning for a sidecar whose grants are withheld: what it asks for and how to approve.
pub fn withheld_message(name: &str, sidecar: &Path, request: &Request) -> String {
    format!(
        "plugin `{name}`: {} asks for {}; withheld until the operator approves them, so the plugin runs without files, network, environment or secrets. To approve, run `capsule approve {name}` (copies the sidecar into [plugins.{name}] in capsule.toml), cover them in [ceiling], or set trust-sidecars = true",
        sidecar.display(),
        request.items().join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ceiling(text: &str) -> GrantCeiling {
        let raw: RawCeiling = toml::from_str(text).unwrap();
        raw.grants(&std::env::temp_dir()).unwrap()
    }

    fn request(text: &str) -> Request {
        let raw: RawPolicy = toml::from_str(text).unwrap();
        Request::of(&raw, &std::env::temp_dir())
    }

    #[test]
    fn a_ceiling_covers_only_what_it_lists() {
        let tmp = std::env::temp_dir().canonicalize().unwrap();
        let c = ceiling(&format!(
            "mount-roots = [\"{}\"]\nhosts = [\"*.example.com\", \"http://127.0.0.1:8080\"]\nenv = [\"LANG\"]\nsecrets = [\"token\"]\ntcp = [\"127.0.0.1:5432\"]\n",
            tmp.display()
        ));
        let mount = |mode: &str| {
            format!(
                "fs.mounts = [{{ host = \"{}\", guest = \"/d\", mode = \"{mode}\" }}]\n",
                tmp.display()
            )
        };
        assert!(request(&mount("read-only")).covered_by(&c));
        assert!(
            !request(&mount("read-write")).covered_by(&c),
            "read-only roots do not cover writes"
        );
        assert!(!request("fs.mounts = [{ host = \"/\", guest = \"/d\" }]").covered_by(&c));
        assert!(request("net.allow = [\"api.example.com\", \"*.a.example.com\"]").covered_by(&c));
        assert!(!request("net.allow = [\"example.com\"]").covered_by(&c));
        assert!(!request("net.allow = [\"api.example.com:8443\"]").covered_by(&c));
        assert!(request("net.allow = [\"http://127.0.0.1:8080\"]").covered_by(&c));
        assert!(
            !request("net.allow = [\"127.0.0.1:8080\"]").covered_by(&c),
            "https is another grant"
        );
        assert!(request("net.tcp = [\"127.0.0.1:5432\"]").covered_by(&c));
        assert!(!request("net.allow-private = [\"api.example.com\"]").covered_by(&c));
        assert!(!request("net.hosts = { \"api.example.com\" = \"10.0.0.7\" }").covered_by(&c));
        assert!(!request("net.tcp = [\"127.0.0.1:5433\"]").covered_by(&c));
        assert!(request("env.pass = [\"LANG\"]\nsecrets = [\"token\"]").covered_by(&c));
        assert!(!request("env.set = { HOME = \"/\" }").covered_by(&c));
        assert!(!request("secrets = [\"other\"]").covered_by(&c));
        assert!(request("config = { a = \"b\" }").is_empty());
    }

    #[test]
    fn sidecar_limits_may_only_lower() {
        let mut raw: RawPolicy = toml::from_str(
            "limits = { fuel = 5, timeout = \"60m\", memory = \"1GiB\" }\nnet.timeout = \"1m\"\n",
        )
        .unwrap();
        let warnings = only_lower(&mut raw, &Limits::default(), Path::new("/p/x.toml"), "x");
        assert_eq!(raw.limits.fuel, Some(5), "lowering is kept");
        assert_eq!(
            (raw.limits.timeout, raw.limits.memory, raw.net.timeout),
            (None, None, None)
        );
        assert_eq!(
            warnings,
            [
                "/p/x.toml: limits.timeout = 3600s is ignored: it is above the operator's 10s, and a sidecar may only lower limits; to raise it, set it under [plugins.x] in capsule.toml",
                "/p/x.toml: limits.memory = 1 GiB is ignored: it is above the operator's 128 MiB, and a sidecar may only lower limits; to raise it, set it under [plugins.x] in capsule.toml",
                "/p/x.toml: net.timeout = 60s is ignored: it is above the operator's 10s, and a sidecar may only lower limits; to raise it, set it under [plugins.x] in capsule.toml",
            ]
        );
    }
}
