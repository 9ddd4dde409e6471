//! OpenTelemetry export of the calls' spans (`[telemetry]`, `docs/observability.md`):
//! each `tools/call` becomes one OpenTelemetry server span, built once when the call ends
//! (its start and end times are the call's), sampled, batched, and sent as OTLP/HTTP
//! protobuf to the collector. A caller's W3C `traceparent` becomes the span's parent, so
//! the call appears inside the caller's trace. Off unless `telemetry.otlp-endpoint` is set;
//! the log filter does not change what is exported.
//!
//! The span is built straight from the call's outcome and usage rather than bridged from
//! its `tracing` span: the bridge (`tracing-opentelemetry`) cost about 6% of a call's CPU
//! in span bookkeeping on every call (BENCHMARKS.md, "OTLP export on vs off").

mod sender;

use std::sync::OnceLock;
use std::time::SystemTime;

use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider,
};

use crate::audit::Outcome;
use crate::config::OtlpSettings;
use crate::runtime::Usage;
use crate::trace::TraceParent;

/// How long one export may take before it is given up.
const EXPORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The tracer of the process's exporter, once one started: calls build their spans with it.
static TRACER: OnceLock<SdkTracer> = OnceLock::new();

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
    /// Starts exporting to `settings`' collector: from now on every call's span is built
    /// and batched (one exporter per process; a second one is refused). Needs a Tokio
    /// runtime: the batches are sent from it.
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
            // A caller's sampling decision (its `traceparent` flag) is followed; a call
            // without one starts a trace that is kept with the configured probability.
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                settings.sample_ratio,
            ))))
            .with_resource(
                Resource::builder_empty()
                    .with_attributes([
                        KeyValue::new("service.name", settings.service_name.clone()),
                        KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
                    ])
                    .build(),
            )
            .build();
        TRACER
            .set(provider.tracer("capsule"))
            .map_err(|_| failed("an exporter is already running in this process".into()))?;
        Ok(Self { provider })
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

/// Starts exporting to `settings`' collector, logging that it does, or why it cannot
/// (then the server serves without exporting). The caller keeps the exporter until it
/// stops: dropping it sends the last spans.
pub fn start(settings: &OtlpSettings) -> Option<Exporter> {
    match Exporter::start(settings) {
        Ok(exporter) => {
            tracing::info!(
                url = %settings.traces_url,
                "exporting a span per tools/call over OTLP/HTTP"
            );
            Some(exporter)
        }
        Err(err) => {
            tracing::warn!("{err}; serving without exporting traces");
            None
        }
    }
}

/// Whether calls' spans are exported (an [`Exporter`] started).
pub fn exporting() -> bool {
    TRACER.get().is_some()
}

/// A call being traced for export: when it started and under which parent.
pub struct CallExport {
    tracer: &'static SdkTracer,
    started: SystemTime,
    parent: Context,
}

impl CallExport {
    /// Starts the export of a call now, under the caller's `parent` if it sent one; `None`
    /// when nothing is exported.
    pub fn begin(parent: Option<&TraceParent>) -> Option<Self> {
        Some(Self {
            tracer: TRACER.get()?,
            started: SystemTime::now(),
            parent: parent.map_or_else(Context::new, remote_parent),
        })
    }

    /// Builds the call's span (if sampled) with how it ended and what it used, and hands
    /// it to the batch.
    pub fn end(self, plugin: &str, tool: &str, outcome: Outcome, usage: &Usage) {
        let tracer = self.tracer;
        let builder = tracer
            .span_builder("tools/call")
            .with_kind(SpanKind::Server)
            .with_start_time(self.started);
        let mut span = tracer.build_with_context(builder, &self.parent);
        if !span.is_recording() {
            return;
        }
        let mut attributes = Vec::with_capacity(8);
        attributes.extend([
            KeyValue::new("plugin", plugin.to_owned()),
            KeyValue::new("tool", tool.to_owned()),
            KeyValue::new("outcome", outcome.as_str()),
            KeyValue::new("queue_wait_us", micros(usage.queue_wait)),
        ]);
        if let Some(run) = usage.run_time {
            attributes.push(KeyValue::new("run_us", micros(run)));
            attributes.push(KeyValue::new("started_here", usage.started_here));
        }
        if let Some(fuel) = usage.fuel {
            attributes.push(KeyValue::new(
                "fuel",
                i64::try_from(fuel).unwrap_or(i64::MAX),
            ));
        }
        if let Some(memory) = usage.memory_peak {
            attributes.push(KeyValue::new(
                "memory",
                i64::try_from(memory).unwrap_or(i64::MAX),
            ));
        }
        span.set_attributes(attributes);
        // OpenTelemetry's status: anything but a successful answer is an error of the call.
        if outcome != Outcome::Ok {
            span.set_status(Status::error(outcome.as_str()));
        }
        span.end();
    }
}

/// Whole microseconds of `duration`, as an OpenTelemetry integer.
fn micros(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// A context whose remote span is the caller's `parent`.
fn remote_parent(parent: &TraceParent) -> Context {
    let (Ok(trace_id), Ok(span_id)) = (
        TraceId::from_hex(&parent.trace_id),
        SpanId::from_hex(&parent.parent_id),
    ) else {
        return Context::new();
    };
    let flags = if parent.sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    let remote = SpanContext::new(trace_id, span_id, flags, true, TraceState::default());
    Context::new().with_remote_span_context(remote)
}
