//! The checks every MCP request passes before rmcp sees it: `Host` (421) and `Origin`
//! (403), draining (503), the session's requests in flight (429), the body's size (413)
//! and arrival time (408), and the number of sessions (503 for one `initialize` too many).
//! Each refusal is a JSON-RPC error body naming the setting that caused it. Two steps of
//! the endpoint ([`super::gate`]): [`screen`] (`Host`, `Origin`, draining) and [`guard`]
//! (the rest), so that authentication runs between them, before a body is read or a slot
//! taken.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use serde::Deserialize;
use serde_json::{Value, json};

use super::allow::{AllowedHosts, AllowedOrigins};
use super::health::Health;
use super::session_slots::SessionSlots;
use super::tracked_body::TrackedBody;
use crate::config::ServerSettings;
use crate::mcp::inflight::Inflight;
use crate::units::{ByteSize, format_duration};

/// The header that carries a session's id (2025-11-25 sessions).
const SESSION_HEADER: &str = "mcp-session-id";

/// JSON-RPC error codes of the edge's refusals (implementation-defined server errors).
pub(super) const REFUSED: i64 = -32000;
const BUSY: i64 = -32001;

/// What the checks need: settings, the live sessions, the in-flight marks.
pub struct Edge {
    hosts: AllowedHosts,
    origins: AllowedOrigins,
    max_body: ByteSize,
    body_timeout: Duration,
    stateful: bool,
    max_sessions: u32,
    sessions: Arc<LocalSessionManager>,
    /// Held by one `initialize` at a time while it is checked against `max_sessions` and
    /// its session is created, so two cannot both take the last place.
    session_gate: tokio::sync::Mutex<()>,
    slots: Arc<SessionSlots>,
    requests: Arc<Inflight>,
    health: Arc<Health>,
}

impl Edge {
    /// The checks for `settings`, listening on `listen`.
    pub fn new(
        settings: &ServerSettings,
        sessions: Arc<LocalSessionManager>,
        requests: Arc<Inflight>,
        health: Arc<Health>,
    ) -> Self {
        Self {
            hosts: AllowedHosts::new(&settings.allowed_hosts, settings.host),
            origins: AllowedOrigins::new(settings.allowed_origins.as_deref()),
            max_body: settings.max_body_size,
            body_timeout: settings.body_read_timeout,
            stateful: !settings.stateless,
            max_sessions: settings.max_sessions,
            sessions,
            session_gate: tokio::sync::Mutex::new(()),
            slots: SessionSlots::new(settings.max_requests_per_session),
            requests,
            health,
        }
    }
}

/// [`screen`] as an axum middleware, for the routes beside the MCP endpoint that share its
/// listener (`/metrics`).
pub async fn screened(State(edge): State<Arc<Edge>>, request: Request, next: Next) -> Response {
    match screen(&edge, &request) {
        None => next.run(request).await,
        Some(refusal) => refusal,
    }
}

/// The first check of the MCP endpoint: `Host`, `Origin`, draining. Returns the refusal
/// to answer `request` with, if any. Authentication (with `[auth]`) comes next, then
/// [`guard`].
pub fn screen(edge: &Edge, request: &Request) -> Option<Response> {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    let Some(host) = host else {
        return Some(refuse(
            StatusCode::BAD_REQUEST,
            REFUSED,
            "the request has no Host header".into(),
        ));
    };
    if !edge.hosts.allows(&host) {
        tracing::warn!(host, "refused a request for a host not served here");
        return Some(refuse(
            StatusCode::MISDIRECTED_REQUEST,
            REFUSED,
            format!(
                "Host `{host}` is not served here (DNS rebinding protection); if clients reach this server under that name, add it to server.allowed-hosts"
            ),
        ));
    }
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let origin = String::from_utf8_lossy(origin.as_bytes()).into_owned();
        if !edge.origins.allows(&origin, Some(&host)) {
            tracing::warn!(origin, "refused a request from a foreign origin");
            return Some(refuse(
                StatusCode::FORBIDDEN,
                REFUSED,
                format!(
                    "Origin `{origin}` may not use this server (cross-site request protection); if a browser app at that origin should, add it to server.allowed-origins"
                ),
            ));
        }
    }
    if edge.health.is_draining() {
        let mut response = refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            REFUSED,
            "the server is shutting down; retry on another replica or after it restarts".into(),
        );
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return Some(response);
    }
    None
}

/// The last check of the MCP endpoint before the rate limits: the session's requests in
/// flight, the body, the number of sessions. Passes the request on to `next` and holds
/// the session's slot and the in-flight mark until its response has been sent.
pub async fn guard<F, Fut>(edge: &Edge, request: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    if request.method() != axum::http::Method::POST {
        // GET opens a session's event stream (long-lived, not a request in flight);
        // DELETE ends a session.
        return next(request).await;
    }
    let session = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let slot = match &session {
        Some(id) => match edge.slots.try_enter(id) {
            Some(slot) => Some(slot),
            None => {
                return refuse(
                    StatusCode::TOO_MANY_REQUESTS,
                    BUSY,
                    format!(
                        "this session has {} requests in flight, the most server.max-requests-per-session allows; wait for a response before sending more",
                        edge.slots.max()
                    ),
                );
            }
        },
        None => None,
    };
    let in_flight = edge.requests.enter(match &session {
        Some(id) => format!("POST {} (session {id})", request.uri().path()),
        None => format!("POST {}", request.uri().path()),
    });
    let (parts, body) = request.into_parts();
    let bytes = match read_body(edge, &parts.headers, body).await {
        Ok(bytes) => bytes,
        Err(response) => return response,
    };
    let initialize = if edge.stateful && session.is_none() {
        initialize_id(&bytes)
    } else {
        None
    };
    let request = Request::from_parts(parts, Body::from(bytes));
    let response = match initialize {
        Some(id) => {
            let _gate = edge.session_gate.lock().await;
            let open = edge.sessions.sessions.read().await.len();
            if open >= edge.max_sessions as usize {
                tracing::warn!(open, "refused a new session: server.max-sessions reached");
                return refuse_with_id(
                    StatusCode::SERVICE_UNAVAILABLE,
                    id,
                    BUSY,
                    format!(
                        "{open} sessions are open, the most server.max-sessions allows; end one (HTTP DELETE with its Mcp-Session-Id) or wait until an idle one expires (server.session-idle-timeout)"
                    ),
                );
            }
            next(request).await
        }
        None => next(request).await,
    };
    response.map(|body| Body::new(TrackedBody::new(body, (slot, in_flight))))
}

/// The request body, at most `max_body` bytes, arriving within `body_timeout`.
async fn read_body(
    edge: &Edge,
    headers: &axum::http::HeaderMap,
    body: Body,
) -> Result<Bytes, Response> {
    let limit = edge.max_body.bytes();
    let too_large = |size: String| {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            REFUSED,
            format!(
                "the request body ({size}) is larger than server.max-body-size ({})",
                edge.max_body
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(declared) = declared
        && declared > limit
    {
        return Err(too_large(format!("{declared} bytes")));
    }
    let limited = Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    match tokio::time::timeout(edge.body_timeout, limited.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(err)) if err.downcast_ref::<LengthLimitError>().is_some() => {
            Err(too_large(format!("more than {limit} bytes")))
        }
        Ok(Err(err)) => Err(refuse(
            StatusCode::BAD_REQUEST,
            REFUSED,
            format!("cannot read the request body: {err}"),
        )),
        Err(_) => Err(refuse(
            StatusCode::REQUEST_TIMEOUT,
            REFUSED,
            format!(
                "the request body did not arrive within server.body-read-timeout ({})",
                format_duration(edge.body_timeout)
            ),
        )),
    }
}

/// The id of a JSON-RPC `initialize` request, if `body` is one.
fn initialize_id(body: &[u8]) -> Option<Value> {
    #[derive(Deserialize)]
    struct Probe {
        method: Option<String>,
        #[serde(default)]
        id: Value,
    }
    let probe: Probe = serde_json::from_slice(body).ok()?;
    (probe.method.as_deref() == Some("initialize")).then_some(probe.id)
}

/// A refusal with a JSON-RPC error body (`id: null`: the request was not read).
pub(super) fn refuse(status: StatusCode, code: i64, message: String) -> Response {
    refuse_with_id(status, Value::Null, code, message)
}

fn refuse_with_id(status: StatusCode, id: Value, code: i64, message: String) -> Response {
    let body = json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": code, "message": message},
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_initialize_requests_are_recognized() {
        assert_eq!(
            initialize_id(br#"{"jsonrpc":"2.0","id":7,"method":"initialize","params":{}}"#),
            Some(json!(7))
        );
        assert_eq!(
            initialize_id(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#),
            None
        );
        assert_eq!(initialize_id(b"[1,2]"), None);
        assert_eq!(initialize_id(b"not json"), None);
    }
}
