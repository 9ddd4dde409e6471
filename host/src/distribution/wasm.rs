//! A plugin's `.wasm` as the loader hands it to the runtime: bytes already in memory
//! (pulled or downloaded), or a file in the plugins folder that was only streamed through
//! sha256. A file is read whole only when it must be compiled: a load from a precompiled
//! artifact needs its digest, not its bytes, and reading a 19 MB Python plugin into a new
//! buffer cost more (page faults of the fresh allocation) than hashing it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest as _, Sha256};

use super::{COMPONENT, Digest, MAX_COMPONENT};
use crate::bounded_file;

/// How long ago a file must have last changed for its stamp to identify its bytes.
pub const SETTLED: Duration = Duration::from_secs(2);

/// What tells a version of a file from another without reading it: device, inode, size,
/// and the modification and change times to the nanosecond. The change time (`ctime`) is
/// set by the kernel on every write, rename or `chmod` and cannot be set back by a user,
/// so a file with the same stamp has the same bytes (the same check as git's index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    text: String,
    /// The change time, for telling a stamp too recent to trust ([`Stamp::settled_at`]).
    changed: Option<SystemTime>,
}

impl Stamp {
    /// The stamp of a file with metadata `meta`.
    #[cfg(unix)]
    pub fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        let changed = u64::try_from(meta.ctime()).ok().map(|secs| {
            let nanos = u32::try_from(meta.ctime_nsec()).unwrap_or(0);
            SystemTime::UNIX_EPOCH + Duration::new(secs, nanos)
        });
        let text = format!(
            "{} {} {} {}.{:09} {}.{:09}",
            meta.dev(),
            meta.ino(),
            meta.len(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec()
        );
        Self { text, changed }
    }

    /// The stamp of a file with metadata `meta`: without a change time, one that never
    /// matches (every start hashes the file).
    #[cfg(not(unix))]
    pub fn of(meta: &std::fs::Metadata) -> Self {
        let text = format!("{} {:?} unverifiable", meta.len(), meta.modified().ok());
        Self {
            text,
            changed: None,
        }
    }

    /// The stamp as text (one line).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the file last changed at least [`SETTLED`] before `now`. The kernel
    /// timestamps writes with a coarse clock (a few milliseconds), so a file written twice
    /// within one tick, at the same size, keeps its stamp; one that has not changed for
    /// longer than that can only change to a later stamp (git's "racy" entries).
    pub fn settled_at(&self, now: SystemTime) -> bool {
        self.changed
            .and_then(|changed| now.duration_since(changed).ok())
            .is_some_and(|age| age >= SETTLED)
    }
}

/// How much of a file is hashed at a time: one buffer, reused.
const CHUNK: usize = 1 << 20;

/// The bytes a component starts with that tell a component from a core module.
const HEAD: usize = 8;

/// A plugin's `.wasm`.
#[derive(Debug, Clone)]
pub enum Wasm {
    /// The bytes, in memory.
    Bytes(Vec<u8>),
    /// A file whose sha256 was taken by [`hash_file`].
    File {
        /// The file.
        path: PathBuf,
        /// Its first bytes (at most 8).
        head: Vec<u8>,
        /// Its size when it was hashed.
        len: u64,
        /// Its stamp just before it was hashed.
        stamp: Stamp,
    },
}

impl Wasm {
    /// The first bytes (at most 8), for telling a component from other files.
    pub fn head(&self) -> &[u8] {
        match self {
            Wasm::Bytes(bytes) => &bytes[..bytes.len().min(HEAD)],
            Wasm::File { head, .. } => head,
        }
    }

    /// The size in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Wasm::Bytes(bytes) => bytes.len() as u64,
            Wasm::File { len, .. } => *len,
        }
    }

    /// Whether there are no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, read from the file if they are not in memory (at most one byte more than
    /// was hashed). A file whose sha256 is no longer `digest` (written again since it was
    /// hashed) is an error: its new version is loaded by the change that wrote it.
    pub fn into_bytes(self, digest: &str) -> std::io::Result<Vec<u8>> {
        match self {
            Wasm::Bytes(bytes) => Ok(bytes),
            Wasm::File { path, len, .. } => {
                // One byte more than was hashed shows a file that grew: its digest differs.
                let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
                bounded_file::open_regular(&path)?
                    .0
                    .take(len + 1)
                    .read_to_end(&mut bytes)?;
                if Digest::of(&bytes).hex() != digest {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "{} changed while it was loading (sha256 {} when examined); its new version loads on the next change",
                            path.display(),
                            digest.get(..12).unwrap_or(digest)
                        ),
                    ));
                }
                Ok(bytes)
            }
        }
    }
}

/// [`hash_file`] on a blocking thread, for async callers.
pub async fn hash_file_blocking(path: &Path) -> std::io::Result<(Digest, Wasm)> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || hash_file(&path))
        .await
        .map_err(std::io::Error::other)?
}

/// Streams the file at `path` through sha256, one reused buffer at a time: its digest and
/// the [`Wasm::File`] to load it from. A file larger than [`MAX_COMPONENT`] (or that grows
/// past it while it is hashed) is refused with [`bounded_file::too_large`].
pub fn hash_file(path: &Path) -> std::io::Result<(Digest, Wasm)> {
    // The metadata is taken at the open, first: a write while hashing changes it, so the
    // digest is never remembered for a version it was not taken of.
    let (file, meta) = bounded_file::open_regular(path)?;
    let mut hasher = Sha256::new();
    if meta.len() > MAX_COMPONENT.0 {
        return Err(bounded_file::too_large(
            meta.len(),
            MAX_COMPONENT,
            COMPONENT,
        ));
    }
    let mut file = file.take(MAX_COMPONENT.0 + 1);
    let stamp = Stamp::of(&meta);
    // No bigger than the file (plus one byte, to see its end in one read if it is small).
    let size = meta.len() + 1;
    let mut buf = vec![0u8; usize::try_from(size).unwrap_or(CHUNK).min(CHUNK)];
    let mut head = Vec::with_capacity(HEAD);
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if head.len() < HEAD {
            let more = (HEAD - head.len()).min(n);
            head.extend_from_slice(&buf[..more]);
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    if len > MAX_COMPONENT.0 {
        return Err(bounded_file::too_large(len, MAX_COMPONENT, COMPONENT));
    }
    let digest = Digest::from_sha256(hasher.finalize().into());
    let path = path.to_path_buf();
    Ok((
        digest,
        Wasm::File {
            path,
            head,
            len,
            stamp,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_file_has_the_digest_of_its_bytes_and_reads_back_only_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.wasm");
        let bytes: Vec<u8> = (0..CHUNK * 2 + 5).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let (digest, wasm) = hash_file(&path).unwrap();
        assert_eq!(digest, Digest::of(&bytes));
        assert_eq!((wasm.head(), wasm.len()), (&bytes[..8], bytes.len() as u64));
        assert_eq!(wasm.into_bytes(digest.hex()).unwrap(), bytes);

        let (digest, wasm) = hash_file(&path).unwrap();
        std::fs::write(&path, b"\0asm another").unwrap();
        let err = wasm.into_bytes(digest.hex()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} changed while it was loading (sha256 {} when examined); its new version loads on the next change",
                path.display(),
                &digest.hex()[..12]
            )
        );

        std::fs::write(&path, b"\0a").unwrap();
        let (_, short) = hash_file(&path).unwrap();
        assert_eq!(short.head(), b"\0a", "a short file has a short head");
    }
}
