//! Precompiled artifacts on disk, so a restart never recompiles a plugin.
//!
//! An artifact is native code the host will run, so the cache is guarded:
//! - the folder is created `0700`, and refused if group or others can write it or another
//!   user owns it ([`CacheError`]);
//! - an artifact is named by the sha256 of its `.wasm` and the engine's precompile
//!   compatibility hash (wasmtime version, target and every setting that affects code), and
//!   a `.digests` record beside it holds that `.wasm` digest and the BLAKE3 digest of the
//!   artifact; an artifact whose bytes do not match is discarded (with a `warn` log) and
//!   recompiled;
//! - both are written to temporary files unique to the process and the store, then renamed
//!   into place (artifact first), so concurrent loads (in one host or several) never load a
//!   partial file.
//!
//! The artifact is checked by hashing its mapped bytes and then mapped by wasmtime
//! (`deserialize_file`), which keeps the page cache shared and loads a 50 MB artifact in
//! milliseconds instead of copying it twice. BLAKE3 rather than sha256 because the check
//! runs before every load: it hashes the 45 MB artifact of a Python plugin in about 5 ms
//! (on both cores) where sha256 took 31 ms (BENCHMARKS.md, "Hot reload"). Between the check and the
//! mapping only the folder's owner can change the file, and that user can change the host
//! itself.
//!
//! Artifacts of an earlier format (`-v1.cwasm`, with a `.sha256` record) are never loaded;
//! `capsule cache gc` removes them.
//!
//! Loading one maps native code into the process, which is why this is the one module
//! allowed `unsafe`: see the safety comments in [`ArtifactCache::load`] and [`ArtifactCache::compile`].
#![allow(unsafe_code)]

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where precompiled components live; `None` disables caching (every load compiles).
#[derive(Debug, Clone)]
pub struct ArtifactCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

/// Whether a load came from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded a precompiled artifact.
    Hit,
    /// Compiled, and stored the artifact for next time (if the cache is enabled).
    Compiled,
    /// Compiled by the baseline compiler for the quick tier (`runtime.compiler =
    /// "tiered"`); the optimized code is compiled, and cached, in the background.
    Quick,
}

impl std::fmt::Display for CacheOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CacheOutcome::Hit => "precompiled, from cache",
            CacheOutcome::Compiled => "compiled",
            CacheOutcome::Quick => "compiled quickly, optimizing in the background",
        })
    }
}

/// How to fix an unsafe cache folder, appended to every [`CacheError`].
const CHOOSE_ANOTHER: &str = "or choose another folder with cache-dir / --cache-dir / CAPSULE_CACHE_DIR (or run with --no-cache)";

/// The cache folder cannot be used safely.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// It could not be created or inspected.
    #[error("cannot use cache folder {}: {reason}; create it with mode 700 {CHOOSE_ANOTHER}", path.display())]
    Open {
        /// The folder.
        path: PathBuf,
        /// Why.
        reason: std::io::Error,
    },
    /// Group or others may write it.
    #[error(
        "cache folder {} is writable by {who} (mode {mode:03o}): precompiled plugins are native code the host runs, so only its owner may write there; run `chmod 700 {}` {CHOOSE_ANOTHER}",
        path.display(),
        path.display()
    )]
    Writable {
        /// The folder.
        path: PathBuf,
        /// `group`, `others` or `group and others`.
        who: &'static str,
        /// Its permission bits.
        mode: u32,
    },
    /// Another user owns it.
    #[error(
        "cache folder {} is owned by uid {owner}, not by this user (uid {uid}): precompiled plugins are native code the host runs, so only its owner may write there; {}",
        path.display(),
        CHOOSE_ANOTHER.trim_start_matches("or ")
    )]
    Owner {
        /// The folder.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// This process's effective uid.
        uid: u32,
    },
}

/// How the names of this format's artifacts end (after `WASMDIGEST-ENGINEKEY`); older
/// formats' artifacts are never loaded.
pub const FORMAT: &str = "-v2.cwasm";

/// Makes temporary file names unique within the process (the pid makes them unique across).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl ArtifactCache {
    /// A cache in `dir` for artifacts of `engine`. The folder is created (mode `0700`) if
    /// needed and refused if it is not safe to run code from (see [`CacheError`]).
    pub fn new(dir: Option<PathBuf>, engine: &Engine) -> Result<Self, CacheError> {
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = hex::encode(&hasher.0.finalize()[..8]);
        let dir = dir.map(|dir| open_dir(&dir)).transpose()?;
        Ok(Self { dir, engine_key })
    }

    /// The cache folder; `None` when caching is off.
    pub(super) fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The artifact path for a wasm digest.
    pub(super) fn artifact_path(&self, digest: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|dir| dir.join(format!("{digest}-{}{FORMAT}", self.engine_key)))
    }

    /// The component of the `.wasm` whose sha256 is `digest`, from its precompiled
    /// artifact, if there is a usable one. An artifact whose header does not match
    /// (corrupt, tampered with, or not ours) is never run: `None`, and the next
    /// [`ArtifactCache::compile`] replaces it.
    pub fn load(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let path = self.artifact_path(digest)?;
        let verifying = Instant::now();
        if !verified(&path, digest) {
            return None;
        }
        let verified = verifying.elapsed();
        let started = Instant::now();
        // SAFETY: `deserialize_file` requires a file produced by `precompile_component`
        // of a compatible engine and not modified since. This module wrote it from
        // `precompile_component` and recorded its BLAKE3 digest, which its bytes were just
        // checked against, in a folder only this user may write (so nobody else can
        // change it between the check and the mapping), under a name that carries the
        // `.wasm` digest and our engine's compatibility hash; wasmtime also checks its own
        // header and the engine settings and errors (handled below by recompiling).
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => {
                // "Last used", for `capsule cache gc`.
                crate::distribution::store::touch(&digest_path(&path));
                tracing::debug!(artifact = %path.display(), verified = ?verified, elapsed = ?started.elapsed(), "loaded precompiled component");
                Some(component)
            }
            Err(err) => {
                tracing::warn!(artifact = %path.display(), "ignoring unusable precompiled artifact, recompiling: {err:#}");
                None
            }
        }
    }

    /// Compiles `wasm` (whose sha256 is `digest`) for `engine` and stores the artifact for
    /// next time (if the cache is enabled; a failure to store is logged, not returned).
    pub fn compile(
        &self,
        engine: &Engine,
        wasm: &[u8],
        digest: &str,
    ) -> wasmtime::Result<Component> {
        let started = Instant::now();
        let artifact = super::compile_threads::run(|| engine.precompile_component(wasm))?;
        let memo = super::function_memo::FunctionMemo::shared();
        tracing::debug!(elapsed = ?started.elapsed(), bytes = wasm.len(), memo_functions = memo.size().0, memo_reused = memo.reused(), "compiled component");
        if let Some(path) = self.artifact_path(digest).as_deref()
            && let Err(err) = store(path, digest, &artifact)
        {
            tracing::warn!(artifact = %path.display(), "could not write precompiled artifact (loads will recompile): {err}");
        }
        // SAFETY: `artifact` came from `precompile_component` of this very engine.
        unsafe { Component::deserialize(engine, &artifact) }
    }
}

/// Creates `dir` (mode `0700`) if needed and checks that only this user can write it.
/// Returns its canonical path, so a symlink swapped later is never followed.
fn open_dir(dir: &Path) -> Result<PathBuf, CacheError> {
    let open = |reason| CacheError::Open {
        path: dir.to_path_buf(),
        reason,
    };
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(open)?;
    let dir = dir.canonicalize().map_err(open)?;
    let meta = fs::metadata(&dir).map_err(open)?;
    if !meta.is_dir() {
        return Err(open(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "not a folder",
        )));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let mode = meta.mode() & 0o777;
        let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
            (true, true) => Some("group and others"),
            (true, false) => Some("group"),
            (false, true) => Some("others"),
            (false, false) => None,
        };
        if let Some(who) = who {
            return Err(CacheError::Writable {
                path: dir,
                who,
                mode,
            });
        }
        let uid = rustix::process::geteuid().as_raw();
        if meta.uid() != uid {
            return Err(CacheError::Owner {
                path: dir,
                owner: meta.uid(),
                uid,
            });
        }
    }
    Ok(dir)
}

/// Where the digests of the artifact at `path` are recorded (`NAME.cwasm.digests`).
pub fn digest_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".digests");
    path.with_file_name(name)
}

/// What the record of an artifact says: `artifact-blake3 HEX` and `wasm HEX` (its
/// `.wasm`'s sha256) lines.
fn record(artifact: &blake3::Hash, wasm_digest: &str) -> String {
    format!(
        "artifact-blake3 {}\nwasm {wasm_digest}\n",
        artifact.to_hex()
    )
}

/// Whether the artifact at `path` is the one recorded beside it, made from the `.wasm`
/// whose sha256 is `digest`. A missing artifact or record is a plain miss (it may be
/// being written); a mismatch is logged at `warn` and the artifact is recompiled.
fn verified(path: &Path, digest: &str) -> bool {
    let Ok(recorded) = fs::read_to_string(digest_path(path)) else {
        return false;
    };
    let actual = match blake3_of_file(path) {
        Ok(actual) => actual,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return false,
        Err(err) => {
            tracing::warn!(artifact = %path.display(), "cannot read precompiled artifact, recompiling: {err}");
            return false;
        }
    };
    let problem = if recorded.lines().nth(1) != Some(&format!("wasm {digest}")) {
        Some("it records another .wasm digest")
    } else if recorded != record(&actual, digest) {
        Some("the digest of its bytes does not match the recorded one (corrupt or tampered with)")
    } else {
        None
    };
    if let Some(why) = problem {
        tracing::warn!(artifact = %path.display(), "discarding precompiled artifact: {why}; recompiling");
        return false;
    }
    true
}

/// Artifacts at least this big are hashed from a mapping on every core; smaller ones are
/// read on this thread. Many small plugins load at once at start, and mapping, unmapping
/// and rayon's hand-offs cost each of them milliseconds there (1–8 ms for a 400 KB
/// artifact among 50 loading together, against 0.2–0.5 ms read).
const PARALLEL_HASH_FROM: u64 = 8 << 20;

/// The BLAKE3 digest of a file: a big one hashed from a read-only mapping (no copy) on
/// every core (rayon's pool, which the compiler uses too), a small one read.
fn blake3_of_file(path: &Path) -> std::io::Result<blake3::Hash> {
    let mut file = fs::File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    if file.metadata()?.len() >= PARALLEL_HASH_FROM {
        hasher.update_mmap_rayon(path)?;
    } else {
        hasher.update_reader(&mut file)?;
    }
    Ok(hasher.finalize())
}

/// Writes `code` to `path` and its record beside it, each through a temporary file unique
/// to this process and call and a rename in the same folder; the artifact goes first, so a
/// record never names bytes that are not in place yet.
fn store(path: &Path, digest: &str, code: &[u8]) -> std::io::Result<()> {
    write_atomically(path, code, true)?;
    write_atomically(
        &digest_path(path),
        record(&blake3::hash(code), digest).as_bytes(),
        true,
    )
}

/// Writes `bytes` to a new temporary file beside `path`, then renames it to `path`;
/// `durable`: synced to disk before the rename (artifacts; a lost record of a remembered
/// list or digest only costs a start the work it saves).
pub(super) fn write_atomically(path: &Path, bytes: &[u8], durable: bool) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}-{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("artifact"),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(bytes)?;
        if durable {
            file.sync_all()?;
        }
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// Feeds `Hash` output into sha256, so the key is stable across Rust versions.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(bytes: &[u8]) -> String {
        crate::distribution::digest::Digest::of(bytes)
            .hex()
            .to_string()
    }

    #[test]
    fn artifacts_round_trip_and_any_flipped_byte_is_caught() {
        let dir = std::env::temp_dir().join(format!("capsule-cache-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let dir = open_dir(&dir).unwrap();
        let path = dir.join("a.cwasm");
        let wasm_digest = digest(b"wasm");
        assert!(!verified(&path, &wasm_digest), "nothing stored yet");
        store(&path, &wasm_digest, b"native code").unwrap();
        assert!(verified(&path, &wasm_digest));
        assert!(!verified(&path, &digest(b"other")), "another wasm");
        for at in [0, 5, 10] {
            let mut bytes = b"native code".to_vec();
            bytes[at] ^= 0x40;
            fs::write(&path, bytes).unwrap();
            assert!(!verified(&path, &wasm_digest), "flipped byte {at}");
        }
        store(&path, &wasm_digest, b"native code").unwrap();
        fs::write(
            digest_path(&path),
            record(&blake3::Hash::from_bytes([0; 32]), &wasm_digest),
        )
        .unwrap();
        assert!(!verified(&path, &wasm_digest), "a changed record");
        let mut names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["a.cwasm", "a.cwasm.digests"],
            "no temporary files are left"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn new_folders_are_private_and_shared_ones_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let parent =
            std::env::temp_dir().join(format!("capsule-cache-perm-{}", std::process::id()));
        let _ = fs::remove_dir_all(&parent);
        let dir = open_dir(&parent.join("cache")).unwrap();
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o775)).unwrap();
        assert_eq!(
            open_dir(&dir).unwrap_err().to_string(),
            format!(
                "cache folder {0} is writable by group (mode 775): precompiled plugins are native code the host runs, so only its owner may write there; run `chmod 700 {0}` or choose another folder with cache-dir / --cache-dir / CAPSULE_CACHE_DIR (or run with --no-cache)",
                dir.display()
            )
        );
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o757)).unwrap();
        assert!(
            open_dir(&dir)
                .unwrap_err()
                .to_string()
                .contains("writable by others (mode 757)")
        );
        fs::remove_dir_all(&parent).unwrap();
    }
}
