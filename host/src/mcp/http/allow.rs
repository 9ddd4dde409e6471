//! The `Host` and `Origin` allow-lists: which names this server answers to (against DNS
//! rebinding) and which browser origins may call it (against cross-site requests).

use std::net::IpAddr;

/// A host name (lower case, IPv6 without brackets) and an optional port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Authority {
    host: String,
    port: Option<u16>,
}

impl Authority {
    fn parse(text: &str) -> Option<Self> {
        let authority = http::uri::Authority::try_from(text.trim()).ok()?;
        Some(Self {
            host: normalize_host(authority.host()),
            port: authority.port_u16(),
        })
    }
}

fn normalize_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

/// `server.allowed-hosts`, resolved.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    any: bool,
    entries: Vec<Authority>,
}

impl AllowedHosts {
    /// `configured` (`name`, `name:port`, `*`), or when empty, the loopback names and
    /// `listen` (unless it is the unspecified address).
    pub fn new(configured: &[String], listen: IpAddr) -> Self {
        let mut names: Vec<String> = configured.to_vec();
        if names.is_empty() {
            names = ["localhost", "127.0.0.1", "[::1]"]
                .map(String::from)
                .to_vec();
            if !listen.is_unspecified() && !listen.is_loopback() {
                names.push(match listen {
                    IpAddr::V4(v4) => v4.to_string(),
                    IpAddr::V6(v6) => format!("[{v6}]"),
                });
            }
        }
        Self {
            any: names.iter().any(|n| n == "*"),
            entries: names.iter().filter_map(|n| Authority::parse(n)).collect(),
        }
    }

    /// Whether a request with this `Host` header is served. A name without a port in the
    /// list allows every port.
    pub fn allows(&self, host: &str) -> bool {
        if self.any {
            return true;
        }
        let Some(host) = Authority::parse(host) else {
            return false;
        };
        self.entries.iter().any(|allowed| {
            allowed.host == host.host && allowed.port.is_none_or(|port| host.port == Some(port))
        })
    }
}

/// `server.allowed-origins`, resolved.
#[derive(Debug, Clone)]
pub enum AllowedOrigins {
    /// Not configured: an origin is allowed if its host is the request's `Host`.
    SameHost,
    /// The listed origins only.
    Listed(Vec<OriginPattern>),
}

/// One entry of `server.allowed-origins`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    /// `null` (sandboxed frames, `file:` pages).
    Null,
    /// `scheme://host[:port]`; `port: None` is `:*`, any port.
    Tuple {
        /// `http`, `https`, ….
        scheme: String,
        /// The host, normalized.
        host: String,
        /// The port; without one in the entry, the scheme's default.
        port: Option<u16>,
    },
}

/// `scheme://host[:port]` → (scheme, host, port with the scheme's default filled in).
fn parse_origin(text: &str) -> Option<(String, String, Option<u16>)> {
    let uri = http::Uri::try_from(text.trim()).ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let authority = uri.authority()?;
    let port = authority.port_u16().or(match scheme.as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    });
    Some((scheme, normalize_host(authority.host()), port))
}

impl AllowedOrigins {
    /// `configured`, or [`AllowedOrigins::SameHost`] when it is not set.
    pub fn new(configured: Option<&[String]>) -> Self {
        let Some(list) = configured else {
            return Self::SameHost;
        };
        let patterns = list
            .iter()
            .filter_map(|entry| {
                if entry.eq_ignore_ascii_case("null") {
                    return Some(OriginPattern::Null);
                }
                let (base, any_port) = match entry.strip_suffix(":*") {
                    Some(base) => (base, true),
                    None => (entry.as_str(), false),
                };
                let (scheme, host, port) = parse_origin(base)?;
                Some(OriginPattern::Tuple {
                    scheme,
                    host,
                    port: if any_port { None } else { port },
                })
            })
            .collect();
        Self::Listed(patterns)
    }

    /// Whether a request from browser origin `origin` to `host` (its `Host` header) is
    /// allowed.
    pub fn allows(&self, origin: &str, host: Option<&str>) -> bool {
        let is_null = origin.trim().eq_ignore_ascii_case("null");
        match self {
            Self::SameHost => {
                let origin_host = parse_origin(origin).map(|(_, host, _)| host);
                let request_host = host.and_then(Authority::parse).map(|a| a.host);
                !is_null && origin_host.is_some() && origin_host == request_host
            }
            Self::Listed(patterns) => {
                if is_null {
                    return patterns.contains(&OriginPattern::Null);
                }
                let Some((scheme, host, port)) = parse_origin(origin) else {
                    return false;
                };
                patterns.iter().any(|pattern| match pattern {
                    OriginPattern::Null => false,
                    OriginPattern::Tuple {
                        scheme: s,
                        host: h,
                        port: p,
                    } => *s == scheme && *h == host && p.is_none_or(|p| Some(p) == port),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_hosts_are_the_loopback_names_and_the_listen_address() {
        let hosts = AllowedHosts::new(&[], "10.1.2.3".parse().unwrap());
        for ok in [
            "localhost:8080",
            "127.0.0.1",
            "[::1]:9",
            "10.1.2.3:8080",
            "LOCALHOST",
        ] {
            assert!(hosts.allows(ok), "{ok} refused");
        }
        for refused in [
            "evil.example.com",
            "evil.example.com:8080",
            "10.1.2.4",
            "",
            "a b",
        ] {
            assert!(!hosts.allows(refused), "{refused} allowed");
        }
        let wildcard = AllowedHosts::new(&[], "0.0.0.0".parse().unwrap());
        assert!(
            !wildcard.allows("0.0.0.0:8080"),
            "the unspecified address is no name"
        );
    }

    #[test]
    fn listed_hosts_match_by_name_and_port() {
        let hosts = AllowedHosts::new(
            &["mcp.example.com".into(), "10.0.0.5:8080".into()],
            "0.0.0.0".parse().unwrap(),
        );
        assert!(hosts.allows("mcp.example.com:443"));
        assert!(hosts.allows("10.0.0.5:8080"));
        assert!(!hosts.allows("10.0.0.5:9090"));
        assert!(!hosts.allows("localhost"), "a list replaces the defaults");
        assert!(AllowedHosts::new(&["*".into()], "0.0.0.0".parse().unwrap()).allows("any.name"));
    }

    #[test]
    fn by_default_an_origin_must_name_the_requested_host() {
        let origins = AllowedOrigins::new(None);
        assert!(origins.allows("http://127.0.0.1:5173", Some("127.0.0.1:8080")));
        assert!(origins.allows("http://localhost:6274", Some("localhost:8080")));
        assert!(!origins.allows("http://evil.example.com", Some("127.0.0.1:8080")));
        assert!(!origins.allows("null", Some("127.0.0.1:8080")));
        assert!(!origins.allows("http://127.0.0.1", None));
    }

    #[test]
    fn listed_origins_match_scheme_host_and_port() {
        let origins = AllowedOrigins::new(Some(&[
            "https://app.example.com".into(),
            "http://localhost:*".into(),
            "null".into(),
        ]));
        assert!(origins.allows("https://app.example.com", None));
        assert!(origins.allows("https://app.example.com:443", None));
        assert!(!origins.allows("https://app.example.com:8443", None));
        assert!(!origins.allows("http://app.example.com", None));
        assert!(origins.allows("http://localhost:3000", None));
        assert!(origins.allows("null", None));
        assert!(!origins.allows("https://evil.example.com", Some("app.example.com")));
    }
}
