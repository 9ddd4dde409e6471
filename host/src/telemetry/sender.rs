//! The HTTP client the OTLP exporter sends batches with: the host's reqwest (rustls with
//! ring), run on the Tokio runtime. The exporter's batch thread is not a runtime thread,
//! so each send is spawned onto the runtime and awaited from there.

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};

/// Largest collector response read (they answer with a few bytes).
const MAX_RESPONSE: usize = 64 * 1024;

/// Sends OTLP requests on the runtime it was made on.
#[derive(Debug)]
pub(super) struct Sender {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl Sender {
    /// A sender on the current Tokio runtime.
    pub(super) fn new() -> Result<Self, HttpError> {
        crate::distribution::tls::install_provider();
        Ok(Self {
            client: reqwest::Client::builder().build()?,
            runtime: tokio::runtime::Handle::try_current()?,
        })
    }
}

#[async_trait::async_trait]
impl HttpClient for Sender {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let url = request.uri().to_string();
        let sent = self.runtime.spawn(async move {
            let (parts, body) = request.into_parts();
            let mut response = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let status = response.status();
            let headers = std::mem::take(response.headers_mut());
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > MAX_RESPONSE {
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            let mut answer = Response::builder().status(status).body(Bytes::from(body))?;
            *answer.headers_mut() = headers;
            Ok::<_, HttpError>(answer)
        });
        let answer = sent.await?;
        match &answer {
            Ok(response) if response.status().is_success() => {}
            Ok(response) => tracing::warn!(
                "the OTLP collector at {url} refused a batch of spans: HTTP {}",
                response.status()
            ),
            Err(err) => {
                tracing::warn!("could not send spans to the OTLP collector at {url}: {err}")
            }
        }
        answer
    }
}
