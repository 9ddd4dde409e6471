//! `GET /metrics`: the Prometheus exposition ([`crate::metrics`]). On the MCP listener it
//! sits behind the edge's `Host`/`Origin` screen but not authentication (scrapers carry no
//! MCP token; the page holds no secret: plugin and tool names, counts, timings). With
//! `metrics.addr` it has a listener of its own ([`serve`]), with the same `Host`/`Origin`
//! checks, e.g. for stdio mode or to keep it off the MCP port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::allow::{AllowedHosts, AllowedOrigins};
use super::edge::{REFUSED, refuse};
use super::listener;
use crate::metrics::{CONTENT_TYPE, Metrics};

/// The path of the exposition.
pub const PATH: &str = "/metrics";

/// How long a scraper has to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The route `GET /metrics` serving `metrics`.
pub(super) fn route(metrics: Metrics) -> Router {
    Router::new()
        .route(PATH, get(exposition))
        .with_state(metrics)
}

async fn exposition(State(metrics): State<Metrics>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        metrics.encode().await,
    )
        .into_response()
}

/// Why the metrics listener could not start.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot serve metrics on {addr}: {reason}; choose another metrics.addr / --metrics-addr (a port alone listens on 127.0.0.1; 0 picks a free one)"
)]
pub struct MetricsListenError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// Why.
    pub reason: std::io::Error,
}

/// Serves `/metrics` on a listener of its own at `addr`, answering only the `Host`
/// names of `allowed_hosts` (as `server.allowed-hosts`; empty: loopback names and the
/// listen address), until `shutdown` is cancelled. Returns the bound address once it
/// listens (logged as `metrics on http://ADDRESS/metrics`); serving goes on in a task.
pub async fn serve(
    metrics: Metrics,
    addr: SocketAddr,
    allowed_hosts: &[String],
    shutdown: CancellationToken,
) -> Result<SocketAddr, MetricsListenError> {
    let bound = TcpListener::bind(addr)
        .await
        .map_err(|reason| MetricsListenError { addr, reason })?;
    let local = bound
        .local_addr()
        .map_err(|reason| MetricsListenError { addr, reason })?;
    let screen = Arc::new(Screen {
        hosts: AllowedHosts::new(allowed_hosts, addr.ip()),
        origins: AllowedOrigins::new(None),
    });
    let router = route(metrics).layer(axum::middleware::from_fn_with_state(screen, screen_request));
    tracing::info!("metrics on http://{local}{PATH}");
    tokio::spawn(async move {
        let graceful = GracefulShutdown::new();
        listener::accept(
            bound,
            router,
            HEADER_READ_TIMEOUT,
            &graceful,
            None,
            shutdown,
        )
        .await;
        graceful.shutdown().await;
    });
    Ok(local)
}

/// The `Host` and `Origin` checks of the metrics listener.
struct Screen {
    hosts: AllowedHosts,
    origins: AllowedOrigins,
}

async fn screen_request(
    State(screen): State<Arc<Screen>>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    let Some(host) = host.filter(|h| screen.hosts.allows(h)) else {
        return refuse(
            StatusCode::MISDIRECTED_REQUEST,
            REFUSED,
            "this Host is not served here (DNS rebinding protection); if scrapers reach metrics under that name, add it to server.allowed-hosts".into(),
        );
    };
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let origin = String::from_utf8_lossy(origin.as_bytes()).into_owned();
        if !screen.origins.allows(&origin, Some(&host)) {
            return refuse(
                StatusCode::FORBIDDEN,
                REFUSED,
                format!("Origin `{origin}` may not read metrics (cross-site request protection)"),
            );
        }
    }
    next.run(request).await
}
