//! Hot reload (`docs/reload.md`): `capsule serve --watch` watches the plugins folder
//! ([`watch`]) and applies each settled batch of changes ([`apply`]): changed plugins are
//! loaded beside the serving ones and swapped in at once, a failed load keeps the last good
//! version, and clients hear `notifications/tools/list_changed` only when the tool set
//! really changed.

pub mod apply;
pub mod config;
pub mod watch;

use std::sync::Arc;
use std::time::Duration;

use crate::audit::Audit;
use crate::config::{Overrides, Settings};
use crate::loader::Severity;
use crate::loading::Loading;
use crate::lock::Lock;
use crate::metrics::{Metrics, PluginEvent};
use crate::registry::Registry;
use crate::runtime::Runtime;

pub use apply::{Outcome, Reloader};
pub use watch::{FolderWatch, SETTLE};

/// What a reload needs and whom it tells.
pub struct Wiring {
    /// The engine plugins load into.
    pub runtime: Arc<Runtime>,
    /// The settings the server started with (`capsule.toml` is not re-read).
    pub settings: Arc<Settings>,
    /// The registry the server serves from.
    pub registry: Arc<Registry>,
    /// Records `plugin.loaded` / `replaced` / `removed` / `failed`.
    pub audit: Audit,
    /// Counts the same plugin events.
    pub metrics: Metrics,
    /// Sends `notifications/tools/list_changed` to every client.
    pub announce: Arc<dyn Fn() + Send + Sync>,
    /// The start-up load; a reload waits until it finished.
    pub loading: Arc<Loading>,
    /// `serve --locked`: only the digests this lock records may serve.
    pub lock: Option<Lock>,
    /// The flags and variables the settings were read with, to read a changed config
    /// file the same way ([`config`]).
    pub overrides: Overrides,
}

/// Starts watching `settings.plugins_dir` and reloading on change, on the current Tokio
/// runtime, for as long as the server runs, and the config file for changes that need a
/// restart. Fails if the folder or the config file's folder cannot be watched.
pub fn spawn(wiring: Wiring) -> notify::Result<()> {
    let mut watch = FolderWatch::start(&wiring.settings.plugins_dir)?;
    if let Some(file) = wiring.settings.config_file.clone() {
        config::spawn(
            file,
            wiring.overrides.clone(),
            wiring.settings.clone(),
            wiring.audit.clone(),
        )?;
    }
    tracing::info!(
        folder = %wiring.settings.plugins_dir.display(),
        "watching the plugins folder; changed plugins reload"
    );
    tokio::spawn(async move {
        let Wiring {
            runtime,
            settings,
            registry,
            audit,
            metrics,
            announce,
            loading,
            lock,
            overrides: _,
        } = wiring;
        let reloader = Reloader::new(runtime, settings, registry.clone(), lock);
        while let Some(files) = watch.settled(SETTLE).await {
            while !loading.finished_within(Duration::from_secs(60)).await {}
            tracing::debug!(?files, "plugins folder changed");
            let outcome = match reloader.reload().await {
                Ok(outcome) => outcome,
                Err(err) => {
                    tracing::error!("reload: {err}");
                    continue;
                }
            };
            report(&outcome, &audit, &metrics);
            if outcome.changed() {
                metrics.tools_loaded(&registry.snapshot());
                announce();
            } else {
                tracing::debug!("reload: no change to the tool set; clients are not notified");
            }
        }
    });
    Ok(())
}

/// Logs, audits and counts what `outcome` did.
fn report(outcome: &Outcome, audit: &Audit, metrics: &Metrics) {
    for problem in &outcome.problems {
        match problem.severity {
            Severity::Error => tracing::error!("{}", problem.message),
            Severity::Warning => tracing::warn!("{}", problem.message),
        }
    }
    let failed = outcome
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error && p.plugin.is_some())
        .count();
    audit.plugins(&outcome.added, &outcome.problems);
    for plugin in &outcome.added {
        tracing::info!(
            plugin = %plugin.name,
            tools = plugin.tools.len(),
            "reload: plugin `{}` added",
            plugin.name
        );
    }
    for (plugin, previous) in &outcome.replaced {
        audit.plugin_replaced(plugin, previous);
        tracing::info!(
            plugin = %plugin.name,
            tools = plugin.tools.len(),
            "reload: plugin `{}` replaced (sha256 {} -> {})",
            plugin.name,
            apply::short(previous),
            apply::short(&plugin.digest)
        );
    }
    for plugin in &outcome.removed {
        audit.plugin_removed(plugin);
        tracing::info!(plugin = %plugin.name, "reload: plugin `{}` removed", plugin.name);
    }
    metrics.plugin_event(PluginEvent::Loaded, outcome.added.len() as u64);
    metrics.plugin_event(PluginEvent::Replaced, outcome.replaced.len() as u64);
    metrics.plugin_event(PluginEvent::Removed, outcome.removed.len() as u64);
    metrics.plugin_event(PluginEvent::Failed, failed as u64);
}
