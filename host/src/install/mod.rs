//! `capsule install CLIENT`: writes Capsule's stdio server entry into an MCP client's
//! config file, merging — other servers and unknown keys stay as they were, an existing
//! entry of the same name is replaced only when asked — or prints it (`--print`).

mod client;
mod json;
mod write;

use std::path::{Path, PathBuf};

pub use client::{Client, Dirs, Entry, Location, Scope};
pub use json::{Edit, EditError};

/// Why an entry could not be installed. Nothing was written in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The client keeps no config of that scope.
    #[error("{} has no {scope} config; use --scope {other}", client.title())]
    NoScope {
        /// The client.
        client: Client,
        /// The scope asked for.
        scope: &'static str,
        /// The scope it has.
        other: &'static str,
    },
    /// `$HOME` is needed and not set.
    #[error("cannot find {}'s user config: HOME is not set; set it or use --scope project", client.title())]
    NoHome {
        /// The client.
        client: Client,
    },
    /// The server name is unusable.
    #[error("invalid server name `{0}`: use letters, digits, `-` and `_`")]
    Name(String),
    /// The existing file could not be read.
    #[error("cannot read {}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: std::io::Error,
    },
    /// The existing file is not valid JSON.
    #[error("{}:{line}:{column}: invalid JSON: {message}; fix the file first (nothing was written)", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// The top level or the servers key is not a JSON object.
    #[error("{}: {what} is not a JSON object; fix the file first (nothing was written)", path.display())]
    NotObject {
        /// The file.
        path: PathBuf,
        /// Which part.
        what: String,
    },
    /// A different entry of the same name is there.
    #[error("{} already has a server named `{name}` that differs:\n{diff}\nrerun with --force to replace it (the old file is kept as .bak), or pick another --name", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
        /// The server name.
        name: String,
        /// `- key: old` / `+ key: new` lines.
        diff: String,
    },
    /// The new file could not be written.
    #[error("cannot write {}: {reason}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: std::io::Error,
    },
}

/// One entry to install: where, under which name, and what.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The client.
    pub client: Client,
    /// Its config file and servers key.
    pub location: Location,
    /// The server's name in that file.
    pub name: String,
    /// The entry.
    pub entry: Entry,
}

/// What [`Plan::apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The file was written.
    Written {
        /// The previous file's copy, if there was a previous file.
        backup: Option<PathBuf>,
        /// Whether an entry of that name was replaced.
        replaced: bool,
    },
    /// The same entry was there already; nothing was written.
    Unchanged,
}

impl Plan {
    /// The entry for `client` (`scope`, else its default) running `command args`.
    pub fn new(
        client: Client,
        scope: Option<Scope>,
        name: &str,
        command: &Path,
        args: &[String],
        dirs: &Dirs,
        cwd: &Path,
    ) -> Result<Self, InstallError> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return Err(InstallError::Name(name.to_string()));
        }
        let scope = scope.unwrap_or(client.default_scope());
        let location = client.location(scope, dirs, cwd).ok_or(match scope {
            Scope::Project => InstallError::NoScope {
                client,
                scope: "project",
                other: "user",
            },
            Scope::User => InstallError::NoHome { client },
        })?;
        Ok(Self {
            client,
            location,
            name: name.to_string(),
            entry: client.entry(command, args),
        })
    }

    /// The JSON to paste into the file by hand (`--print`).
    pub fn snippet(&self) -> String {
        json::snippet(self.location.key, &self.name, &self.entry)
    }

    /// Merges the entry into the config file: atomically, the old file kept as `.bak`.
    pub fn apply(&self, force: bool) -> Result<Outcome, InstallError> {
        let path = &self.location.path;
        let existing = match std::fs::read_to_string(path) {
            Ok(text) => Some(text),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(reason) => {
                return Err(InstallError::Read {
                    path: path.clone(),
                    reason,
                });
            }
        };
        let edit = json::add(
            existing.as_deref(),
            self.location.key,
            &self.name,
            &self.entry,
            force,
        )
        .map_err(|err| match err {
            EditError::Syntax {
                message,
                line,
                column,
            } => InstallError::Syntax {
                path: path.clone(),
                line,
                column,
                message,
            },
            EditError::NotObject(what) => InstallError::NotObject {
                path: path.clone(),
                what,
            },
            EditError::Differs(diff) => InstallError::Exists {
                path: path.clone(),
                name: self.name.clone(),
                diff,
            },
        })?;
        match edit {
            Edit::Unchanged => Ok(Outcome::Unchanged),
            Edit::Changed { text, replaced } => {
                let backup = write::replace(path, &text).map_err(|reason| InstallError::Write {
                    path: path.clone(),
                    reason,
                })?;
                Ok(Outcome::Written { backup, replaced })
            }
        }
    }
}
