//! Logs go to stderr, always: in stdio mode stdout carries the protocol and nothing else.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the stderr logger with `filter` (e.g. `info`, `capsule=debug,warn`). An invalid
/// filter falls back to `info` with a warning rather than failing.
pub fn init(filter: &str) {
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
    // One global filter: a disabled span costs one branch.
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(filter)
        .try_init();
    if let Some(err) = bad {
        tracing::warn!("invalid log filter, using `info`: {err}");
    }
}
