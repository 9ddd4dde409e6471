//! A `tracing` span per `tools/call` (`docs/observability.md`, "Traces"): target
//! `capsule::call`, level `debug`, named `tools/call`, with the plugin, tool, outcome,
//! fuel, peak memory, queue wait and run time, and the caller's W3C trace context
//! (`traceparent` from the request's `_meta`, else the HTTP header). Off by default: with
//! the default log filter the span is disabled and costs a branch; `--log-level
//! info,capsule::call=debug` shows one line per call. With `[telemetry] otlp-endpoint` the
//! call is also exported over OTLP ([`crate::telemetry`]) as a server span, a child of the
//! caller's `traceparent`, with an error status for every outcome but `ok`.

use tracing::Span;
use tracing::field::Empty;

use crate::audit::Outcome;
use crate::runtime::Usage;
use crate::telemetry::{self, CallExport};

/// A W3C `traceparent` (`00-TRACEID-PARENTID-FLAGS`), checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    /// 32 lower-case hex digits, not all zero.
    pub trace_id: String,
    /// 16 lower-case hex digits, not all zero: the caller's span.
    pub parent_id: String,
    /// The `sampled` flag.
    pub sampled: bool,
}

impl TraceParent {
    /// Reads `text` as W3C Trace Context level 1 says (version `00`; a higher version is
    /// read by its first four fields); `None` for anything malformed, which is ignored.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().split('-');
        let version = parts.next()?;
        let trace_id = parts.next()?;
        let parent_id = parts.next()?;
        let flags = parts.next()?;
        let rest = parts.next();
        let hex = |s: &str, len: usize| {
            s.len() == len
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        let zero = |s: &str| s.bytes().all(|b| b == b'0');
        if !hex(version, 2) || version == "ff" || (version == "00" && rest.is_some()) {
            return None;
        }
        if !hex(trace_id, 32) || zero(trace_id) || !hex(parent_id, 16) || zero(parent_id) {
            return None;
        }
        if !hex(flags, 2) {
            return None;
        }
        let flags = u8::from_str_radix(flags, 16).ok()?;
        Some(Self {
            trace_id: trace_id.to_owned(),
            parent_id: parent_id.to_owned(),
            sampled: flags & 1 == 1,
        })
    }
}

/// One call being traced: its log span and, when spans are exported, its export.
pub struct CallSpan {
    span: Span,
    export: Option<CallExport>,
}

impl CallSpan {
    /// The `tracing` span the call runs in (disabled under the default log filter).
    pub fn span(&self) -> &Span {
        &self.span
    }
}

/// The span of one call of `tool` (exposed name) of `plugin`. `traceparent` is asked for
/// only when the span is logged or exported.
pub fn call_span<'a>(
    plugin: &str,
    tool: &str,
    traceparent: impl FnOnce() -> Option<&'a str>,
) -> CallSpan {
    let span = tracing::debug_span!(
        target: "capsule::call",
        "tools/call",
        plugin,
        tool,
        trace_id = Empty,
        parent_span_id = Empty,
        outcome = Empty,
        fuel = Empty,
        memory = Empty,
        queue_wait_us = Empty,
        run_us = Empty,
        started_here = Empty,
    );
    let exporting = telemetry::exporting();
    if span.is_disabled() && !exporting {
        return CallSpan { span, export: None };
    }
    let parent = traceparent().and_then(TraceParent::parse);
    if let Some(parent) = &parent
        && !span.is_disabled()
    {
        span.record("trace_id", parent.trace_id.as_str());
        span.record("parent_span_id", parent.parent_id.as_str());
    }
    let export = CallExport::begin(parent.as_ref());
    CallSpan { span, export }
}

/// Records how the call of `call` to `tool` of `plugin` ended and what it used: exports
/// its span, and logs `call finished` in the log span.
pub fn finish(call: CallSpan, plugin: &str, tool: &str, outcome: Outcome, usage: &Usage) {
    if let Some(export) = call.export {
        export.end(plugin, tool, outcome, usage);
    }
    let span = call.span;
    if span.is_disabled() {
        return;
    }
    span.record("outcome", outcome.as_str());
    if let Some(fuel) = usage.fuel {
        span.record("fuel", fuel);
    }
    if let Some(memory) = usage.memory_peak {
        span.record("memory", memory);
    }
    span.record("queue_wait_us", usage.queue_wait.as_micros() as u64);
    if let Some(run) = usage.run_time {
        span.record("run_us", run.as_micros() as u64);
        span.record("started_here", usage.started_here);
    }
    tracing::debug!(target: "capsule::call", parent: &span, "call finished");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_traceparent_is_read() {
        assert_eq!(
            TraceParent::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            Some(TraceParent {
                trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
                parent_id: "b7ad6b7169203331".into(),
                sampled: true,
            })
        );
        // A later version may add fields.
        assert!(
            TraceParent::parse("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00-x")
                .is_some_and(|p| !p.sampled)
        );
    }

    #[test]
    fn a_malformed_traceparent_is_ignored() {
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
    }
}
