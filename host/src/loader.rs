//! Loading a plugins folder: every `*.wasm` in it (not recursive), each on its own, so
//! one broken file is reported and the others still load.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Settings;
use crate::distribution::source::Fetched;
use crate::distribution::store::Store;
use crate::distribution::{Digest, FetchError, Fetcher, Origin, Source, Wasm, fetch};
use crate::policy::PluginPolicy;
use crate::registry::{ToolProblem, ToolSet, naming};
use crate::runtime::derived::docs::Sidecar;
use crate::runtime::{Plugin, Runtime, listing};

/// How bad a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Something was not loaded or not served. `capsule check` fails.
    Error,
    /// Served, but worth fixing (e.g. a renamed tool).
    Warning,
}

/// One thing wrong with the plugins folder or the config.
#[derive(Debug, Clone)]
pub struct Problem {
    /// How bad it is.
    pub severity: Severity,
    /// The whole message, naming the file or plugin.
    pub message: String,
    /// The plugin that did not load because of it (for the audit log's `plugin.failed`);
    /// `None` for problems of the config, of one tool, or that leave the plugin serving.
    pub plugin: Option<String>,
}

/// What loading a folder produced.
pub struct LoadReport {
    /// The merged tools of every plugin that loaded.
    pub tools: ToolSet,
    /// Everything that went wrong, in file order.
    pub problems: Vec<Problem>,
}

/// The folder itself could not be read.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot read plugins folder {}: {reason}; create it or pass --plugins DIR (CAPSULE_PLUGINS)",
    path.display()
)]
pub struct FolderError {
    /// The folder.
    pub path: PathBuf,
    /// Why.
    pub reason: std::io::Error,
}

/// The `.wasm` entries in `dir` that are not folders, sorted by name. Anything else by
/// that name (a FIFO, a device, a dangling link) is listed too, so that loading it says
/// what is wrong instead of the plugin being left out without a word.
pub fn plugin_files(dir: &Path) -> Result<Vec<PathBuf>, FolderError> {
    let entries = std::fs::read_dir(dir).map_err(|reason| FolderError {
        path: dir.to_path_buf(),
        reason,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wasm") && !p.is_dir())
        .collect();
    files.sort();
    Ok(files)
}

/// The plugins of a folder to load, by name, and the problems found before loading any.
pub struct Plan {
    /// Each plugin's name and where it is: files in file order, then configured sources.
    pub plugins: Vec<(String, Kind)>,
    /// Config warnings, duplicate names, configured plugins without a file.
    pub problems: Vec<Problem>,
}

/// Lists the plugins in `settings.plugins_dir` and what is wrong before loading them.
pub fn plan(settings: &Settings) -> Result<Plan, FolderError> {
    let files = plugin_files(&settings.plugins_dir)?;
    let mut problems: Vec<Problem> = settings
        .warnings
        .iter()
        .map(|message| Problem {
            severity: Severity::Warning,
            message: message.clone(),
            plugin: None,
        })
        .collect();
    let mut named: Vec<(String, Kind)> = Vec::new();
    for path in files {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("plugin");
        let name = naming::plugin_name(stem);
        if let Some((_, first)) = named.iter().find(|(n, _)| *n == name) {
            problems.push(Problem {
                severity: Severity::Error,
                message: format!(
                    "{}: plugin name `{name}` is already used by {}; rename one of the files",
                    path.display(),
                    first.describe()
                ),
                plugin: Some(name),
            });
            continue;
        }
        named.push((name, Kind::File(path)));
    }
    for (name, origin) in &settings.origins {
        let (source, origin) = match origin {
            Err(message) => {
                named.retain(|(n, _)| n != name);
                problems.push(Problem {
                    severity: Severity::Error,
                    message: message.clone(),
                    plugin: Some(name.clone()),
                });
                continue;
            }
            Ok(
                origin @ Origin {
                    source: Some(source),
                    ..
                },
            ) => (source, origin),
            Ok(_) => continue,
        };
        if let Some((_, Kind::File(path))) = named.iter().find(|(n, _)| n == name) {
            problems.push(Problem {
                severity: Severity::Error,
                message: format!(
                    "plugin `{name}` is both {} and source = \"{}\" in [plugins.{name}]; remove the file or the source",
                    path.display(),
                    source.text()
                ),
                plugin: Some(name.clone()),
            });
            named.retain(|(n, _)| n != name);
            continue;
        }
        named.push((
            name.clone(),
            Kind::Remote(Box::new((source.clone(), origin.clone()))),
        ));
    }
    for configured in settings.plugins.keys() {
        if !named.iter().any(|(n, _)| n == configured) && !settings.origins.contains_key(configured)
        {
            problems.push(Problem {
                severity: Severity::Warning,
                message: format!(
                    "config has [plugins.{configured}] but there is no {configured}.wasm in {}",
                    settings.plugins_dir.display()
                ),
                plugin: None,
            });
        }
    }
    Ok(Plan {
        plugins: named,
        problems,
    })
}

/// The fetcher every plugin of `settings` is fetched with (remote sources through the cache).
pub fn fetcher(settings: &Settings) -> Fetcher {
    Fetcher {
        store: settings.cache_dir.as_deref().map(Store::new),
        insecure: settings.distribution.insecure_registries.clone(),
        key: settings.distribution.public_key.clone(),
        timeout: settings.distribution.fetch_timeout,
    }
}

/// What loading one plugin produced: the plugin or the whole error message, and warnings
/// about its policy.
pub type Loaded = (Result<Plugin, String>, Vec<Problem>);

/// How a load gets a plugin's tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// From the list remembered for its digest and policy when there is one, its code
    /// loaded later ([`Runtime::listed`]); by asking it otherwise.
    Remembered,
    /// Always by asking it (`list-tools` in a fresh instance), its code loaded now.
    Asked,
}

/// Fetches, checks and loads the plugin `name` from `kind` with its policy from
/// `settings`; `compiling` is called with its size when it must be compiled (see
/// [`Runtime::load_wasm`]).
pub async fn load_one(
    runtime: &Runtime,
    settings: &Settings,
    fetcher: &Fetcher,
    name: &str,
    kind: &Kind,
    listing: Listing,
    compiling: impl FnOnce(u64) + Send + 'static,
) -> Loaded {
    let started = std::time::Instant::now();
    let (fetched, policy) = match kind {
        Kind::File(path) => (
            fetch::file(name, path, file_origin(settings, name)).await,
            settings.policy(name, path),
        ),
        Kind::Remote(remote) => {
            let (source, origin) = &**remote;
            // Only the operator's entry grants anything to a remote plugin: no sidecar.
            let policy: Result<(PluginPolicy, Vec<String>), String> = settings
                .plugins
                .get(name)
                .cloned()
                .unwrap_or_else(|| {
                    Err(format!(
                        "plugin `{name}` has a source but no [plugins.{name}] entry"
                    ))
                })
                .map(|policy| (policy, Vec::new()));
            (fetcher.remote(name, source, origin).await, policy)
        }
    };
    load_fetched(runtime, fetched, policy, name, listing, compiling, started).await
}

/// [`load_one`] of the plugin file `path`, already hashed into `wasm` with sha256 `digest`
/// (as the reloader has it after looking whether it changed): not hashed again.
pub async fn load_read_file(
    runtime: &Runtime,
    settings: &Settings,
    name: &str,
    path: &Path,
    wasm: Wasm,
    digest: Digest,
) -> Loaded {
    let started = std::time::Instant::now();
    let fetched = fetch::file_read(name, path, wasm, digest, file_origin(settings, name));
    let policy = settings.policy(name, path);
    load_fetched(
        runtime,
        fetched,
        policy,
        name,
        Listing::Asked,
        |_| {},
        started,
    )
    .await
}

/// The `[plugins.NAME]` entry of a plugin file, when it is valid.
fn file_origin<'s>(settings: &'s Settings, name: &str) -> Option<&'s Origin> {
    settings.origins.get(name).and_then(|o| o.as_ref().ok())
}

/// Loads what was fetched for `name` with `policy` (the common end of [`load_one`] and
/// [`load_read_file`]); `started` is when its load began, for the log.
async fn load_fetched(
    runtime: &Runtime,
    fetched: Result<Fetched, FetchError>,
    policy: Result<(PluginPolicy, Vec<String>), String>,
    name: &str,
    listing: Listing,
    compiling: impl FnOnce(u64) + Send + 'static,
    started: std::time::Instant,
) -> Loaded {
    let (policy, warnings) = match policy {
        Ok(found) => found,
        Err(message) => return (Err(message), Vec::new()),
    };
    let warnings = policy_warnings(warnings);
    let fetched = match fetched {
        Ok(fetched) => fetched,
        Err(err) => return (Err(err.to_string()), warnings),
    };
    let digest = fetched.digest.hex().to_string();
    if listing == Listing::Remembered
        && let Some(tools) = remembered_tools(runtime, &fetched, &policy).await
    {
        let source = fetched.source;
        let mut plugin = runtime.listed(name, &fetched.path, fetched.wasm, digest, policy, tools);
        plugin.source = source;
        log_listed(&plugin, started);
        return (Ok(plugin), warnings);
    }
    let result = runtime
        .load_wasm(name, &fetched.path, fetched.wasm, digest, policy, compiling)
        .await
        .map(|mut plugin| {
            plugin.source = fetched.source;
            plugin
        })
        .map_err(|err| err.to_string());
    if let Ok(plugin) = &result {
        tracing::info!(
            plugin = %plugin.name,
            tools = plugin.tools.len(),
            cache = %plugin.cache,
            elapsed = ?started.elapsed(),
            "loaded plugin"
        );
    }
    (result, warnings)
}

/// Remembers the digest of the plugin file just hashed into `fetched` (for the next
/// start), and returns the tools remembered for it under `policy`, on a blocking thread.
async fn remembered_tools(
    runtime: &Runtime,
    fetched: &Fetched,
    policy: &PluginPolicy,
) -> Option<Vec<crate::runtime::bindings::Tool>> {
    let cache = runtime.artifacts().clone();
    let (wasm, digest) = (fetched.wasm.clone(), fetched.digest.clone());
    let (policy, path) = (policy.clone(), fetched.path.clone());
    tokio::task::spawn_blocking(move || {
        cache.remember_digest(&wasm, &digest);
        let sidecar = Sidecar::digest(&path);
        cache.remembered(
            digest.hex(),
            &listing::fingerprint(&policy, sidecar.as_ref()),
        )
    })
    .await
    .ok()
    .flatten()
}

/// The plugin file `name` at `path` listed from what the cache remembers, without reading
/// the file: its digest by its stamp, its tools by that digest and its policy. `None` if
/// anything is not remembered, or its policy or pin has a problem (a load reports it).
/// Blocking: a few small reads. The plugin comes with the warnings about its policy.
pub fn list_from_memory(
    runtime: &Runtime,
    settings: &Settings,
    name: &str,
    path: &Path,
) -> Option<(Plugin, Vec<Problem>)> {
    let started = std::time::Instant::now();
    let cache = runtime.artifacts();
    let (digest, wasm) = cache.remembered_digest(path)?;
    let (policy, warnings) = settings.policy(name, path).ok()?;
    let fetched = fetch::file_read(name, path, wasm, digest, file_origin(settings, name)).ok()?;
    let digest = fetched.digest.hex().to_string();
    let sidecar = Sidecar::digest(path);
    let tools = cache.remembered(&digest, &listing::fingerprint(&policy, sidecar.as_ref()))?;
    let plugin = runtime.listed(name, path, fetched.wasm, digest, policy, tools);
    log_listed(&plugin, started);
    Some((plugin, policy_warnings(warnings)))
}

/// The warnings about a plugin's policy, as problems.
fn policy_warnings(warnings: Vec<String>) -> Vec<Problem> {
    warnings
        .into_iter()
        .map(|message| Problem {
            severity: Severity::Warning,
            message,
            plugin: None,
        })
        .collect()
}

/// Logs (at debug) that `plugin` was listed from its remembered tools, `started` ago.
fn log_listed(plugin: &Plugin, started: std::time::Instant) {
    tracing::debug!(
        plugin = %plugin.name,
        tools = plugin.tools.len(),
        elapsed = ?started.elapsed(),
        "listed plugin from its remembered tools; its code loads next"
    );
}

/// The problems [`ToolSet::build`] reported, as folder problems.
pub fn tool_problems(problems: Vec<ToolProblem>) -> impl Iterator<Item = Problem> {
    problems.into_iter().map(|p| Problem {
        severity: if p.skipped {
            Severity::Error
        } else {
            Severity::Warning
        },
        message: format!("plugin `{}`: {}", p.plugin, p.message),
        plugin: None,
    })
}

/// Loads every plugin of `settings` (folder and sources) and merges their tools.
pub async fn load_folder(
    runtime: &Runtime,
    settings: &Settings,
) -> Result<LoadReport, FolderError> {
    let Plan {
        plugins: named,
        mut problems,
    } = plan(settings)?;
    let fetcher = fetcher(settings);
    let loads = named.iter().map(|(name, kind)| {
        load_one(
            runtime,
            settings,
            &fetcher,
            name,
            kind,
            Listing::Asked,
            |_| {},
        )
    });
    let mut plugins: Vec<Arc<Plugin>> = Vec::new();
    let loaded = futures::future::join_all(loads).await;
    for ((name, _), (result, warnings)) in named.iter().zip(loaded) {
        problems.extend(warnings);
        match result {
            Ok(plugin) => plugins.push(Arc::new(plugin)),
            Err(message) => problems.push(Problem {
                severity: Severity::Error,
                message,
                plugin: Some(name.clone()),
            }),
        }
    }
    let (tools, tool_problems) = ToolSet::build(plugins);
    problems.extend(self::tool_problems(tool_problems));
    Ok(LoadReport { tools, problems })
}

/// Where a plugin to load is.
pub enum Kind {
    /// `NAME.wasm` in the plugins folder.
    File(PathBuf),
    /// `source` in `[plugins.NAME]`, and what it must be.
    Remote(Box<(Source, Origin)>),
}

impl Kind {
    /// The file or source, for messages.
    pub fn describe(&self) -> String {
        match self {
            Kind::File(path) => path.display().to_string(),
            Kind::Remote(remote) => remote.0.text(),
        }
    }
}
