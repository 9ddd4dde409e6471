//! Network: outgoing HTTP through `wasi:http`, allowed only to the hosts a policy lists,
//! with a timeout and a response size limit. Everything else is refused with
//! `HTTP-request-denied` and logged. Raw TCP connections only to listed IP:port pairs;
//! UDP, listening sockets and name lookups stay denied (see `wasi`).
//!
//! `wasi:http` is linked for every plugin so components that import it still instantiate;
//! without an `allow` list every request is denied.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use serde::Deserialize;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::units::{ByteSize, deserialize_duration, format_duration};

/// `[plugins.NAME.net]` as written.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawNet {
    /// Hosts the plugin may send HTTP requests to: `"api.example.com"`,
    /// `"*.example.com"`, `"api.example.com:8443"`, `"http://127.0.0.1:8080"`.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Time limit for connecting and for each wait on the response.
    #[serde(default, deserialize_with = "deserialize_duration")]
    pub timeout: Option<Duration>,
    /// Largest response body the plugin may read.
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
        })
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
        write!(f, "{}://{star}{}:{}", self.scheme, self.host, self.port)
    }
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "http" { 80 } else { 443 }
}

impl RawNet {
    /// Parses every pattern.
    pub fn resolve(&self) -> Result<NetPolicy, String> {
        let defaults = NetPolicy::default();
        let rules = self
            .allow
            .iter()
            .map(|p| HostRule::parse(p))
            .collect::<Result<Vec<_>, _>>()?;
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
            timeout: self.timeout.unwrap_or(defaults.timeout),
            max_response: self.max_response.unwrap_or(defaults.max_response),
            tcp,
        })
    }
}

impl NetPolicy {
    /// Whether the request URI's destination is allowed.
    pub fn allows(&self, uri: &http::Uri) -> bool {
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let Some(host) = uri.host() else { return false };
        let port = uri.port_u16().unwrap_or_else(|| default_port(&scheme));
        self.rules
            .iter()
            .any(|rule| rule.matches(&scheme, host, port))
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
        format!(
            "{} (timeout {}, responses up to {})",
            hosts.join(", "),
            format_duration(self.timeout),
            self.max_response
        )
    }
}

/// The `wasi:http` hooks of one call: send what the policy allows, refuse the rest.
pub struct PolicyHttp {
    /// The plugin, for log lines.
    pub plugin: Arc<str>,
    /// Its network grant.
    pub net: Arc<NetPolicy>,
}

type SendResult = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
>;

impl WasiHttpHooks for PolicyHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        if !self.net.allows(request.uri()) {
            tracing::warn!(
                plugin = %self.plugin,
                uri = %request.uri(),
                "denied outgoing HTTP request: not in this plugin's net.allow list"
            );
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        tracing::debug!(plugin = %self.plugin, uri = %request.uri(), "outgoing HTTP request");
        // The policy's timeout applies whatever the plugin asked for.
        let options = RequestOptions {
            connect_timeout: Some(self.net.timeout),
            first_byte_timeout: Some(self.net.timeout),
            between_bytes_timeout: Some(self.net.timeout),
        };
        let limit = self.net.max_response.bytes();
        Box::new(async move {
            let (response, io) =
                wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
            let response = response.map(|body| {
                LimitedBody {
                    inner: body,
                    remaining: limit,
                    limit,
                }
                .boxed_unsync()
            });
            Ok((
                response,
                Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>,
            ))
        })
    }
}

/// A response body that fails with `HTTP-response-body-size` past `limit` bytes.
struct LimitedBody<B> {
    inner: B,
    remaining: u64,
    limit: u64,
}

impl<B: Body<Data = Bytes, Error = Error> + Unpin> Body for LimitedBody<B> {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            let len = data.len() as u64;
            if len > self.remaining {
                return Poll::Ready(Some(Err(Error::HttpResponseBodySize(Some(self.limit)))));
            }
            self.remaining -= len;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
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
