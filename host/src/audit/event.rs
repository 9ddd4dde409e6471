//! The audit events: one JSON object per line, `ts` and `event` first, then the event's
//! fields (`docs/audit.md` lists them). Nothing here ever holds token material: an
//! authentication failure carries its reason and the client's address only.

use serde::{Serialize, Serializer};
use serde_json::Value;

/// One line of the audit log.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// When it happened: RFC 3339, UTC, milliseconds.
    pub ts: String,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event")]
pub enum Event {
    /// The server started serving.
    #[serde(rename = "server.start")]
    ServerStart {
        /// The `capsule` version.
        version: String,
        /// `stdio` or `http`.
        transport: String,
        /// HTTP: the address it listens on (the bound port when 0 was asked for).
        listen: Option<String>,
    },
    /// The server stopped serving.
    #[serde(rename = "server.stop")]
    ServerStop {
        /// `signal`, `stdin closed`, or the error that ended it.
        reason: String,
        /// Calls still running when `server.drain-timeout` ran out.
        calls_cut_off: usize,
    },
    /// The configuration `capsule serve` runs with.
    #[serde(rename = "config.loaded")]
    ConfigLoaded {
        /// The config file, if any.
        file: Option<String>,
        /// The digest of the effective configuration, as in `capsule.lock`.
        digest: String,
    },
    /// The config file changed while serving; nothing of it is applied until a restart
    /// (`docs/reload.md`).
    #[serde(rename = "config.changed")]
    ConfigChanged {
        /// The config file.
        file: String,
        /// The keys whose effective value differs from the running one, and
        /// `plugins.NAME` for each plugin whose entry differs.
        restart_needed: Vec<String>,
    },
    /// A plugin loaded.
    #[serde(rename = "plugin.loaded")]
    PluginLoaded {
        /// Its name.
        plugin: String,
        /// The sha256 of its `.wasm`.
        sha256: String,
        /// How many tools it offers.
        tools: usize,
    },
    /// A loaded plugin was replaced by a new version of its file or its sidecar policy
    /// while serving (`docs/reload.md`).
    #[serde(rename = "plugin.replaced")]
    PluginReplaced {
        /// Its name.
        plugin: String,
        /// The sha256 of the new `.wasm`.
        sha256: String,
        /// The sha256 of the one it replaced.
        previous_sha256: String,
        /// How many tools the new one offers.
        tools: usize,
    },
    /// A served plugin's file was deleted while serving; its tools are gone.
    #[serde(rename = "plugin.removed")]
    PluginRemoved {
        /// Its name.
        plugin: String,
        /// The sha256 of the `.wasm` it served.
        sha256: String,
    },
    /// A plugin did not load; the others still serve.
    #[serde(rename = "plugin.failed")]
    PluginFailed {
        /// Its name.
        plugin: String,
        /// Why, naming the file and the fix.
        reason: String,
    },
    /// An HTTP request was refused by authentication (never with the token).
    #[serde(rename = "auth.failure")]
    AuthFailure {
        /// Why (`missing token`, `expired`, …).
        reason: String,
        /// The client's address, if known.
        client: Option<String>,
    },
    /// One `tools/call` (with `audit.tool-calls`).
    #[serde(rename = "tool.call")]
    ToolCall {
        /// The authenticated caller; `null` over stdio and without `[auth]`.
        principal: Option<String>,
        /// The tool's exposed name, as the client asked for it.
        tool: String,
        /// From the request to the result, in milliseconds.
        duration_ms: u64,
        /// How it ended.
        outcome: Outcome,
        /// The arguments (with `audit.arguments`), when not longer than
        /// `audit.max-argument-bytes`.
        #[serde(skip_serializing_if = "Option::is_none")]
        arguments: Option<Value>,
        /// The size of arguments recorded by size only (longer than the limit).
        #[serde(skip_serializing_if = "Option::is_none")]
        arguments_bytes: Option<usize>,
    },
    /// A plugin's circuit breaker changed state (`docs/resilience.md`).
    #[serde(rename = "breaker.changed")]
    BreakerChanged {
        /// The plugin.
        plugin: String,
        /// The state it left: `closed`, `open`, `half-open`.
        from: String,
        /// The state it entered.
        to: String,
        /// Why (the faults that opened it, the probe's outcome).
        reason: String,
    },
    /// Degraded mode (read-only tools only) was turned on or off.
    #[serde(rename = "server.degraded")]
    Degraded {
        /// Whether only read-only tools are served now.
        degraded: bool,
        /// What turned it: `config` or `SIGUSR1`.
        by: String,
    },
    /// Events lost because the writer fell behind (the call path never waits for it).
    #[serde(rename = "audit.dropped")]
    Dropped {
        /// How many since the last line written.
        count: u64,
    },
}

/// How a `tools/call` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A result.
    Ok,
    /// The tool ran and reported an error (or its result broke its output schema).
    ToolError,
    /// The sandbox stopped it: the fault kind (`fuel`, `deadline`, `memory`, `crash`, …).
    Fault(&'static str),
    /// Refused before any instance ran: the arguments broke the input schema.
    Rejected,
    /// No slot within the queue bound (`runtime.max-queued-calls`).
    Busy,
    /// No tool of that name (answered with a JSON-RPC error).
    UnknownTool,
    /// Refused at once: the plugin's circuit breaker is open.
    BreakerOpen,
    /// Refused: degraded mode serves read-only tools only.
    Degraded,
}

impl Outcome {
    /// The value written: `ok`, `tool-error`, the fault kind, `rejected`, `busy`,
    /// `unknown-tool`, `breaker-open`, `degraded`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::ToolError => "tool-error",
            Self::Fault(kind) => kind,
            Self::Rejected => "rejected",
            Self::Busy => "busy",
            Self::UnknownTool => "unknown-tool",
            Self::BreakerOpen => "breaker-open",
            Self::Degraded => "degraded",
        }
    }
}

impl Serialize for Outcome {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_one_flat_object_with_ts_and_event_first() {
        let record = Record {
            ts: "2026-12-04T02:30:00.000Z".into(),
            event: Event::ToolCall {
                principal: None,
                tool: "echo_echo".into(),
                duration_ms: 3,
                outcome: Outcome::Fault("fuel"),
                arguments: None,
                arguments_bytes: Some(5000),
            },
        };
        assert_eq!(
            serde_json::to_string(&record).unwrap(),
            r#"{"ts":"2026-12-04T02:30:00.000Z","event":"tool.call","principal":null,"tool":"echo_echo","duration_ms":3,"outcome":"fuel","arguments_bytes":5000}"#
        );
    }
}
