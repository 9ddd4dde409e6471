//! `[server]`: how `capsule serve` talks to clients. stdio (one local client, the
//! default) or streamable HTTP (many clients, the edge settings below).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::bounds;
use crate::units::{ByteSize, deserialize_duration};

/// The transport `capsule serve` speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// MCP over stdin/stdout: one client, started by it.
    #[default]
    Stdio,
    /// MCP streamable HTTP on `host:port` + `path`.
    Http,
}

impl std::str::FromStr for Transport {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "stdio" => Ok(Self::Stdio),
            "http" => Ok(Self::Http),
            other => Err(format!("unknown transport `{other}`; use stdio or http")),
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Stdio => "stdio",
            Self::Http => "http",
        })
    }
}

/// `[server]` as written. Durations are `"10s"`-style strings, sizes `"4MiB"`-style.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawServer {
    /// `stdio` (one local client that started the process) or `http` (streamable HTTP on host:port + path).
    #[schemars(extend("default" = "stdio", "x-flag" = "--transport"))]
    pub transport: Option<Transport>,
    /// HTTP: the IP address to listen on; a non-loopback address needs `[auth]` or `allow-unauthenticated`.
    #[schemars(extend("default" = "127.0.0.1", "x-flag" = "--host"))]
    pub host: Option<String>,
    /// HTTP: the TCP port; 0 picks a free one, logged at startup.
    #[schemars(extend("default" = 8080, "x-flag" = "--port"))]
    pub port: Option<u16>,
    /// HTTP: the MCP endpoint; the same path with a trailing `/` is served too.
    #[schemars(extend("default" = "/mcp"))]
    pub path: Option<String>,
    /// HTTP: no sessions, every request stands alone (replicas need no affinity); protocol 2026-07-28 requests are always stateless.
    #[schemars(extend("default" = false, "x-flag" = "--stateless"))]
    pub stateless: Option<bool>,
    /// HTTP: answer a request served without a session with plain JSON instead of an SSE stream when the call sends no progress or log events first.
    #[schemars(extend("default" = true))]
    pub json_response: Option<bool>,
    /// HTTP: a session nobody used for this long is closed.
    #[serde(default, deserialize_with = "deserialize_duration")]
    #[schemars(with = "Option<crate::units::DurationText>", extend("default" = "5m"))]
    pub session_idle_timeout: Option<Duration>,
    /// HTTP: sessions open at once (1 to 1000000); an `initialize` beyond it gets 503.
    #[schemars(extend("default" = 1024))]
    pub max_sessions: Option<u32>,
    /// HTTP: requests of one session in flight at once (1 to 100000); one more gets 429.
    #[schemars(extend("default" = 64))]
    pub max_requests_per_session: Option<u32>,
    /// HTTP: threads that serve connections (0 to 1024), each connection on one of them; plugin calls run on threads of their own. 0: half the cores, at least 2 (1 serves more calls per second on 2 cores, but a client's big responses then delay the others).
    #[schemars(extend("default" = 0))]
    pub io_threads: Option<u32>,
    /// HTTP: the largest request body (1KiB to 1GiB); a larger one gets 413.
    #[schemars(extend("default" = "4MiB"))]
    pub max_body_size: Option<ByteSize>,
    /// HTTP: time a client has to send a request's headers.
    #[serde(default, deserialize_with = "deserialize_duration")]
    #[schemars(with = "Option<crate::units::DurationText>", extend("default" = "10s"))]
    pub header_read_timeout: Option<Duration>,
    /// HTTP: time a client has to send a request's body once its headers arrived.
    #[serde(default, deserialize_with = "deserialize_duration")]
    #[schemars(with = "Option<crate::units::DurationText>", extend("default" = "30s"))]
    pub body_read_timeout: Option<Duration>,
    /// HTTP: `Host` values served (`name` any port, `name:port` exactly, `*` any host); another gets 421. Default: localhost, 127.0.0.1, [::1] and the listen address.
    pub allowed_hosts: Option<Vec<String>>,
    /// HTTP: browser origins allowed (`scheme://host[:port]`, `:*` any port, `null`); another `Origin` gets 403. Default: an `Origin` whose host is the request's `Host`.
    pub allowed_origins: Option<Vec<String>>,
    /// On SIGTERM/SIGINT (or stdin closing), how long in-flight calls may take to finish before the process exits anyway.
    #[serde(default, deserialize_with = "deserialize_duration")]
    #[schemars(with = "Option<crate::units::DurationText>", extend("default" = "30s"))]
    pub drain_timeout: Option<Duration>,
    /// HTTP: serve on a non-loopback address without `[auth]` (something in front of Capsule must authenticate clients).
    #[schemars(extend("default" = false, "x-flag" = "--allow-unauthenticated"))]
    pub allow_unauthenticated: Option<bool>,
    /// Start in degraded mode: serve only tools annotated read-only (`readOnlyHint`); SIGUSR1 turns it on and off while running.
    #[schemars(extend("default" = false))]
    pub degraded: Option<bool>,
    /// A plugin larger than this that is not precompiled (`capsule check`) is compiled in the background while the server already answers; its tools are announced with `notifications/tools/list_changed` when ready. The default 0 compiles every such plugin in the background, so the first `tools/list` never waits for a compiler; a larger value makes it wait (at most `server.list-wait`) for the smaller ones.
    #[schemars(extend("default" = "0"))]
    pub background_compile_above: Option<ByteSize>,
    /// How long a `tools/list` that arrives while plugins are still loading in the foreground waits for them before answering with what is ready.
    #[serde(default, deserialize_with = "deserialize_duration")]
    #[schemars(with = "Option<crate::units::DurationText>", extend("default" = "5s"))]
    pub list_wait: Option<Duration>,
    /// Watch the plugins folder and reload a plugin when its `.wasm` or sidecar changes (`docs/reload.md`). Default: on for stdio, off for HTTP.
    #[schemars(extend("x-flag" = "--watch"))]
    pub watch: Option<bool>,
}

/// How `capsule serve` serves, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// stdio (default) or http.
    pub transport: Transport,
    /// The address to listen on (default `127.0.0.1`). A non-loopback address needs
    /// `[auth]` or `allow-unauthenticated`.
    pub host: IpAddr,
    /// The TCP port (default 8080; 0 picks a free one, logged at startup).
    pub port: u16,
    /// The MCP endpoint (default `/mcp`; `/mcp/` is served too).
    pub path: String,
    /// No sessions: every request stands alone, so replicas need no affinity. Requests of
    /// protocol 2026-07-28 are always stateless; this makes 2025-11-25 ones stateless too.
    pub stateless: bool,
    /// Answer requests served without a session (stateless mode, protocol 2026-07-28)
    /// with plain `application/json` instead of an SSE stream when the call sends no
    /// progress or log events first (default on).
    pub json_response: bool,
    /// A session nobody used for this long is closed (default 5m).
    pub session_idle_timeout: Duration,
    /// Sessions open at once; an `initialize` beyond it gets 503 (default 1024).
    pub max_sessions: u32,
    /// Requests of one session in flight at once; one more gets 429 (default 64).
    pub max_requests_per_session: u32,
    /// Threads that serve HTTP connections; 0 (the default) is half the cores, at least
    /// 2 ([`ServerSettings::http_threads`]).
    pub io_threads: u32,
    /// The largest request body; larger gets 413 (default 4 MiB).
    pub max_body_size: ByteSize,
    /// Time a client has to send a request's headers (default 10s).
    pub header_read_timeout: Duration,
    /// Time a client has to send a request's body once its headers arrived (default 30s).
    pub body_read_timeout: Duration,
    /// `Host` values served (`name` any port, `name:port` exactly, `*` any host). Default:
    /// `localhost`, `127.0.0.1`, `[::1]` and the listen address. Another `Host` gets 421.
    pub allowed_hosts: Vec<String>,
    /// Browser origins allowed (`scheme://host[:port]`, `:*` any port, `null`). Default:
    /// an `Origin` whose host is the request's `Host`. Another `Origin` gets 403; a
    /// request without `Origin` (not from a browser) is not affected.
    pub allowed_origins: Option<Vec<String>>,
    /// On SIGTERM/SIGINT (or stdin closing), how long in-flight calls may take to finish
    /// before the process exits anyway (default 30s).
    pub drain_timeout: Duration,
    /// Serve on a non-loopback address without authentication.
    pub allow_unauthenticated: bool,
    /// Start in degraded mode: only read-only tools are served (SIGUSR1 toggles it).
    pub degraded: bool,
    /// Plugins larger than this that need compiling load in the background (default 0: all).
    pub background_compile_above: ByteSize,
    /// How long `tools/list` waits for plugins loading in the foreground (default 5s).
    pub list_wait: Duration,
    /// Watch the plugins folder and reload changed plugins; `None` is the transport's
    /// default ([`ServerSettings::watches`]).
    pub watch: Option<bool>,
}

impl ServerSettings {
    /// Whether `capsule serve` reloads plugins as their files change: `server.watch`, or
    /// by default on for stdio (a developer's machine, one local client) and off for HTTP
    /// (a deployment, where the files change by a rollout).
    pub fn watches(&self) -> bool {
        self.watch.unwrap_or(self.transport == Transport::Stdio)
    }

    /// The threads that serve HTTP connections: `server.io-threads`, or half of `cores`
    /// and at least 2, as plugin calls run on threads of their own. On 2 cores one thread
    /// served ~1.3× the calls per second of two, but let one client's large responses
    /// delay the others' calls (p99 under the hostile soak 1.3–2.3× its unloaded value,
    /// against 1.0–1.1× with two); BENCHMARKS.md, "HTTP connections on threads of their own".
    pub fn http_threads(&self, cores: usize) -> usize {
        match self.io_threads {
            0 => (cores / 2).max(2),
            n => n as usize,
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            transport: Transport::Stdio,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8080,
            path: "/mcp".into(),
            stateless: false,
            json_response: true,
            session_idle_timeout: Duration::from_secs(300),
            max_sessions: 1024,
            max_requests_per_session: 64,
            io_threads: 0,
            max_body_size: ByteSize::mib(4),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            allowed_hosts: Vec::new(),
            allowed_origins: None,
            drain_timeout: Duration::from_secs(30),
            allow_unauthenticated: false,
            degraded: false,
            background_compile_above: ByteSize(0),
            list_wait: Duration::from_secs(5),
            watch: None,
        }
    }
}

/// `server.max-sessions`.
const SESSIONS: (u32, u32) = (1, 1_000_000);
/// `server.max-requests-per-session`.
const REQUESTS_PER_SESSION: (u32, u32) = (1, 100_000);
/// `server.io-threads`.
const IO_THREADS: (u32, u32) = (0, 1024);
/// `server.max-body-size`.
const BODY_SIZE: (ByteSize, ByteSize) = (ByteSize(1024), ByteSize::mib(1024));
/// `server.*-timeout`.
const TIMEOUT: (Duration, Duration) = (Duration::from_millis(1), Duration::from_secs(86_400));

impl RawServer {
    /// Fills in defaults and checks every value. The error is the key and what to write
    /// instead.
    pub fn resolve(self) -> Result<ServerSettings, (String, String)> {
        let defaults = ServerSettings::default();
        let key = |name: &str| format!("server.{name}");
        let host = match self.host.as_ref() {
            Some(text) => parse_host(text).map_err(|m| (key("host"), m))?,
            None => defaults.host,
        };
        let path = match self.path {
            Some(path) => normalize_path(&path).map_err(|m| (key("path"), m))?,
            None => defaults.path,
        };
        let stateless = self.stateless.unwrap_or(defaults.stateless);
        let settings = ServerSettings {
            transport: self.transport.unwrap_or(defaults.transport),
            host,
            port: self.port.unwrap_or(defaults.port),
            path,
            stateless,
            json_response: self.json_response.unwrap_or(defaults.json_response),
            session_idle_timeout: self
                .session_idle_timeout
                .unwrap_or(defaults.session_idle_timeout),
            max_sessions: self.max_sessions.unwrap_or(defaults.max_sessions),
            max_requests_per_session: self
                .max_requests_per_session
                .unwrap_or(defaults.max_requests_per_session),
            io_threads: self.io_threads.unwrap_or(defaults.io_threads),
            max_body_size: self.max_body_size.unwrap_or(defaults.max_body_size),
            header_read_timeout: self
                .header_read_timeout
                .unwrap_or(defaults.header_read_timeout),
            body_read_timeout: self.body_read_timeout.unwrap_or(defaults.body_read_timeout),
            allowed_hosts: self.allowed_hosts.unwrap_or_default(),
            allowed_origins: self.allowed_origins,
            drain_timeout: self.drain_timeout.unwrap_or(defaults.drain_timeout),
            allow_unauthenticated: self
                .allow_unauthenticated
                .unwrap_or(defaults.allow_unauthenticated),
            degraded: self.degraded.unwrap_or(defaults.degraded),
            background_compile_above: self
                .background_compile_above
                .unwrap_or(defaults.background_compile_above),
            list_wait: self.list_wait.unwrap_or(defaults.list_wait),
            watch: self.watch,
        };
        let checked = |name: &str, result: Result<(), String>| result.map_err(|m| (key(name), m));
        checked(
            "max-sessions",
            bounds::check("server.max-sessions", settings.max_sessions, SESSIONS),
        )?;
        checked(
            "max-requests-per-session",
            bounds::check(
                "server.max-requests-per-session",
                settings.max_requests_per_session,
                REQUESTS_PER_SESSION,
            ),
        )?;
        checked(
            "io-threads",
            bounds::check("server.io-threads", settings.io_threads, IO_THREADS),
        )?;
        checked(
            "max-body-size",
            bounds::check("server.max-body-size", settings.max_body_size, BODY_SIZE),
        )?;
        for (name, value) in [
            ("session-idle-timeout", settings.session_idle_timeout),
            ("header-read-timeout", settings.header_read_timeout),
            ("body-read-timeout", settings.body_read_timeout),
            ("drain-timeout", settings.drain_timeout),
            ("list-wait", settings.list_wait),
        ] {
            checked(
                name,
                bounds::check_duration(&format!("server.{name}"), value, TIMEOUT),
            )?;
        }
        for host in &settings.allowed_hosts {
            if host != "*" && http::uri::Authority::try_from(host.as_str()).is_err() {
                return Err((
                    key("allowed-hosts"),
                    format!(
                        "`{host}` is not a host name or `host:port`; write e.g. \"mcp.example.com\", \"10.0.0.5:8080\" or \"*\""
                    ),
                ));
            }
        }
        for origin in settings.allowed_origins.iter().flatten() {
            let base = origin.strip_suffix(":*").unwrap_or(origin);
            let valid = origin == "null"
                || http::Uri::try_from(base)
                    .is_ok_and(|uri| uri.scheme().is_some() && uri.authority().is_some());
            if !valid {
                return Err((
                    key("allowed-origins"),
                    format!(
                        "`{origin}` is not an origin; write `scheme://host[:port]`, e.g. \"https://app.example.com\" or \"http://localhost:*\""
                    ),
                ));
            }
        }
        Ok(settings)
    }
}

impl ServerSettings {
    /// Whether `host` is a loopback address, reachable only from this machine.
    pub fn is_loopback(&self) -> bool {
        self.host.is_loopback()
    }
}

/// An IP address, or `localhost` for 127.0.0.1.
fn parse_host(text: &str) -> Result<IpAddr, String> {
    if text.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    text.trim_matches(|c| c == '[' || c == ']')
        .parse()
        .map_err(|_| {
            format!(
                "`{text}` is not an IP address; write e.g. \"127.0.0.1\", \"::1\" or \"0.0.0.0\" (all interfaces)"
            )
        })
}

/// `/mcp` stays, `mcp/` and `/mcp/` become `/mcp`; `/` is the root.
fn normalize_path(path: &str) -> Result<String, String> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return Ok("/".into());
    }
    let valid = trimmed
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b))
        && !trimmed.contains("//");
    if !valid {
        return Err(format!(
            "`{path}` is not a plain URL path; use letters, digits, `-._~` and `/`, e.g. \"/mcp\""
        ));
    }
    Ok(format!("/{trimmed}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(text: &str) -> Result<ServerSettings, (String, String)> {
        let raw: RawServer = toml::from_str(text).expect("valid [server] TOML");
        raw.resolve()
    }

    #[test]
    fn defaults_serve_stdio_and_http_on_loopback() {
        let settings = resolve("").unwrap();
        assert_eq!(settings, ServerSettings::default());
        assert_eq!(settings.host.to_string(), "127.0.0.1");
        assert!(settings.is_loopback());
    }

    #[test]
    fn non_loopback_addresses_are_read() {
        let settings = resolve(
            "transport = \"http\"\nhost = \"0.0.0.0\"\nport = 0\nstateless = true\nallow-unauthenticated = true\n",
        )
        .unwrap();
        assert_eq!(settings.transport, Transport::Http);
        assert_eq!(settings.host.to_string(), "0.0.0.0");
        assert_eq!(settings.port, 0);
        assert!(settings.stateless);
        assert!(settings.allow_unauthenticated);
        assert!(!settings.is_loopback());
    }

    #[test]
    fn http_threads_default_to_half_the_cores_and_can_be_set() {
        let auto = resolve("").unwrap();
        assert_eq!(auto.io_threads, 0);
        assert_eq!(auto.http_threads(1), 2);
        assert_eq!(auto.http_threads(2), 2);
        assert_eq!(auto.http_threads(16), 8);
        assert_eq!(resolve("io-threads = 3").unwrap().http_threads(2), 3);
        assert_eq!(
            resolve("io-threads = 2000").unwrap_err(),
            (
                "server.io-threads".into(),
                "server.io-threads = 2000 is out of range; allowed: 0 to 1024".into()
            )
        );
    }

    #[test]
    fn paths_are_normalized_and_checked() {
        let path = |p: &str| resolve(&format!("path = \"{p}\""));
        assert_eq!(path("/mcp/").unwrap().path, "/mcp");
        assert_eq!(path("api/mcp").unwrap().path, "/api/mcp");
        assert_eq!(path("/").unwrap().path, "/");
        assert_eq!(
            path("/m?cp").unwrap_err(),
            (
                "server.path".into(),
                "`/m?cp` is not a plain URL path; use letters, digits, `-._~` and `/`, e.g. \"/mcp\"".into()
            )
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        assert_eq!(
            resolve("host = \"example.com\"").unwrap_err(),
            (
                "server.host".into(),
                "`example.com` is not an IP address; write e.g. \"127.0.0.1\", \"::1\" or \"0.0.0.0\" (all interfaces)".into()
            )
        );
        assert_eq!(
            resolve("max-sessions = 0").unwrap_err(),
            (
                "server.max-sessions".into(),
                "server.max-sessions = 0 is out of range; allowed: 1 to 1000000".into()
            )
        );
        assert_eq!(
            resolve("allowed-origins = [\"example.com\"]")
                .unwrap_err()
                .1,
            "`example.com` is not an origin; write `scheme://host[:port]`, e.g. \"https://app.example.com\" or \"http://localhost:*\""
        );
        let unknown = toml::from_str::<RawServer>("max-connections = 3").unwrap_err();
        assert!(
            unknown
                .to_string()
                .contains("unknown field `max-connections`"),
            "{unknown}"
        );
    }
}
