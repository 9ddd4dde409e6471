//! Sending an allowed `wasi:http` request: resolve the name in the host, refuse it when an
//! address is not public (unless the rule allows that), then connect to exactly the address
//! that was checked — never resolving again, so a rebinding DNS answer cannot slip a second
//! address past the check. TLS (rustls with the webpki roots, as `wasmtime-wasi-http` uses)
//! verifies the certificate against the host name. The policy's timeout bounds the lookup
//! and connect together (TCP, TLS and the HTTP handshake), then the wait for the first
//! response byte, then each wait between bytes; the body is cut off past the response size
//! limit.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep, timeout, timeout_at};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::outbound::Outbound;
use super::retry::{self, Body as RequestBody};
use super::{Destination, NetPolicy, address};

/// Turns a host name into addresses. The host's own resolver in production; tests give a
/// fixed answer.
pub trait Resolve: Send + Sync {
    /// The addresses of `host` (a name, not an IP literal) for `port`.
    fn resolve(
        &self,
        host: String,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>>;
}

/// The operating system's resolver (`getaddrinfo`, through tokio).
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(
        &self,
        host: String,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

/// The `wasi:http` hooks of one call: send what the policy allows, refuse the rest.
pub struct PolicyHttp {
    plugin: Arc<str>,
    net: Arc<NetPolicy>,
    resolver: Arc<dyn Resolve>,
    outbound: Arc<Outbound>,
}

impl PolicyHttp {
    /// Hooks for `plugin` under its network grant, resolving names with the system resolver,
    /// retrying and capping requests per host with the runtime's `outbound`.
    pub fn new(plugin: Arc<str>, net: Arc<NetPolicy>, outbound: Arc<Outbound>) -> Self {
        Self {
            plugin,
            net,
            resolver: Arc::new(SystemResolver),
            outbound,
        }
    }
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
        let Some(destination) = self.net.admit(request.uri()) else {
            tracing::warn!(
                plugin = %self.plugin,
                uri = %request.uri(),
                "denied outgoing HTTP request: not in this plugin's net.allow list"
            );
            return Box::new(async { Err(Error::HttpRequestDenied) });
        };
        tracing::debug!(plugin = %self.plugin, uri = %request.uri(), "outgoing HTTP request");
        let plugin = self.plugin.clone();
        let net = self.net.clone();
        let resolver = self.resolver.clone();
        let outbound = self.outbound.clone();
        Box::new(async move {
            let scheme = if destination.tls { "https" } else { "http" };
            let host = format!("{scheme}://{}:{}", destination.host, destination.port);
            let retries = if retry::idempotent(request.method()) {
                outbound.settings().retries
            } else {
                0
            };
            let (parts, body) = request.into_parts();
            let mut body = if retries > 0 {
                RequestBody::read(body, Instant::now() + net.timeout).await
            } else {
                RequestBody::Once(body)
            };
            outbound.count_request(&host);
            let mut retry = 0;
            loop {
                let (this, again) = body.take();
                let mut request = http::Request::new(this);
                *request.method_mut() = parts.method.clone();
                *request.uri_mut() = parts.uri.clone();
                *request.version_mut() = parts.version;
                *request.headers_mut() = parts.headers.clone();
                let sent = attempt(
                    request,
                    &destination,
                    &net,
                    &*resolver,
                    &outbound,
                    &host,
                    &plugin,
                )
                .await;
                let Some(again) = again else { return sent };
                let worth =
                    retry::worth_retrying(sent.as_ref().map(|(response, _)| response.status()));
                if retry >= retries || !worth {
                    return sent;
                }
                if !outbound.try_retry(&host) {
                    tracing::warn!(
                        plugin = %plugin,
                        host = %host,
                        "not retrying {} {}: the retry budget of this host is spent (runtime.outbound.retry-budget-percent / retry-budget-min)",
                        parts.method,
                        parts.uri
                    );
                    return sent;
                }
                retry += 1;
                let wait = outbound.backoff(retry);
                tracing::debug!(plugin = %plugin, host = %host, retry, ?wait, "retrying {} {}", parts.method, parts.uri);
                drop(sent);
                tokio::time::sleep(wait).await;
                body = again;
            }
        })
    }
}

/// One attempt: the destination's checked addresses, a slot of its host, then the request.
async fn attempt(
    request: http::Request<WasiBody>,
    destination: &Destination,
    net: &NetPolicy,
    resolver: &dyn Resolve,
    outbound: &Outbound,
    host: &str,
    plugin: &str,
) -> SendResult {
    let connected_by = Instant::now() + net.timeout;
    let addresses = checked_addresses(destination, resolver, connected_by)
        .await
        .inspect_err(|refusal| {
            if let Refusal::NotPublic { address, range } = refusal {
                tracing::warn!(
                    plugin,
                    uri = %request.uri(),
                    "denied outgoing HTTP request: {} resolves to {}, a {range} address; list the host in net.allow-private to allow it",
                    destination.host,
                    address.ip()
                );
            }
        })
        .map_err(Refusal::into_error)?;
    let Some(slot) = outbound.slot(host, connected_by).await else {
        tracing::warn!(
            plugin,
            host,
            "outgoing HTTP request not sent: runtime.outbound.max-connections-per-host requests to this host stayed in flight for the whole net.timeout"
        );
        return Err(Error::ConnectionLimitReached);
    };
    let (response, io) = send(request, destination, &addresses, net, connected_by).await?;
    // The slot is held until the connection is done with.
    let io = async move {
        let _slot = slot;
        Pin::from(io).await
    };
    Ok((response, Box::new(io)))
}

/// Why a destination's addresses cannot be used.
#[derive(Debug)]
enum Refusal {
    /// The address is not on the public internet and the rule does not allow that.
    NotPublic {
        address: SocketAddr,
        range: &'static str,
    },
    /// The name did not resolve (in time).
    Lookup(Error),
}

impl Refusal {
    fn into_error(self) -> Error {
        match self {
            Refusal::NotPublic { .. } => Error::DestinationIpProhibited,
            Refusal::Lookup(err) => err,
        }
    }
}

/// The destination's addresses, each checked: a fixed address (IP literal or `net.hosts`)
/// or the resolver's answer, refused as a whole if any address is not public and the rule
/// does not allow that.
async fn checked_addresses(
    destination: &Destination,
    resolver: &dyn Resolve,
    deadline: Instant,
) -> Result<Vec<SocketAddr>, Refusal> {
    let addresses = match destination.fixed {
        Some(ip) => vec![SocketAddr::new(ip, destination.port)],
        None => timeout_at(
            deadline,
            resolver.resolve(destination.host.clone(), destination.port),
        )
        .await
        .map_err(|_| Refusal::Lookup(Error::DnsTimeout))?
        .map_err(|err| Refusal::Lookup(Error::Connect(err)))?,
    };
    if addresses.is_empty() {
        return Err(Refusal::Lookup(Error::DestinationNotFound));
    }
    if !destination.private_ok {
        for address in &addresses {
            if let Some(range) = address::non_public(address.ip()) {
                return Err(Refusal::NotPublic {
                    address: *address,
                    range,
                });
            }
        }
    }
    Ok(addresses)
}

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Sync + Unpin + 'static> Stream for T {}

/// Connects to the first of `addresses` that answers and speaks TLS if asked (all before
/// `connected_by`), then sends.
async fn send(
    mut request: http::Request<WasiBody>,
    destination: &Destination,
    addresses: &[SocketAddr],
    net: &NetPolicy,
    connected_by: Instant,
) -> SendResult {
    let limit = net.timeout;
    let tcp = timeout_at(connected_by, connect(addresses))
        .await
        .map_err(|_| Error::ConnectionTimeout)??;
    let stream: Box<dyn Stream> = if destination.tls {
        let name = server_name(&destination.host)?;
        let tls = timeout_at(connected_by, tls_connector().connect(name, tcp))
            .await
            .map_err(|_| Error::ConnectionTimeout)?
            .map_err(Error::Tls)?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let (mut sender, connection) = timeout_at(
        connected_by,
        hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;
    // Dropped with the response (or on an error below), which closes the connection.
    let connection = wasmtime_wasi::runtime::spawn(connection);
    // The request line carries only the path; the host went into the `host` header.
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    let response = timeout(limit, sender.send_request(request))
        .await
        .map_err(|_| Error::ConnectionReadTimeout)??;
    let max = net.max_response.bytes();
    let response = response.map(|incoming| {
        ResponseBody {
            incoming,
            idle: limit,
            deadline: Box::pin(tokio::time::sleep(limit)),
            remaining: max,
            limit: max,
        }
        .boxed_unsync()
    });
    let io = async move {
        match connection.await {
            Err(err) if err.is_timeout() => Err(Error::HttpResponseTimeout),
            other => other.map_err(Error::from),
        }
    };
    Ok((response, Box::new(io)))
}

/// A TCP connection to the first address that accepts one.
async fn connect(addresses: &[SocketAddr]) -> Result<TcpStream, Error> {
    let mut last = None;
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => return Ok(stream),
            Err(err) => last = Some(err),
        }
    }
    Err(Error::Connect(last.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, "no address to connect to")
    })))
}

/// The name the certificate must be for: the host name, or the IP literal.
fn server_name(host: &str) -> Result<rustls::pki_types::ServerName<'static>, Error> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return Ok(ip.into());
    }
    Ok(rustls::pki_types::ServerName::try_from(host.to_string())?)
}

/// One TLS client configuration for the process (the webpki root certificates); also
/// fetches JWKS for `auth`.
pub(crate) fn tls_connector() -> tokio_rustls::TlsConnector {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        // `ring`, explicitly: a build that also links aws-lc-rs (the test builds, through
        // reqwest) would otherwise have no default provider.
        crate::distribution::tls::install_provider();
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        Arc::new(
            rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    });
    tokio_rustls::TlsConnector::from(config.clone())
}

/// A response body that fails with `HTTP-response-body-size` past `limit` bytes and with
/// `connection-read-timeout` when no data arrives for `idle`.
struct ResponseBody {
    incoming: hyper::body::Incoming,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    remaining: u64,
    limit: u64,
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Pending => {
                if self.deadline.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Some(Err(Error::ConnectionReadTimeout)));
                }
                Poll::Pending
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(err))) if err.is_timeout() => {
                Poll::Ready(Some(Err(Error::HttpResponseTimeout)))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(Error::from(err)))),
            Poll::Ready(Some(Ok(frame))) => {
                let idle = self.idle;
                self.deadline.as_mut().reset(Instant::now() + idle);
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > self.remaining {
                        return Poll::Ready(Some(Err(Error::HttpResponseBodySize(Some(
                            self.limit,
                        )))));
                    }
                    self.remaining -= len;
                }
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::net::RawNet;

    /// Answers every name with `addresses`, counting the lookups.
    struct Fixed {
        addresses: Vec<SocketAddr>,
        lookups: std::sync::atomic::AtomicUsize,
    }

    impl Resolve for Fixed {
        fn resolve(
            &self,
            _host: String,
            port: u16,
        ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>> {
            self.lookups
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let addresses = self
                .addresses
                .iter()
                .map(|a| SocketAddr::new(a.ip(), port))
                .collect();
            Box::pin(async move { Ok(addresses) })
        }
    }

    fn fixed(addresses: &[&str]) -> Fixed {
        Fixed {
            addresses: addresses
                .iter()
                .map(|ip| SocketAddr::new(ip.parse().unwrap(), 0))
                .collect(),
            lookups: Default::default(),
        }
    }

    fn policy(allow: &[&str], allow_private: &[&str], hosts: &[(&str, &str)]) -> NetPolicy {
        RawNet {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            allow_private: allow_private.iter().map(|s| s.to_string()).collect(),
            hosts: hosts
                .iter()
                .map(|(n, ip)| (n.to_string(), ip.to_string()))
                .collect(),
            ..RawNet::default()
        }
        .resolve()
        .unwrap()
    }

    async fn check(net: &NetPolicy, uri: &str, resolver: &Fixed) -> Result<Vec<String>, String> {
        let destination = net
            .admit(&uri.parse().unwrap())
            .expect("allowed by the rules");
        checked_addresses(
            &destination,
            resolver,
            Instant::now() + Duration::from_secs(1),
        )
        .await
        .map(|addresses| addresses.iter().map(ToString::to_string).collect())
        .map_err(|refusal| match refusal {
            Refusal::NotPublic { address, range } => format!("{address} {range}"),
            Refusal::Lookup(err) => format!("lookup: {err}"),
        })
    }

    #[tokio::test]
    async fn a_listed_name_resolving_to_a_private_address_is_refused() {
        let net = policy(&["api.example.com"], &[], &[]);
        let loopback = fixed(&["127.0.0.1"]);
        assert_eq!(
            check(&net, "https://api.example.com/", &loopback).await,
            Err("127.0.0.1:443 loopback (127.0.0.0/8)".into())
        );
        // One private address among public ones is enough to refuse: a rebinding name.
        let mixed = fixed(&["93.184.216.34", "169.254.169.254"]);
        assert_eq!(
            check(&net, "https://api.example.com/", &mixed).await,
            Err("169.254.169.254:443 link-local (169.254.0.0/16, cloud metadata)".into())
        );
        let public = fixed(&["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]);
        assert_eq!(
            check(&net, "https://api.example.com/", &public).await,
            Ok(vec![
                "93.184.216.34:443".into(),
                "[2606:2800:220:1:248:1893:25c8:1946]:443".into()
            ])
        );
        assert_eq!(public.lookups.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn private_addresses_need_allow_private_or_an_ip_literal_rule() {
        let loopback = fixed(&["127.0.0.1"]);
        let net = policy(&[], &["http://internal.test:8080"], &[]);
        assert_eq!(
            check(&net, "http://internal.test:8080/", &loopback).await,
            Ok(vec!["127.0.0.1:8080".into()])
        );
        let net = policy(&["http://127.0.0.1:8080", "http://[::1]:8080"], &[], &[]);
        assert_eq!(
            check(&net, "http://127.0.0.1:8080/", &loopback).await,
            Ok(vec!["127.0.0.1:8080".into()])
        );
        assert_eq!(
            check(&net, "http://[::1]:8080/", &loopback).await,
            Ok(vec!["[::1]:8080".into()])
        );
        assert_eq!(
            loopback.lookups.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "IP literals are not looked up"
        );
        // A wildcard that happens to match an IP literal is not that literal's rule.
        let net = policy(&["http://*.0.1"], &[], &[]);
        assert_eq!(
            check(&net, "http://10.0.0.1/", &loopback).await,
            Err("10.0.0.1:80 private (10.0.0.0/8)".into())
        );
    }

    #[tokio::test]
    async fn fixed_hosts_replace_dns_and_are_checked_like_it() {
        let unused = fixed(&["93.184.216.34"]);
        let net = policy(
            &["evil.test", "metadata.test"],
            &["http://internal.test"],
            &[
                ("evil.test", "127.0.0.1"),
                ("Metadata.Test", "169.254.169.254"),
                ("internal.test", "10.1.2.3"),
            ],
        );
        assert_eq!(
            check(&net, "https://evil.test/", &unused).await,
            Err("127.0.0.1:443 loopback (127.0.0.0/8)".into())
        );
        assert_eq!(
            check(&net, "https://metadata.test./", &unused).await,
            Err("169.254.169.254:443 link-local (169.254.0.0/16, cloud metadata)".into())
        );
        assert_eq!(
            check(&net, "http://internal.test/", &unused).await,
            Ok(vec!["10.1.2.3:80".into()])
        );
        assert_eq!(unused.lookups.load(std::sync::atomic::Ordering::SeqCst), 0);
        let bad = RawNet {
            hosts: [("x.test".to_string(), "nope".to_string())].into(),
            ..RawNet::default()
        };
        assert_eq!(
            bad.resolve().unwrap_err(),
            "hosts.\"x.test\": `nope` is not an IP address; write e.g. \"10.0.0.7\" or \"::1\""
        );
    }
}
