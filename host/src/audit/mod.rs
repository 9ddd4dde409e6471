//! The audit log (`[audit]`, `docs/audit.md`): what `capsule serve` did and who asked,
//! as JSON lines to a file or stderr. Server start and stop, the configuration loaded
//! (with its digest), plugins loaded and failed, authentication failures, and with
//! `audit.tool-calls` every `tools/call` (principal, tool, duration, outcome; arguments
//! only with `audit.arguments`). Token material is never recorded.
//!
//! [`Audit`] is a cheap handle shared by the app, the MCP handler and the HTTP layer;
//! recording never blocks a call (see [`sink`]).

mod event;
mod sink;
mod time;

pub(crate) use time::rfc3339;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rmcp::model::JsonObject;

use crate::config::{AuditSettings, Settings, Transport};
use crate::loader::{Problem, Severity};
use crate::runtime::Plugin;

pub use event::{Event, Outcome, Record};
pub use sink::AuditError;
use sink::Sink;

/// The audit log, or nothing when `[audit]` is off. Clones share one writer.
#[derive(Clone, Default)]
pub struct Audit {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    sink: Sink,
    tool_calls: bool,
    arguments: bool,
    max_argument_bytes: usize,
}

impl Audit {
    /// An audit log that records nothing.
    pub fn off() -> Self {
        Self::default()
    }

    /// Opens the audit log `settings` describe (nothing when it is not enabled).
    pub fn open(settings: &AuditSettings) -> Result<Self, AuditError> {
        if !settings.enabled {
            return Ok(Self::off());
        }
        let sink = Sink::open(&settings.target, sink::CAPACITY)?;
        Ok(Self {
            inner: Some(Arc::new(Inner {
                sink,
                tool_calls: settings.tool_calls,
                arguments: settings.arguments,
                max_argument_bytes: usize::try_from(settings.max_argument_bytes.bytes())
                    .unwrap_or(usize::MAX),
            })),
        })
    }

    /// Records `event` now.
    pub fn record(&self, event: Event) {
        if let Some(inner) = &self.inner {
            inner.sink.send(event);
        }
    }

    /// `config.loaded`: the config file and the digest of the effective configuration
    /// (the one `capsule.lock` records).
    pub fn config_loaded(&self, settings: &Settings) {
        if self.inner.is_none() {
            return;
        }
        self.record(Event::ConfigLoaded {
            file: settings
                .config_file
                .as_ref()
                .map(|f| f.display().to_string()),
            digest: crate::lock::config_digest(settings),
        });
    }

    /// `plugin.loaded` for each of `plugins` and `plugin.failed` for each plugin-level
    /// error in `problems`, by plugin name.
    pub fn plugins(&self, plugins: &[Arc<Plugin>], problems: &[Problem]) {
        if self.inner.is_none() {
            return;
        }
        let mut events: Vec<(String, Event)> = plugins
            .iter()
            .map(|p| {
                let event = Event::PluginLoaded {
                    plugin: p.name.to_string(),
                    sha256: p.digest.clone(),
                    tools: p.tools.len(),
                };
                (p.name.to_string(), event)
            })
            .collect();
        events.extend(problems.iter().filter_map(|problem| {
            let plugin = problem.plugin.clone()?;
            (problem.severity == Severity::Error).then(|| {
                let event = Event::PluginFailed {
                    plugin: plugin.clone(),
                    reason: problem.message.clone(),
                };
                (plugin, event)
            })
        }));
        events.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, event) in events {
            self.record(event);
        }
    }

    /// `plugin.replaced`: `plugin` now serves in place of a version whose sha256 was
    /// `previous_sha256`.
    pub fn plugin_replaced(&self, plugin: &Plugin, previous_sha256: &str) {
        self.record(Event::PluginReplaced {
            plugin: plugin.name.to_string(),
            sha256: plugin.digest.clone(),
            previous_sha256: previous_sha256.to_string(),
            tools: plugin.tools.len(),
        });
    }

    /// `plugin.removed`: `plugin`'s file is gone and its tools with it.
    pub fn plugin_removed(&self, plugin: &Plugin) {
        self.record(Event::PluginRemoved {
            plugin: plugin.name.to_string(),
            sha256: plugin.digest.clone(),
        });
    }

    /// `server.start`: serving on `transport`, HTTP on `listen`.
    pub fn server_start(&self, transport: Transport, listen: Option<SocketAddr>) {
        self.record(Event::ServerStart {
            version: env!("CARGO_PKG_VERSION").into(),
            transport: transport.to_string(),
            listen: listen.map(|a| a.to_string()),
        });
    }

    /// `server.stop`, then everything queued is written and the log closed.
    pub fn server_stop(&self, reason: &str, calls_cut_off: usize) {
        self.record(Event::ServerStop {
            reason: reason.into(),
            calls_cut_off,
        });
        if let Some(inner) = &self.inner {
            inner.sink.close();
        }
    }

    /// `auth.failure`: an HTTP request refused by authentication. `reason` says why
    /// (`missing bearer token`, `token expired`); it must never contain the token or any
    /// part of it.
    pub fn auth_failure(&self, reason: &str, client: Option<SocketAddr>) {
        self.record(Event::AuthFailure {
            reason: reason.into(),
            client: client.map(|a| a.to_string()),
        });
    }

    /// Starts the record of one `tools/call` of `tool` by `principal` (its name), when
    /// `audit.tool-calls` is on; [`CallRecord::finish`] writes it. The arguments are
    /// kept only with `audit.arguments`.
    pub fn call(
        &self,
        principal: Option<&str>,
        tool: &str,
        arguments: Option<&JsonObject>,
    ) -> Option<CallRecord> {
        let inner = self.inner.as_ref().filter(|i| i.tool_calls)?;
        let (arguments, arguments_bytes) = match arguments {
            Some(args) if inner.arguments => {
                let size = serde_json::to_string(args).map_or(0, |text| text.len());
                if size <= inner.max_argument_bytes {
                    (Some(serde_json::Value::Object(args.clone())), None)
                } else {
                    (None, Some(size))
                }
            }
            _ => (None, None),
        };
        Some(CallRecord {
            audit: self.clone(),
            started: Instant::now(),
            principal: principal.map(str::to_string),
            tool: tool.to_string(),
            arguments,
            arguments_bytes,
        })
    }
}

/// One `tools/call` being recorded.
pub struct CallRecord {
    audit: Audit,
    started: Instant,
    principal: Option<String>,
    tool: String,
    arguments: Option<serde_json::Value>,
    arguments_bytes: Option<usize>,
}

impl CallRecord {
    /// Records the call as ended with `outcome`, now.
    pub fn finish(self, outcome: Outcome) {
        self.audit.record(Event::ToolCall {
            principal: self.principal,
            tool: self.tool,
            duration_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            outcome,
            arguments: self.arguments,
            arguments_bytes: self.arguments_bytes,
        });
    }
}
