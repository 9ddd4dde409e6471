//! Tool lists remembered beside a plugin's artifact, so that a start lists a plugin
//! without instantiating it (issue #19: 50 plugins listed in milliseconds, not one
//! `list-tools` instance each).
//!
//! After a plugin's `list-tools` answered (or, for a component of plain functions, its
//! WIT-derived tools were derived), its tools are written to `ARTIFACT.cwasm.tools` with a
//! *fingerprint* of everything the answer may depend on besides the code: the host's
//! build, the plugin's effective policy (limits, files, hosts, environment values,
//! config, the names of granted secrets) and the sidecar `.wit` that documents derived
//! tools, if there is one. The code itself is the artifact's `.wasm` digest, in the file's
//! name. A start whose plugin has the same
//! digest and fingerprint lists the remembered tools, then loads the code in the
//! background (a call waits for it). Anything else (another build, a changed grant, a
//! missing or unreadable file) is a miss, and the plugin is loaded and asked as before.
//!
//! What the fingerprint does not cover is documented: a `list-tools` that reads files, the
//! clock or secret values is asked again only when the plugin or its policy changes (or
//! with `--no-cache`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::bindings::{Tool, ToolAnnotations};
use super::cache::{ArtifactCache, write_atomically};
use crate::policy::PluginPolicy;

/// What the tools of a plugin may depend on besides the code: this build of the host
/// ([`HOST_BUILD`]), the plugin's effective policy (secret values are not part of it, only
/// the names of those granted) and the digest of its sidecar `.wit` (the docs of derived
/// tools: [`Sidecar`](super::derived::docs::Sidecar)), if it has one.
pub fn fingerprint(policy: &PluginPolicy, sidecar: Option<&[u8; 32]>) -> String {
    let mut described = Sha256::new();
    described.update(format!("{}\n{policy:?}", HOST_BUILD));
    if let Some(digest) = sidecar {
        described.update(b"\nsidecar\n");
        described.update(digest);
    }
    hex::encode(&described.finalize()[..16])
}

/// This build of the host: its version, and a digest of the source of its translation of
/// WIT types into tools (every file of `runtime/derived`: the functions, their schemas,
/// their docs), computed by `build.rs`. Derived tools are the host's own work, so a build
/// that translates differently (the same version between releases) must never list what
/// another build remembered. A build with the same translation keeps the lists (a
/// container image's binary is a copy, whatever its file times).
const HOST_BUILD: &str = concat!(
    "capsule ",
    env!("CARGO_PKG_VERSION"),
    " (tools derived by ",
    env!("CAPSULE_DERIVED_SOURCE"),
    ")"
);

/// Where the tools of the plugin whose artifact is at `artifact` are remembered (removed
/// with it by `capsule cache gc`).
pub fn listing_path(artifact: &Path) -> PathBuf {
    let mut name = artifact.as_os_str().to_owned();
    name.push(".tools");
    PathBuf::from(name)
}

impl ArtifactCache {
    /// Where the tools of the `.wasm` with sha256 `digest` are remembered; `None` without
    /// a cache.
    fn listing_path(&self, digest: &str) -> Option<PathBuf> {
        self.artifact_path(digest)
            .map(|artifact| listing_path(&artifact))
    }

    /// Remembers `tools` as what the plugin with `digest` listed under the policy with
    /// `fingerprint`. Best effort: a failure is logged, and the next start asks again.
    pub fn remember(&self, digest: &str, fingerprint: &str, tools: &[Tool]) {
        let Some(path) = self.listing_path(digest) else {
            return;
        };
        let listing = Listing {
            fingerprint: fingerprint.to_owned(),
            tools: tools.iter().map(Remembered::from).collect(),
        };
        let written = serde_json::to_vec(&listing)
            .map_err(std::io::Error::other)
            .and_then(|bytes| write_atomically(&path, &bytes, false));
        if let Err(err) = written {
            tracing::debug!(listing = %path.display(), "could not remember the tool list (the next start asks the plugin again): {err}");
        }
    }

    /// The tools remembered for the plugin with `digest` under the policy with
    /// `fingerprint`, if its artifact is in the cache too.
    pub fn remembered(&self, digest: &str, fingerprint: &str) -> Option<Vec<Tool>> {
        let path = self.listing_path(digest)?;
        let bytes = std::fs::read(&path).ok()?;
        let listing: Listing = serde_json::from_slice(&bytes).ok()?;
        let artifact = self.artifact_path(digest)?;
        if listing.fingerprint != fingerprint || !artifact.is_file() {
            return None;
        }
        Some(listing.tools.into_iter().map(Tool::from).collect())
    }
}

/// The file: the fingerprint and the tools.
#[derive(Serialize, Deserialize)]
struct Listing {
    fingerprint: String,
    tools: Vec<Remembered>,
}

/// One tool as remembered (the WIT record `tool`).
#[derive(Serialize, Deserialize)]
struct Remembered {
    name: String,
    title: Option<String>,
    description: String,
    input_schema: String,
    output_schema: Option<String>,
    /// read-only, destructive, idempotent, open-world.
    annotations: Option<[Option<bool>; 4]>,
}

impl From<&Tool> for Remembered {
    fn from(tool: &Tool) -> Self {
        Self {
            name: tool.name.clone(),
            title: tool.title.clone(),
            description: tool.description.clone(),
            input_schema: tool.input_schema.clone(),
            output_schema: tool.output_schema.clone(),
            annotations: tool
                .annotations
                .map(|a| [a.read_only, a.destructive, a.idempotent, a.open_world]),
        }
    }
}

impl From<Remembered> for Tool {
    fn from(tool: Remembered) -> Self {
        Self {
            name: tool.name,
            title: tool.title,
            description: tool.description,
            input_schema: tool.input_schema,
            output_schema: tool.output_schema,
            annotations: tool.annotations.map(
                |[read_only, destructive, idempotent, open_world]| ToolAnnotations {
                    read_only,
                    destructive,
                    idempotent,
                    open_world,
                },
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(annotations: Option<ToolAnnotations>) -> Tool {
        Tool {
            name: "echo".into(),
            title: Some("Echo".into()),
            description: "Says it back".into(),
            input_schema: r#"{"type":"object"}"#.into(),
            output_schema: None,
            annotations,
        }
    }

    #[test]
    fn a_remembered_list_reads_back_only_with_its_fingerprint_and_artifact() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = wasmtime::Engine::default();
        let cache = ArtifactCache::new(Some(dir.path().join("c")), &engine).expect("a cache");
        let digest = "ab".repeat(32);
        let tools = vec![
            tool(None),
            tool(Some(ToolAnnotations {
                read_only: Some(true),
                destructive: None,
                idempotent: Some(false),
                open_world: None,
            })),
        ];
        cache.remember(&digest, "f1", &tools);
        // No artifact: the list is not used (its code would have to be compiled).
        assert!(cache.remembered(&digest, "f1").is_none());
        let artifact = cache.artifact_path(&digest).expect("a path");
        std::fs::write(&artifact, b"artifact").expect("write");
        let back = cache.remembered(&digest, "f1").expect("remembered");
        assert_eq!(format!("{back:?}"), format!("{tools:?}"));
        assert!(cache.remembered(&digest, "f2").is_none(), "another policy");
        assert!(
            cache.remembered(&"cd".repeat(32), "f1").is_none(),
            "another build"
        );
    }

    #[test]
    fn no_cache_remembers_nothing() {
        let cache = ArtifactCache::new(None, &wasmtime::Engine::default()).expect("no cache");
        cache.remember("ab", "f", &[tool(None)]);
        assert!(cache.remembered("ab", "f").is_none());
    }
}
