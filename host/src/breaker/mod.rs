//! Circuit breakers, one per plugin (`[runtime.breaker]`, `[plugins.NAME.breaker]`,
//! `docs/resilience.md`). Sandbox faults in a row, or a fault rate over a window, open a
//! plugin's breaker; while it is open its calls are refused before anything runs, with a
//! message naming the plugin, why it opened and when it will be tried again; after the
//! cool-down one probe call runs, and its outcome closes or re-opens the breaker. Tool errors
//! the plugin returns on purpose are not faults. Every change is logged and audited
//! (`breaker.changed`), and one that changes what `tools/list` shows (opening, closing) is
//! announced to every client with `notifications/tools/list_changed`.

mod state;
pub(crate) mod window;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

pub use state::Verdict;
use state::{Admit, Breaker, Change, State};

use crate::audit::{Audit, Event, rfc3339};
use crate::config::breaker::{BreakerSettings, OpenTools};
use crate::mcp::peers::Peers;
use crate::runtime::Plugin;

/// The breakers of every plugin a server serves, by plugin name. Shared by all clients
/// and transports.
pub struct Breakers {
    defaults: BreakerSettings,
    plugins: Mutex<HashMap<Arc<str>, Arc<Mutex<Breaker>>>>,
    /// The clients told when a plugin's tools are listed differently.
    peers: Arc<Peers>,
}

/// A call let through; [`Ticket::finish`] tells the breaker how it ended.
pub struct Ticket {
    breaker: Option<Arc<Mutex<Breaker>>>,
    probe: bool,
    plugin: Arc<str>,
    audit: Audit,
    peers: Arc<Peers>,
}

/// Why a call was refused without running: the message for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(String);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Breakers {
    /// Breakers with `defaults` (`[runtime.breaker]`), announcing listing changes to `peers`.
    pub fn new(defaults: BreakerSettings, peers: Arc<Peers>) -> Self {
        Self {
            defaults,
            plugins: Mutex::default(),
            peers,
        }
    }

    fn settings(&self, plugin: &Plugin) -> BreakerSettings {
        // Checked against their bounds when the policy was resolved.
        plugin.policy.breaker.over(&self.defaults)
    }

    /// The breaker of `plugin`, made (closed) on first use, or made anew when the plugin's
    /// settings changed (a reloaded policy).
    fn breaker(&self, plugin: &Plugin) -> Option<Arc<Mutex<Breaker>>> {
        let settings = self.settings(plugin);
        if !settings.enabled {
            return None;
        }
        let mut plugins = lock(&self.plugins);
        let entry = plugins
            .entry(plugin.name.clone())
            .or_insert_with(|| Arc::new(Mutex::new(Breaker::new(settings, Instant::now()))));
        if *lock(entry).settings() != settings {
            *entry = Arc::new(Mutex::new(Breaker::new(settings, Instant::now())));
        }
        Some(entry.clone())
    }

    /// Lets a call of `plugin` run, or refuses it at once while its breaker is open (or
    /// its probe call is running). Changes are recorded to `audit`.
    pub fn admit(&self, plugin: &Plugin, audit: &Audit) -> Result<Ticket, Refused> {
        let breaker = self.breaker(plugin);
        let probe = match &breaker {
            None => false,
            Some(breaker) => {
                let now = Instant::now();
                let (admit, change) = lock(breaker).admit(now);
                if let Some(change) = change {
                    report(audit, &self.peers, &plugin.name, change);
                }
                match admit {
                    Admit::Run => false,
                    Admit::Probe => true,
                    Admit::Refuse(state) => {
                        return Err(Refused(refusal(&plugin.name, &state, now)));
                    }
                }
            }
        };
        Ok(Ticket {
            breaker,
            probe,
            plugin: plugin.name.clone(),
            audit: audit.clone(),
            peers: self.peers.clone(),
        })
    }

    /// What `tools/list` does with `plugin`'s tools now: `None` (list them as they are),
    /// or the config's choice and the note to put before their descriptions.
    pub fn listing(&self, plugin: &Plugin) -> Option<(OpenTools, String)> {
        let breaker = lock(&self.plugins).get(&plugin.name).cloned()?;
        let breaker = lock(&breaker);
        let note = match breaker.state() {
            State::Closed => return None,
            State::Open { until, .. } => {
                let at = SystemTime::now() + until.saturating_duration_since(Instant::now());
                format!(
                    "[unavailable: plugin `{}` faulted repeatedly; retried after {}] ",
                    plugin.name,
                    rfc3339(at)
                )
            }
            State::HalfOpen { .. } => format!(
                "[unavailable: plugin `{}` faulted repeatedly; a probe call is testing it] ",
                plugin.name
            ),
        };
        Some((breaker.settings().open_tools, note))
    }
}

impl Ticket {
    /// Tells the breaker how the call ended.
    pub fn finish(mut self, verdict: Verdict) {
        let Some(breaker) = self.breaker.take() else {
            return;
        };
        let change = lock(&breaker).record(self.probe, verdict, Instant::now());
        if let Some(change) = change {
            report(&self.audit, &self.peers, &self.plugin, change);
        }
    }
}

impl Drop for Ticket {
    /// A probe whose call never finished (the client went away) lets the next call probe.
    fn drop(&mut self) {
        if let Some(breaker) = self.breaker.take()
            && self.probe
        {
            lock(&breaker).probe_abandoned(Instant::now());
        }
    }
}

/// Logs and audits a change of `plugin`'s breaker, and tells the clients when its tools are
/// now listed differently: on opening (hidden or marked) and closing (listed as they are),
/// not when the open breaker lets its probe through (the tools stay hidden or marked).
fn report(audit: &Audit, peers: &Peers, plugin: &str, change: Change) {
    if change.to != "half-open" {
        peers.tools_changed();
    }
    match change.to {
        "open" => tracing::warn!(
            plugin,
            from = change.from,
            "circuit breaker opened: {}; calls fail at once until a probe succeeds",
            change.reason
        ),
        _ => tracing::info!(
            plugin,
            from = change.from,
            to = change.to,
            "circuit breaker {}: {}",
            change.to,
            change.reason
        ),
    }
    audit.record(Event::BreakerChanged {
        plugin: plugin.to_string(),
        from: change.from.into(),
        to: change.to.into(),
        reason: change.reason,
    });
}

/// `d` in whole seconds, rounded up (`30s`), or in milliseconds below a second.
fn whole_seconds(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        return format!("{}ms", d.as_millis());
    }
    format!("{}s", d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

/// The message of a call refused in `state`.
fn refusal(plugin: &str, state: &State, now: Instant) -> String {
    match state {
        State::Open { since, until, trip } => {
            let left = until.saturating_duration_since(now);
            format!(
                "plugin `{plugin}` is unavailable: its circuit breaker opened {} ago after {trip}, so this call was refused without running; one probe call will be let through in {} (at {}), and calls fail at once until then; other plugins are not affected",
                whole_seconds(now.saturating_duration_since(*since)),
                whole_seconds(left),
                rfc3339(SystemTime::now() + left),
            )
        }
        State::HalfOpen { trip, .. } => format!(
            "plugin `{plugin}` is unavailable: its circuit breaker opened after {trip}, and one probe call is running now to test it, so this call was refused without running; retry in a moment"
        ),
        State::Closed => format!("plugin `{plugin}` is available"),
    }
}
