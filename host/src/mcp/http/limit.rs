//! Rate limits at the HTTP edge, after authentication: every POST of a principal takes a
//! token of its bucket (`[rate-limits] per-principal`), and a `tools/call` of a tool with
//! a `rate-limit` takes one of the tool's, so both answer 429 with `Retry-After` before
//! rmcp sees the request. The tool's token is taken here only for a tool the caller may
//! call (another is answered as unknown by the handler, limit or not); the request is then
//! marked [`ToolLimitChecked`] so the handler does not take a second. What the edge cannot
//! see (a JSON-RPC batch) the handler limits, as it does over stdio.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::auth::limiter::{Exceeded, RATE_LIMITED, RateLimiter, ToolLimitChecked};
use crate::registry::Registry;

/// What the check needs: the buckets, the tools, the body size bound.
pub struct Limits {
    limiter: Arc<RateLimiter>,
    registry: Arc<Registry>,
    max_body: usize,
}

impl Limits {
    /// The checks of `limiter`'s limits for the tools of `registry`; bodies are at most
    /// `max_body` bytes (the edge has already refused larger ones).
    pub fn new(limiter: Arc<RateLimiter>, registry: Arc<Registry>, max_body: usize) -> Self {
        Self {
            limiter,
            registry,
            max_body,
        }
    }
}

/// The MCP endpoint's last check, inside authentication and the edge's: answers 429 or
/// passes the request on to `next`.
pub async fn guard<F, Fut>(limits: &Limits, request: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    if request.method() != axum::http::Method::POST {
        return next(request).await;
    }
    let tools = limits.registry.snapshot();
    let by_principal =
        request.extensions().get::<Principal>().is_some() && limits.limiter.limits_principals();
    if !by_principal && !tools.has_rate_limits() {
        return next(request).await;
    }
    // Copied only here: most servers have no limits, and then every request passes above.
    let principal = request.extensions().get::<Principal>().cloned();
    let now = Instant::now();
    let refused = match &principal {
        Some(principal) if by_principal => {
            limits.limiter.check_principal(&principal.name, now).err()
        }
        _ => None,
    };
    if refused.is_none() && !tools.has_rate_limits() {
        return next(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, limits.max_body).await else {
        // The edge has read the whole body already; let rmcp answer whatever this is.
        return next(Request::from_parts(parts, Body::empty())).await;
    };
    let probe: Probe = serde_json::from_slice(&bytes).unwrap_or_default();
    if let Some(exceeded) = refused {
        tracing::info!(principal = ?principal.map(|p| p.name), "rate limited: {exceeded}");
        return too_many_requests(probe.id, &exceeded);
    }
    if probe.method.as_deref() == Some("tools/call")
        && let Some(name) = probe.params.and_then(|p| p.name)
        && let Some(tool) = tools
            .get(&name)
            .filter(|t| t.access.permits(principal.as_ref(), &t.exposed_name))
        && let Some(rate) = &tool.access.rate_limit
    {
        if let Err(exceeded) = limits.limiter.check_tool(&tool.exposed_name, rate, now) {
            tracing::info!(tool = %tool.exposed_name, "rate limited: {exceeded}");
            return too_many_requests(probe.id, &exceeded);
        }
        parts.extensions.insert(ToolLimitChecked);
    }
    next(Request::from_parts(parts, Body::from(bytes))).await
}

/// The parts of a JSON-RPC request the limits look at.
#[derive(Default, Deserialize)]
struct Probe {
    #[serde(default)]
    id: Value,
    method: Option<String>,
    params: Option<Params>,
}

#[derive(Deserialize)]
struct Params {
    name: Option<String>,
}

/// 429 with `Retry-After` (whole seconds, rounded up) and the JSON-RPC error the handler
/// would send: code [`RATE_LIMITED`], the message, `data.retryAfterMs`.
fn too_many_requests(id: Value, exceeded: &Exceeded) -> Response {
    let body = json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": RATE_LIMITED, "message": exceeded.to_string(), "data": exceeded.data()},
    });
    let retry_after = HeaderValue::from(exceeded.retry_after_secs());
    (
        StatusCode::TOO_MANY_REQUESTS,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::RETRY_AFTER, retry_after),
        ],
        body.to_string(),
    )
        .into_response()
}
