//! A changed `capsule.toml` while serving: it is read again and compared with the running
//! settings, and what differs is logged and audited as "restart needed". Nothing of it is
//! applied: engine-wide settings (pool size, memory ceiling, stack) cannot change under a
//! running engine, and applying the rest would leave the server half old, half new.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::audit::{Audit, Event};
use crate::config::{Overrides, Settings};
use crate::lock::{config_settings, policy_items};

use super::watch::{FolderWatch, SETTLE};

/// The keys whose effective value differs between `running` and `edited`, then
/// `plugins.NAME` for each plugin whose `[plugins.NAME]` entry resolves differently.
pub fn restart_needed(running: &Settings, edited: &Settings) -> Vec<String> {
    let (before, after) = (config_settings(running), config_settings(edited));
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let mut changed: Vec<String> = keys
        .into_iter()
        .filter(|key| before.get(*key) != after.get(*key))
        .cloned()
        .collect();
    let plugins: BTreeSet<&String> = running
        .plugins
        .keys()
        .chain(edited.plugins.keys())
        .collect();
    let entry = |settings: &Settings, name: &str| {
        settings
            .plugins
            .get(name)
            .map(|policy| policy.as_ref().map(policy_items).map_err(Clone::clone))
    };
    changed.extend(
        plugins
            .into_iter()
            .filter(|name| entry(running, name) != entry(edited, name))
            .map(|name| format!("plugins.{name}")),
    );
    changed
}

/// Watches `file` (the config file of `running`, read with `overrides`) and reports each
/// settled change until the server stops.
pub fn spawn(
    file: PathBuf,
    overrides: Overrides,
    running: std::sync::Arc<Settings>,
    audit: Audit,
) -> notify::Result<()> {
    let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let name = file.file_name().map(|n| n.to_os_string());
    let mut watch = FolderWatch::start_for(&dir, move |path| path.file_name() == name.as_deref())?;
    tokio::spawn(async move {
        // What was last reported; a save that changes nothing effective says nothing.
        let mut reported: Vec<String> = Vec::new();
        while watch.settled(SETTLE).await.is_some() {
            let edited = match Settings::load(overrides.clone()) {
                Ok(edited) => edited,
                Err(err) => {
                    tracing::error!(
                        "{} changed but does not load; the running settings stay: {err}",
                        file.display()
                    );
                    continue;
                }
            };
            let keys = restart_needed(&running, &edited);
            if reported == keys {
                continue;
            }
            if keys.is_empty() {
                tracing::info!(
                    "{} changed back to the running settings; no restart needed",
                    file.display()
                );
            } else {
                tracing::warn!(
                    "{} changed; restart needed: {} (a running server applies plugin files only)",
                    file.display(),
                    keys.join(", ")
                );
                audit.record(Event::ConfigChanged {
                    file: file.display().to_string(),
                    restart_needed: keys.clone(),
                });
            }
            reported = keys;
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawConfig;

    fn settings(text: &str) -> Settings {
        let raw: RawConfig = toml::from_str(text).expect("valid config");
        Settings::resolve(raw, None, &std::env::temp_dir(), Overrides::default())
            .expect("config resolves")
    }

    #[test]
    fn names_the_changed_keys_and_plugin_entries_only() {
        let running = settings("[runtime]\nmax-concurrent-calls = 4\n");
        let same = settings("[runtime]\nmax-concurrent-calls = 4\n");
        assert!(restart_needed(&running, &same).is_empty());
        let edited = settings(
            "[runtime]\nmax-concurrent-calls = 3\nmemory-ceiling = \"256MiB\"\n\n[plugins.echo]\nconfig = { a = \"b\" }\n",
        );
        assert_eq!(
            restart_needed(&running, &edited),
            [
                // Its default follows max-concurrent-calls: an effective change too.
                "runtime.max-calls-per-plugin",
                "runtime.max-concurrent-calls",
                "runtime.memory-ceiling",
                "plugins.echo"
            ]
        );
    }
}
