//! Network: outgoing HTTP through `wasi:http`, allowed only to the hosts a policy lists,
//! with a timeout and a response size limit. Everything else is refused with
//! `HTTP-request-denied` and logged. The host resolves a listed name itself, refuses it
//! when any of its addresses is not public (loopback, private, link-local, …; see
//! [`address`]) unless the rule is that IP literal or allows private addresses, and connects
//! to exactly the address it checked ([`send`]). Raw TCP connections only to listed IP:port
//! pairs; UDP, listening sockets and name lookups stay denied (see `wasi`).
//!
//! `wasi:http` is linked for every plugin so components that import it still instantiate;
//! without an `allow` list every request is denied.

pub mod address;
pub mod outbound;
mod retry;
mod send;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Deserialize;
use wasmtime_wasi::sockets::SocketAddrUse;

pub use send::PolicyHttp;
pub(crate) use send::tls_connector;

use crate::units::{ByteSize, deserialize_duration, format_duration};

/// `[plugins.NAME.net]` as written.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawNet {
    /// Hosts the plugin may send HTTP requests to: `"api.example.com"`,
    /// `"*.example.com"`, `"api.example.com:8443"`, `"http://127.0.0.1:8080"`.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Hosts written like `allow` that may also be reached when their name resolves to a
    /// loopback, private or link-local address (internal services).
    #[serde(default)]
    pub allow_private: Vec<String>,
    /// Fixed addresses for host names, like `/etc/hosts`: `{ "api.internal" = "10.0.0.7" }`.
    /// Used instead of DNS; the address is checked like a resolved one.
    #[serde(default)]
    pub hosts: BTreeMap<String, String>,
    /// Time limit for connecting and for each wait on the response.
    #[serde(default, deserialize_with = "deserialize_duration")]
    #[schemars(with = "Option<crate::units::DurationText>", extend("default" = "10s"))]
    pub timeout: Option<Duration>,
    /// Largest response body the plugin may read.
    #[schemars(extend("default" = "4MiB"))]
    pub max_response: Option<ByteSize>,
    /// Raw TCP connections the plugin may open: `"127.0.0.1:5432"` (IP and port; name
    /// lookups stay denied).
    #[serde(default)]
    pub tcp: Vec<String>,
}

/// The resolved network grant of one plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetPolicy {
    /// Allowed destinations; empty means no network at all.
    pub rules: Vec<HostRule>,
    /// Fixed addresses of host names (lower case), used instead of DNS.
    pub hosts: BTreeMap<String, IpAddr>,
    /// Connect / first-byte / between-bytes timeout.
    pub timeout: Duration,
    /// Response body limit.
    pub max_response: ByteSize,
    /// Addresses raw TCP connections may go to.
    pub tcp: Vec<SocketAddr>,
}

impl Default for NetPolicy {
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            hosts: BTreeMap::new(),
            timeout: Duration::from_secs(10),
            max_response: ByteSize::mib(4),
            tcp: Vec::new(),
        }
    }
}

/// One allowed destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRule {
    /// `http` or `https`.
    pub scheme: String,
    /// Lower-case host name or IP literal; with `wildcard`, the suffix after `*.`.
    pub host: String,
    /// Whether any subdomain of `host` matches (but not `host` itself).
    pub wildcard: bool,
    /// The port; the scheme's default when not written.
    pub port: u16,
    /// Whether the host may resolve to a non-public address (`net.allow-private`).
    pub allow_private: bool,
}

const PATTERN_HELP: &str = "write e.g. \"api.example.com\", \"*.example.com\", \"api.example.com:8443\" or \"http://127.0.0.1:8080\"";

impl HostRule {
    /// Parses `[scheme://]host[:port]`; the scheme defaults to `https`.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("invalid host pattern `{pattern}`: {why}; {PATTERN_HELP}");
        let (scheme, rest) = match pattern.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => ("https".to_string(), pattern),
        };
        if scheme != "http" && scheme != "https" {
            return Err(bad("the scheme must be http or https"));
        }
        if rest.contains('/') || rest.contains('?') || rest.contains('@') {
            return Err(bad("give a host, not a URL with a path or user"));
        }
        let split = if rest.ends_with(']') {
            None
        } else {
            rest.rsplit_once(':')
        };
        let (host, port) = match split {
            Some((host, port)) => {
                let port = port.parse::<u16>().ok().filter(|p| *p != 0);
                (
                    host,
                    port.ok_or_else(|| bad("the port must be a number from 1 to 65535"))?,
                )
            }
            None => (rest, default_port(&scheme)),
        };
        let host = host.to_ascii_lowercase();
        let (wildcard, host) = match host.strip_prefix("*.") {
            Some(suffix) => (true, suffix.to_string()),
            None => (false, host),
        };
        let valid = !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        let ipv6 = host.starts_with('[') && host.ends_with(']') && !wildcard;
        if !valid && !ipv6 {
            return Err(bad(
                "the host may contain only letters, digits, `-` and `.` (and a leading `*.`)",
            ));
        }
        Ok(Self {
            scheme,
            host,
            wildcard,
            port,
            allow_private: false,
        })
    }

    /// The IP address the rule names, if its host is an IP literal (`127.0.0.1`, `[::1]`).
    pub fn ip_literal(&self) -> Option<IpAddr> {
        if self.wildcard {
            return None;
        }
        parse_ip(&self.host)
    }

    /// Whether a request to `scheme://host:port` matches this rule.
    pub fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        if self.scheme != scheme || self.port != port {
            return false;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if self.wildcard {
            host.len() > self.host.len()
                && host.ends_with(&self.host)
                && host.as_bytes()[host.len() - self.host.len() - 1] == b'.'
        } else {
            host == self.host
        }
    }
}

impl std::fmt::Display for HostRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let star = if self.wildcard { "*." } else { "" };
        write!(f, "{}://{star}{}:{}", self.scheme, self.host, self.port)?;
        if self.allow_private {
            write!(f, " (private addresses allowed)")?;
        }
        Ok(())
    }
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "http" { 80 } else { 443 }
}

/// An IP literal as a URI host writes it: `10.0.0.1` or `[::1]`.
fn parse_ip(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

impl RawNet {
    /// Parses every pattern and address.
    pub fn resolve(&self) -> Result<NetPolicy, String> {
        let defaults = NetPolicy::default();
        let mut rules = self
            .allow
            .iter()
            .map(|p| HostRule::parse(p))
            .collect::<Result<Vec<_>, _>>()?;
        for pattern in &self.allow_private {
            let rule = HostRule::parse(pattern).map_err(|err| format!("allow-private: {err}"))?;
            rules.push(HostRule {
                allow_private: true,
                ..rule
            });
        }
        let hosts = self
            .hosts
            .iter()
            .map(|(name, ip)| {
                let parsed = ip.parse::<IpAddr>().map_err(|_| {
                    format!(
                        "hosts.\"{name}\": `{ip}` is not an IP address; write e.g. \"10.0.0.7\" or \"::1\""
                    )
                })?;
                Ok((name.trim_end_matches('.').to_ascii_lowercase(), parsed))
            })
            .collect::<Result<BTreeMap<_, _>, String>>()?;
        let tcp = self
            .tcp
            .iter()
            .map(|a| {
                a.parse::<SocketAddr>().map_err(|_| {
                    format!(
                        "invalid TCP address `{a}`: write an IP address and port, e.g. \"127.0.0.1:5432\" or \"[::1]:5432\" (names are not resolved)"
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(NetPolicy {
            rules,
            hosts,
            timeout: self.timeout.unwrap_or(defaults.timeout),
            max_response: self.max_response.unwrap_or(defaults.max_response),
            tcp,
        })
    }
}

impl NetPolicy {
    /// Whether the request URI's destination is allowed.
    pub fn allows(&self, uri: &http::Uri) -> bool {
        self.admit(uri).is_some()
    }

    /// The destination of a request the rules allow, or `None`.
    pub fn admit(&self, uri: &http::Uri) -> Option<Destination> {
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let host = uri.host()?;
        let port = uri.port_u16().unwrap_or_else(|| default_port(&scheme));
        let matching: Vec<&HostRule> = self
            .rules
            .iter()
            .filter(|rule| rule.matches(&scheme, host, port))
            .collect();
        if matching.is_empty() {
            return None;
        }
        let private_ok = matching
            .iter()
            .any(|rule| rule.allow_private || rule.ip_literal().is_some());
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        let fixed = parse_ip(&name).or_else(|| self.hosts.get(&name).copied());
        Some(Destination {
            tls: scheme == "https",
            host: name,
            port,
            fixed,
            private_ok,
        })
    }

    /// Whether a raw socket operation is allowed: TCP connections to listed addresses
    /// (and the implicit bind to an ephemeral local port that a connect performs).
    pub fn allows_socket(&self, addr: SocketAddr, use_: SocketAddrUse) -> bool {
        match use_ {
            SocketAddrUse::TcpConnect => self.tcp.contains(&addr),
            SocketAddrUse::TcpBind => {
                !self.tcp.is_empty() && addr.ip().is_unspecified() && addr.port() == 0
            }
            _ => false,
        }
    }

    /// One line for `capsule list`.
    pub fn describe(&self) -> String {
        let mut hosts: Vec<String> = self.rules.iter().map(ToString::to_string).collect();
        hosts.extend(self.tcp.iter().map(|a| format!("tcp://{a}")));
        hosts.extend(self.hosts.iter().map(|(name, ip)| format!("{name} = {ip}")));
        format!(
            "{} (timeout {}, responses up to {})",
            hosts.join(", "),
            format_duration(self.timeout),
            self.max_response
        )
    }
}

/// Where an allowed request goes, before its name is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// Whether to speak TLS (`https`).
    pub tls: bool,
    /// Lower-case host name or IP literal (IPv6 in brackets), as the request wrote it.
    pub host: String,
    /// The port.
    pub port: u16,
    /// The address when it is not looked up: an IP literal, or `net.hosts`.
    pub fixed: Option<IpAddr>,
    /// Whether a non-public address is allowed (an IP-literal rule or `allow-private`).
    pub private_ok: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(patterns: &[&str], uri: &str) -> bool {
        let raw = RawNet {
            allow: patterns.iter().map(|p| p.to_string()).collect(),
            ..RawNet::default()
        };
        raw.resolve().unwrap().allows(&uri.parse().unwrap())
    }

    #[test]
    fn hosts_ports_schemes_and_wildcards() {
        assert!(allows(&["api.example.com"], "https://api.example.com/v1"));
        assert!(
            !allows(&["api.example.com"], "http://api.example.com/v1"),
            "https by default"
        );
        assert!(
            !allows(&["api.example.com"], "https://api.example.com:8443/"),
            "other port"
        );
        assert!(allows(
            &["api.example.com:8443"],
            "https://API.example.com:8443/"
        ));
        assert!(allows(&["*.example.com"], "https://a.b.example.com/"));
        assert!(!allows(&["*.example.com"], "https://example.com/"));
        assert!(!allows(&["*.example.com"], "https://evilexample.com/"));
        assert!(allows(
            &["http://127.0.0.1:8080"],
            "http://127.0.0.1:8080/x"
        ));
        assert!(
            !allows(&["api.example.com"], "https://93.184.216.34/"),
            "IP literal of a named host"
        );
        assert!(!allows(&[], "https://api.example.com/"));
    }

    #[test]
    fn raw_tcp_only_to_listed_addresses() {
        let raw = RawNet {
            tcp: vec!["127.0.0.1:5432".into()],
            ..RawNet::default()
        };
        let net = raw.resolve().unwrap();
        assert!(net.allows_socket("127.0.0.1:5432".parse().unwrap(), SocketAddrUse::TcpConnect));
        assert!(!net.allows_socket("127.0.0.1:5433".parse().unwrap(), SocketAddrUse::TcpConnect));
        assert!(net.allows_socket("0.0.0.0:0".parse().unwrap(), SocketAddrUse::TcpBind));
        assert!(!net.allows_socket("0.0.0.0:8080".parse().unwrap(), SocketAddrUse::TcpBind));
        assert!(!net.allows_socket("0.0.0.0:0".parse().unwrap(), SocketAddrUse::TcpListen));
        assert!(
            !NetPolicy::default()
                .allows_socket("0.0.0.0:0".parse().unwrap(), SocketAddrUse::TcpBind)
        );
        let bad = RawNet {
            tcp: vec!["db.local:5432".into()],
            ..RawNet::default()
        };
        assert!(
            bad.resolve()
                .unwrap_err()
                .contains("names are not resolved")
        );
    }

    #[test]
    fn bad_patterns_say_what_to_write() {
        for (pattern, why) in [
            ("ftp://x.org", "the scheme must be http or https"),
            ("https://x.org/path", "not a URL with a path"),
            ("x.org:99999", "the port must be a number"),
            ("exa mple.com", "may contain only letters"),
            ("*", "may contain only letters"),
        ] {
            let err = HostRule::parse(pattern).unwrap_err();
            assert!(
                err.contains(why) && err.contains(PATTERN_HELP),
                "{pattern}: {err}"
            );
        }
    }
}
