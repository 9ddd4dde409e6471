//! `[metrics]`: the Prometheus exposition of `capsule serve` (see `docs/observability.md`).
//! Over HTTP, `/metrics` is served on the MCP listener unless `addr` names a listener of
//! its own; over stdio, only `addr` serves it (and without it nothing is recorded).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use schemars::JsonSchema;
use serde::Deserialize;

/// `[metrics]` as written.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawMetrics {
    /// Record and serve Prometheus metrics at `/metrics` (HTTP: on the MCP listener, or on `addr`; stdio: only with `addr`). No MCP token is needed; Host/Origin checks apply.
    #[schemars(extend("default" = true))]
    pub enabled: Option<bool>,
    /// A listener of its own for `/metrics`: `HOST:PORT`, or a port alone for 127.0.0.1 (0 picks a free one, logged at startup). Needed to see metrics in stdio mode.
    #[schemars(extend("x-flag" = "--metrics-addr"))]
    pub addr: Option<String>,
}

/// `[metrics]`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    /// Whether metrics are recorded and served (default on).
    pub enabled: bool,
    /// The listener of its own, if any (a bare port means 127.0.0.1).
    pub addr: Option<SocketAddr>,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            addr: None,
        }
    }
}

impl RawMetrics {
    /// Fills in defaults and reads `addr`. The error is the key and what to write instead.
    pub fn resolve(self) -> Result<MetricsSettings, (String, String)> {
        let addr = self.addr.as_deref().map(parse_addr).transpose()?;
        Ok(MetricsSettings {
            enabled: self.enabled.unwrap_or(true),
            addr,
        })
    }
}

/// `HOST:PORT` (`[::1]:9464` for IPv6) or a port alone, on the loopback address.
fn parse_addr(text: &str) -> Result<SocketAddr, (String, String)> {
    let text = text.trim();
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    text.parse::<SocketAddr>().map_err(|_| {
        (
            "metrics.addr".into(),
            format!(
                "`{text}` is not an address to listen on; write HOST:PORT with an IP address (e.g. \"127.0.0.1:9464\", \"[::1]:9464\") or a port alone (e.g. \"9464\", on 127.0.0.1)"
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(text: &str) -> Result<MetricsSettings, (String, String)> {
        let raw: RawMetrics = toml::from_str(text).unwrap();
        raw.resolve()
    }

    #[test]
    fn on_by_default_without_a_listener_of_its_own() {
        assert_eq!(resolve("").unwrap(), MetricsSettings::default());
    }

    #[test]
    fn a_bare_port_is_on_loopback() {
        assert_eq!(
            resolve("addr = \"9464\"").unwrap().addr,
            Some("127.0.0.1:9464".parse().unwrap())
        );
        assert_eq!(
            resolve("addr = \"[::1]:0\"").unwrap().addr,
            Some("[::1]:0".parse().unwrap())
        );
    }

    #[test]
    fn a_host_name_is_refused_with_the_fix() {
        assert_eq!(
            resolve("addr = \"localhost:9464\"").unwrap_err(),
            (
                "metrics.addr".into(),
                "`localhost:9464` is not an address to listen on; write HOST:PORT with an IP address (e.g. \"127.0.0.1:9464\", \"[::1]:9464\") or a port alone (e.g. \"9464\", on 127.0.0.1)".into()
            )
        );
    }
}
