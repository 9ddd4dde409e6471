//! Loading the plugins folder while `capsule serve` already answers, so a client's
//! handshake never waits for a compiler.
//!
//! Every plugin starts loading at once. One with a precompiled artifact, or small enough to
//! compile quickly (at most `server.background-compile-above`), is loaded in the
//! *foreground*: a `tools/list` waits for those (at most `server.list-wait`). A larger one
//! that must be compiled moves to the *background* as soon as that is known: `tools/list`
//! answers without it, and its tools are announced with `notifications/tools/list_changed`
//! once it is loaded. `/readyz` reports ready when every plugin has loaded or failed.
//! `capsule check` precompiles, so a checked folder loads entirely in the foreground.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::audit::Audit;
use crate::config::Settings;
use crate::loader::{self, FolderError, Plan, Problem, Severity};
use crate::metrics::{Metrics, PluginEvent};
use crate::registry::{Registry, ToolSet};
use crate::runtime::{Plugin, Runtime};

/// How far loading is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Plugins still loading in the foreground.
    pub foreground: usize,
    /// Plugins still loading at all.
    pub remaining: usize,
}

/// The loading state that `tools/list`, `tools/call` and `/readyz` wait on.
#[derive(Debug)]
pub struct Loading {
    progress: watch::Sender<Progress>,
    /// A `tools/list` answered before the foreground finished: changes after it are
    /// announced even for foreground plugins.
    listed_early: AtomicBool,
}

impl Loading {
    fn new(progress: Progress) -> Arc<Self> {
        Arc::new(Self {
            progress: watch::Sender::new(progress),
            listed_early: AtomicBool::new(false),
        })
    }

    /// Nothing to wait for: every plugin was loaded before serving began.
    pub fn finished() -> Arc<Self> {
        Self::new(Progress::default())
    }

    /// How far loading is now.
    pub fn progress(&self) -> Progress {
        *self.progress.borrow()
    }

    /// Whether every plugin has loaded or failed.
    pub fn is_finished(&self) -> bool {
        self.progress().remaining == 0
    }

    /// Waits (at most `limit`) until no plugin is loading in the foreground; whether that
    /// happened. A `false` makes later loads announce themselves.
    pub async fn foreground_loaded(&self, limit: Duration) -> bool {
        let done = self.wait(limit, |p| p.foreground == 0).await;
        if !done {
            self.listed_early.store(true, Ordering::SeqCst);
        }
        done
    }

    /// Waits (at most `limit`) until every plugin has loaded or failed; whether it did.
    pub async fn finished_within(&self, limit: Duration) -> bool {
        self.wait(limit, |p| p.remaining == 0).await
    }

    async fn wait(&self, limit: Duration, done: impl Fn(&Progress) -> bool) -> bool {
        tokio::time::timeout(limit, self.wait_until(done))
            .await
            .is_ok()
    }

    async fn wait_until(&self, done: impl Fn(&Progress) -> bool) {
        let mut rx = self.progress.subscribe();
        // The sender lives as long as `self`, so this cannot fail while we wait.
        let _ = rx.wait_for(|p| done(p)).await;
    }
}

/// Starts loading every plugin of `settings.plugins_dir` into `registry` (which starts
/// empty) on the current runtime; `announce` is called after each change a client should
/// hear about. Problems are logged as they are found, and each plugin is recorded in `audit`
/// (`plugin.loaded` / `plugin.failed`) and counted in `metrics` as it finishes. Fails only
/// if the folder cannot be read.
pub fn spawn(
    runtime: Arc<Runtime>,
    settings: Arc<Settings>,
    registry: Arc<Registry>,
    audit: Audit,
    metrics: Metrics,
    announce: Arc<dyn Fn() + Send + Sync>,
) -> Result<Arc<Loading>, FolderError> {
    let Plan { plugins, problems } = loader::plan(&settings)?;
    problems.iter().for_each(log);
    audit.plugins(&[], &problems);
    let failed_early = problems
        .iter()
        .filter(|p| p.severity == Severity::Error && p.plugin.is_some())
        .count();
    metrics.plugin_event(PluginEvent::Failed, failed_early as u64);
    let total = plugins.len();
    let loading = Loading::new(Progress {
        foreground: total,
        remaining: total,
    });
    let state = loading.clone();
    tokio::spawn(async move {
        let threshold = settings.server.background_compile_above.bytes();
        let background = Arc::new(Semaphore::new(1));
        let fetcher = Arc::new(loader::fetcher(&settings));
        let mut loads: FuturesUnordered<_> = plugins
            .into_iter()
            .map(|(name, kind)| {
                let moved = Arc::new(AtomicBool::new(false));
                let (runtime, settings, state, flag, background, fetcher) = (
                    runtime.clone(),
                    settings.clone(),
                    state.clone(),
                    moved.clone(),
                    background.clone(),
                    fetcher.clone(),
                );
                let held: Arc<Mutex<Option<OwnedSemaphorePermit>>> = Arc::default();
                let release = held.clone();
                let file = kind.describe();
                async move {
                    let compiling = move |size: u64| {
                        if size > threshold {
                            flag.store(true, Ordering::SeqCst);
                            state.progress.send_modify(|p| p.foreground -= 1);
                            tracing::info!(
                                plugin = %file,
                                bytes = size,
                                "compiling in the background (precompile with `capsule check`); its tools are announced when ready"
                            );
                            // Runs on a blocking thread: wait there until the foreground is
                            // loaded, then compile one background plugin at a time (the
                            // compiler uses every core itself).
                            let handle = tokio::runtime::Handle::current();
                            handle.block_on(state.wait_until(|p| p.foreground == 0));
                            let permit = handle.block_on(background.acquire_owned()).ok();
                            *held.lock().unwrap_or_else(|e| e.into_inner()) = permit;
                        }
                    };
                    let loaded =
                        loader::load_one(&runtime, &settings, &fetcher, &name, &kind, compiling)
                            .await;
                    // The next background plugin may compile now.
                    drop(release.lock().unwrap_or_else(|e| e.into_inner()).take());
                    (name, loaded, moved.load(Ordering::SeqCst))
                }
            })
            .collect();
        let mut loaded: Vec<Arc<Plugin>> = Vec::new();
        while let Some((name, (result, warnings), in_background)) = loads.next().await {
            warnings.iter().for_each(log);
            let changed = match result {
                Ok(plugin) => {
                    let plugin = Arc::new(plugin);
                    audit.plugins(std::slice::from_ref(&plugin), &[]);
                    metrics.plugin_event(PluginEvent::Loaded, 1);
                    loaded.push(plugin);
                    let serving = registry.snapshot();
                    registry.swap(ToolSet::build_growing(&serving, loaded.clone()).0);
                    true
                }
                Err(message) => {
                    let problem = Problem {
                        severity: Severity::Error,
                        message,
                        plugin: Some(name),
                    };
                    log(&problem);
                    audit.plugins(&[], std::slice::from_ref(&problem));
                    metrics.plugin_event(PluginEvent::Failed, 1);
                    false
                }
            };
            state.progress.send_modify(|p| {
                p.remaining -= 1;
                if !in_background {
                    p.foreground -= 1;
                }
            });
            if changed && (in_background || state.listed_early.load(Ordering::SeqCst)) {
                announce();
            }
        }
        let (tools, problems) = ToolSet::build(loaded);
        loader::tool_problems(problems).for_each(|p| log(&p));
        tracing::info!(
            plugins = tools.plugins().len(),
            tools = tools.tools().len(),
            "every plugin loaded"
        );
    });
    Ok(loading)
}

fn log(problem: &Problem) {
    match problem.severity {
        Severity::Error => tracing::error!("{}", problem.message),
        Severity::Warning => tracing::warn!("{}", problem.message),
    }
}
