//! Loading a plugins folder: every `*.wasm` in it (not recursive), each on its own, so
//! one broken file is reported and the others still load.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Settings;
use crate::registry::{ToolProblem, ToolSet, naming};
use crate::runtime::{Plugin, Runtime};

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

/// The `.wasm` files in `dir`, sorted by name.
pub fn plugin_files(dir: &Path) -> Result<Vec<PathBuf>, FolderError> {
    let entries = std::fs::read_dir(dir).map_err(|reason| FolderError {
        path: dir.to_path_buf(),
        reason,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wasm") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Loads every plugin in `settings.plugins_dir` and merges their tools.
pub async fn load_folder(
    runtime: &Runtime,
    settings: &Settings,
) -> Result<LoadReport, FolderError> {
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
    let mut named: Vec<(String, PathBuf)> = Vec::new();
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
                    first.display()
                ),
                plugin: Some(name),
            });
            continue;
        }
        named.push((name, path));
    }
    for configured in settings.plugins.keys() {
        if !named.iter().any(|(n, _)| n == configured) {
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

    let loads = named.iter().map(|(name, path)| async move {
        let started = std::time::Instant::now();
        let (policy, warnings) = match settings.policy(name, path) {
            Ok(found) => found,
            Err(message) => return (name, Err(message), Vec::new()),
        };
        let result = runtime
            .load(name, path, policy)
            .await
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
        (name, result, warnings)
    });
    let mut plugins: Vec<Arc<Plugin>> = Vec::new();
    for (name, result, warnings) in futures::future::join_all(loads).await {
        problems.extend(warnings.into_iter().map(|message| Problem {
            severity: Severity::Warning,
            message,
            plugin: None,
        }));
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
    problems.extend(tool_problems.into_iter().map(|p: ToolProblem| Problem {
        severity: if p.skipped {
            Severity::Error
        } else {
            Severity::Warning
        },
        message: format!("plugin `{}`: {}", p.plugin, p.message),
        plugin: None,
    }));
    Ok(LoadReport { tools, problems })
}
