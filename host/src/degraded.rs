//! Degraded mode (`server.degraded`, toggled by SIGUSR1; `docs/resilience.md`): during an
//! incident only tools annotated read-only (`readOnlyHint: true`) are served. The others
//! are left out of `tools/list`, and a call of one is refused with a JSON-RPC error that
//! says why, before anything runs. Every change is logged and audited (`server.degraded`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::audit::{Audit, Event};
use crate::registry::RegisteredTool;

/// Whether the server is in degraded mode; clones share one switch.
#[derive(Clone, Default)]
pub struct Degraded {
    on: Arc<AtomicBool>,
}

impl Degraded {
    /// A switch, on when `on`.
    pub fn new(on: bool) -> Self {
        Self {
            on: Arc::new(AtomicBool::new(on)),
        }
    }

    /// Whether only read-only tools are served now.
    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Turns degraded mode on or off (`by`: what did, e.g. `SIGUSR1`), logs and audits it.
    pub fn set(&self, on: bool, by: &str, audit: &Audit) {
        self.on.store(on, Ordering::Relaxed);
        if on {
            tracing::warn!(by, "degraded mode on: only read-only tools are served");
        } else {
            tracing::info!(by, "degraded mode off: every tool is served again");
        }
        audit.record(Event::Degraded {
            degraded: on,
            by: by.into(),
        });
    }

    /// Flips degraded mode (SIGUSR1).
    pub fn toggle(&self, by: &str, audit: &Audit) {
        self.set(!self.is_on(), by, audit);
    }

    /// Whether `tool` is served now: always, or in degraded mode only when it is
    /// annotated read-only.
    pub fn serves(&self, tool: &RegisteredTool) -> bool {
        !self.is_on() || read_only(tool)
    }
}

/// Whether the tool's annotations say it does not modify anything.
fn read_only(tool: &RegisteredTool) -> bool {
    tool.descriptor
        .annotations
        .as_ref()
        .and_then(|a| a.read_only_hint)
        .unwrap_or(false)
}
