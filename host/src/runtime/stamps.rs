//! The sha256 of each plugin file remembered with its [`Stamp`], so a start whose files
//! did not change knows their digests without reading them (issue #19: 50 plugins listed
//! in milliseconds; hashing them took 5 ms of one core, a 19 MB Python plugin 12 ms).
//!
//! `CACHE/stamps/KEY` (KEY from the file's path) holds the stamp, the digest, the file's
//! first bytes and its path (for `capsule cache gc`, which removes the records of files
//! that are gone). A file whose stamp differs (written, replaced, touched, copied,
//! extracted from a new image layer) is hashed again. `capsule serve --locked` and
//! `capsule check` always hash. The folder is inside the cache folder, which only its
//! owner may write (see [`super::cache`]).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest as _, Sha256};

use super::cache::{ArtifactCache, write_atomically};
use crate::distribution::{Digest, Stamp, Wasm};

/// The folder of the records, in the cache folder.
pub const STAMPS: &str = "stamps";

/// The digest a record at `record` remembers and the file it is about, if it can be read.
pub fn recorded(record: &Path) -> Option<(Digest, PathBuf)> {
    let text = std::fs::read_to_string(record).ok()?;
    let mut lines = text.lines().skip(1);
    let digest = Digest::parse(lines.next()?).ok()?;
    Some((digest, PathBuf::from(lines.nth(1)?)))
}

impl ArtifactCache {
    /// Where the digest of the file at `path` is remembered; `None` without a cache.
    fn stamp_path(&self, path: &Path) -> Option<PathBuf> {
        let dir = self.dir()?;
        let key = Sha256::digest(path.as_os_str().as_encoded_bytes());
        Some(dir.join(STAMPS).join(hex::encode(&key[..16])))
    }

    /// Remembers that the file of `wasm` had `digest` when it had its stamp, unless the
    /// file changed too recently for its stamp to tell ([`Stamp::settled_at`]). Best effort.
    pub fn remember_digest(&self, wasm: &Wasm, digest: &Digest) {
        self.remember_digest_at(wasm, digest, SystemTime::now());
    }

    /// [`Self::remember_digest`] as of `now`.
    fn remember_digest_at(&self, wasm: &Wasm, digest: &Digest, now: SystemTime) {
        let Wasm::File {
            path, head, stamp, ..
        } = wasm
        else {
            return;
        };
        if !stamp.settled_at(now) {
            return;
        }
        let Some(record) = self.stamp_path(path) else {
            return;
        };
        let text = format!(
            "{}\n{}\n{}\n{}\n",
            stamp.as_str(),
            digest.hex(),
            hex::encode(head),
            path.display()
        );
        let written = record
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| write_atomically(&record, text.as_bytes(), false));
        if let Err(err) = written {
            tracing::debug!(stamp = %record.display(), "could not remember a plugin's digest (the next start hashes it): {err}");
        }
    }

    /// The digest of the file at `path` and the [`Wasm::File`] to load it from, if it is
    /// remembered for the stamp the file has now.
    pub fn remembered_digest(&self, path: &Path) -> Option<(Digest, Wasm)> {
        if !cfg!(unix) {
            return None;
        }
        let record = std::fs::read_to_string(self.stamp_path(path)?).ok()?;
        let meta = std::fs::metadata(path).ok()?;
        let stamp = Stamp::of(&meta);
        let mut lines = record.lines();
        if lines.next() != Some(stamp.as_str()) {
            return None;
        }
        let digest = Digest::parse(lines.next()?).ok()?;
        let head = hex::decode(lines.next()?).ok()?;
        let wasm = Wasm::File {
            path: path.to_path_buf(),
            head,
            len: meta.len(),
            stamp,
        };
        Some((digest, wasm))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distribution::wasm::hash_file;

    #[test]
    fn a_digest_is_remembered_until_the_file_changes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = wasmtime::Engine::default();
        let cache = ArtifactCache::new(Some(dir.path().join("c")), &engine).expect("a cache");
        let path = dir.path().join("p.wasm");
        std::fs::write(&path, b"\0asm\x0d\0\x01\0 one").expect("write");
        assert!(
            cache.remembered_digest(&path).is_none(),
            "nothing remembered yet"
        );

        let (digest, wasm) = hash_file(&path).expect("hash");
        cache.remember_digest(&wasm, &digest);
        assert!(
            cache.remembered_digest(&path).is_none(),
            "a file written just now may change again within the same clock tick"
        );
        let later = SystemTime::now() + crate::distribution::wasm::SETTLED;
        cache.remember_digest_at(&wasm, &digest, later);
        let (again, wasm) = cache.remembered_digest(&path).expect("remembered");
        assert_eq!(again, digest);
        assert_eq!((wasm.head(), wasm.len()), (&b"\0asm\x0d\0\x01\0"[..], 12));

        // The same size, written again (after the next clock tick): another stamp.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&path, b"\0asm\x0d\0\x01\0 two").expect("write");
        assert!(cache.remembered_digest(&path).is_none(), "a rewritten file");
    }

    #[test]
    fn no_cache_remembers_no_digest() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache = ArtifactCache::new(None, &wasmtime::Engine::default()).expect("no cache");
        let path = dir.path().join("p.wasm");
        std::fs::write(&path, b"\0asm").expect("write");
        let (digest, wasm) = hash_file(&path).expect("hash");
        let later = SystemTime::now() + crate::distribution::wasm::SETTLED;
        cache.remember_digest_at(&wasm, &digest, later);
        assert!(cache.remembered_digest(&path).is_none());
    }
}
