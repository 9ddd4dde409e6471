//! Cosign-compatible signatures of OCI artifacts, verified with a public key (no
//! transparency log, no keyless identities). Cosign stores the signatures of the manifest
//! `sha256:D` as the image tagged `sha256-D.sig` in the same repository; each layer is a
//! "simple signing" payload (`application/vnd.dev.cosign.simplesigning.v1+json`) naming the
//! manifest digest, and its annotation `dev.cosignproject.cosign/signature` is the
//! base64 ECDSA P-256 / SHA-256 signature (ASN.1 DER) of the payload's bytes. A plugin is
//! signed when one such layer verifies with the configured key and names the digest of the
//! manifest the plugin was pulled from.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, UnparsedPublicKey,
};
use serde::{Deserialize, Serialize};

use super::digest::Digest;

/// The media type of a signature layer.
pub const PAYLOAD_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation that holds the signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The `type` of a cosign signature payload.
const PAYLOAD_TYPE: &str = "cosign container image signature";
/// The DER prefix of a P-256 SubjectPublicKeyInfo, before the 65-byte uncompressed point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The tag cosign stores the signatures of `manifest` under.
pub fn signature_tag(manifest: &Digest) -> String {
    format!("sha256-{}.sig", manifest.hex())
}

/// An ECDSA P-256 public key (`cosign.pub`, a PEM `PUBLIC KEY`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    point: Vec<u8>,
    /// `sha256:` of the key's DER, to name it in messages and the lock.
    pub fingerprint: Digest,
}

impl PublicKey {
    /// Reads a PEM `PUBLIC KEY` holding an ECDSA P-256 key.
    pub fn from_pem(text: &str) -> Result<Self, String> {
        let der = pem_body(text, "PUBLIC KEY")?;
        let point = der
            .strip_prefix(&P256_SPKI_PREFIX[..])
            .filter(|point| point.len() == 65 && point[0] == 4)
            .ok_or("not an ECDSA P-256 public key (cosign keys are; `cosign generate-key-pair` or `openssl ec -pubout` make one)")?;
        Ok(Self {
            point: point.to_vec(),
            fingerprint: Digest::of(&der),
        })
    }

    /// Whether `signature` (DER) over `payload` verifies with this key.
    pub fn verifies(&self, payload: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &self.point)
            .verify(payload, signature)
            .is_ok()
    }
}

/// The DER inside the PEM block labelled `label`.
fn pem_body(text: &str, label: &str) -> Result<Vec<u8>, String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let body = text
        .split_once(&begin)
        .and_then(|(_, rest)| rest.split_once(&end))
        .map(|(body, _)| body)
        .ok_or_else(|| format!("no `{begin}` … `{end}` block"))?;
    let joined: String = body.split_whitespace().collect();
    STANDARD
        .decode(joined)
        .map_err(|_| format!("the {label} block is not base64"))
}

/// A cosign simple-signing payload.
#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    critical: Critical,
    optional: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Critical {
    identity: Identity,
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// One signature as stored: the payload's bytes and the base64 signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The payload, exactly as signed.
    pub payload: String,
    /// Base64 ASN.1 DER ECDSA signature of `payload`.
    pub signature: String,
}

/// Why no signature verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// There is no signature at all.
    #[error(
        "not signed: the registry has no cosign signature for manifest {manifest} (tag {tag}); sign it with `capsule sign` or `cosign sign --key`, or set require-signature = false"
    )]
    Unsigned {
        /// The manifest digest.
        manifest: Digest,
        /// The tag looked for.
        tag: String,
    },
    /// Signatures exist, but none verifies with the key for this manifest.
    #[error(
        "signature does not verify: none of the {count} cosign signature(s) of manifest {manifest} verifies with public key {key} ({reasons}); sign it with the matching private key"
    )]
    Invalid {
        /// The manifest digest.
        manifest: Digest,
        /// The key's fingerprint.
        key: Digest,
        /// How many signatures were tried.
        count: usize,
        /// Why each failed.
        reasons: String,
    },
}

/// Checks that one of `signatures` signs `manifest` with `key`.
pub fn verify(
    signatures: &[Signature],
    manifest: &Digest,
    key: &PublicKey,
) -> Result<(), SignatureError> {
    if signatures.is_empty() {
        return Err(SignatureError::Unsigned {
            manifest: manifest.clone(),
            tag: signature_tag(manifest),
        });
    }
    let mut reasons = Vec::new();
    for signature in signatures {
        match verify_one(signature, manifest, key) {
            Ok(()) => return Ok(()),
            Err(reason) => reasons.push(reason),
        }
    }
    Err(SignatureError::Invalid {
        manifest: manifest.clone(),
        key: key.fingerprint.clone(),
        count: signatures.len(),
        reasons: reasons.join("; "),
    })
}

fn verify_one(signature: &Signature, manifest: &Digest, key: &PublicKey) -> Result<(), String> {
    let der = STANDARD
        .decode(signature.signature.trim())
        .map_err(|_| "signature annotation is not base64".to_string())?;
    if !key.verifies(signature.payload.as_bytes(), &der) {
        return Err("made with another key or over other bytes".into());
    }
    let payload: Payload = serde_json::from_str(&signature.payload)
        .map_err(|err| format!("payload is not a cosign simple-signing document: {err}"))?;
    if payload.critical.kind != PAYLOAD_TYPE {
        return Err(format!("payload type is `{}`", payload.critical.kind));
    }
    let signed = payload.critical.image.docker_manifest_digest;
    if signed != manifest.to_string() {
        return Err(format!("signs manifest {signed}, not this one"));
    }
    Ok(())
}

/// A signing key: an unencrypted PKCS #8 PEM `PRIVATE KEY` (ECDSA P-256).
pub struct SigningKey(EcdsaKeyPair);

impl SigningKey {
    /// Reads a PEM `PRIVATE KEY` (PKCS #8) holding an ECDSA P-256 key.
    pub fn from_pem(text: &str) -> Result<Self, String> {
        let der = pem_body(text, "PRIVATE KEY")?;
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &der, &SystemRandom::new())
            .map(Self)
            .map_err(|err| format!("not an unencrypted PKCS #8 ECDSA P-256 private key ({err}); `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` makes one"))
    }

    /// A new random key and its PKCS #8 PEM (`capsule sign --generate-key`, tests).
    pub fn generate() -> Result<(Self, String), String> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|err| format!("cannot generate a key: {err}"))?;
        let pem = pem("PRIVATE KEY", pkcs8.as_ref());
        Self::from_pem(&pem).map(|key| (key, pem))
    }

    /// The public key as PEM (`cosign.pub`).
    pub fn public_pem(&self) -> String {
        use ring::signature::KeyPair;
        let der = [&P256_SPKI_PREFIX[..], self.0.public_key().as_ref()].concat();
        pem("PUBLIC KEY", &der)
    }

    /// The cosign signature of the manifest `manifest` of `reference` (`REGISTRY/REPO`).
    pub fn sign(&self, reference: &str, manifest: &Digest) -> Result<Signature, String> {
        let payload = Payload {
            critical: Critical {
                identity: Identity {
                    docker_reference: reference.to_string(),
                },
                image: Image {
                    docker_manifest_digest: manifest.to_string(),
                },
                kind: PAYLOAD_TYPE.to_string(),
            },
            optional: None,
        };
        let payload = serde_json::to_string(&payload)
            .map_err(|err| format!("cannot write the payload: {err}"))?;
        let signature = self
            .0
            .sign(&SystemRandom::new(), payload.as_bytes())
            .map_err(|err| format!("cannot sign: {err}"))?;
        Ok(Signature {
            payload,
            signature: STANDARD.encode(signature.as_ref()),
        })
    }
}

/// `der` as a PEM block.
fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).unwrap_or_default())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_with_its_key_only_and_for_its_manifest_only() {
        let (key, _) = SigningKey::generate().expect("key");
        let public = PublicKey::from_pem(&key.public_pem()).expect("public key");
        let manifest = Digest::of(b"manifest");
        let signature = key.sign("127.0.0.1:5000/echo", &manifest).expect("signed");
        verify(std::slice::from_ref(&signature), &manifest, &public).expect("verifies");

        let other = Digest::of(b"other manifest");
        let err = verify(std::slice::from_ref(&signature), &other, &public).expect_err("other");
        assert_eq!(
            err.to_string(),
            format!(
                "signature does not verify: none of the 1 cosign signature(s) of manifest {other} verifies with public key {} (signs manifest {manifest}, not this one); sign it with the matching private key",
                public.fingerprint
            )
        );
        let (stranger, _) = SigningKey::generate().expect("key");
        let stranger = PublicKey::from_pem(&stranger.public_pem()).expect("public key");
        let err = verify(&[signature], &manifest, &stranger).expect_err("other key");
        assert_eq!(
            err.to_string(),
            format!(
                "signature does not verify: none of the 1 cosign signature(s) of manifest {manifest} verifies with public key {} (made with another key or over other bytes); sign it with the matching private key",
                stranger.fingerprint
            )
        );
        assert_eq!(
            verify(&[], &manifest, &public)
                .expect_err("unsigned")
                .to_string(),
            format!(
                "not signed: the registry has no cosign signature for manifest {manifest} (tag sha256-{}.sig); sign it with `capsule sign` or `cosign sign --key`, or set require-signature = false",
                manifest.hex()
            )
        );
    }
}
