//! Public keys that verify JWT signatures, read from a JWKS (RFC 7517) or from one PEM
//! `PUBLIC KEY` (SubjectPublicKeyInfo) / `RSA PUBLIC KEY` (PKCS #1), each into the form
//! `ring` verifies with: RSA as a PKCS #1 `RSAPublicKey`, EC as the uncompressed point,
//! Ed25519 as its 32 bytes. A JWK's own `alg`, `use` and `kid` are kept and respected.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::UnparsedPublicKey;
use serde::Deserialize;

use super::algorithm::{Algorithm, KeyKind};

/// One verification key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    /// Its `kid`, if it has one.
    pub kid: Option<String>,
    /// What it is.
    pub kind: KeyKind,
    /// The only algorithm it may verify, if the JWK names one.
    pub alg: Option<Algorithm>,
    bytes: Vec<u8>,
}

impl VerifyingKey {
    /// Whether this key may verify a signature made with `alg`.
    pub fn fits(&self, alg: Algorithm) -> bool {
        self.kind == alg.key_kind() && self.alg.is_none_or(|own| own == alg)
    }

    /// Whether `signature` over `message` is valid under `alg` with this key.
    pub fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        self.fits(alg)
            && UnparsedPublicKey::new(alg.ring(), &self.bytes)
                .verify(message, signature)
                .is_ok()
    }
}

/// The keys of a JWKS document or key file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySet {
    /// The usable keys, in document order.
    pub keys: Vec<VerifyingKey>,
    /// Keys left out and why (e.g. `use: enc`, an unsupported `kty`), for the log.
    pub skipped: Vec<String>,
}

impl KeySet {
    /// A JWKS JSON document, or a PEM public key.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())?;
        if text.trim_start().starts_with("-----BEGIN") {
            return Ok(Self {
                keys: vec![pem(text)?],
                skipped: Vec::new(),
            });
        }
        #[derive(Deserialize)]
        struct Document {
            keys: Vec<serde_json::Value>,
        }
        let document: Document = serde_json::from_str(text).map_err(|e| {
            format!("not a JWKS (a JSON object with `keys`) nor a PEM public key: {e}")
        })?;
        let mut set = Self::default();
        for (index, jwk) in document.keys.iter().enumerate() {
            match self::jwk(jwk) {
                Ok(key) => set.keys.push(key),
                Err(reason) => set.skipped.push(format!("key {index}: {reason}")),
            }
        }
        Ok(set)
    }
}

/// A JWK (`kty` RSA, EC or OKP) as a verification key.
fn jwk(jwk: &serde_json::Value) -> Result<VerifyingKey, String> {
    let field = |name: &str| jwk.get(name).and_then(serde_json::Value::as_str);
    let bytes = |name: &str| -> Result<Vec<u8>, String> {
        let text = field(name).ok_or_else(|| format!("no `{name}`"))?;
        URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|_| format!("`{name}` is not base64url"))
    };
    if let Some(usage) = field("use")
        && usage != "sig"
    {
        return Err(format!("`use` is `{usage}`, not `sig`"));
    }
    let alg = field("alg").map(str::parse::<Algorithm>).transpose()?;
    let (kind, key) = match (field("kty"), field("crv")) {
        (Some("RSA"), _) => (KeyKind::Rsa, rsa_public_key(&bytes("n")?, &bytes("e")?)),
        (Some("EC"), Some(crv @ ("P-256" | "P-384"))) => {
            let (kind, size) = if crv == "P-256" {
                (KeyKind::P256, 32)
            } else {
                (KeyKind::P384, 48)
            };
            let (x, y) = (bytes("x")?, bytes("y")?);
            if x.len() != size || y.len() != size {
                return Err(format!("`x` and `y` of a {crv} key must be {size} bytes"));
            }
            (kind, [&[4u8][..], &x, &y].concat())
        }
        (Some("OKP"), Some("Ed25519")) => (KeyKind::Ed25519, bytes("x")?),
        (kty, crv) => {
            return Err(format!(
                "unsupported key type {} {}",
                kty.unwrap_or("(none)"),
                crv.unwrap_or("")
            ));
        }
    };
    Ok(VerifyingKey {
        kid: field("kid").map(str::to_owned),
        kind,
        alg,
        bytes: key,
    })
}

/// One PEM public key: `PUBLIC KEY` (SubjectPublicKeyInfo) or `RSA PUBLIC KEY` (PKCS #1).
fn pem(text: &str) -> Result<VerifyingKey, String> {
    let unsupported = || {
        "the PEM file holds no `PUBLIC KEY` or `RSA PUBLIC KEY` block (a private key or certificate does not belong here)".to_string()
    };
    let (label, body) = ["PUBLIC KEY", "RSA PUBLIC KEY"]
        .iter()
        .find_map(|label| {
            let begin = format!("-----BEGIN {label}-----");
            let end = format!("-----END {label}-----");
            let start = text.find(&begin)? + begin.len();
            let stop = start + text[start..].find(&end)?;
            Some((*label, &text[start..stop]))
        })
        .ok_or_else(unsupported)?;
    let der = STANDARD
        .decode(body.split_whitespace().collect::<String>())
        .map_err(|_| "the PEM block is not base64".to_string())?;
    let (kind, bytes) = if label == "RSA PUBLIC KEY" {
        (KeyKind::Rsa, der)
    } else {
        spki(&der)?
    };
    Ok(VerifyingKey {
        kid: None,
        kind,
        alg: None,
        bytes,
    })
}

/// The key in a DER SubjectPublicKeyInfo.
fn spki(der: &[u8]) -> Result<(KeyKind, Vec<u8>), String> {
    const RSA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
    const EC: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
    const P256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
    const P384: &[u8] = &[0x2B, 0x81, 0x04, 0x00, 0x22];
    const ED25519: &[u8] = &[0x2B, 0x65, 0x70];
    let bad = || "the PEM public key is not a valid SubjectPublicKeyInfo".to_string();
    let (info, _) = element(der, 0x30).ok_or_else(bad)?;
    let (algorithm, rest) = element(info, 0x30).ok_or_else(bad)?;
    let (bits, _) = element(rest, 0x03).ok_or_else(bad)?;
    let (oid, params) = element(algorithm, 0x06).ok_or_else(bad)?;
    let key = match bits.split_first() {
        Some((0, key)) => key.to_vec(),
        _ => return Err(bad()),
    };
    let kind = match oid {
        RSA => KeyKind::Rsa,
        ED25519 => KeyKind::Ed25519,
        EC => match element(params, 0x06) {
            Some((P256, _)) => KeyKind::P256,
            Some((P384, _)) => KeyKind::P384,
            _ => return Err("the PEM EC key is not on P-256 or P-384".into()),
        },
        _ => return Err("the PEM public key is not RSA, EC (P-256/P-384) or Ed25519".into()),
    };
    Ok((kind, key))
}

/// The content of the DER element with `tag` at the start of `der`, and what follows it.
fn element(der: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = der.split_first()?;
    if first != tag {
        return None;
    }
    let (&len, rest) = rest.split_first()?;
    let (len, rest) = if len < 0x80 {
        (usize::from(len), rest)
    } else {
        let count = usize::from(len & 0x7F);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (digits, rest) = rest.split_at(count);
        let len = digits
            .iter()
            .fold(0usize, |acc, &d| (acc << 8) | usize::from(d));
        (len, rest)
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// The DER `RSAPublicKey` (PKCS #1) of modulus `n` and exponent `e`.
fn rsa_public_key(n: &[u8], e: &[u8]) -> Vec<u8> {
    let body = [integer(n), integer(e)].concat();
    [vec![0x30], length(body.len()), body].concat()
}

/// A DER INTEGER of the unsigned big-endian `value` (minimal, positive).
fn integer(value: &[u8]) -> Vec<u8> {
    let trimmed = match value.iter().position(|&b| b != 0) {
        Some(start) => &value[start..],
        None => &[0][..],
    };
    let pad = trimmed[0] & 0x80 != 0;
    let len = trimmed.len() + usize::from(pad);
    let mut out = vec![0x02];
    out.extend(length(len));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(trimmed);
    out
}

/// A DER length.
fn length(len: usize) -> Vec<u8> {
    if len < 0x80 {
        // Fits in one byte.
        return vec![len as u8];
    }
    let digits: Vec<u8> = len
        .to_be_bytes()
        .into_iter()
        .skip_while(|&b| b == 0)
        .collect();
    [vec![0x80 | digits.len() as u8], digits].concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

    #[test]
    fn an_ec_jwk_verifies_what_its_private_key_signed() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = pair.public_key().as_ref();
        let jwks = serde_json::json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "EC", "crv": "P-256", "kid": "a", "use": "sig",
             "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])},
            {"kty": "EC", "crv": "P-256", "kid": "enc", "use": "enc",
             "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])},
        ]});
        let set = KeySet::parse(jwks.to_string().as_bytes()).unwrap();
        assert_eq!(set.keys.len(), 1);
        assert_eq!(
            set.skipped,
            [
                "key 0: unsupported key type oct ",
                "key 2: `use` is `enc`, not `sig`"
            ]
        );
        let key = &set.keys[0];
        let signature = pair.sign(&rng, b"message").unwrap();
        assert!(key.verify(Algorithm::ES256, b"message", signature.as_ref()));
        assert!(!key.verify(Algorithm::ES256, b"other", signature.as_ref()));
        assert!(!key.verify(Algorithm::RS256, b"message", signature.as_ref()));
    }

    #[test]
    fn der_integers_and_lengths_are_minimal() {
        assert_eq!(integer(&[0, 0, 1]), [2, 1, 1]);
        assert_eq!(integer(&[0x80]), [2, 2, 0, 0x80]);
        assert_eq!(length(0x7F), [0x7F]);
        assert_eq!(length(0x100), [0x82, 1, 0]);
        assert_eq!(
            element(&[0x30, 0x82, 0, 2, 9, 9, 7], 0x30),
            Some((&[9u8, 9][..], &[7u8][..]))
        );
    }

    #[test]
    fn files_that_hold_no_public_key_are_explained() {
        assert_eq!(
            KeySet::parse(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
                .unwrap_err(),
            "the PEM file holds no `PUBLIC KEY` or `RSA PUBLIC KEY` block (a private key or certificate does not belong here)"
        );
        assert_eq!(
            KeySet::parse(b"{\"kty\": \"RSA\"}").unwrap_err(),
            "not a JWKS (a JSON object with `keys`) nor a PEM public key: missing field `keys` at line 1 column 14"
        );
    }
}
