//! Plugins as OCI artifacts (the CNCF "Wasm OCI artifact" layout: config
//! `application/vnd.wasm.config.v0+json`, one `application/wasm` layer), pushed and pulled
//! with `oci-client`, and their cosign signatures. Every manifest and blob is checked
//! against its digest; a registry on a loopback address, or listed in
//! `[distribution] insecure-registries`, is reached over plain HTTP, any other over HTTPS.

use std::collections::BTreeMap;

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::errors::{DigestError, OciDistributionError};
use oci_client::manifest::{OCI_IMAGE_MEDIA_TYPE, OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use super::MAX_COMPONENT;
use super::blob::{Blob, Oversize};
use super::cosign::{self, PAYLOAD_MEDIA_TYPE, SIGNATURE_ANNOTATION, Signature};
use super::digest::Digest;
use super::source::is_loopback;
use crate::units::ByteSize;

/// The config media type of a Wasm OCI artifact.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The layer media type of a Wasm component.
pub const LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The older wasm-to-oci layer type, also accepted when pulling.
const LEGACY_LAYER_MEDIA_TYPE: &str = "application/vnd.wasm.content.layer.v1+wasm";
/// A cosign signature image's config type.
const SIGNATURE_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// The largest cosign signature payload pulled (one is a few hundred bytes of JSON).
const MAX_SIGNATURE_PAYLOAD: ByteSize = ByteSize::kib(64);
/// The most signatures of one manifest pulled and tried (cosign adds one per signing).
const MAX_SIGNATURES: usize = 32;

/// A registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The registry could not be reached or refused.
    #[error("{reference}: {action} failed: {message}")]
    Registry {
        /// The reference.
        reference: String,
        /// What was being done.
        action: &'static str,
        /// oci-client's message.
        message: String,
    },
    /// A blob or manifest did not have the digest it is named by.
    #[error(
        "{reference}: {what} is corrupt or tampered with: expected {expected} (named by the {by}), got {actual}; refusing it"
    )]
    Tampered {
        /// The reference.
        reference: String,
        /// `the wasm layer` or `the manifest`.
        what: &'static str,
        /// What named the digest.
        by: &'static str,
        /// The digest it should have.
        expected: String,
        /// The digest it has.
        actual: String,
    },
    /// A blob's manifest gives it a size over its bound, or the registry sent more.
    #[error("{reference}: {what} {oversize}; refusing it")]
    Oversized {
        /// The reference.
        reference: String,
        /// `the wasm layer` or `a signature payload`.
        what: &'static str,
        /// What is over.
        oversize: Oversize,
    },
    /// The whole pull took longer than `[distribution] fetch-timeout`.
    #[error(
        "{reference}: the registry did not finish sending the plugin within {} (distribution.fetch-timeout); refusing it (a registry this slow is unreachable or hostile)",
        crate::units::format_duration(*within)
    )]
    TimedOut {
        /// The reference.
        reference: String,
        /// The deadline.
        within: std::time::Duration,
    },
    /// The artifact is not a Wasm component artifact.
    #[error(
        "{reference}: not a Wasm component artifact: {message}; push it with `capsule push FILE REF`"
    )]
    NotWasm {
        /// The reference.
        reference: String,
        /// What is wrong.
        message: String,
    },
}

/// A client for the registry of `reference`: plain HTTP for loopback or listed registries.
pub fn client(reference: &Reference, insecure: &[String]) -> Client {
    crate::distribution::tls::install_provider();
    let registry = reference.resolve_registry().to_string();
    let host = registry
        .rsplit_once(':')
        .map_or(registry.as_str(), |(host, _)| host);
    let plain = is_loopback(host) || insecure.contains(&registry);
    let protocol = if plain {
        ClientProtocol::HttpsExcept(vec![registry])
    } else {
        ClientProtocol::Https
    };
    Client::new(ClientConfig {
        protocol,
        platform_resolver: None,
        connect_timeout: Some(std::time::Duration::from_secs(10)),
        read_timeout: Some(std::time::Duration::from_secs(60)),
        ..ClientConfig::default()
    })
}

/// A plugin pulled from a registry.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The `.wasm`.
    pub bytes: Vec<u8>,
    /// Its digest (the layer's).
    pub digest: Digest,
    /// The manifest as served.
    pub manifest: String,
    /// The manifest's digest.
    pub manifest_digest: Digest,
    /// Cosign signatures of the manifest (fetched only when asked for).
    pub signatures: Vec<Signature>,
}

fn registry_error(
    reference: &Reference,
    action: &'static str,
) -> impl Fn(OciDistributionError) -> OciError {
    let reference = reference.whole();
    move |err| OciError::Registry {
        reference: reference.clone(),
        action,
        message: err.to_string(),
    }
}

/// The wasm layer of `manifest` (exactly one).
pub fn wasm_layer(reference: &str, manifest: &str) -> Result<OciDescriptor, OciError> {
    let not_wasm = |message: String| OciError::NotWasm {
        reference: reference.to_string(),
        message,
    };
    let manifest: OciImageManifest = serde_json::from_str(manifest)
        .map_err(|err| not_wasm(format!("its manifest is not an OCI image manifest: {err}")))?;
    let mut layers = manifest
        .layers
        .into_iter()
        .filter(|l| l.media_type == LAYER_MEDIA_TYPE || l.media_type == LEGACY_LAYER_MEDIA_TYPE);
    match (layers.next(), layers.next()) {
        (Some(layer), None) => Ok(layer),
        (None, _) => Err(not_wasm(format!("it has no `{LAYER_MEDIA_TYPE}` layer"))),
        (Some(_), Some(_)) => Err(not_wasm(format!(
            "it has more than one `{LAYER_MEDIA_TYPE}` layer"
        ))),
    }
}

/// Pulls the plugin at `reference`, and its cosign signatures when `signatures`, within
/// `within` (`[distribution] fetch-timeout`, [`super::FETCH_TIMEOUT`] by default) of its
/// turn ([`super::FETCHES_AT_ONCE`] fetches run at once).
pub async fn pull(
    reference: &Reference,
    insecure: &[String],
    signatures: bool,
    within: std::time::Duration,
) -> Result<Pulled, OciError> {
    let _turn = super::fetch_turn().await;
    pull_within(reference, insecure, signatures, within).await
}

/// [`pull`] without waiting for a turn.
async fn pull_within(
    reference: &Reference,
    insecure: &[String],
    signatures: bool,
    within: std::time::Duration,
) -> Result<Pulled, OciError> {
    tokio::time::timeout(within, pull_unbounded(reference, insecure, signatures))
        .await
        .unwrap_or_else(|_| {
            Err(OciError::TimedOut {
                reference: reference.whole(),
                within,
            })
        })
}

/// [`pull`], however long it takes.
async fn pull_unbounded(
    reference: &Reference,
    insecure: &[String],
    signatures: bool,
) -> Result<Pulled, OciError> {
    let client = client(reference, insecure);
    let auth = RegistryAuth::Anonymous;
    let (manifest, _) = client
        .pull_manifest_raw(reference, &auth, &[OCI_IMAGE_MEDIA_TYPE])
        .await
        .map_err(registry_error(reference, "pulling the manifest"))?;
    let manifest_digest = Digest::of(&manifest);
    if let Some(named) = reference.digest()
        && named != manifest_digest.to_string()
    {
        return Err(OciError::Tampered {
            reference: reference.whole(),
            what: "the manifest",
            by: "reference",
            expected: named.to_string(),
            actual: manifest_digest.to_string(),
        });
    }
    let manifest = String::from_utf8(manifest.to_vec()).map_err(|_| OciError::NotWasm {
        reference: reference.whole(),
        message: "its manifest is not UTF-8".into(),
    })?;
    let layer = wasm_layer(&reference.whole(), &manifest)?;
    let oversized = |oversize| OciError::Oversized {
        reference: reference.whole(),
        what: "the wasm layer",
        oversize,
    };
    let mut blob = Blob::for_descriptor(&layer, MAX_COMPONENT).map_err(oversized)?;
    let pulled = client.pull_blob(reference, &layer, &mut blob).await;
    pulled.map_err(|err| match blob.cut_off(&err) {
        Some(oversize) => oversized(oversize),
        None => match err {
            OciDistributionError::DigestError(DigestError::VerificationError {
                expected,
                actual,
            }) => OciError::Tampered {
                reference: reference.whole(),
                what: "the wasm layer",
                by: "manifest",
                expected,
                actual,
            },
            other => registry_error(reference, "pulling the wasm layer")(other),
        },
    })?;
    let bytes = blob.into_bytes();
    let digest = Digest::of(&bytes);
    let signatures = if signatures {
        pull_signatures(&client, reference, &manifest_digest).await?
    } else {
        Vec::new()
    };
    Ok(Pulled {
        bytes,
        digest,
        manifest,
        manifest_digest,
        signatures,
    })
}

/// The signature image of `manifest` beside `reference`.
fn signature_reference(reference: &Reference, manifest: &Digest) -> Reference {
    Reference::with_tag(
        reference.registry().to_string(),
        reference.repository().to_string(),
        cosign::signature_tag(manifest),
    )
}

/// The cosign signatures of `manifest` (none when there is no signature image).
async fn pull_signatures(
    client: &Client,
    reference: &Reference,
    manifest: &Digest,
) -> Result<Vec<Signature>, OciError> {
    let sig_ref = signature_reference(reference, manifest);
    let auth = RegistryAuth::Anonymous;
    let text = match client
        .pull_manifest_raw(&sig_ref, &auth, &[OCI_IMAGE_MEDIA_TYPE])
        .await
    {
        Ok((text, _)) => text,
        Err(OciDistributionError::ImageManifestNotFoundError(_)) => return Ok(Vec::new()),
        Err(OciDistributionError::RegistryError { envelope, .. })
            if envelope.errors.iter().any(|e| {
                matches!(
                    e.code,
                    oci_client::errors::OciErrorCode::ManifestUnknown
                        | oci_client::errors::OciErrorCode::NameUnknown
                )
            }) =>
        {
            return Ok(Vec::new());
        }
        Err(err) => return Err(registry_error(&sig_ref, "pulling the signatures")(err)),
    };
    let manifest: OciImageManifest =
        serde_json::from_slice(&text).map_err(|err| OciError::NotWasm {
            reference: sig_ref.whole(),
            message: format!("its signature manifest is not an OCI image manifest: {err}"),
        })?;
    let mut signatures = Vec::new();
    let signed = manifest.layers.iter().filter_map(|layer| {
        let annotations = layer.annotations.as_ref()?;
        Some((layer, annotations.get(SIGNATURE_ANNOTATION)?))
    });
    for (layer, signature) in signed.take(MAX_SIGNATURES) {
        let oversized = |oversize| OciError::Oversized {
            reference: sig_ref.whole(),
            what: "a signature payload",
            oversize,
        };
        let mut blob = Blob::for_descriptor(layer, MAX_SIGNATURE_PAYLOAD).map_err(oversized)?;
        let pulled = client.pull_blob(&sig_ref, layer, &mut blob).await;
        pulled.map_err(|err| match blob.cut_off(&err) {
            Some(oversize) => oversized(oversize),
            None => registry_error(&sig_ref, "pulling a signature payload")(err),
        })?;
        signatures.push(Signature {
            payload: String::from_utf8_lossy(&blob.into_bytes()).into_owned(),
            signature: signature.clone(),
        });
    }
    Ok(signatures)
}

/// What a push published.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The manifest's digest: pin it as `oci://REF@DIGEST`.
    pub manifest_digest: Digest,
    /// The `.wasm`'s digest: pin it as `sha256`.
    pub digest: Digest,
}

/// Publishes `wasm` as a Wasm OCI artifact at `reference`.
pub async fn push(
    wasm: Vec<u8>,
    reference: &Reference,
    insecure: &[String],
) -> Result<Pushed, OciError> {
    let client = client(reference, insecure);
    let digest = Digest::of(&wasm);
    let config = serde_json::json!({
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [digest.to_string()],
    });
    let layers = [ImageLayer::new(wasm, LAYER_MEDIA_TYPE.to_string(), None)];
    let config = Config::new(
        config.to_string().into_bytes(),
        CONFIG_MEDIA_TYPE.to_string(),
        None,
    );
    let manifest_digest = push_image(&client, reference, &layers, config).await?;
    Ok(Pushed {
        manifest_digest,
        digest,
    })
}

/// Pushes layers and config, then a manifest whose digest we know.
async fn push_image(
    client: &Client,
    reference: &Reference,
    layers: &[ImageLayer],
    config: Config,
) -> Result<Digest, OciError> {
    let manifest = OciImageManifest::build(layers, &config, None);
    let body = serde_json::to_vec(&manifest).map_err(|err| OciError::NotWasm {
        reference: reference.whole(),
        message: format!("cannot write its manifest: {err}"),
    })?;
    let manifest_digest = Digest::of(&body);
    let auth = RegistryAuth::Anonymous;
    for (layer, descriptor) in layers.iter().zip(&manifest.layers) {
        client
            .push_blob(reference, layer.data.clone(), &descriptor.digest)
            .await
            .map_err(registry_error(reference, "pushing a layer"))?;
    }
    client
        .store_auth_if_needed(reference.resolve_registry(), &auth)
        .await;
    client
        .push_blob(reference, config.data.clone(), &manifest.config.digest)
        .await
        .map_err(registry_error(reference, "pushing the config"))?;
    let content_type = http::HeaderValue::from_static(OCI_IMAGE_MEDIA_TYPE);
    client
        .push_manifest_raw(reference, body, content_type)
        .await
        .map_err(registry_error(reference, "pushing the manifest"))?;
    Ok(manifest_digest)
}

/// Pushes `signature` of `manifest` as its cosign signature image beside `reference`
/// (replacing any signature image there).
pub async fn push_signature(
    reference: &Reference,
    manifest: &Digest,
    signature: &Signature,
    insecure: &[String],
) -> Result<(), OciError> {
    let client = client(reference, insecure);
    let sig_ref = signature_reference(reference, manifest);
    let payload_digest = Digest::of(signature.payload.as_bytes());
    let annotations = BTreeMap::from([(
        SIGNATURE_ANNOTATION.to_string(),
        signature.signature.clone(),
    )]);
    let layers = [ImageLayer::new(
        signature.payload.clone().into_bytes(),
        PAYLOAD_MEDIA_TYPE.to_string(),
        Some(annotations),
    )];
    let config = serde_json::json!({
        "architecture": "",
        "config": {},
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": [payload_digest.to_string()]},
    });
    let config = Config::new(
        config.to_string().into_bytes(),
        SIGNATURE_CONFIG_MEDIA_TYPE.to_string(),
        None,
    );
    push_image(&client, &sig_ref, &layers, config).await?;
    Ok(())
}

/// The digest of the manifest `reference` names now (its tag resolved).
pub async fn manifest_digest(
    reference: &Reference,
    insecure: &[String],
) -> Result<Digest, OciError> {
    let client = client(reference, insecure);
    let (manifest, _) = client
        .pull_manifest_raw(reference, &RegistryAuth::Anonymous, &[OCI_IMAGE_MEDIA_TYPE])
        .await
        .map_err(registry_error(reference, "pulling the manifest"))?;
    Ok(Digest::of(&manifest))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A registry that answers every request with a manifest it sends a byte at a time.
    async fn trickling_registry() -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut head = [0u8; 4096];
                    let _ = stream.read(&mut head).await;
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 100000\r\n\r\n")
                        .await;
                    while stream.write_all(b" ").await.is_ok() {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                });
            }
        });
        address
    }

    /// A registry that holds every request for 300 ms, then answers 404, and records the
    /// most requests it held at once.
    async fn slow_empty_registry() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let record = most.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (now, most) = (now.clone(), most.clone());
                tokio::spawn(async move {
                    let mut head = [0u8; 4096];
                    while matches!(stream.read(&mut head).await, Ok(n) if n > 0) {
                        let held = now.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(held, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        now.fetch_sub(1, Ordering::SeqCst);
                        let answered = stream
                            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                            .await;
                        if answered.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        (address, record)
    }

    /// Six plugins pulled at once: the registry never holds more than
    /// [`super::super::FETCHES_AT_ONCE`] of their requests at a time, and every pull ends
    /// with the registry's answer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pulls_take_turns() {
        let (address, most) = slow_empty_registry().await;
        let insecure = [address.to_string()];
        let pulls = (0..6).map(|i| {
            let reference: Reference = format!("{address}/tools/t{i}:1.0").parse().unwrap();
            let insecure = insecure.clone();
            tokio::spawn(async move {
                pull(
                    &reference,
                    &insecure,
                    false,
                    crate::distribution::FETCH_TIMEOUT,
                )
                .await
            })
        });
        for (i, pull) in futures::future::join_all(pulls)
            .await
            .into_iter()
            .enumerate()
        {
            assert_eq!(
                pull.unwrap().unwrap_err().to_string(),
                format!(
                    "{address}/tools/t{i}:1.0: pulling the manifest failed: Server error: url http://{address}/v2/tools/t{i}/manifests/1.0, code: 404, message: "
                )
            );
        }
        let most = most.load(Ordering::SeqCst);
        assert!(
            (1..=super::super::FETCHES_AT_ONCE).contains(&most),
            "{most} requests at once"
        );
    }

    #[tokio::test]
    async fn a_registry_that_trickles_is_cut_off_at_the_deadline() {
        let address = trickling_registry().await;
        let reference: Reference = format!("{address}/tools/slow:1.0").parse().unwrap();
        let started = Instant::now();
        // Each read gets a byte well within its own timeout; only the whole pull's ends it.
        let err = pull_within(&reference, &[], false, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{address}/tools/slow:1.0: the registry did not finish sending the plugin within 1s (distribution.fetch-timeout); refusing it (a registry this slow is unreachable or hostile)"
            )
        );
        assert!(started.elapsed() < Duration::from_secs(30));
    }
}
