//! Files: host folders mounted into the plugin at guest paths, read-only or read-write.
//! Mounts are WASI preopens backed by `cap-std`, so `..` and symlinks cannot leave them.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// `[plugins.NAME.fs]` as written.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawFs {
    /// The folders to mount.
    #[serde(default)]
    pub mounts: Vec<RawMount>,
}

/// One mount as written: `{ host = "./docs", guest = "/docs", mode = "read-only" }`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawMount {
    /// Folder on the host, relative to the config file.
    pub host: PathBuf,
    /// Where the plugin sees it: an absolute path such as `/project`.
    pub guest: String,
    /// `read-only` (the default) or `read-write`.
    #[serde(default)]
    pub mode: Mode,
}

/// Whether a mount may be written.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Files can be read and folders listed; nothing can be created, changed or removed.
    #[default]
    ReadOnly,
    /// Everything inside the folder can be read, created, changed and removed.
    ReadWrite,
}

/// A resolved mount: the host folder exists and is canonical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Canonical host folder.
    pub host: PathBuf,
    /// Guest path.
    pub guest: String,
    /// Whether the plugin may write.
    pub mode: Mode,
}

impl RawFs {
    /// Checks every mount; host paths are relative to `base` (the config file's folder).
    pub fn resolve(&self, base: &Path) -> Result<Vec<Mount>, String> {
        let mut mounts: Vec<Mount> = Vec::new();
        for (i, raw) in self.mounts.iter().enumerate() {
            let at = format!("mounts[{i}]");
            let host = base.join(&raw.host);
            let host = host.canonicalize().map_err(|err| {
                format!(
                    "{at}.host: {} cannot be mounted: {err}; create it or fix the path",
                    host.display()
                )
            })?;
            if !host.is_dir() {
                return Err(format!(
                    "{at}.host: {} is not a folder; mount its parent folder instead",
                    host.display()
                ));
            }
            let guest = raw.guest.trim_end_matches('/');
            let guest = if guest.is_empty() { "/" } else { guest };
            if !guest.starts_with('/') || guest.split('/').any(|part| part == ".." || part == ".") {
                return Err(format!(
                    "{at}.guest: `{}` must be an absolute path without `.` or `..`, e.g. \"/project\"",
                    raw.guest
                ));
            }
            if mounts.iter().any(|m| m.guest == guest) {
                return Err(format!(
                    "{at}.guest: `{guest}` is mounted twice; give each mount its own guest path"
                ));
            }
            mounts.push(Mount {
                host,
                guest: guest.to_string(),
                mode: raw.mode,
            });
        }
        Ok(mounts)
    }
}

/// Adds the mounts to a call's WASI context.
pub fn apply(builder: &mut WasiCtxBuilder, mounts: &[Mount]) -> wasmtime::Result<()> {
    for mount in mounts {
        let perms = match mount.mode {
            Mode::ReadOnly => FsPerms::ReadOnly,
            Mode::ReadWrite => FsPerms::ReadWrite,
        };
        builder.preopened_dir(&mount.host, &mount.guest, perms)?;
    }
    Ok(())
}

/// One line per mount for `capsule list` / logs: `/docs -> /srv/docs (read-only)`.
pub fn describe(mount: &Mount) -> String {
    let mode = match mount.mode {
        Mode::ReadOnly => "read-only",
        Mode::ReadWrite => "read-write",
    };
    format!("{} -> {} ({mode})", mount.guest, mount.host.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(host: &str, guest: &str) -> RawFs {
        RawFs {
            mounts: vec![RawMount {
                host: host.into(),
                guest: guest.into(),
                mode: Mode::ReadOnly,
            }],
        }
    }

    #[test]
    fn missing_folders_and_bad_guest_paths_are_named() {
        let base = std::env::temp_dir();
        let err = raw("no-such-folder-for-capsule", "/x")
            .resolve(&base)
            .unwrap_err();
        assert!(
            err.starts_with("mounts[0].host: ") && err.contains("cannot be mounted"),
            "{err}"
        );
        let err = raw(".", "relative").resolve(&base).unwrap_err();
        assert!(err.contains("must be an absolute path"), "{err}");
        let err = raw(".", "/a/../b").resolve(&base).unwrap_err();
        assert!(err.contains("without `.` or `..`"), "{err}");
        let ok = raw(".", "/tmp/").resolve(&base).unwrap();
        assert_eq!(ok[0].guest, "/tmp");
    }
}
