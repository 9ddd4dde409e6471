//! `capsule approve NAME`: the operator accepts what a plugin's sidecar policy asks for by
//! copying it into the config file as `[plugins.NAME]`, which from then on is the plugin's
//! whole grant. The rest of the file is kept as written (comments, order, formatting).

use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Table, Value};

use crate::config::{DEFAULT_CONFIG_FILE, Settings};
use crate::loader::{self, FolderError};
use crate::registry::naming;
use crate::units::list_or_none;

/// What `approve` wrote.
#[derive(Debug)]
pub struct Approval {
    /// The config file written.
    pub config_file: PathBuf,
    /// The sidecar whose policy was copied.
    pub sidecar: PathBuf,
    /// The section added, as TOML (mount folders made absolute).
    pub section: String,
}

/// Why nothing was approved. Every message names the file and what to do instead.
#[derive(Debug, thiserror::Error)]
pub enum ApproveError {
    /// The plugins folder could not be read.
    #[error(transparent)]
    Folder(#[from] FolderError),
    /// No plugin of that name in the folder.
    #[error("no plugin named `{name}` in {}; plugins there: {}", dir.display(), list_or_none(found))]
    NoPlugin {
        /// The name asked for.
        name: String,
        /// The plugins folder.
        dir: PathBuf,
        /// The plugins it has.
        found: Vec<String>,
    },
    /// The plugin has no sidecar policy.
    #[error(
        "plugin `{name}` has no sidecar policy ({} does not exist), so there is nothing to approve; grant it what it needs under [plugins.{name}] in the config file",
        path.display()
    )]
    NoSidecar {
        /// The plugin.
        name: String,
        /// Where its sidecar would be.
        path: PathBuf,
    },
    /// The config file already has the plugin's section.
    #[error(
        "{} already has [plugins.{name}], which is the plugin's whole grant (its sidecar is ignored); edit that section, or remove it and run `capsule approve {name}` again",
        path.display()
    )]
    AlreadyListed {
        /// The plugin.
        name: String,
        /// The config file.
        path: PathBuf,
    },
    /// The sidecar policy does not resolve (e.g. a mount folder is missing).
    #[error("cannot approve plugin `{name}`: {message}")]
    Invalid {
        /// The plugin.
        name: String,
        /// The policy error, naming the file, key and fix.
        message: String,
    },
    /// A file could not be read, parsed or written.
    #[error("cannot approve plugin `{name}`: {}: {message}", path.display())]
    File {
        /// The plugin.
        name: String,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// Copies the sidecar policy of plugin `name` into the config file of `settings` (or
/// `cwd/capsule.toml`, created, when no config file is in use) as `[plugins.NAME]`.
pub fn approve(settings: &Settings, name: &str, cwd: &Path) -> Result<Approval, ApproveError> {
    let files = loader::plugin_files(&settings.plugins_dir)?;
    let plugins: Vec<(String, PathBuf)> = files
        .into_iter()
        .map(|path| {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("plugin");
            (naming::plugin_name(stem), path)
        })
        .collect();
    let Some((_, wasm)) = plugins.iter().find(|(n, _)| n == name) else {
        return Err(ApproveError::NoPlugin {
            name: name.to_string(),
            dir: settings.plugins_dir.clone(),
            found: plugins.into_iter().map(|(n, _)| n).collect(),
        });
    };
    let sidecar = wasm.with_extension("toml");
    if !sidecar.is_file() {
        return Err(ApproveError::NoSidecar {
            name: name.to_string(),
            path: sidecar,
        });
    }
    let config_file = settings
        .config_file
        .clone()
        .unwrap_or_else(|| cwd.join(DEFAULT_CONFIG_FILE));
    if settings.plugins.contains_key(name) {
        return Err(ApproveError::AlreadyListed {
            name: name.to_string(),
            path: config_file,
        });
    }
    // Everything it asks for must resolve before it is written.
    settings
        .sidecar_policy(name, &sidecar, true)
        .map_err(|message| ApproveError::Invalid {
            name: name.to_string(),
            message,
        })?;

    let file_error = |path: &Path, message: String| ApproveError::File {
        name: name.to_string(),
        path: path.to_path_buf(),
        message,
    };
    let sidecar_text =
        std::fs::read_to_string(&sidecar).map_err(|e| file_error(&sidecar, e.to_string()))?;
    let sidecar_doc: DocumentMut = sidecar_text
        .parse()
        .map_err(|e: toml_edit::TomlError| file_error(&sidecar, e.to_string()))?;
    let mut section = sidecar_doc.as_table().clone();
    section.set_implicit(false);
    section.decor_mut().clear();
    let base = sidecar.parent().unwrap_or(Path::new("."));
    absolute_mounts(&mut section, base).map_err(|m| file_error(&sidecar, m))?;

    let config_text = match std::fs::read_to_string(&config_file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(file_error(&config_file, e.to_string())),
    };
    let mut doc: DocumentMut = config_text
        .parse()
        .map_err(|e: toml_edit::TomlError| file_error(&config_file, e.to_string()))?;
    let mut next = last_position(doc.as_table()) + 1;
    renumber(&mut section, &mut next);
    let shown = shown(name, &section);
    let root = doc.as_table_mut();
    if !root.contains_key("plugins") {
        let mut plugins = Table::new();
        plugins.set_implicit(true);
        root.insert("plugins", Item::Table(plugins));
    }
    let Some(plugins) = root.get_mut("plugins").and_then(Item::as_table_mut) else {
        return Err(file_error(
            &config_file,
            format!(
                "`plugins` is not written as [plugins.*] sections there; add this section by hand:\n{shown}"
            ),
        ));
    };
    plugins.insert(name, Item::Table(section));
    std::fs::write(&config_file, doc.to_string())
        .map_err(|e| file_error(&config_file, e.to_string()))?;
    Ok(Approval {
        config_file,
        sidecar,
        section: shown,
    })
}

/// Rewrites every `fs.mounts[*].host` as an absolute, canonical path (in a sidecar they are
/// relative to its folder, in the config file to the config file's folder).
fn absolute_mounts(root: &mut Table, base: &Path) -> Result<(), String> {
    let Some(mounts) = root
        .get_mut("fs")
        .and_then(Item::as_table_like_mut)
        .and_then(|fs| fs.get_mut("mounts"))
    else {
        return Ok(());
    };
    let absolute = |host: &mut Value| -> Result<(), String> {
        let Some(relative) = host.as_str() else {
            return Ok(());
        };
        let path = base.join(relative);
        let path = path
            .canonicalize()
            .map_err(|e| format!("fs.mounts: {}: {e}", path.display()))?;
        let text = path
            .to_str()
            .ok_or_else(|| format!("fs.mounts: {} is not valid UTF-8", path.display()))?;
        let decor = host.decor().clone();
        *host = Value::from(text);
        *host.decor_mut() = decor;
        Ok(())
    };
    match mounts {
        Item::Value(Value::Array(array)) => {
            for mount in array.iter_mut().filter_map(Value::as_inline_table_mut) {
                if let Some(host) = mount.get_mut("host") {
                    absolute(host)?;
                }
            }
        }
        Item::ArrayOfTables(tables) => {
            for mount in tables.iter_mut() {
                if let Some(host) = mount.get_mut("host").and_then(Item::as_value_mut) {
                    absolute(host)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// The highest position of any table in the document, so new tables go after all of them.
fn last_position(table: &Table) -> isize {
    let mut last = table.position().unwrap_or(0);
    for (_, item) in table.iter() {
        match item {
            Item::Table(t) => last = last.max(last_position(t)),
            Item::ArrayOfTables(a) => {
                for t in a.iter() {
                    last = last.max(last_position(t));
                }
            }
            _ => {}
        }
    }
    last
}

/// Gives `table` and every table in it increasing positions from `next`, in order.
fn renumber(table: &mut Table, next: &mut isize) {
    table.set_position(*next);
    *next += 1;
    for (_, item) in table.iter_mut() {
        match item {
            Item::Table(t) => renumber(t, next),
            Item::ArrayOfTables(a) => {
                for t in a.iter_mut() {
                    renumber(t, next);
                }
            }
            _ => {}
        }
    }
}

/// `[plugins.NAME]` and its contents, as TOML on their own.
fn shown(name: &str, section: &Table) -> String {
    let mut doc = DocumentMut::new();
    let mut plugins = Table::new();
    plugins.set_implicit(true);
    plugins.insert(name, Item::Table(section.clone()));
    doc.as_table_mut().insert("plugins", Item::Table(plugins));
    doc.to_string()
}
