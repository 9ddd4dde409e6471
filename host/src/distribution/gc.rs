//! `capsule cache ls|gc`: what the cache folder holds — precompiled artifacts
//! (`HEX-ENGINE-v2.cwasm` with their `.digests` record and `.tools` remembered tool list;
//! those of an earlier format are referenced by nothing), pulled plugins
//! (`plugins/sha256-HEX.wasm`), source records (`sources/*.json`) and the digests of plugin
//! files remembered by their stamps (`stamps/*`, used while their file exists) — which
//! plugin of the config references each, and removing what nothing references and was not used for a
//! grace period (a use sets a file's modification time).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::digest::Digest;
use super::store::{BLOBS, Record, SOURCES};
use crate::config::Settings;

/// What a cache entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// Native code compiled from a `.wasm`.
    Artifact,
    /// A `.wasm` pulled from a registry or downloaded.
    Pulled,
    /// What a source resolved to.
    Source,
    /// A plugin file's digest, remembered with its stamp (`runtime::stamps`); used while
    /// the file exists.
    Stamp,
}

impl std::fmt::Display for EntryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            EntryKind::Artifact => "artifact",
            EntryKind::Pulled => "pulled",
            EntryKind::Source => "source",
            EntryKind::Stamp => "stamp",
        })
    }
}

/// One thing in the cache.
#[derive(Debug, Clone)]
pub struct Entry {
    /// What it is.
    pub kind: EntryKind,
    /// The `.wasm` digest it is for.
    pub digest: Option<Digest>,
    /// Its files (an artifact has two).
    pub files: Vec<PathBuf>,
    /// Their size in bytes.
    pub size: u64,
    /// When it was last used (written or loaded).
    pub last_used: SystemTime,
    /// The plugins of the config that use it.
    pub referenced_by: Vec<String>,
}

/// What the config references: each `.wasm` digest and remote source, with the plugins
/// naming it.
#[derive(Debug, Default)]
pub struct References {
    digests: BTreeMap<Digest, Vec<String>>,
    sources: BTreeMap<String, Vec<String>>,
}

impl References {
    /// The digests of the plugins folder's files, the pins, and the remote sources of
    /// `settings`.
    pub fn of(settings: &Settings) -> Self {
        let mut refs = Self::default();
        if let Ok(files) = crate::loader::plugin_files(&settings.plugins_dir) {
            for path in files {
                // Hashed as a load hashes it: streamed, bounded, regular files only.
                if let Ok((digest, _)) = super::wasm::hash_file(&path) {
                    let name = path
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    refs.digests.entry(digest).or_default().push(name);
                }
            }
        }
        for (name, origin) in &settings.origins {
            let Ok(origin) = origin else { continue };
            if let Some(pin) = &origin.sha256 {
                refs.digests
                    .entry(pin.clone())
                    .or_default()
                    .push(name.clone());
            }
            if let Some(source) = &origin.source {
                refs.sources
                    .entry(source.text())
                    .or_default()
                    .push(name.clone());
            }
        }
        refs
    }

    fn digest(&self, digest: &Digest) -> Vec<String> {
        self.digests.get(digest).cloned().unwrap_or_default()
    }
}

/// Every entry of the cache folder `dir`, sorted by kind then digest.
pub fn list(dir: &Path, settings: &Settings) -> std::io::Result<Vec<Entry>> {
    let mut refs = References::of(settings);
    let mut entries = Vec::new();
    // Source records first: a referenced source references the digest it resolved to.
    for path in files_in(&dir.join(SOURCES))? {
        let record: Option<Record> = fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let (digest, referenced_by) = match &record {
            Some(record) => {
                let by = refs
                    .sources
                    .get(&record.source)
                    .cloned()
                    .unwrap_or_default();
                let digest = Digest::parse(&record.digest).ok();
                if let Some(digest) = &digest {
                    for name in &by {
                        refs.digests
                            .entry(digest.clone())
                            .or_default()
                            .push(name.clone());
                    }
                }
                (digest, by)
            }
            None => (None, Vec::new()),
        };
        entries.push(entry(EntryKind::Source, digest, vec![path], referenced_by));
    }
    for path in files_in(&dir.join(BLOBS))? {
        let digest = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("sha256-")?.strip_suffix(".wasm"))
            .and_then(|hex| Digest::parse(hex).ok());
        let by = digest.as_ref().map(|d| refs.digest(d)).unwrap_or_default();
        entries.push(entry(EntryKind::Pulled, digest, vec![path], by));
    }
    for path in files_in(dir)? {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !name.ends_with(".cwasm") {
            continue;
        }
        let digest = name
            .split('-')
            .next()
            .and_then(|hex| Digest::parse(hex).ok());
        // An artifact of an earlier format is never loaded again, whoever uses its `.wasm`.
        let by = match &digest {
            Some(digest) if name.ends_with(crate::runtime::cache::FORMAT) => refs.digest(digest),
            _ => Vec::new(),
        };
        let mut files = vec![path.clone()];
        let legacy = PathBuf::from(format!("{}.sha256", path.display()));
        for record in [
            crate::runtime::cache::digest_path(&path),
            legacy,
            crate::runtime::listing::listing_path(&path),
        ] {
            if record.is_file() {
                files.push(record);
            }
        }
        entries.push(entry(EntryKind::Artifact, digest, files, by));
    }
    for path in files_in(&dir.join(crate::runtime::stamps::STAMPS))? {
        let (digest, by) = match crate::runtime::stamps::recorded(&path) {
            Some((digest, file)) if file.is_file() => {
                (Some(digest), vec![file.display().to_string()])
            }
            Some((digest, _)) => (Some(digest), Vec::new()),
            None => (None, Vec::new()),
        };
        entries.push(entry(EntryKind::Stamp, digest, vec![path], by));
    }
    for entry in &mut entries {
        entry.referenced_by.sort();
        entry.referenced_by.dedup();
    }
    Ok(entries)
}

fn entry(
    kind: EntryKind,
    digest: Option<Digest>,
    files: Vec<PathBuf>,
    referenced_by: Vec<String>,
) -> Entry {
    let metas: Vec<fs::Metadata> = files.iter().filter_map(|f| fs::metadata(f).ok()).collect();
    Entry {
        kind,
        digest,
        size: metas.iter().map(fs::Metadata::len).sum(),
        last_used: metas
            .iter()
            .filter_map(|m| m.modified().ok())
            .max()
            .unwrap_or(SystemTime::UNIX_EPOCH),
        files,
        referenced_by,
    }
}

/// The regular files directly in `dir` (none if it does not exist), sorted.
fn files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let read = match fs::read_dir(dir) {
        Ok(read) => read,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    let mut files: Vec<PathBuf> = read
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Removes the entries of `entries` that nothing references and that were not used
/// within `grace` of `now`; returns them.
pub fn collect(
    entries: Vec<Entry>,
    grace: Duration,
    now: SystemTime,
) -> std::io::Result<Vec<Entry>> {
    let mut removed = Vec::new();
    for entry in entries {
        let idle = now.duration_since(entry.last_used).unwrap_or_default();
        if !entry.referenced_by.is_empty() || idle < grace {
            continue;
        }
        for file in &entry.files {
            match fs::remove_file(file) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        removed.push(entry);
    }
    Ok(removed)
}
