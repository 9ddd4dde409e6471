//! Precompiled artifacts on disk, so a restart never recompiles a plugin.
//!
//! An artifact is keyed by the sha256 of the `.wasm` and the engine's precompile
//! compatibility hash (wasmtime version, target and every setting that affects code).
//! Loading one maps native code into the process, which is why this is the one module
//! allowed `unsafe`: see the safety comment on [`ArtifactCache::load_or_compile`].
#![allow(unsafe_code)]

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
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
}

impl std::fmt::Display for CacheOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CacheOutcome::Hit => "precompiled, from cache",
            CacheOutcome::Compiled => "compiled",
        })
    }
}

impl ArtifactCache {
    /// A cache in `dir` for artifacts of `engine`.
    pub fn new(dir: Option<PathBuf>, engine: &Engine) -> Self {
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = hex::encode(&hasher.0.finalize()[..8]);
        Self { dir, engine_key }
    }

    /// The artifact path for a wasm digest.
    fn artifact_path(&self, digest: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|dir| dir.join(format!("{digest}-{}.cwasm", self.engine_key)))
    }

    /// Returns the component for `wasm` (whose sha256 is `digest`), from the cache if
    /// possible, compiling and storing it otherwise. A corrupt or stale artifact is
    /// replaced, never trusted.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        wasm: &[u8],
        digest: &str,
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let path = self.artifact_path(digest);
        if let Some(path) = path.as_deref().filter(|p| p.is_file()) {
            let started = Instant::now();
            // SAFETY: `deserialize_file` requires that the file is an artifact produced by
            // `Engine::precompile_component` of a compatible engine and not modified since.
            // We only read files named by the digest of their source and our engine's
            // compatibility hash, which this module wrote itself with an atomic rename into
            // the cache directory; wasmtime additionally checks the header and engine
            // compatibility and errors (handled below by recompiling) on mismatch.
            match unsafe { Component::deserialize_file(engine, path) } {
                Ok(component) => {
                    tracing::debug!(artifact = %path.display(), elapsed = ?started.elapsed(), "loaded precompiled component");
                    return Ok((component, CacheOutcome::Hit));
                }
                Err(err) => {
                    tracing::warn!(artifact = %path.display(), "ignoring unusable precompiled artifact, recompiling: {err:#}");
                }
            }
        }
        let started = Instant::now();
        let artifact = engine.precompile_component(wasm)?;
        tracing::debug!(elapsed = ?started.elapsed(), bytes = wasm.len(), "compiled component");
        if let Some(path) = path.as_deref() {
            if let Err(err) = store(path, &artifact) {
                tracing::warn!(artifact = %path.display(), "could not write precompiled artifact (loads will recompile): {err}");
            } else {
                // SAFETY: as above; the file was just written from `precompile_component`.
                if let Ok(component) = unsafe { Component::deserialize_file(engine, path) } {
                    return Ok((component, CacheOutcome::Compiled));
                }
            }
        }
        // SAFETY: `artifact` came from `precompile_component` of this very engine.
        let component = unsafe { Component::deserialize(engine, &artifact)? };
        Ok((component, CacheOutcome::Compiled))
    }
}

/// Writes `bytes` to `path` atomically (temporary file + rename in the same directory).
fn store(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("artifact"),
        std::process::id()
    ));
    let mut file = fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, path)
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

/// The lowercase hex sha256 of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
