//! Reading TOML files: the config file, sidecar policies and the secrets file, each up to
//! [`MAX_TOML`](crate::bounded_file::MAX_TOML).

use std::collections::BTreeMap;
use std::path::Path;

use super::ConfigError;
use super::raw::RawConfig;
use crate::bounded_file;

/// The text of the TOML file at `path`, up to [`MAX_TOML`](crate::bounded_file::MAX_TOML), or [`ConfigError::Read`] naming it.
pub(super) fn read_text(path: &Path) -> Result<String, ConfigError> {
    bounded_file::read_toml(path).map_err(|reason| ConfigError::Read {
        path: path.to_path_buf(),
        reason,
    })
}

/// Reads a secrets file. Errors give the line but never quote it: it may hold a secret.
pub(super) fn parse_secrets_file(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = read_text(path)?;
    toml::from_str(&text).map_err(|err| {
        let line = err
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        ConfigError::Parse {
            path: path.to_path_buf(),
            message: format!(
                "line {}: {}; write one `name = \"value\"` per line",
                line.map_or("?".to_string(), |l| l.to_string()),
                err.message()
            ),
        }
    })
}

/// Parses a config file into its raw form.
pub fn parse_file(path: &Path) -> Result<RawConfig, ConfigError> {
    parse_toml(path)
}

/// Reads and parses a TOML file into `T`; errors name the file, line and column.
pub(crate) fn parse_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = read_text(path)?;
    toml::from_str(&text).map_err(|err| ConfigError::Parse {
        path: path.to_path_buf(),
        message: err.to_string(),
    })
}
