//! OpenTelemetry export of the calls' spans (`[telemetry]`, `docs/observability.md`):
//! the `tools/call` span of [`crate::trace`] is bridged to an OpenTelemetry span by
//! `tracing-opentelemetry`, batched, and sent as OTLP/HTTP protobuf to the collector.
//! A caller's W3C `traceparent` becomes the span's parent, so the call appears inside the
//! caller's trace. Off unless `telemetry.otlp-endpoint` is set; then only the call spans
//! (target `capsule::call`) are exported, whatever the log filter says.

mod sender;

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::config::OtlpSettings;
use crate::trace::TraceParent;

/// How long one export may take before it is given up.
const EXPORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Why the exporter could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot export traces to {url}: {reason}")]
pub struct TelemetryError {
    url: String,
    reason: String,
}

/// The running exporter; dropping it sends what is still batched.
pub struct Exporter {
    provider: SdkTracerProvider,
}

impl Exporter {
    /// An exporter to `settings`' collector. Needs a Tokio runtime: the batches are sent
    /// from it.
    pub fn start(settings: &OtlpSettings) -> Result<Self, TelemetryError> {
        let failed = |reason: String| TelemetryError {
            url: settings.traces_url.clone(),
            reason,
        };
        let exporter = SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(settings.traces_url.clone())
            .with_timeout(EXPORT_TIMEOUT)
            .with_http_client(sender::Sender::new().map_err(|e| failed(e.to_string()))?)
            .build()
            .map_err(|e| failed(e.to_string()))?;
        let batches = BatchSpanProcessor::builder(exporter)
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_scheduled_delay(settings.export_interval)
                    .build(),
            )
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(batches)
            .with_resource(
                Resource::builder_empty()
                    .with_attributes([
                        KeyValue::new("service.name", settings.service_name.clone()),
                        KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
                    ])
                    .build(),
            )
            .build();
        Ok(Self { provider })
    }

    /// The `tracing` layer that turns call spans into OpenTelemetry spans.
    pub fn layer<S>(&self) -> impl tracing_subscriber::Layer<S> + use<S>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("capsule"))
            .with_tracked_inactivity(false)
            .with_location(false)
            .with_threads(false)
    }
}

impl Drop for Exporter {
    /// Sends the spans still batched and stops.
    fn drop(&mut self) {
        if let Err(err) = self.provider.shutdown() {
            tracing::warn!("could not send the last spans to the OTLP collector: {err}");
        }
    }
}

/// Makes the caller's `parent` the parent of `span` (nothing without an exporter).
pub fn set_parent(span: &Span, parent: &TraceParent) {
    let (Ok(trace_id), Ok(span_id)) = (
        TraceId::from_hex(&parent.trace_id),
        SpanId::from_hex(&parent.parent_id),
    ) else {
        return;
    };
    let flags = if parent.sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    let remote = SpanContext::new(trace_id, span_id, flags, true, TraceState::default());
    // Only fails when no OpenTelemetry layer is installed, i.e. export is off.
    let _ = span.set_parent(Context::new().with_remote_span_context(remote));
}
