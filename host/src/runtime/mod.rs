//! The sandbox: one wasmtime engine, plugin loading, and calls in fresh instances (or,
//! for plugins that opt in, instances kept between calls: [`warm`]).

pub mod bindings;
pub mod cache;
mod call;
mod compile_threads;
pub mod conduct;
pub mod derived;
pub mod engine;
pub mod events;
mod executor;
pub mod fault;
pub mod function_memo;
pub mod listing;
pub mod memory_layout;
pub mod output;
mod plugin;
pub mod stamps;
pub mod state;
pub mod tier;
pub mod warm;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use tokio::sync::Semaphore;
use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

pub use call::{CallFailure, Usage};
pub use events::{CallEvent, Progress};
pub use plugin::{LoadError, Plugin};
pub use state::CallContext;

use crate::capability::net::outbound::Outbound;
use crate::config::RuntimeSettings;
use cache::ArtifactCache;
use engine::EpochTicker;
use executor::Executor;
use state::CallState;
use tier::QuickCell;

/// The engine could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// wasmtime rejected the engine configuration.
    #[error("cannot create the WebAssembly engine: {0}")]
    Engine(String),
    /// Host interfaces could not be linked.
    #[error("cannot link host interfaces: {0}")]
    Link(String),
    /// The cache folder is not safe to load native code from.
    #[error(transparent)]
    Cache(#[from] cache::CacheError),
    /// The epoch thread could not start.
    #[error("cannot start the epoch thread: {0}")]
    Ticker(std::io::Error),
    /// The call threads could not start.
    #[error("cannot start the threads that run calls: {0}")]
    Executor(std::io::Error),
}

/// A linker for `engine` with WASI (deny by default), `wasi:http` (deny hook) and the
/// `host` interface.
fn link(engine: &Engine) -> Result<Linker<CallState>, RuntimeError> {
    let mut linker = Linker::new(engine);
    let link = |e: wasmtime::Error| RuntimeError::Link(format!("{e:#}"));
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(link)?;
    crate::capability::symlinks::guard(&mut linker).map_err(link)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(link)?;
    bindings::Plugin::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |s| s)
        .map_err(link)?;
    Ok(linker)
}

/// Loads plugins and runs calls. One per process; shared by every client.
pub struct Runtime {
    engine: Engine,
    linker: Linker<CallState>,
    cache: ArtifactCache,
    settings: RuntimeSettings,
    slots: Arc<Semaphore>,
    queued: AtomicUsize,
    executor: Executor,
    /// Where calls of demoted plugins run ([`conduct`]).
    demoted: Executor,
    outbound: Arc<Outbound>,
    /// Instances kept between calls (`isolation = "reuse"`).
    warm: Arc<warm::WarmInstances>,
    /// Baseline-compiled code, served until the optimized code is ready ([`tier`]).
    quick: QuickCell,
    /// One optimization at a time ([`tier::Optimizer`]); held by `capsule serve`'s start.
    optimizing: Arc<Semaphore>,
    /// Advances the engines' epochs; stops when the runtime and its quick tier are gone.
    _ticker: Arc<EpochTicker>,
}

impl Runtime {
    /// Creates the engine, links WASI (deny by default), `wasi:http` (deny hook) and the
    /// `host` interface, and starts the epoch ticker. `cache_dir` holds precompiled code.
    pub fn new(
        settings: &RuntimeSettings,
        cache_dir: Option<PathBuf>,
    ) -> Result<Self, RuntimeError> {
        let (engine, layout) =
            engine::build(settings).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let linker = link(&engine)?;
        let cache = ArtifactCache::new(cache_dir, &engine)?;
        let _ticker = Arc::new(EpochTicker::start(&engine).map_err(RuntimeError::Ticker)?);
        let threads = crate::cores::available();
        let executor = Executor::new(threads).map_err(RuntimeError::Executor)?;
        let demoted = Executor::low_priority().map_err(RuntimeError::Executor)?;
        Ok(Self {
            engine,
            linker,
            cache,
            settings: settings.clone(),
            slots: Arc::new(Semaphore::new(settings.max_concurrent_calls as usize)),
            queued: AtomicUsize::new(0),
            executor,
            demoted,
            outbound: Arc::new(Outbound::new(settings.outbound)),
            warm: warm::WarmInstances::new(settings.max_warm_instances),
            quick: QuickCell::new(settings, layout, _ticker.clone()),
            optimizing: Arc::new(Semaphore::new(1)),
            _ticker,
        })
    }

    /// Holds back the optimization of plugins served from the quick tier ([`tier`]) until
    /// the returned permit is dropped: `capsule serve` holds it while it loads the plugins
    /// folder, so every plugin is served before the optimizing compiler takes the cores.
    pub async fn hold_optimizations(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.optimizing.clone().acquire_owned().await.ok()
    }

    /// The linker of the engine `component` was compiled for.
    fn linker_for(&self, component: &wasmtime::component::Component) -> &Linker<CallState> {
        match self.quick.started() {
            Some(quick) if Engine::same(component.engine(), &quick.engine) => &quick.linker,
            _ => &self.linker,
        }
    }

    /// Calls waiting for a slot now (`runtime.max-queued-calls` bounds it).
    pub fn queued_calls(&self) -> usize {
        self.queued.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Calls holding a slot of the host now (`runtime.max-concurrent-calls` bounds it).
    pub fn running_calls(&self) -> usize {
        (self.settings.max_concurrent_calls as usize).saturating_sub(self.slots.available_permits())
    }

    /// Instances kept between calls now (`isolation = "reuse"`), idle or serving a call
    /// (`runtime.max-warm-instances` bounds them).
    pub fn warm_instances(&self) -> usize {
        self.warm.kept()
    }

    /// The cache of precompiled artifacts, remembered tool lists and file stamps.
    pub fn artifacts(&self) -> &ArtifactCache {
        &self.cache
    }

    /// The engine, e.g. for inspecting components.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}
