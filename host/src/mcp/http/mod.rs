//! MCP over streamable HTTP: rmcp's `StreamableHttpService` in an axum router, behind the
//! edge checks ([`edge`]), beside the health probes ([`health`]), on our own accept loop
//! ([`listener`]).
//!
//! Sessions (protocol 2025-11-25) get an `Mcp-Session-Id`, SSE streams and `DELETE`; in
//! stateless mode, and for every request of protocol 2026-07-28 (which has no sessions),
//! each request stands alone. On shutdown the listener closes, `/readyz` turns 503, the
//! requests in flight finish (within `server.drain-timeout`), then sessions end.

mod allow;
mod authenticate;
mod edge;
mod gate;
mod health;
mod io_threads;
mod limit;
mod listener;
#[cfg(test)]
mod message_reading;
pub mod metrics;
mod session_slots;
mod tracked_body;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use hyper_util::server::graceful::GracefulShutdown;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::CapsuleServer;
use super::inflight::Inflight;
use crate::auth::Authenticator;
use crate::auth::metadata::ResourceMetadata;
use crate::config::{AuthSettings, ServerSettings};
use crate::units::format_duration;
use authenticate::Authentication;
use edge::Edge;
use health::Health;
use io_threads::IoThreads;

/// How long connections get to close once the requests in flight are done.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Why the HTTP server could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// A non-loopback address without `[auth]` or `allow-unauthenticated`.
    #[error(
        "refusing to serve MCP over HTTP on {addr} without authentication: it is not a loopback address, so anyone who can reach it could call every tool. Configure [auth] (static tokens: `capsule auth add-token NAME`, or [auth.jwt]; see docs/auth.md), listen on a loopback address (--host 127.0.0.1), or, if something in front of Capsule authenticates clients (a reverse proxy, a service mesh, a private network), pass --allow-unauthenticated (server.allow-unauthenticated = true)"
    )]
    Unauthenticated {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// `[auth]` could not be set up (e.g. its key file cannot be read).
    #[error("cannot authenticate clients: {0}")]
    Auth(String),
    /// The address could not be bound.
    #[error(
        "cannot listen on {addr}: {reason}; choose another server.port / --port (0 picks a free one) or server.host / --host"
    )]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        reason: std::io::Error,
    },
    /// The threads that serve connections could not be started.
    #[error(
        "cannot start the threads that serve HTTP connections: {0}; lower server.io-threads or raise the process's thread limit"
    )]
    Threads(std::io::Error),
}

/// What the HTTP server needs that can fail before anything is served: the address may
/// be exposed as configured, and `[auth]` is set up (its keys read or fetched).
pub struct Prepared {
    authenticator: Option<Authenticator>,
}

/// Refuses a non-loopback address without `[auth]` or `server.allow-unauthenticated`, and
/// sets up `auth`. The CLI calls it before any plugin loads, so that a refusal is the last
/// thing the server says.
pub async fn prepare(
    settings: &ServerSettings,
    auth: Option<&AuthSettings>,
) -> Result<Prepared, HttpError> {
    if !settings.host.is_loopback() && !settings.allow_unauthenticated && auth.is_none() {
        return Err(HttpError::Unauthenticated {
            addr: SocketAddr::new(settings.host, settings.port),
        });
    }
    let authenticator = match auth {
        Some(auth) => Some(Authenticator::new(auth).await.map_err(HttpError::Auth)?),
        None => None,
    };
    Ok(Prepared { authenticator })
}

/// Serves `server` over HTTP as `settings` say, authenticating clients as `auth` says
/// with what [`prepare`] set up,
/// until `shutdown` is cancelled, then drains. Logs `listening on http://ADDRESS/PATH`
/// once the port is bound (port 0 picks one). `/metrics` is served here when the
/// server's metrics are on, unless `metrics_elsewhere` (a listener of its own serves it).
pub async fn serve(
    server: CapsuleServer,
    settings: &ServerSettings,
    auth: Option<&AuthSettings>,
    prepared: Prepared,
    metrics_elsewhere: bool,
    shutdown: CancellationToken,
) -> Result<(), HttpError> {
    let addr = SocketAddr::new(settings.host, settings.port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|reason| HttpError::Bind { addr, reason })?;
    let local = listener
        .local_addr()
        .map_err(|reason| HttpError::Bind { addr, reason })?;
    if !settings.host.is_loopback() && auth.is_none() {
        tracing::warn!(
            "serving without authentication on {local} (server.allow-unauthenticated): anyone who can reach it can call every tool"
        );
    }

    let cores = crate::cores::available();
    let threads = IoThreads::start(settings.http_threads(cores)).map_err(HttpError::Threads)?;

    let health = Arc::new(Health::new(
        server.registry().clone(),
        server.loading().clone(),
    ));
    let requests = Inflight::new();
    // A stateless request is served inside the request's own future (rmcp as vendored,
    // vendor/README.md), so a call started there shares its thread with hyper's work for
    // the other requests; beside others in flight it runs on the call threads instead
    // (1.2-1.5x the calls/s under 16 clients). A stateful session serves calls in a task
    // of its own, not the connection's, and keeps the rule it had (crowded there too,
    // 16 clients on one session served fewer calls/s). BENCHMARKS.md, "Crowded stateless
    // servers run calls on the call threads".
    let server = if settings.stateless {
        server.with_requests(requests.clone())
    } else {
        server
    };
    let mut sessions = LocalSessionManager::default();
    sessions.session_config.keep_alive = Some(settings.session_idle_timeout);
    let sessions = Arc::new(sessions);
    server.metrics().watch_sessions(sessions.clone());
    let end_sessions = CancellationToken::new();
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(!settings.stateless)
        .with_json_response(settings.json_response)
        .with_cancellation_token(end_sessions.clone())
        .with_max_request_body_bytes(
            usize::try_from(settings.max_body_size.bytes()).unwrap_or(usize::MAX),
        )
        // The edge checks `Host` and `Origin` (with our settings and messages).
        .disable_allowed_hosts();
    let limits = Arc::new(limit::Limits::new(
        server.limiter().clone(),
        server.registry().clone(),
        usize::try_from(settings.max_body_size.bytes()).unwrap_or(usize::MAX),
    ));
    let prototype = server.clone();
    let mcp = StreamableHttpService::new(
        move || Ok(prototype.for_new_client()),
        sessions.clone(),
        config,
    );
    let edge = Arc::new(Edge::new(
        settings,
        sessions,
        requests.clone(),
        health.clone(),
    ));
    let authentication = match (auth, prepared.authenticator) {
        (Some(auth), Some(authenticator)) => {
            let metadata = ResourceMetadata::new(auth, local, &settings.path);
            if auth.resource.is_none() && settings.host.is_unspecified() {
                tracing::warn!(
                    "auth.resource is not set, so the resource identifier is {}; set it to the URL clients use (e.g. https://mcp.example.com/mcp)",
                    metadata.resource()
                );
            }
            tracing::info!(
                resource = metadata.resource(),
                "clients authenticate with bearer tokens; protected resource metadata at {}",
                metadata.url()
            );
            Some(Arc::new(Authentication::new(
                authenticator,
                metadata,
                server.audit().clone(),
                server.metrics().clone(),
            )))
        }
        _ => None,
    };
    let metrics = server.metrics().clone();
    // `/metrics` here unless `metrics.addr` gives it a listener of its own.
    let metrics = (metrics.is_on() && !metrics_elsewhere).then_some(metrics);
    let router = routes(
        &settings.path,
        mcp,
        edge,
        authentication,
        limits,
        health.clone(),
        metrics,
    );

    tracing::info!(
        stateless = settings.stateless,
        "listening on http://{local}{}",
        settings.path
    );
    server
        .audit()
        .server_start(crate::config::Transport::Http, Some(local));
    let graceful = GracefulShutdown::new();
    listener::accept(
        listener,
        router,
        settings.header_read_timeout,
        &graceful,
        Some(&threads),
        shutdown,
    )
    .await;

    health.start_draining();
    tracing::info!(
        "stopped accepting connections; letting {} requests in flight finish (at most server.drain-timeout = {})",
        requests.len(),
        format_duration(settings.drain_timeout)
    );
    // Open connections close once their current response is sent.
    let closing = tokio::spawn(graceful.shutdown());
    if let Err(left) = requests.wait_idle(settings.drain_timeout).await {
        tracing::warn!(
            "server.drain-timeout ({}) passed; cutting off {} requests: {}; calls still running: {}",
            format_duration(settings.drain_timeout),
            left.len(),
            left.join(", "),
            server.calls().cut_off_now().join(", ")
        );
    }
    // Ends the sessions and their event streams (GET), which would hold connections open.
    end_sessions.cancel();
    if tokio::time::timeout(CLOSE_GRACE, closing).await.is_err() {
        tracing::debug!("connections still open after the drain; closing them");
    }
    tracing::info!("HTTP server stopped");
    Ok(())
}

/// `/healthz`, `/readyz`, and the MCP endpoint at `path` and `path/` ([`gate::Gate`]):
/// `Host`/`Origin` first, then authentication (with `[auth]`, which also serves the
/// metadata document), then the admission checks that read the body; the rate limits
/// last (they need the principal). `/metrics` (with `metrics`) behind the `Host`/`Origin`
/// screen only.
fn routes(
    path: &str,
    mcp: StreamableHttpService<CapsuleServer, LocalSessionManager>,
    edge: Arc<Edge>,
    authentication: Option<Arc<Authentication>>,
    limits: Arc<limit::Limits>,
    health: Arc<Health>,
    metrics: Option<crate::metrics::Metrics>,
) -> Router {
    let mut metadata = Router::new();
    if let Some(authentication) = &authentication {
        let mut document = Router::new();
        for route in authentication.metadata().paths(path) {
            document = document.route(&route, get(authenticate::metadata));
        }
        metadata = document.with_state(authentication.clone());
    }
    let gate = gate::Gate::new(edge.clone(), authentication, limits, mcp);
    let mut endpoint = Router::new().route_service(path, gate.clone());
    if path != "/" {
        endpoint = endpoint.route_service(&format!("{path}/"), gate);
    }
    if let Some(metrics) = metrics {
        endpoint = endpoint.merge(
            metrics::route(metrics)
                .layer(axum::middleware::from_fn_with_state(edge, edge::screened)),
        );
    }
    Router::new()
        .route("/healthz", get(health::alive))
        .route("/readyz", get(health::ready))
        .with_state(health)
        .merge(metadata)
        .merge(endpoint)
}
