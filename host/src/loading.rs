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
//! With tiered compilation ([`crate::runtime::tier`]) a compiled plugin is served from
//! baseline-compiled code, and its optimized code is compiled once every plugin is
//! served.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::audit::Audit;
use crate::config::{Compiler, Settings};
use crate::loader::{self, FolderError, Kind, Listing, Loaded, Plan, Problem, Severity};
use crate::metrics::{Metrics, PluginEvent};
use crate::registry::{Registry, ToolSet};
use crate::runtime::fault::Fault;
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
        // Plugins served from the quick tier are optimized once every plugin is served.
        let optimizations = runtime.hold_optimizations().await;
        let threshold = settings.server.background_compile_above.bytes();
        let cores = crate::cores::available();
        // Cranelift spreads one big compilation over every core; Winch's quick compiles
        // of small plugins do not fill them, so with tiering one runs per core.
        let compiles_at_once = match settings.runtime.compiler {
            Compiler::Tiered => cores,
            Compiler::Cranelift | Compiler::Winch => 1,
        };
        let background = Arc::new(Semaphore::new(compiles_at_once));
        let code_slots = Arc::new(Semaphore::new(cores));
        let fetcher = Arc::new(loader::fetcher(&settings));
        let (listed, plugins) = list_from_memory(&runtime, &settings, plugins).await;
        let mut loads: FuturesUnordered<BoxFuture<'static, Event>> = plugins
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
                            // loaded, then compile `compiles_at_once` background plugins at
                            // a time.
                            let handle = tokio::runtime::Handle::current();
                            handle.block_on(state.wait_until(|p| p.foreground == 0));
                            let permit = handle.block_on(background.acquire_owned()).ok();
                            *held.lock().unwrap_or_else(|e| e.into_inner()) = permit;
                        }
                    };
                    let loaded = loader::load_one(
                        &runtime,
                        &settings,
                        &fetcher,
                        &name,
                        &kind,
                        Listing::Remembered,
                        compiling,
                    )
                    .await;
                    // The next background plugin may compile now.
                    drop(release.lock().unwrap_or_else(|e| e.into_inner()).take());
                    Event::Loaded {
                        name,
                        loaded: Box::new(loaded),
                        in_background: moved.load(Ordering::SeqCst),
                    }
                }
                .boxed()
            })
            .collect();
        // The listed plugins are served at once, in one tool set; their code loads next.
        let mut loaded: Vec<Arc<Plugin>> = Vec::new();
        if !listed.is_empty() {
            for (plugin, warnings) in listed {
                warnings.iter().for_each(log);
                let plugin = Arc::new(plugin);
                let code = load_code(
                    runtime.clone(),
                    plugin.clone(),
                    state.clone(),
                    code_slots.clone(),
                );
                loads.push(code.boxed());
                loaded.push(plugin);
            }
            let serving = registry.snapshot();
            registry.swap(ToolSet::build_growing(&serving, loaded.clone()).0);
            state.progress.send_modify(|p| p.foreground -= loaded.len());
            if state.listed_early.load(Ordering::SeqCst) {
                announce();
            }
        }
        while let Some(event) = loads.next().await {
            let (changed, done, in_background) = match event {
                Event::Loaded {
                    name,
                    loaded: outcome,
                    in_background,
                } => {
                    let (result, warnings) = *outcome;
                    warnings.iter().for_each(log);
                    match result {
                        Ok(plugin) => {
                            let plugin = Arc::new(plugin);
                            let listed = plugin.code_pending();
                            if listed {
                                loads.push(
                                    load_code(
                                        runtime.clone(),
                                        plugin.clone(),
                                        state.clone(),
                                        code_slots.clone(),
                                    )
                                    .boxed(),
                                );
                            } else {
                                audit.plugins(std::slice::from_ref(&plugin), &[]);
                                metrics.plugin_event(PluginEvent::Loaded, 1);
                            }
                            loaded.push(plugin);
                            let serving = registry.snapshot();
                            registry.swap(ToolSet::build_growing(&serving, loaded.clone()).0);
                            (true, !listed, in_background)
                        }
                        Err(message) => {
                            failed(&audit, &metrics, name, message);
                            (false, true, in_background)
                        }
                    }
                }
                Event::CodeLoaded { plugin, result } => {
                    state.progress.send_modify(|p| p.remaining -= 1);
                    match result {
                        Ok(()) => {
                            audit.plugins(std::slice::from_ref(&plugin), &[]);
                            metrics.plugin_event(PluginEvent::Loaded, 1);
                        }
                        // The host is shutting down: nothing to report.
                        Err(Fault::Cancelled) => {
                            tracing::debug!(plugin = %plugin.name, "loading its code was interrupted");
                        }
                        Err(fault) => {
                            // Its remembered tools were listed: withdraw them, and say so.
                            loaded.retain(|p| !Arc::ptr_eq(p, &plugin));
                            let serving = registry.snapshot();
                            registry.swap(ToolSet::build_growing(&serving, loaded.clone()).0);
                            failed(&audit, &metrics, plugin.name.to_string(), fault.to_string());
                            announce();
                        }
                    }
                    continue;
                }
            };
            state.progress.send_modify(|p| {
                if done {
                    p.remaining -= 1;
                }
                if !in_background {
                    p.foreground -= 1;
                }
            });
            if changed && (in_background || state.listed_early.load(Ordering::SeqCst)) {
                announce();
            }
        }
        drop(optimizations);
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

/// Lists the plugin files of `plugins` whose digests and tools the cache remembers
/// ([`loader::list_from_memory`]), on one blocking thread per core: those listed, and the
/// others, to load.
async fn list_from_memory(
    runtime: &Arc<Runtime>,
    settings: &Arc<Settings>,
    plugins: Vec<(String, Kind)>,
) -> (Vec<(Plugin, Vec<Problem>)>, Vec<(String, Kind)>) {
    let threads = crate::cores::available();
    let mut chunks: Vec<Vec<(String, Kind)>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, plugin) in plugins.into_iter().enumerate() {
        chunks[i % threads].push(plugin);
    }
    let passes = chunks.into_iter().map(|chunk| {
        let (runtime, settings) = (runtime.clone(), settings.clone());
        tokio::task::spawn_blocking(move || {
            let (mut listed, mut rest) = (Vec::new(), Vec::new());
            for (name, kind) in chunk {
                // A panic (a bug) only means the plugin is loaded the usual way.
                let remembered = match &kind {
                    Kind::File(path) => std::panic::catch_unwind(AssertUnwindSafe(|| {
                        loader::list_from_memory(&runtime, &settings, &name, path)
                    }))
                    .ok()
                    .flatten(),
                    Kind::Remote(_) => None,
                };
                match remembered {
                    Some(plugin) => listed.push(plugin),
                    None => rest.push((name, kind)),
                }
            }
            (listed, rest)
        })
    });
    let (mut listed, mut rest) = (Vec::new(), Vec::new());
    // Each closure catches panics: only a runtime shutting down fails one.
    for (some, others) in futures::future::join_all(passes)
        .await
        .into_iter()
        .flatten()
    {
        listed.extend(some);
        rest.extend(others);
    }
    (listed, rest)
}

/// What finished while loading.
enum Event {
    /// A plugin loaded, was listed from its remembered tools, or failed (`in_background`:
    /// it had moved to the background to compile).
    Loaded {
        name: String,
        loaded: Box<Loaded>,
        in_background: bool,
    },
    /// The code of a plugin listed from its remembered tools loaded, or failed.
    CodeLoaded {
        plugin: Arc<Plugin>,
        result: Result<(), Fault>,
    },
}

/// Loads the code of `plugin`, listed from its remembered tools, once the foreground
/// plugins are listed and one of `slots` (one per core) is free. A call of the plugin
/// that comes first loads it itself, and this waits for that load.
async fn load_code(
    runtime: Arc<Runtime>,
    plugin: Arc<Plugin>,
    state: Arc<Loading>,
    slots: Arc<Semaphore>,
) -> Event {
    state.wait_until(|p| p.foreground == 0).await;
    let _slot = slots.acquire_owned().await.ok();
    let result = runtime.code_ready(&plugin).await;
    Event::CodeLoaded { plugin, result }
}

/// Logs, audits (`plugin.failed`) and counts the plugin `name` that did not load.
fn failed(audit: &Audit, metrics: &Metrics, name: String, message: String) {
    let problem = Problem {
        severity: Severity::Error,
        message,
        plugin: Some(name),
    };
    log(&problem);
    audit.plugins(&[], std::slice::from_ref(&problem));
    metrics.plugin_event(PluginEvent::Failed, 1);
}

fn log(problem: &Problem) {
    match problem.severity {
        Severity::Error => tracing::error!("{}", problem.message),
        Severity::Warning => tracing::warn!("{}", problem.message),
    }
}
