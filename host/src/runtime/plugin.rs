//! Loading a plugin: read → check it is a component → compile or load precompiled →
//! check it exports `capsule:plugin/tools` → link (`InstancePre`) → ask for its tools.
//! A component that exports plain functions instead is served with WIT-derived tools.
//!
//! At `capsule serve`'s start a plugin whose tool list is remembered for its digest and
//! policy ([`super::listing`]) is *listed* first, from that list, and its code is loaded
//! right after, in the background or by its first call ([`Runtime::code_ready`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::{OnceCell, Semaphore};
use wasmtime::Engine;
use wasmtime::component::{Component, InstancePre, Linker};

use super::Runtime;
use super::bindings::{PluginPre, TOOLS_EXPORT, Tool};
use super::cache::CacheOutcome;
use super::conduct::Conduct;
use super::derived::docs::Sidecar;
use super::derived::{self, Function};
use super::fault::Fault;
use super::listing;
use super::state::CallState;
use super::tier::{Optimizer, Pending};
use super::warm::WarmPool;
use crate::capability::isolation::Isolation;
use crate::distribution::Wasm;
use crate::policy::PluginPolicy;

/// A loaded plugin, ready to be called. Cheap to share: calls only read it.
pub struct Plugin {
    /// The plugin's name (from its file name); tools are exposed as `<name>_<tool>`.
    pub name: Arc<str>,
    /// The `.wasm` it was loaded from.
    pub path: PathBuf,
    /// Hex sha256 of the `.wasm`.
    pub digest: String,
    /// The remote source it was fetched from (`oci://…`, `https://…`); `None` for a file.
    pub source: Option<String>,
    /// What the plugin's `list-tools` returned, in its order.
    pub tools: Vec<Tool>,
    /// Limits and settings.
    pub policy: PluginPolicy,
    /// Whether the compiled code came from the artifact cache.
    pub cache: CacheOutcome,
    pub(crate) code: Code,
    /// This plugin's call slots (`runtime.max-calls-per-plugin`).
    pub(crate) slots: Arc<Semaphore>,
    /// Whether its recent calls kept running into their limits (`runtime.demote-after`).
    pub(crate) conduct: Conduct,
    /// Its instances kept between calls, with `isolation = "reuse"` (and
    /// `runtime.max-warm-instances` above 0).
    pub(crate) warm: Option<Arc<WarmPool>>,
}

impl Plugin {
    /// True when the plugin exports plain functions, served as WIT-derived tools, rather
    /// than `capsule:plugin/tools`.
    pub fn wit_derived(&self) -> bool {
        matches!(self.code.get(), Some(Ok(entry)) if matches!(*entry, Entry::Functions { .. }))
    }

    /// Whether its code is still to be loaded (it was listed from its remembered tools).
    pub fn code_pending(&self) -> bool {
        self.code.entry.get().is_none()
    }
}

/// A plugin's linked code: there from the start for a plugin loaded at once, loaded the
/// first time it is needed for one listed from its remembered tools. Either way it is
/// loaded once; a failure is kept, so every later call gets the same error.
pub(crate) struct Code {
    entry: OnceCell<Result<Linked, String>>,
    /// The `.wasm`, for compiling it should its artifact be unusable; `None` once loaded.
    wasm: Option<Wasm>,
}

/// A plugin's linked code. Code from the quick tier is replaced by the optimized code
/// when that is ready ([`super::tier`]); a call holds the code it started with, and the
/// quick code is freed when the last such call ends.
pub(crate) type Linked = Arc<ArcSwap<Entry>>;

impl Code {
    fn ready(linked: Linked) -> Self {
        Self {
            entry: OnceCell::new_with(Some(Ok(linked))),
            wasm: None,
        }
    }

    /// The entry if it is loaded; `None` while it is not (yet).
    pub(crate) fn get(&self) -> Option<Result<Arc<Entry>, &str>> {
        self.entry.get().map(|loaded| {
            loaded
                .as_ref()
                .map(|linked| linked.load_full())
                .map_err(String::as_str)
        })
    }
}

/// A plugin's code as [`Runtime::component`] gives it, with its sidecar WIT read.
struct Compiled {
    /// The component.
    component: Component,
    /// Where it came from.
    cache: CacheOutcome,
    /// The `.wasm` to optimize later, if it came from the quick tier.
    quick: Option<Wasm>,
    /// Its sidecar WIT, if it has one.
    sidecar: Option<Sidecar>,
}

/// How a plugin's tools are called.
pub(crate) enum Entry {
    /// Through its `capsule:plugin/tools` export.
    Tools(PluginPre<CallState>),
    /// Dynamically: one tool per exported function (WIT-derived tools).
    Functions {
        pre: InstancePre<CallState>,
        functions: Vec<Function>,
    },
}

impl Entry {
    /// The engine the code was compiled for: its stores must belong to it.
    pub(crate) fn engine(&self) -> &Engine {
        match self {
            Entry::Tools(pre) => pre.instance_pre().engine(),
            Entry::Functions { pre, .. } => pre.engine(),
        }
    }
}

/// Links `component` with `linker` into how its tools are called: its
/// `capsule:plugin/tools` export, else its exported functions (documented by `sidecar`,
/// the WIT beside `path`, if any; `warn` logs the functions that cannot be served).
pub(crate) fn link_entry(
    linker: &Linker<CallState>,
    component: &Component,
    name: &str,
    path: &Path,
    sidecar: Option<&Sidecar>,
    warn: bool,
) -> Result<Entry, LoadError> {
    let pre = linker
        .instantiate_pre(component)
        .map_err(|err| link_error(path, err))?;
    if component.get_export_index(None, TOOLS_EXPORT).is_some() {
        let pre = PluginPre::new(pre).map_err(|err| link_error(path, err))?;
        return Ok(Entry::Tools(pre));
    }
    let functions = served_functions(component, name, path, sidecar, warn)?;
    Ok(Entry::Functions { pre, functions })
}

/// Why a plugin could not be loaded. Every message names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{}: cannot read: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: std::io::Error,
    },
    /// The file is not WebAssembly at all.
    #[error(
        "{}: not a WebAssembly file (it does not start with the `\\0asm` magic); put only compiled .wasm components in the plugins folder",
        path.display()
    )]
    NotWasm {
        /// The file.
        path: PathBuf,
    },
    /// A core module rather than a component.
    #[error(
        "{}: this is a core WebAssembly module, not a component; build it for `wasm32-wasip2` (Rust) or wrap it with `wasm-tools component new`",
        path.display()
    )]
    CoreModule {
        /// The file.
        path: PathBuf,
    },
    /// wasmtime rejected the component.
    #[error("{}: invalid component: {message}", path.display())]
    Compile {
        /// The file.
        path: PathBuf,
        /// wasmtime's message.
        message: String,
    },
    /// The component implements neither the plugin world nor any function that can be
    /// served as a tool.
    #[error(
        "{}: does not export `{TOOLS_EXPORT}` nor any function that can be served as a tool (its exports: {}{}); build it against wit/capsule.wit, e.g. with the capsule-sdk crate, or export plain functions",
        path.display(),
        crate::units::list_or_none(exports),
        skipped.iter().map(|s| format!("; {} skipped: {}", s.export, s.reason)).collect::<String>()
    )]
    MissingExport {
        /// The file.
        path: PathBuf,
        /// What the component exports instead.
        exports: Vec<String>,
        /// Exported functions that cannot be served, and why.
        skipped: Vec<derived::Skipped>,
    },
    /// The component imports something the host does not provide, or its export has the wrong shape.
    #[error("{}: cannot be linked: {message}", path.display())]
    Link {
        /// The file.
        path: PathBuf,
        /// wasmtime's message (names the import).
        message: String,
    },
    /// The sidecar WIT that documents a component's functions cannot be read.
    #[error(
        "{}: cannot read its doc comments (fix the WIT or remove it; it only provides tool descriptions): {message}",
        path.display()
    )]
    WitDocs {
        /// The sidecar `.wit`.
        path: PathBuf,
        /// wit-parser's message.
        message: String,
    },
    /// The host stopped (it is shutting down) before the load could finish.
    #[error("{}: loading was interrupted: the host is shutting down", path.display())]
    Interrupted {
        /// The file.
        path: PathBuf,
    },
    /// `list-tools` failed.
    #[error("{}: list-tools {fault}", path.display())]
    ListTools {
        /// The file.
        path: PathBuf,
        /// The sandbox fault.
        fault: Fault,
    },
}

impl Runtime {
    /// Loads the plugin `name` from `path` under `policy`.
    pub async fn load(
        &self,
        name: &str,
        path: &Path,
        policy: PluginPolicy,
    ) -> Result<Plugin, LoadError> {
        let (digest, wasm) = crate::distribution::wasm::hash_file_blocking(path)
            .await
            .map_err(|reason| LoadError::Read {
                path: path.to_path_buf(),
                reason,
            })?;
        self.load_wasm(name, path, wasm, digest.hex().to_string(), policy, |_| {})
            .await
    }

    /// Loads the plugin `name` from `wasm` (whose hex sha256 is `digest`; a file is read
    /// only if it must be compiled), from `path` (named in messages; a sidecar `.wit`
    /// beside it documents derived tools).
    /// `compiling` is called with the size in bytes when there is no usable precompiled
    /// artifact and compilation starts (background loading decides from it whether to
    /// wait).
    pub async fn load_wasm(
        &self,
        name: &str,
        path: &Path,
        wasm: Wasm,
        digest: String,
        policy: PluginPolicy,
        compiling: impl FnOnce(u64) + Send + 'static,
    ) -> Result<Plugin, LoadError> {
        let Compiled {
            component,
            cache,
            quick,
            sidecar,
        } = self
            .component(path, wasm, digest.clone(), compiling)
            .await?;
        let entry = link_entry(
            self.linker_for(&component),
            &component,
            name,
            path,
            sidecar.as_ref(),
            true,
        )?;
        let derived_tools = match &entry {
            Entry::Tools(_) => None,
            Entry::Functions { functions, .. } => {
                Some(functions.iter().map(Function::tool).collect())
            }
        };
        let linked: Linked = Arc::new(ArcSwap::from_pointee(entry));
        let code = Code::ready(linked.clone());
        let mut plugin = self.plugin(name, path, digest, policy, cache, code);
        plugin.tools = match derived_tools {
            Some(tools) => tools,
            None => self
                .list_tools(&plugin)
                .await
                .map_err(|fault| LoadError::ListTools {
                    path: path.to_path_buf(),
                    fault,
                })?,
        };
        let (cache, digest, tools) = (
            self.cache.clone(),
            plugin.digest.clone(),
            plugin.tools.clone(),
        );
        // Fingerprinted with the sidecar as read for these tools' docs.
        let fingerprint =
            listing::fingerprint(&plugin.policy, sidecar.as_ref().map(|wit| &wit.digest));
        // Remembered for the next start; losing it only costs that start an instance (or,
        // for derived tools, loading the code before listing them).
        let _ = tokio::task::spawn_blocking(move || cache.remember(&digest, &fingerprint, &tools))
            .await;
        // Only a plugin that loaded is worth optimizing.
        if let Some(wasm) = quick {
            self.optimize_later(&plugin, wasm, sidecar, linked);
        }
        Ok(plugin)
    }

    /// The plugin `name` from `path`, listed with `tools` remembered for its `digest` and
    /// `policy` ([`super::listing`]); its code is not loaded yet ([`Runtime::code_ready`]
    /// loads it, compiling `wasm` only if its artifact turns out unusable).
    pub fn listed(
        &self,
        name: &str,
        path: &Path,
        wasm: Wasm,
        digest: String,
        policy: PluginPolicy,
        tools: Vec<Tool>,
    ) -> Plugin {
        let code = Code {
            entry: OnceCell::new(),
            wasm: Some(wasm),
        };
        let mut plugin = self.plugin(name, path, digest, policy, CacheOutcome::Hit, code);
        plugin.tools = tools;
        plugin
    }

    /// Makes sure the code of `plugin` is loaded: loads it if it was listed from its
    /// remembered tools (once: concurrent callers wait for the same load); the error of a
    /// load that failed, to every caller.
    pub async fn code_ready(&self, plugin: &Plugin) -> Result<(), Fault> {
        // A load interrupted by the host shutting down is not kept: it says nothing of
        // the plugin.
        let loaded = plugin
            .code
            .entry
            .get_or_try_init(|| async {
                match self.load_code(plugin).await {
                    Err(LoadError::Interrupted { .. }) => Err(Fault::Cancelled),
                    loaded => Ok(loaded.map_err(|err| err.to_string())),
                }
            })
            .await?;
        loaded
            .as_ref()
            .map(|_| ())
            .map_err(|detail| Fault::Unloadable {
                detail: detail.clone(),
            })
    }

    /// Loads the code of a plugin listed from its remembered tools: the artifact (checked,
    /// as every load), linked; compiled from the `.wasm` if the artifact is unusable.
    async fn load_code(&self, plugin: &Plugin) -> Result<Linked, LoadError> {
        let path = plugin.path.as_path();
        let Some(wasm) = plugin.code.wasm.clone() else {
            return Err(LoadError::Compile {
                path: path.to_path_buf(),
                message: "its code is not available".into(),
            });
        };
        let started = std::time::Instant::now();
        let Compiled {
            component,
            quick,
            sidecar,
            ..
        } = self
            .component(path, wasm, plugin.digest.clone(), |_| {})
            .await?;
        let entry = link_entry(
            self.linker_for(&component),
            &component,
            &plugin.name,
            path,
            sidecar.as_ref(),
            true,
        )?;
        let linked: Linked = Arc::new(ArcSwap::from_pointee(entry));
        if let Some(wasm) = quick {
            self.optimize_later(plugin, wasm, sidecar, linked.clone());
        }
        tracing::debug!(plugin = %plugin.name, elapsed = ?started.elapsed(), "loaded the code of a listed plugin");
        Ok(linked)
    }

    /// The component of `wasm` (hex sha256 `digest`), from its precompiled artifact or
    /// compiled (then `compiling` is called with its size first), and the sidecar WIT
    /// beside `path`, on a blocking thread. With tiered compilation a compiled component
    /// comes from the quick tier, returned with the `.wasm` to optimize later.
    async fn component(
        &self,
        path: &Path,
        wasm: Wasm,
        digest: String,
        compiling: impl FnOnce(u64) + Send + 'static,
    ) -> Result<Compiled, LoadError> {
        check_header(wasm.head(), path)?;
        let engine = self.engine.clone();
        let artifacts = self.cache.clone();
        let quick = self.quick.clone();
        let plugin_path = path.to_path_buf();
        let compiled = tokio::task::spawn_blocking(move || {
            let compiled = |component, cache, quick| Compiled {
                component,
                cache,
                quick,
                sidecar: Sidecar::read(&plugin_path),
            };
            if let Some(component) = artifacts.load(&engine, &digest) {
                return Ok(compiled(component, CacheOutcome::Hit, None));
            }
            compiling(wasm.len());
            let bytes = wasm
                .into_bytes(&digest)
                .map_err(|err| wasmtime::Error::msg(err.to_string()))?;
            if let Some(quick) = quick.get() {
                let started = std::time::Instant::now();
                match super::compile_threads::run(|| Component::new(&quick.engine, &bytes)) {
                    Ok(component) => {
                        let memo = super::function_memo::FunctionMemo::shared();
                        tracing::debug!(elapsed = ?started.elapsed(), bytes = bytes.len(), memo_functions = memo.size().0, memo_reused = memo.reused(), "compiled component with the baseline compiler");
                        return Ok(compiled(
                            component,
                            CacheOutcome::Quick,
                            Some(Wasm::Bytes(bytes)),
                        ));
                    }
                    Err(err) => tracing::warn!(
                        "the baseline compiler refused the component ({err:#}); compiling optimized code before serving it"
                    ),
                }
            }
            let component = artifacts.compile(&engine, &bytes, &digest)?;
            Ok(compiled(component, CacheOutcome::Compiled, None))
        })
        .await
        .map_err(|err| {
            if err.is_cancelled() {
                LoadError::Interrupted {
                    path: path.to_path_buf(),
                }
            } else {
                LoadError::Compile {
                    path: path.to_path_buf(),
                    message: format!("compiler task failed: {err}"),
                }
            }
        })?;
        compiled.map_err(|err: wasmtime::Error| LoadError::Compile {
            path: path.to_path_buf(),
            message: format!("{err:#}"),
        })
    }

    /// Queues the optimized compilation of `plugin`, served from the quick tier with the
    /// code in `linked` (which the optimized code replaces), documented by `sidecar` as
    /// the quick code was.
    fn optimize_later(
        &self,
        plugin: &Plugin,
        wasm: Wasm,
        sidecar: Option<Sidecar>,
        linked: Linked,
    ) {
        let optimizer = Optimizer {
            engine: self.engine.clone(),
            linker: self.linker.clone(),
            cache: self.cache.clone(),
            turn: self.optimizing.clone(),
        };
        optimizer.spawn(Pending {
            name: plugin.name.clone(),
            path: plugin.path.clone(),
            wasm,
            digest: plugin.digest.clone(),
            sidecar,
            linked: Arc::downgrade(&linked),
            warm: plugin.warm.as_ref().map(Arc::downgrade),
        });
    }

    /// A plugin of this runtime with no tools yet.
    fn plugin(
        &self,
        name: &str,
        path: &Path,
        digest: String,
        policy: PluginPolicy,
        cache: CacheOutcome,
        code: Code,
    ) -> Plugin {
        let warm = match policy.isolation {
            Isolation::Reuse(reuse) if self.settings.max_warm_instances > 0 => {
                Some(self.warm.pool(reuse))
            }
            _ => None,
        };
        Plugin {
            name: Arc::from(name),
            path: path.to_path_buf(),
            digest,
            source: None,
            tools: Vec::new(),
            policy,
            cache,
            code,
            slots: Arc::new(Semaphore::new(self.settings.max_calls_per_plugin as usize)),
            conduct: Conduct::default(),
            warm,
        }
    }
}

/// The exported functions of a component without `capsule:plugin/tools`, documented by
/// its `sidecar` WIT if it has one; an error if none can be served. `warn` logs the ones
/// that cannot.
fn served_functions(
    component: &Component,
    name: &str,
    path: &Path,
    sidecar: Option<&Sidecar>,
    warn: bool,
) -> Result<Vec<Function>, LoadError> {
    let engine = component.engine();
    let (mut functions, skipped) = derived::discover(component, engine);
    if let Some(sidecar) = sidecar {
        let mut docs = sidecar.docs.clone().map_err(|message| LoadError::WitDocs {
            path: sidecar.path.clone(),
            message,
        })?;
        for function in &mut functions {
            function.doc = docs.remove(&function.export);
        }
    }
    if functions.is_empty() {
        let exports = component
            .component_type()
            .exports(engine)
            .map(|(n, _)| n.to_string())
            .collect();
        return Err(LoadError::MissingExport {
            path: path.to_path_buf(),
            exports,
            skipped,
        });
    }
    if warn {
        for skip in &skipped {
            tracing::warn!(plugin = name, export = %skip.export, "not served as a tool: {}", skip.reason);
        }
    }
    Ok(functions)
}

/// A link error of the plugin at `path`.
fn link_error(path: &Path, err: wasmtime::Error) -> LoadError {
    LoadError::Link {
        path: path.to_path_buf(),
        message: format!("{err:#}"),
    }
}

/// Tells a component from a core module from something else, by the preamble.
fn check_header(bytes: &[u8], path: &Path) -> Result<(), LoadError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(LoadError::NotWasm {
            path: path.to_path_buf(),
        });
    }
    // Core modules have version 1 and layer 0; components have layer 1.
    if bytes[6..8] == [0, 0] {
        return Err(LoadError::CoreModule {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_told_apart() {
        let p = Path::new("x.wasm");
        assert!(matches!(
            check_header(b"hello world", p),
            Err(LoadError::NotWasm { .. })
        ));
        assert!(matches!(
            check_header(b"\0asm\x01\0\0\0", p),
            Err(LoadError::CoreModule { .. })
        ));
        assert!(check_header(b"\0asm\x0d\0\x01\0", p).is_ok());
    }
}
