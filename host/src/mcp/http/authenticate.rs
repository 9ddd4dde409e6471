//! Authentication at the MCP endpoint (with `[auth]`), after the edge's `Host`/`Origin`
//! checks: the bearer token becomes a [`Principal`] in the request's extensions, or the
//! request is refused the way RFC 6750 and the MCP authorization spec say: 401 with
//! `WWW-Authenticate: Bearer resource_metadata="…"` (and `error="invalid_token"` with the
//! reason when a token was sent), 400 for a token in the URL query, 403
//! `error="insufficient_scope"` for a valid token without a required scope. Every body is
//! a JSON-RPC error like the edge's other refusals. Token material is never logged.
//!
//! Also serves the RFC 9728 metadata document ([`metadata`]).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::edge::{REFUSED, refuse};
use super::listener::Peer;
use crate::audit::Audit;
use crate::auth::metadata::ResourceMetadata;
use crate::auth::{Authenticator, Principal, Refusal};
use crate::metrics::Metrics;

/// What authentication needs: the verifier and the metadata document's URL.
pub struct Authentication {
    authenticator: Authenticator,
    metadata: ResourceMetadata,
    /// `resource_metadata="URL"`, as every challenge ends.
    metadata_param: String,
    /// Where refusals are recorded (`auth.failure`).
    audit: Audit,
    /// Where refusals are counted (`capsule_auth_failures_total`).
    metrics: Metrics,
}

impl Authentication {
    /// Authentication with `authenticator`, pointing clients at `metadata`.
    pub fn new(
        authenticator: Authenticator,
        metadata: ResourceMetadata,
        audit: Audit,
        metrics: Metrics,
    ) -> Self {
        let metadata_param = format!("resource_metadata=\"{}\"", metadata.url());
        Self {
            authenticator,
            metadata,
            metadata_param,
            audit,
            metrics,
        }
    }

    /// The metadata document served at the well-known paths.
    pub fn metadata(&self) -> &ResourceMetadata {
        &self.metadata
    }

    /// The `WWW-Authenticate` value of `refusal`.
    fn challenge(&self, refusal: &Refusal) -> String {
        let param = &self.metadata_param;
        match refusal {
            Refusal::Missing => format!("Bearer {param}"),
            Refusal::InQuery | Refusal::NotBearer => format!(
                "Bearer error=\"invalid_request\", error_description=\"{}\", {param}",
                quotable(&refusal.to_string())
            ),
            Refusal::Invalid(_) => format!(
                "Bearer error=\"invalid_token\", error_description=\"{}\", {param}",
                quotable(&refusal.to_string())
            ),
            Refusal::InsufficientScope { .. } => format!(
                "Bearer error=\"insufficient_scope\", scope=\"{}\", {param}",
                self.authenticator.required_scopes().join(" ")
            ),
        }
    }
}

/// The MCP endpoint's check after the edge's screen: `request`, with its [`Principal`] in
/// its extensions, or the refusal to answer it with.
pub async fn authenticate(
    auth: &Authentication,
    mut request: Request,
) -> Result<Request, Response> {
    let client = request.extensions().get::<Peer>().map(|peer| peer.0);
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    match auth
        .authenticator
        .authenticate(authorization, request.uri().query())
        .await
    {
        Ok(principal) => {
            tracing::debug!(target: "capsule::auth", principal = %principal.name, client = %Client(client), "authenticated");
            request.extensions_mut().insert::<Principal>(principal);
            Ok(request)
        }
        Err(refusal) => {
            refused(&refusal, client);
            auth.audit.auth_failure(&refusal.to_string(), client);
            auth.metrics.auth_failure(&refusal);
            let status = match refusal {
                Refusal::InQuery | Refusal::NotBearer => StatusCode::BAD_REQUEST,
                Refusal::InsufficientScope { .. } => StatusCode::FORBIDDEN,
                Refusal::Missing | Refusal::Invalid(_) => StatusCode::UNAUTHORIZED,
            };
            let mut response = refuse(status, REFUSED, refusal.to_string());
            if let Ok(value) = HeaderValue::from_str(&auth.challenge(&refusal)) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
            Err(response)
        }
    }
}

/// Every refused request passes here: the one place an audit log hooks in. Logs the
/// reason and the client's address (never the token).
pub fn refused(refusal: &Refusal, client: Option<SocketAddr>) {
    let principal = match refusal {
        Refusal::InsufficientScope { principal, .. } => Some(principal.as_str()),
        _ => None,
    };
    tracing::warn!(
        target: "capsule::auth",
        reason = %refusal,
        principal,
        client = %Client(client),
        "refused a request: authentication failed"
    );
}

/// `GET /.well-known/oauth-protected-resource[/PATH]`: the RFC 9728 document.
pub async fn metadata(State(auth): State<Arc<Authentication>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        auth.metadata().document().to_string(),
    )
        .into_response()
}

/// A client address for logs (`unknown` if the listener did not record it).
struct Client(Option<SocketAddr>);

impl std::fmt::Display for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(addr) => addr.fmt(f),
            None => f.write_str("unknown"),
        }
    }
}

/// `text` fit for a quoted-string in a header: no `"` or `\`, printable ASCII only.
fn quotable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            c if c.is_ascii_graphic() || c == ' ' => c,
            _ => '?',
        })
        .collect()
}
