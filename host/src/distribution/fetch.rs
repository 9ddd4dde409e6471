//! One plugin's bytes from its origin: the file in the plugins folder, or a remote source
//! through the cache. Every path ends in the same checks: the pinned `sha256`, and for a
//! plugin that must be signed, a cosign signature by the configured key.
//!
//! A remote plugin is read from the cache without the network when what it resolves to is
//! fixed: the reference names a manifest digest, or `sha256` pins the `.wasm` (an `https`
//! source always does). A plugin named by tag only is pulled at every start, and the last
//! recorded pull serves when the registry cannot be reached or does not finish within
//! `[distribution] fetch-timeout`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::cosign::{self, PublicKey, SignatureError};
use super::digest::{self, Digest, Mismatch};
use super::https::{self, DownloadError};
use super::oci::{self, OciError};
use super::source::{Fetched, OciSource, Origin, Source};
use super::store::{Record, Store};
use super::wasm::{self, Wasm};

/// Why a plugin's bytes could not be had, or were refused.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The file could not be read.
    #[error("{}: cannot read: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: std::io::Error,
    },
    /// The bytes are not the pinned ones.
    #[error(
        "{at}: {mismatch}; refusing to load it (update `sha256` only if you trust the new version)"
    )]
    Pin {
        /// The file or source.
        at: String,
        /// Expected and actual digests.
        mismatch: Mismatch,
    },
    /// A registry operation failed or was refused.
    #[error(transparent)]
    Oci(#[from] OciError),
    /// A download failed or was refused.
    #[error(transparent)]
    Download(#[from] DownloadError),
    /// `require-signature` and no valid signature.
    #[error("{source_text}: refused by require-signature: {error}")]
    Signature {
        /// The source.
        source_text: String,
        /// Why.
        error: SignatureError,
    },
    /// `require-signature` without a key.
    #[error(
        "{source_text}: require-signature is set but [distribution] public-key is not; set it to the PEM public key (cosign.pub) that signs your plugins"
    )]
    NoKey {
        /// The source.
        source_text: String,
    },
    /// The recorded pull is inconsistent.
    #[error(
        "{source_text}: the cached pull is inconsistent ({message}); remove it with `capsule cache gc --grace 0` and pull again"
    )]
    Cache {
        /// The source.
        source_text: String,
        /// What does not match.
        message: String,
    },
}

/// How remote plugins are fetched.
#[derive(Debug, Clone)]
pub struct Fetcher {
    /// The cache of pulled plugins; `None` (`--no-cache`) fetches at every start.
    pub store: Option<Store>,
    /// `[distribution] insecure-registries`.
    pub insecure: Vec<String>,
    /// `[distribution] public-key`.
    pub key: Option<PublicKey>,
    /// `[distribution] fetch-timeout`: the longest one fetch may take, from its turn.
    pub timeout: Duration,
}

/// Where a pin is written, for messages.
fn pin_origin(name: &str) -> String {
    format!("sha256 in [plugins.{name}]")
}

/// Reads the plugin file `path` and checks it against the pin of `origin`.
pub async fn file(name: &str, path: &Path, origin: Option<&Origin>) -> Result<Fetched, FetchError> {
    let (digest, wasm) =
        wasm::hash_file_blocking(path)
            .await
            .map_err(|reason| FetchError::Read {
                path: path.to_path_buf(),
                reason,
            })?;
    file_read(name, path, wasm, digest, origin)
}

/// [`file`] for a file already hashed into `wasm`, whose sha256 is `digest`: checked
/// against the pin of `origin`, not hashed again.
pub fn file_read(
    name: &str,
    path: &Path,
    wasm: Wasm,
    digest: Digest,
    origin: Option<&Origin>,
) -> Result<Fetched, FetchError> {
    digest::check(
        origin.and_then(|o| o.sha256.as_ref()),
        &pin_origin(name),
        &digest,
    )
    .map_err(|mismatch| FetchError::Pin {
        at: path.display().to_string(),
        mismatch,
    })?;
    Ok(Fetched {
        wasm,
        digest,
        path: path.to_path_buf(),
        source: None,
        signed_by: None,
    })
}

impl Fetcher {
    /// Fetches the remote plugin `name` from `source`, checked against `origin`.
    pub async fn remote(
        &self,
        name: &str,
        source: &Source,
        origin: &Origin,
    ) -> Result<Fetched, FetchError> {
        let text = source.text();
        let key = if origin.require_signature {
            Some(self.key.as_ref().ok_or_else(|| FetchError::NoKey {
                source_text: text.clone(),
            })?)
        } else {
            None
        };
        let (bytes, digest) = match source {
            Source::Https(url) => self.https(name, url, origin).await?,
            Source::Oci(oci) => self.oci(name, &text, oci, origin, key).await?,
        };
        Ok(Fetched {
            wasm: Wasm::Bytes(bytes),
            digest,
            path: PathBuf::from(&text),
            source: Some(text),
            signed_by: key.map(|k| k.fingerprint.to_string()),
        })
    }

    async fn https(
        &self,
        name: &str,
        url: &str,
        origin: &Origin,
    ) -> Result<(Vec<u8>, Digest), FetchError> {
        let Some(pin) = &origin.sha256 else {
            return Err(DownloadError::Failed {
                url: url.to_string(),
                message: format!("an https source needs `sha256` in [plugins.{name}]"),
            }
            .into());
        };
        if let Some(bytes) = self.store.as_ref().and_then(|s| s.read_blob(pin)) {
            return Ok((bytes, pin.clone()));
        }
        let (bytes, digest) = https::download(url, pin, &pin_origin(name), self.timeout).await?;
        self.keep(
            &bytes,
            &digest,
            Record {
                source: url.to_string(),
                digest: digest.to_string(),
                manifest_digest: None,
                manifest: None,
                signatures: Vec::new(),
            },
        );
        Ok((bytes, digest))
    }

    async fn oci(
        &self,
        name: &str,
        text: &str,
        source: &OciSource,
        origin: &Origin,
        key: Option<&PublicKey>,
    ) -> Result<(Vec<u8>, Digest), FetchError> {
        let pin = |digest: &Digest| {
            digest::check(origin.sha256.as_ref(), &pin_origin(name), digest).map_err(|mismatch| {
                FetchError::Pin {
                    at: text.to_string(),
                    mismatch,
                }
            })
        };
        let fixed = source.reference.digest().is_some() || origin.sha256.is_some();
        let recorded = self.store.as_ref().and_then(|s| s.record(text));
        if fixed && let Some(found) = self.cached(text, recorded.as_ref(), key)? {
            pin(&found.1)?;
            return Ok(found);
        }
        let pulled = oci::pull(
            &source.reference,
            &self.insecure,
            key.is_some(),
            self.timeout,
        );
        let pulled = match pulled.await {
            Ok(pulled) => pulled,
            // A registry that cannot be reached, refuses, or is too slow: the tag's last
            // recorded pull serves.
            Err(err @ (OciError::Registry { .. } | OciError::TimedOut { .. }))
                if !fixed && recorded.is_some() =>
            {
                let Some(found) = self.cached(text, recorded.as_ref(), key)? else {
                    return Err(err.into());
                };
                tracing::warn!(
                    plugin = name,
                    "{err}; serving the last pull of {text} from the cache"
                );
                pin(&found.1)?;
                return Ok(found);
            }
            Err(err) => return Err(err.into()),
        };
        pin(&pulled.digest)?;
        if let Some(key) = key {
            cosign::verify(&pulled.signatures, &pulled.manifest_digest, key).map_err(|error| {
                FetchError::Signature {
                    source_text: text.to_string(),
                    error,
                }
            })?;
        }
        self.keep(
            &pulled.bytes,
            &pulled.digest,
            Record {
                source: text.to_string(),
                digest: pulled.digest.to_string(),
                manifest_digest: Some(pulled.manifest_digest.to_string()),
                manifest: Some(pulled.manifest),
                signatures: pulled.signatures,
            },
        );
        Ok((pulled.bytes, pulled.digest))
    }

    /// The recorded pull of `text`, checked again (manifest, layer, signature), if its
    /// file is in the cache.
    fn cached(
        &self,
        text: &str,
        record: Option<&Record>,
        key: Option<&PublicKey>,
    ) -> Result<Option<(Vec<u8>, Digest)>, FetchError> {
        let (Some(store), Some(record)) = (&self.store, record) else {
            return Ok(None);
        };
        let inconsistent = |message: String| FetchError::Cache {
            source_text: text.to_string(),
            message,
        };
        let digest = Digest::parse(&record.digest).map_err(inconsistent)?;
        if let Some(key) = key {
            let (Some(manifest), Some(manifest_digest)) =
                (&record.manifest, &record.manifest_digest)
            else {
                return Ok(None);
            };
            let manifest_digest = Digest::parse(manifest_digest).map_err(inconsistent)?;
            if Digest::of(manifest.as_bytes()) != manifest_digest {
                return Err(inconsistent("the manifest does not have its digest".into()));
            }
            let layer = oci::wasm_layer(text, manifest)?;
            if layer.digest != digest.to_string() {
                return Err(inconsistent("the manifest names another wasm layer".into()));
            }
            if record.signatures.is_empty() {
                // Pulled before signatures were required: pull them now.
                return Ok(None);
            }
            cosign::verify(&record.signatures, &manifest_digest, key).map_err(|error| {
                FetchError::Signature {
                    source_text: text.to_string(),
                    error,
                }
            })?;
        }
        Ok(store.read_blob(&digest).map(|bytes| (bytes, digest)))
    }

    /// Stores a fetched plugin and its record (a failure only costs a fetch next time).
    fn keep(&self, bytes: &[u8], digest: &Digest, record: Record) {
        let Some(store) = &self.store else { return };
        let kept = store
            .write_blob(digest, bytes)
            .and_then(|_| store.write_record(&record));
        if let Err(err) = kept {
            tracing::warn!(source = %record.source, "could not keep the pulled plugin in the cache (it will be fetched again): {err}");
        }
    }
}
