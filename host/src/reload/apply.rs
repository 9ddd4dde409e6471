//! Applying a change of the plugins folder: re-plan it, keep every plugin whose file and
//! effective policy are unchanged (the same `Arc<Plugin>`), load the changed and new ones
//! beside the serving set, keep the last good version of any that fails, drop the deleted
//! ones, and swap the whole tool set at once. Calls in flight hold their `Arc` and finish
//! on the version they started with.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::StreamExt;

use crate::config::Settings;
use crate::distribution::Digest;
use crate::distribution::wasm::{self, Wasm};
use crate::loader::{self, FolderError, Kind, Plan, Problem, Severity};
use crate::lock::{Lock, policy_items};
use crate::policy::PluginPolicy;
use crate::registry::{Registry, ToolSet};
use crate::runtime::{Plugin, Runtime};

/// Plugins loaded at once by a reload. Each load instantiates its plugin once for
/// `list-tools` from the pool's spare shares (the pool holds four beyond the call slots),
/// never from a call slot, so serving calls are not starved by a reload.
pub const LOADS_AT_ONCE: usize = 2;
const _: () = assert!(LOADS_AT_ONCE as u32 <= crate::runtime::engine::RESERVED_INSTANCES);

/// What one reload changed, and what went wrong.
#[derive(Default)]
pub struct Outcome {
    /// Plugins served now that were not before.
    pub added: Vec<Arc<Plugin>>,
    /// Plugins served in a new version, each with the sha256 of the version it replaced.
    pub replaced: Vec<(Arc<Plugin>, String)>,
    /// Plugins no longer served: their file is gone.
    pub removed: Vec<Arc<Plugin>>,
    /// Plugins that did not load (`plugin` set; the last good version, if any, serves on)
    /// and warnings.
    pub problems: Vec<Problem>,
}

impl Outcome {
    /// Whether the tool set changed, so clients should hear `tools/list_changed`.
    pub fn changed(&self) -> bool {
        !(self.added.is_empty() && self.replaced.is_empty() && self.removed.is_empty())
    }
}

/// What decides whether a plugin must be loaded again: its file's digest and what its
/// policy lets it do.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    path: PathBuf,
    digest: String,
    policy: Vec<String>,
    access: crate::auth::access::Access,
    withheld: Option<String>,
}

impl Fingerprint {
    fn of(path: &Path, digest: &str, policy: &PluginPolicy) -> Self {
        Self {
            path: path.to_path_buf(),
            digest: digest.to_string(),
            policy: policy_items(policy),
            access: (*policy.access).clone(),
            withheld: policy.withheld.clone(),
        }
    }
}

/// A changed plugin file as [`Reloader::examine`] hashed it, and its sha256.
type Read = (Wasm, Digest);

/// Reloads the plugins folder into a registry, one change at a time.
pub struct Reloader {
    runtime: Arc<Runtime>,
    settings: Arc<Settings>,
    registry: Arc<Registry>,
    lock: Option<Lock>,
    /// The files that failed last time, so an unrelated change does not load (and report)
    /// the same broken file again.
    failed: Mutex<HashMap<String, Fingerprint>>,
    /// The same for files that could not even be examined (unreadable, a sidecar that does
    /// not resolve): the message reported last.
    unexamined: Mutex<HashMap<String, String>>,
}

impl Reloader {
    /// A reloader of `settings.plugins_dir` into `registry`; with `lock` (`serve
    /// --locked`) it accepts only plugins whose digest the lock records for them.
    pub fn new(
        runtime: Arc<Runtime>,
        settings: Arc<Settings>,
        registry: Arc<Registry>,
        lock: Option<Lock>,
    ) -> Self {
        Self {
            runtime,
            settings,
            registry,
            lock,
            failed: Mutex::default(),
            unexamined: Mutex::default(),
        }
    }

    /// Brings the registry up to date with the folder. Fails only if the folder cannot be
    /// read (then nothing changes).
    pub async fn reload(&self) -> Result<Outcome, FolderError> {
        let Plan { plugins, .. } = loader::plan(&self.settings)?;
        let current = self.registry.snapshot();
        let serving: HashMap<&str, &Arc<Plugin>> =
            current.plugins().iter().map(|p| (&*p.name, p)).collect();
        let mut outcome = Outcome::default();
        let mut keep: Vec<Arc<Plugin>> = Vec::new();
        let mut to_load = Vec::new();
        let planned: HashSet<String> = plugins.iter().map(|(name, _)| name.clone()).collect();
        for (name, kind) in plugins {
            let old = serving.get(name.as_str()).map(|p| Arc::clone(p));
            let Kind::File(path) = &kind else {
                // Remote sources are not watched: what serves keeps serving.
                keep.extend(old);
                continue;
            };
            let (found, read) = match self.examine(&name, path).await {
                Ok(examined) => {
                    self.unexamined().remove(&name);
                    examined
                }
                Err(message) => {
                    if self.unexamined().get(&name) != Some(&message) {
                        self.unexamined().insert(name.clone(), message.clone());
                        outcome
                            .problems
                            .push(failure(&name, message, old.as_deref()));
                    }
                    keep.extend(old);
                    continue;
                }
            };
            if old
                .as_ref()
                .is_some_and(|o| Fingerprint::of(&o.path, &o.digest, &o.policy) == found)
            {
                self.forget_failure(&name);
                keep.extend(old);
                continue;
            }
            if self.failed_before(&name, &found) {
                keep.extend(old);
                continue;
            }
            if let Some(refusal) = self.refusal(&name, path, &found.digest) {
                self.remember_failure(&name, found);
                outcome
                    .problems
                    .push(failure(&name, refusal, old.as_deref()));
                keep.extend(old);
                continue;
            }
            to_load.push((name, path.clone(), read, old, found));
        }
        outcome.removed = current
            .plugins()
            .iter()
            .filter(|p| !planned.contains(&*p.name))
            .cloned()
            .collect();
        let runtime = &self.runtime;
        let settings = &self.settings;
        let mut loads = futures::stream::iter(to_load.into_iter().map(
            |(name, path, (wasm, digest), old, found)| async move {
                let loaded =
                    loader::load_read_file(runtime, settings, &name, &path, wasm, digest).await;
                (name, old, found, loaded)
            },
        ))
        .buffer_unordered(LOADS_AT_ONCE);
        while let Some((name, old, found, (result, warnings))) = loads.next().await {
            outcome.problems.extend(warnings);
            let result = result.and_then(|plugin| {
                // The file may have changed again between the look and the load.
                match self.refusal(&name, &plugin.path, &plugin.digest) {
                    Some(refusal) => Err(refusal),
                    None => Ok(plugin),
                }
            });
            match result {
                Ok(plugin) => {
                    self.forget_failure(&name);
                    let plugin = Arc::new(plugin);
                    match old {
                        Some(old) => outcome.replaced.push((plugin.clone(), old.digest.clone())),
                        None => outcome.added.push(plugin.clone()),
                    }
                    keep.push(plugin);
                }
                Err(message) => {
                    self.remember_failure(&name, found);
                    outcome
                        .problems
                        .push(failure(&name, message, old.as_deref()));
                    keep.extend(old);
                }
            }
        }
        if outcome.changed() {
            let (set, tool_problems) = ToolSet::build_after(&current, keep);
            outcome
                .problems
                .extend(loader::tool_problems(tool_problems));
            self.registry.swap(set);
        }
        Ok(outcome)
    }

    /// The file's digest and the policy it would load with, and the hashed file (loaded
    /// from it if it changed), or why it cannot load.
    async fn examine(&self, name: &str, path: &Path) -> Result<(Fingerprint, Read), String> {
        let started = std::time::Instant::now();
        let (digest, wasm) = wasm::hash_file_blocking(path)
            .await
            .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
        let (policy, _) = self.settings.policy(name, path)?;
        tracing::debug!(plugin = name, bytes = wasm.len(), elapsed = ?started.elapsed(), "examined");
        Ok((Fingerprint::of(path, digest.hex(), &policy), (wasm, digest)))
    }

    /// With a lock: why the file `path` of `name` with sha256 `digest` may not serve.
    fn refusal(&self, name: &str, path: &Path, digest: &str) -> Option<String> {
        let lock = self.lock.as_ref()?;
        let found = format!("sha256:{digest}");
        match lock.plugins.get(name) {
            Some(locked) if locked.sha256 == found => None,
            Some(locked) => Some(format!(
                "{} has {found}, but capsule.lock has {} for plugin `{name}`; refused (serve --locked): run `capsule check --lock` to accept it",
                path.display(),
                locked.sha256
            )),
            None => Some(format!(
                "{} ({found}) is not in capsule.lock; refused (serve --locked): run `capsule check --lock` to accept it",
                path.display()
            )),
        }
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<String, Fingerprint>> {
        self.failed.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn unexamined(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.unexamined.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn failed_before(&self, name: &str, found: &Fingerprint) -> bool {
        self.failures().get(name) == Some(found)
    }

    fn remember_failure(&self, name: &str, found: Fingerprint) {
        self.failures().insert(name.to_string(), found);
    }

    fn forget_failure(&self, name: &str) {
        self.failures().remove(name);
    }
}

/// The problem of plugin `name` that did not load for `message`, saying what serves instead.
fn failure(name: &str, message: String, serving: Option<&Plugin>) -> Problem {
    let message = match serving {
        Some(old) => format!(
            "reload of plugin `{name}` failed: {message}; the last good version (sha256 {}) keeps serving",
            short(&old.digest)
        ),
        None => format!("plugin `{name}` not loaded: {message}"),
    };
    Problem {
        severity: Severity::Error,
        message,
        plugin: Some(name.to_string()),
    }
}

/// The first 12 hex digits of a digest, enough to tell versions apart in a log line.
pub fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}
