//! Logs go to stderr, always: in stdio mode stdout carries the protocol and nothing else.
//! With `[telemetry] otlp-endpoint`, the calls' spans are also exported
//! ([`crate::telemetry`]), whatever the log filter.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::OtlpSettings;
use crate::telemetry::Exporter;

/// Installs the stderr logger with `filter` (e.g. `info`, `capsule=debug,warn`) and, with
/// `otlp`, the span exporter, which the caller keeps until it stops (dropping it sends the
/// last spans). An invalid filter falls back to `info` with a warning rather than failing;
/// an exporter that cannot start is logged and left out.
pub fn init(filter: &str, otlp: Option<&OtlpSettings>) -> Option<Exporter> {
    // rmcp logs session events at `info` and every error response (e.g. an unknown tool) at
    // `warn`; our own handler logs what matters, so keep rmcp to errors unless asked.
    let filter = if filter.contains("rmcp") {
        filter.to_string()
    } else {
        format!("{filter},rmcp=error")
    };
    let (filter, bad) = match EnvFilter::try_new(&filter) {
        Ok(f) => (f, None),
        Err(err) => (EnvFilter::new("info"), Some(err)),
    };
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false);
    let (exporter, failed) = match otlp.map(Exporter::start) {
        None => (None, None),
        Some(Ok(exporter)) => (Some(exporter), None),
        Some(Err(err)) => (None, Some(err)),
    };
    match &exporter {
        // The common case keeps one global filter: a disabled span costs one branch.
        None => {
            let _ = tracing_subscriber::registry()
                .with(stderr)
                .with(filter)
                .try_init();
        }
        // Each layer filters for itself: the exporter sees the call spans even when the
        // log filter leaves them out.
        Some(exporter) => {
            let calls = Targets::new().with_target("capsule::call", LevelFilter::DEBUG);
            let _ = tracing_subscriber::registry()
                .with(stderr.with_filter(filter))
                .with(exporter.layer().with_filter(calls))
                .try_init();
        }
    }
    if let Some(err) = bad {
        tracing::warn!("invalid log filter, using `info`: {err}");
    }
    if let Some(err) = failed {
        tracing::warn!("{err}; serving without exporting traces");
    }
    if let Some(otlp) = otlp.filter(|_| exporter.is_some()) {
        tracing::info!(
            url = %otlp.traces_url,
            "exporting a span per tools/call over OTLP/HTTP"
        );
    }
    exporter
}
