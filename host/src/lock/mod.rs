//! Promotion: `capsule.lock`. `capsule check --lock` records what a validated setup runs —
//! each plugin's file, sha256, effective grants and limits, settings and tools (a digest of
//! each tool's descriptor), the effective configuration and the capsule version — and
//! `--locked` refuses to run when anything differs, naming every difference.
//!
//! The file is TOML, sorted, so writing it twice gives the same bytes and a review sees
//! what changed. Secrets appear by name only; a value is never written.

mod diff;
mod effective;
mod state;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::loader::Problem;
use crate::registry::ToolSet;

pub use state::{LockedConfig, LockedPlugin, policy_items};

/// The digest of the effective configuration of `settings`, as `capsule.lock` records it
/// (`sha256:…`; the audit log's `config.loaded` carries it too).
pub fn config_digest(settings: &Settings) -> String {
    effective::config(settings).digest
}

/// The effective configuration of `settings` by key, as `capsule.lock` records it (hot
/// reload compares two of them to name what a changed `capsule.toml` would change).
pub fn config_settings(settings: &Settings) -> std::collections::BTreeMap<String, String> {
    effective::config(settings).settings
}

/// The lock file's name, beside the config file (or in the working folder without one).
pub const LOCK_FILE: &str = "capsule.lock";

/// The format this host writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The first lines of every lock file.
const HEADER: &str = "# capsule.lock: written by `capsule check --lock`; `capsule serve --locked` refuses to\n# start when the plugins or the configuration differ from it. Commit it; do not edit it.\n\n";

/// What a lock file records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Lock {
    /// The lock format ([`FORMAT_VERSION`]).
    pub version: u32,
    /// The version of the `capsule` that wrote it.
    pub capsule: String,
    /// The effective configuration.
    pub config: LockedConfig,
    /// Every loaded plugin, by name.
    #[serde(default)]
    pub plugins: std::collections::BTreeMap<String, LockedPlugin>,
}

/// Why a lock could not be written, read or matched.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// There is no lock file.
    #[error("no lock file at {}: run `capsule check --lock` to write it", path.display())]
    Missing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The file could not be read or written.
    #[error("cannot {action} {}: {reason}", path.display())]
    Io {
        /// `read` or `write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: std::io::Error,
    },
    /// The file is not a lock this host understands.
    #[error("invalid lock file {}: {message}; write it again with `capsule check --lock`", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The setup differs from the lock.
    #[error(
        "refusing to run: the plugins or the configuration differ from {} ({} {}):\n{}\nreview the change, then run `capsule check --lock` to accept it",
        path.display(),
        differences.len(),
        if differences.len() == 1 { "difference" } else { "differences" },
        differences.iter().map(|d| format!("  {d}")).collect::<Vec<_>>().join("\n")
    )]
    Differs {
        /// The lock file.
        path: PathBuf,
        /// Each difference, one line each.
        differences: Vec<String>,
    },
}

/// Where the lock of `settings` lives: beside the config file, else in `cwd`.
pub fn path(settings: &Settings, cwd: &Path) -> PathBuf {
    settings
        .config_file
        .as_deref()
        .and_then(Path::parent)
        .unwrap_or(cwd)
        .join(LOCK_FILE)
}

impl Lock {
    /// The lock of what is loaded now: `settings` and the plugins and tools of `tools`.
    pub fn of(settings: &Settings, tools: &ToolSet) -> Self {
        Self {
            version: FORMAT_VERSION,
            capsule: env!("CARGO_PKG_VERSION").to_string(),
            config: effective::config(settings),
            plugins: state::plugins(tools),
        }
    }

    /// The lock as file text: a header comment, then sorted TOML.
    pub fn to_text(&self) -> String {
        let body = toml::to_string_pretty(self)
            .expect("a lock holds only strings, integers and string maps, which TOML encodes");
        format!("{HEADER}{body}")
    }

    /// Reads the lock at `path`.
    pub fn read(path: &Path) -> Result<Self, LockError> {
        let text = match crate::bounded_file::read_toml(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(LockError::Missing {
                    path: path.to_path_buf(),
                });
            }
            Err(reason) => {
                return Err(LockError::Io {
                    action: "read",
                    path: path.to_path_buf(),
                    reason,
                });
            }
        };
        let lock: Lock = toml::from_str(&text).map_err(|err| LockError::Parse {
            path: path.to_path_buf(),
            message: err.to_string().trim_end().to_string(),
        })?;
        if lock.version != FORMAT_VERSION {
            return Err(LockError::Parse {
                path: path.to_path_buf(),
                message: format!(
                    "lock format version {} is not the one this capsule reads ({FORMAT_VERSION})",
                    lock.version
                ),
            });
        }
        Ok(lock)
    }

    /// Writes the lock to `path` (through a temporary file, so a reader never sees half).
    pub fn write(&self, path: &Path) -> Result<(), LockError> {
        let io = |reason| LockError::Io {
            action: "write",
            path: path.to_path_buf(),
            reason,
        };
        let temp = path.with_extension("lock.tmp");
        std::fs::write(&temp, self.to_text()).map_err(io)?;
        std::fs::rename(&temp, path).map_err(io)
    }
}

/// Checks what is loaded now against the lock at `lock_path`: every difference, and every
/// load error (a plugin that fails to load is a difference too), one line each.
pub fn verify(
    lock_path: &Path,
    settings: &Settings,
    tools: &ToolSet,
    problems: &[Problem],
) -> Result<(), LockError> {
    let locked = Lock::read(lock_path)?;
    let now = Lock::of(settings, tools);
    let differences = diff::differences(&locked, &now, problems, &settings.plugins_dir);
    if differences.is_empty() {
        Ok(())
    } else {
        Err(LockError::Differs {
            path: lock_path.to_path_buf(),
            differences,
        })
    }
}
