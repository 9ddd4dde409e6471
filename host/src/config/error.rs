//! Configuration errors: what is wrong, in which file, and what to change.

use std::path::{Path, PathBuf};

/// A configuration problem, with the file and what to change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: std::io::Error,
    },
    /// The file is not valid TOML or has unknown/mistyped keys.
    #[error("invalid config file {}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line, column and the offending text.
        message: String,
    },
    /// An environment variable or a command-line flag gives a key a value it cannot take.
    #[error("invalid value in {origin} for {key}: {message}")]
    Override {
        /// `environment variable CAPSULE_…` or `flag --…`.
        origin: String,
        /// The key it sets.
        key: String,
        /// What the key expects.
        message: String,
    },
    /// A value is out of range or inconsistent with another.
    #[error("invalid configuration{}: {key}: {message}", source_suffix(path.as_deref()))]
    Invalid {
        /// The file, when the value came from one.
        path: Option<PathBuf>,
        /// The key, e.g. `plugins.text.limits`.
        key: String,
        /// What is wrong and what to write instead.
        message: String,
    },
}

fn source_suffix(path: Option<&Path>) -> String {
    path.map(|p| format!(" in {}", p.display()))
        .unwrap_or_default()
}
