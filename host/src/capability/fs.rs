//! Files: host folders mounted into the plugin at guest paths, read-only or read-write.
//! Mounts are WASI preopens backed by `cap-std`, so `..` and symlinks cannot leave them.
//!
//! Each folder is opened once, when the policy is resolved, and every call gets that same
//! open handle: renaming the folder or replacing its path with a symlink afterwards does not
//! change what the plugin sees. A plugin may not have two mounts where one folder holds the
//! other and either is writable (through the outer one it could change what the inner one
//! shows). The symlinks a plugin may create are bounded by [`super::symlinks`].

use std::path::{Path, PathBuf};

use serde::Deserialize;
use wasmtime_wasi::filesystem::WasiFilesystemCtx;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

/// `[plugins.NAME.fs]` as written.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawFs {
    /// The folders to mount.
    #[serde(default)]
    pub mounts: Vec<RawMount>,
}

/// One mount as written: `{ host = "./docs", guest = "/docs", mode = "read-only" }`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
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
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
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

/// The resolved mounts of one plugin, each folder opened once.
#[derive(Clone, Default)]
pub struct Mounts {
    list: Vec<Mount>,
    /// The open folders as WASI preopens, shared (cloned) by every call.
    opened: WasiFilesystemCtx,
}

impl std::fmt::Debug for Mounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.list).finish()
    }
}

impl Mounts {
    /// The mounts, in the order they were written.
    pub fn iter(&self) -> std::slice::Iter<'_, Mount> {
        self.list.iter()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Gives a call's WASI context the folders opened at load (never reopened by path).
    pub fn apply(&self, ctx: &mut WasiCtx) {
        *ctx.filesystem() = self.opened.clone();
    }
}

impl RawFs {
    /// Checks every mount and opens its folder; host paths are relative to `base` (the
    /// config file's folder).
    pub fn resolve(&self, base: &Path) -> Result<Mounts, String> {
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
            let mount = Mount {
                host,
                guest: guest.to_string(),
                mode: raw.mode,
            };
            if let Some((j, other)) = mounts
                .iter()
                .enumerate()
                .find(|(_, other)| overlap(other, &mount))
            {
                return Err(overlap_error((j, other), (i, &mount)));
            }
            mounts.push(mount);
        }
        let mut builder = WasiCtxBuilder::new();
        for (i, mount) in mounts.iter().enumerate() {
            let perms = match mount.mode {
                Mode::ReadOnly => FsPerms::ReadOnly,
                Mode::ReadWrite => FsPerms::ReadWrite,
            };
            builder
                .preopened_dir(&mount.host, &mount.guest, perms)
                .map_err(|err| {
                    format!(
                        "mounts[{i}].host: {} cannot be opened: {err:#}; check its permissions",
                        mount.host.display()
                    )
                })?;
        }
        let opened = builder.build().filesystem().clone();
        Ok(Mounts {
            list: mounts,
            opened,
        })
    }
}

/// Whether one mount's folder holds the other's (or is the same) and either is writable.
fn overlap(a: &Mount, b: &Mount) -> bool {
    let nested = a.host.starts_with(&b.host) || b.host.starts_with(&a.host);
    nested && (a.mode == Mode::ReadWrite || b.mode == Mode::ReadWrite)
}

fn overlap_error(first: (usize, &Mount), second: (usize, &Mount)) -> String {
    let ((i, a), (j, b)) = (first, second);
    let (outer, inner) = if b.host.starts_with(&a.host) {
        (a, b)
    } else {
        (b, a)
    };
    let relation = if outer.host == inner.host {
        format!("both mount {}", outer.host.display())
    } else {
        format!(
            "{} is inside {}",
            inner.host.display(),
            outer.host.display()
        )
    };
    format!(
        "mounts[{i}] ({}) and mounts[{j}] ({}) overlap: {relation}, and a plugin that can write one could change what the other shows; mount only {} (its guest path reaches the inner folder too), or make both read-only",
        describe(a),
        describe(b),
        outer.host.display()
    )
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
        assert_eq!(ok.iter().next().unwrap().guest, "/tmp");
    }

    #[test]
    fn nested_or_repeated_folders_may_not_be_mounted_if_either_is_writable() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::create_dir(dir.path().join("c")).unwrap();
        let root = dir.path().canonicalize().unwrap();
        let mount = |host: &str, guest: &str, mode: Mode| RawMount {
            host: host.into(),
            guest: guest.into(),
            mode,
        };
        let resolve = |mounts: Vec<RawMount>| RawFs { mounts }.resolve(dir.path());
        let (ro, rw) = (Mode::ReadOnly, Mode::ReadWrite);
        assert!(resolve(vec![mount("a", "/a", ro), mount("a/b", "/b", ro)]).is_ok());
        assert!(resolve(vec![mount("a", "/a", rw), mount("c", "/c", rw)]).is_ok());
        assert!(resolve(vec![mount("a", "/a", ro), mount("a", "/again", ro)]).is_ok());
        let err = resolve(vec![mount("a/b", "/b", ro), mount("a", "/a", rw)]).unwrap_err();
        assert_eq!(
            err,
            format!(
                "mounts[0] (/b -> {root}/a/b (read-only)) and mounts[1] (/a -> {root}/a (read-write)) overlap: {root}/a/b is inside {root}/a, and a plugin that can write one could change what the other shows; mount only {root}/a (its guest path reaches the inner folder too), or make both read-only",
                root = root.display()
            )
        );
        let err = resolve(vec![mount("c", "/c", rw), mount("c/", "/d", ro)]).unwrap_err();
        assert!(
            err.contains(&format!("overlap: both mount {}/c,", root.display())),
            "{err}"
        );
    }
}
