//! The MCP endpoint as one service: the edge's screen (`Host`, `Origin`, draining), then
//! authentication (with `[auth]`), the edge's guard (slots, body, sessions), the rate
//! limits, and rmcp's `StreamableHttpService`, in that order, in one future per request.
//!
//! As axum middlewares (three, four with `[auth]`) the same checks cost each request a
//! boxed future, a boxed copy of the service inside and a clone of the rest of the chain
//! (rmcp's service and its configuration among it) per check: 3.5 µs of the ~66 µs a
//! stateless call cost the server under 16 clients (BENCHMARKS.md, "The endpoint's checks
//! in one service").

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use rmcp::transport::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

use super::authenticate::{self, Authentication};
use super::edge::{self, Edge};
use super::limit::{self, Limits};
use crate::mcp::CapsuleServer;

/// The MCP endpoint: its checks and rmcp behind them. Cloned per connection (an `Arc`).
#[derive(Clone)]
pub struct Gate(Arc<Checks>);

struct Checks {
    edge: Arc<Edge>,
    authentication: Option<Arc<Authentication>>,
    limits: Arc<Limits>,
    mcp: StreamableHttpService<CapsuleServer, LocalSessionManager>,
}

impl Gate {
    /// `mcp` behind the edge's checks, `authentication` (if any) and `limits`.
    pub fn new(
        edge: Arc<Edge>,
        authentication: Option<Arc<Authentication>>,
        limits: Arc<Limits>,
        mcp: StreamableHttpService<CapsuleServer, LocalSessionManager>,
    ) -> Self {
        Self(Arc::new(Checks {
            edge,
            authentication,
            limits,
            mcp,
        }))
    }
}

impl Checks {
    async fn serve(&self, request: Request) -> Response {
        if let Some(refusal) = edge::screen(&self.edge, &request) {
            return refusal;
        }
        let request = match &self.authentication {
            Some(authentication) => {
                match authenticate::authenticate(authentication, request).await {
                    Ok(request) => request,
                    Err(refusal) => return refusal,
                }
            }
            None => request,
        };
        edge::guard(&self.edge, request, |request| {
            limit::guard(&self.limits, request, |request| async move {
                self.mcp.handle(request).await.map(Body::new)
            })
        })
        .await
    }
}

impl tower_service::Service<Request> for Gate {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let checks = Arc::clone(&self.0);
        Box::pin(async move { Ok(checks.serve(request).await) })
    }
}
