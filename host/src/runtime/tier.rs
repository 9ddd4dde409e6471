//! Tiered compilation (`runtime.compiler = "tiered"`, the default of `capsule serve`).
//!
//! Cranelift, the optimizing compiler, takes seconds for a big component (7 s for a
//! 19 MB componentize-py plugin on two cores); Winch, wasmtime's baseline compiler, does
//! the same in about a sixth of the time, and its code runs the same sandbox (fuel, epoch
//! deadlines, stack and memory limits) somewhat slower. A plugin without a precompiled
//! artifact is therefore compiled by Winch first, on the *quick tier* (an engine of its
//! own), and served at once; Cranelift then compiles it in the background, one plugin at a
//! time, the artifact is cached, and the plugin's calls switch to the optimized code. A
//! call that started on the quick code finishes there; instances kept for reuse are not
//! carried over.
//!
//! The quick tier starts with its first use, so a host whose plugins are all precompiled
//! (`capsule check`) never builds it.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

use arc_swap::ArcSwap;
use tokio::sync::Semaphore;
use wasmtime::Engine;
use wasmtime::component::Linker;

use super::cache::ArtifactCache;
use super::derived::docs::Sidecar;
use super::engine::{self, EpochTicker};
use super::memory_layout::MemoryLayout;
use super::plugin::{self, Entry};
use super::state::CallState;
use super::warm::WarmPool;
use crate::config::{Compiler, RuntimeSettings};
use crate::distribution::Wasm;

/// The engine of baseline-compiled code, with its linker.
pub(crate) struct QuickTier {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<CallState>,
}

impl QuickTier {
    /// Builds the quick tier's engine, links the host interfaces into it, and has `ticker`
    /// advance its epoch.
    fn start(
        settings: &RuntimeSettings,
        layout: MemoryLayout,
        ticker: &EpochTicker,
    ) -> Result<Self, String> {
        let engine = engine::build_quick(settings, layout).map_err(|e| format!("{e:#}"))?;
        let linker = super::link(&engine).map_err(|e| e.to_string())?;
        ticker.add(&engine);
        Ok(Self { engine, linker })
    }
}

/// The quick tier, started by its first use; empty unless `runtime.compiler` is
/// `tiered`, or where the baseline compiler cannot run (then every plugin is compiled by
/// the optimizing compiler, as with `cranelift`).
#[derive(Clone)]
pub(crate) struct QuickCell {
    settings: Option<Arc<RuntimeSettings>>,
    /// The main engine's memory layout, which the quick tier's follows.
    layout: MemoryLayout,
    ticker: Arc<EpochTicker>,
    cell: Arc<OnceLock<Option<QuickTier>>>,
}

impl QuickCell {
    /// The quick tier of a runtime with `settings` and memories laid out as `layout`,
    /// whose epochs `ticker` advances.
    pub(crate) fn new(
        settings: &RuntimeSettings,
        layout: MemoryLayout,
        ticker: Arc<EpochTicker>,
    ) -> Self {
        Self {
            settings: (settings.compiler == Compiler::Tiered).then(|| Arc::new(settings.clone())),
            layout,
            ticker,
            cell: Arc::default(),
        }
    }

    /// The quick tier, started now if it was not yet; `None` without tiering.
    pub(crate) fn get(&self) -> Option<&QuickTier> {
        let settings = self.settings.as_ref()?;
        self.cell
            .get_or_init(|| match QuickTier::start(settings, self.layout, &self.ticker) {
                Ok(tier) => Some(tier),
                Err(err) => {
                    tracing::warn!(
                        "the baseline compiler cannot run here ({err}); plugins are served once their optimized code is compiled"
                    );
                    None
                }
            })
            .as_ref()
    }

    /// The quick tier if it has started.
    pub(crate) fn started(&self) -> Option<&QuickTier> {
        self.cell.get()?.as_ref()
    }
}

/// A plugin whose code came from the quick tier, to compile again with the optimizing
/// compiler.
pub(crate) struct Pending {
    /// The plugin's name, for the log.
    pub name: Arc<str>,
    /// Its `.wasm`, for messages.
    pub path: PathBuf,
    /// Its bytes.
    pub wasm: Wasm,
    /// Their hex sha256.
    pub digest: String,
    /// Its sidecar WIT as the quick code's tools were documented from (not read again:
    /// the optimized code serves the tools that were listed).
    pub sidecar: Option<Sidecar>,
    /// Its code, which the optimized code replaces. Weak: a plugin replaced or removed
    /// before its turn frees its quick code at once, and is not compiled again.
    pub linked: Weak<ArcSwap<Entry>>,
    /// Its kept instances (quick code), let go when the optimized code is in place.
    pub warm: Option<Weak<WarmPool>>,
}

/// Compiles plugins with the optimizing compiler in the background, one at a time (the
/// compiler uses every core itself).
#[derive(Clone)]
pub(crate) struct Optimizer {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<CallState>,
    pub(crate) cache: ArtifactCache,
    pub(crate) turn: Arc<Semaphore>,
}

impl Optimizer {
    /// Starts optimizing `pending` on the current async runtime, after the optimizations
    /// queued before it (and after whoever holds [`Optimizer::turn`]: the start-up load,
    /// until every plugin is served).
    pub(crate) fn spawn(&self, pending: Pending) {
        let this = self.clone();
        tokio::spawn(async move {
            let Ok(_turn) = this.turn.clone().acquire_owned().await else {
                return;
            };
            let name = pending.name.clone();
            if pending.linked.strong_count() == 0 {
                tracing::debug!(plugin = %name, "not optimizing: the plugin was replaced or removed before its turn");
                return;
            }
            let started = Instant::now();
            let linked = pending.linked.clone();
            let warm = pending.warm.clone();
            let worker = this.clone();
            // At normal priority: on a host whose cores are kept busy, a compile at the
            // lowest priority never finished (e2e under load), and its plugin would run
            // the slower quick code for good.
            match tokio::task::spawn_blocking(move || worker.build(pending)).await {
                Ok(Ok(entry)) => {
                    let Some(linked) = linked.upgrade() else {
                        tracing::debug!(plugin = %name, "optimized code cached; the plugin was replaced or removed while it compiled");
                        return;
                    };
                    linked.store(Arc::new(entry));
                    if let Some(pool) = warm.and_then(|pool| pool.upgrade()) {
                        pool.clear();
                    }
                    tracing::info!(plugin = %name, elapsed = ?started.elapsed(), "optimized code ready; calls use it from now on");
                }
                Ok(Err(message)) => tracing::warn!(
                    plugin = %name,
                    "could not compile optimized code; the plugin keeps running its baseline-compiled code: {message}"
                ),
                // The host is shutting down.
                Err(_) => {}
            }
        });
    }

    /// Compiles (and caches) the optimized code of `pending` and links it.
    fn build(&self, pending: Pending) -> Result<Entry, String> {
        let bytes = pending
            .wasm
            .into_bytes(&pending.digest)
            .map_err(|e| e.to_string())?;
        let component = self
            .cache
            .compile(&self.engine, &bytes, &pending.digest)
            .map_err(|e| format!("{e:#}"))?;
        plugin::link_entry(
            &self.linker,
            &component,
            &pending.name,
            &pending.path,
            pending.sidecar.as_ref(),
            false,
        )
        .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::runtime::cache::CacheOutcome;
    use crate::runtime::fault::Fault;
    use crate::runtime::{CallContext, CallFailure, Runtime};

    /// The hostile fixture under tiered compilation with an empty cache: served from the
    /// quick tier, where every limit stops its calls as on optimized code; then, once the
    /// optimizer may run, its calls switch to optimized code, cached for the next start.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn quick_code_is_held_to_every_limit_then_replaced_by_cached_optimized_code() {
        let cache = tempfile::tempdir().expect("temp dir");
        let (runtime, settings, wasm) = tiered_runtime(cache.path());
        let held = runtime.hold_optimizations().await;
        let (policy, _) = settings.policy("hostile", &wasm).expect("policy");
        let plugin = Arc::new(runtime.load("hostile", &wasm, policy).await.expect("load"));
        assert_eq!(plugin.cache, CacheOutcome::Quick);
        let quick = runtime.quick.started().expect("the quick tier started");
        assert!(Engine::same(&code_engine(&plugin), &quick.engine));
        let artifact = runtime
            .artifacts()
            .artifact_path(&plugin.digest)
            .expect("a cache");
        assert!(
            !artifact.exists(),
            "nothing cached before the optimizer ran"
        );

        let fault = |name: &'static str| {
            let (runtime, plugin) = (&runtime, plugin.clone());
            async move {
                match runtime
                    .call(&plugin, name, "{}", CallContext::default())
                    .await
                {
                    Err(CallFailure::Fault(fault)) => fault,
                    Err(other) => panic!("{name}: expected a sandbox fault, got {other:?}"),
                    Ok(result) => panic!("{name}: expected a sandbox fault, got {result:?}"),
                }
            }
        };
        assert!(matches!(
            fault("spin").await,
            Fault::OutOfFuel { limit: 50_000_000 }
        ));
        assert!(matches!(fault("sleep").await, Fault::Deadline { .. }));
        assert!(matches!(fault("grow_memory").await, Fault::Memory { .. }));
        assert!(matches!(
            fault("recurse").await,
            Fault::StackOverflow { .. }
        ));
        assert!(still_here(&runtime, &plugin).await);

        drop(held);
        optimized(&runtime, &plugin).await;
        assert!(Engine::same(&code_engine(&plugin), runtime.engine()));
        assert!(artifact.is_file(), "the optimized code is cached");
        assert!(still_here(&runtime, &plugin).await);
        assert!(matches!(
            fault("spin").await,
            Fault::OutOfFuel { limit: 50_000_000 }
        ));
    }

    /// A plugin replaced or removed (hot reload) while its optimization waits for its
    /// turn frees its quick code at once and is not compiled again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_plugin_gone_before_its_turn_is_not_optimized() {
        let cache = tempfile::tempdir().expect("temp dir");
        let (runtime, settings, wasm) = tiered_runtime(cache.path());
        let held = runtime.hold_optimizations().await;
        let (policy, _) = settings.policy("hostile", &wasm).expect("policy");
        let plugin = runtime.load("hostile", &wasm, policy).await.expect("load");
        assert_eq!(plugin.cache, CacheOutcome::Quick);
        let quick_code = Arc::downgrade(&plugin.code.get().expect("loaded").expect("linked"));
        let artifact = runtime
            .artifacts()
            .artifact_path(&plugin.digest)
            .expect("a cache");
        // Let the queued optimization reach the (fair) queue for its turn.
        tokio::time::sleep(Duration::from_millis(100)).await;

        drop(plugin);
        assert!(
            quick_code.upgrade().is_none(),
            "the quick code is freed with its plugin, not kept by the queued optimization"
        );
        drop(held);
        // Granted in order: once this turn comes, the queued optimization has had its own.
        let _turn = runtime.hold_optimizations().await;
        assert!(
            !artifact.exists(),
            "a plugin gone before its turn is not compiled (nothing cached)"
        );
    }

    /// The optimized code of a WIT-derived plugin documents its tools from the sidecar WIT
    /// as its quick code read it: a sidecar edited while the optimizer waits does not
    /// change the served tools behind the clients' backs (hot reload re-lists an edited
    /// plugin and announces it; the optimizer does not read the sidecar again).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn optimized_code_keeps_the_docs_its_quick_code_was_listed_with() {
        let cache = tempfile::tempdir().expect("temp dir");
        let (runtime, settings, fixture) = tiered_runtime(cache.path());
        let plugins = tempfile::tempdir().expect("temp dir");
        let wasm = plugins.path().join("plain.wasm");
        std::fs::copy(fixture.with_file_name("plain.wasm"), &wasm).expect("copy plain.wasm");
        let sidecar = wasm.with_extension("wit");
        let wit = |doc: &str| {
            format!(
                "package example:plain@0.1.0;\nworld plain {{\n  /// {doc}\n  export echo: func(message: string) -> string;\n}}\n"
            )
        };
        std::fs::write(&sidecar, wit("Listed docs.")).expect("write the sidecar");
        let held = runtime.hold_optimizations().await;
        let (policy, _) = settings.policy("plain", &wasm).expect("policy");
        let plugin = runtime.load("plain", &wasm, policy).await.expect("load");
        assert_eq!(plugin.cache, CacheOutcome::Quick);
        let description = |plugin: &crate::runtime::Plugin| match &*plugin
            .code
            .get()
            .expect("loaded")
            .expect("linked")
        {
            Entry::Functions { functions, .. } => functions[0].tool().description,
            Entry::Tools(_) => panic!("plain is served through its exported functions"),
        };
        assert_eq!(plugin.tools[0].description, "Listed docs.");
        assert_eq!(description(&plugin), "Listed docs.");

        std::fs::write(&sidecar, wit("Edited later.")).expect("edit the sidecar");
        drop(held);
        optimized(&runtime, &plugin).await;
        assert_eq!(description(&plugin), "Listed docs.");
    }

    /// A runtime with tiered compilation and an artifact cache in `cache`, its settings
    /// (tight limits for the hostile fixture) and the hostile fixture's path.
    fn tiered_runtime(cache: &std::path::Path) -> (Runtime, crate::config::Settings, PathBuf) {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fixtures");
        let wasm = fixtures.join("hostile.wasm");
        assert!(
            wasm.is_file(),
            "no {}: run `cargo xtask plugins`",
            wasm.display()
        );
        let raw: crate::config::RawConfig = toml::from_str(
            "[runtime]\ncompiler = \"tiered\"\n[plugins.hostile.limits]\nfuel = 50_000_000\ntimeout = \"750ms\"\nmemory = \"32MiB\"\n",
        )
        .expect("valid config");
        let settings = crate::config::Settings::resolve(
            raw,
            None,
            &fixtures,
            crate::config::Overrides::default(),
        )
        .expect("config resolves");
        let runtime = Runtime::new(&settings.runtime, Some(cache.to_path_buf())).expect("runtime");
        (runtime, settings, wasm)
    }

    /// Waits (at most 2 minutes) until `plugin` runs the optimized code.
    async fn optimized(runtime: &Runtime, plugin: &crate::runtime::Plugin) {
        let switched = async {
            while !Engine::same(&code_engine(plugin), runtime.engine()) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(120), switched)
            .await
            .expect("optimized within 2 minutes");
    }

    fn code_engine(plugin: &crate::runtime::Plugin) -> Engine {
        plugin
            .code
            .get()
            .expect("loaded")
            .expect("linked")
            .engine()
            .clone()
    }

    async fn still_here(runtime: &Runtime, plugin: &Arc<crate::runtime::Plugin>) -> bool {
        let result = runtime
            .call(plugin, "ok", "{}", CallContext::default())
            .await
            .expect("hostile_ok answers");
        format!("{:?}", result.content).contains("still here")
    }
}
