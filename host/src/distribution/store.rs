//! Pulled plugins in the cache folder, by digest, so a restart does not fetch them again
//! and an offline start works: `plugins/sha256-HEX.wasm` (checked against its name before
//! use), and per source a record `sources/HEX.json` (HEX: the sha256 of the source text)
//! of what it resolved to: the `.wasm` digest and, for OCI, the manifest and its cosign
//! signatures, so a signature is checked again at every start with the configured key.
//! A use touches the files' modification time, which `capsule cache gc` reads as "last used".

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::cosign::Signature;
use super::digest::Digest;

/// The folder of pulled plugins under the cache folder.
pub const BLOBS: &str = "plugins";
/// The folder of source records under the cache folder.
pub const SOURCES: &str = "sources";

/// The pulled plugins of one cache folder.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// What a source resolved to when it was last fetched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Record {
    /// The source, as written in the config.
    pub source: String,
    /// `sha256:` of the `.wasm`.
    pub digest: String,
    /// OCI: the manifest's digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,
    /// OCI: the manifest, as the registry served it (its digest is checked against
    /// `manifest_digest` and its layer against `digest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    /// OCI: the cosign signatures found beside it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<Signature>,
}

impl Store {
    /// The store in `cache_dir` (its folders are created on first write).
    pub fn new(cache_dir: &Path) -> Self {
        Self {
            dir: cache_dir.to_path_buf(),
        }
    }

    /// Where the plugin of `digest` is kept.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir
            .join(BLOBS)
            .join(format!("sha256-{}.wasm", digest.hex()))
    }

    /// The kept plugin of `digest`, if it is there and its bytes still have that digest
    /// (a file that does not is removed, with a warning, and fetched again).
    pub fn read_blob(&self, digest: &Digest) -> Option<Vec<u8>> {
        let path = self.blob_path(digest);
        let bytes = fs::read(&path).ok()?;
        if Digest::of(&bytes) != *digest {
            tracing::warn!(file = %path.display(), "removing a pulled plugin whose bytes do not match its digest; fetching it again");
            let _ = fs::remove_file(&path);
            return None;
        }
        touch(&path);
        Some(bytes)
    }

    /// Keeps `bytes` (whose digest is `digest`).
    pub fn write_blob(&self, digest: &Digest, bytes: &[u8]) -> std::io::Result<PathBuf> {
        let path = self.blob_path(digest);
        write_atomically(&path, bytes)?;
        Ok(path)
    }

    fn record_path(&self, source: &str) -> PathBuf {
        self.dir
            .join(SOURCES)
            .join(format!("{}.json", Digest::of(source.as_bytes()).hex()))
    }

    /// What `source` resolved to last time, if recorded.
    pub fn record(&self, source: &str) -> Option<Record> {
        let path = self.record_path(source);
        let record: Record = serde_json::from_slice(&fs::read(&path).ok()?).ok()?;
        touch(&path);
        (record.source == source).then_some(record)
    }

    /// Records what a source resolved to.
    pub fn write_record(&self, record: &Record) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
        write_atomically(&self.record_path(&record.source), &text)
    }
}

/// Sets a file's modification time to now ("last used"); best effort.
pub fn touch(path: &Path) {
    if let Ok(file) = fs::File::options().append(true).open(path) {
        let _ = file.set_modified(std::time::SystemTime::now());
    }
}

/// Writes `path` through a temporary file in its folder (created `0700`), so a reader
/// never sees half a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let temp = dir.join(format!(
        ".{}.{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let mut file = fs::File::create(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&temp, path)
}
