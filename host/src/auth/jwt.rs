//! JWT bearer tokens (RFC 7519, JWS compact form): the header's `alg` must be one of
//! `auth.jwt.algorithms` (never `none`, never `HS*`), its `kid` selects among the
//! configured keys only ([`Jwks`]); `crit` extensions are refused. Then the signature,
//! then the claims: `exp` required, `nbf` and `iat` honoured (with the leeway), `iss` and
//! `aud` exactly as configured (a token for another resource is refused, RFC 8707), `sub`
//! required: it is the principal. Scopes come from `scope` (space-separated) or `scp`.
//!
//! A client sends the same token with every request, and checking a signature (RSA about
//! 20 µs, ECDSA more) would cost more than the rest of a request; so a verified token is
//! remembered by its SHA-256 with the key set it was verified against, and a later request
//! with the same token only has its times checked again, as long as that key set is still
//! the one held.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Principal;
use super::algorithm::Algorithm;
use super::jwks::Jwks;
use super::keys::KeySet;
use crate::config::auth::JwtSettings;

/// Verifies JWTs as `[auth.jwt]` says.
#[derive(Debug)]
pub struct JwtVerifier {
    issuer: String,
    audience: String,
    algorithms: Vec<Algorithm>,
    leeway: Duration,
    keys: Arc<Jwks>,
    verified: Mutex<HashMap<[u8; 32], Verified>>,
}

/// The most verified tokens remembered; when full, the memory starts over.
const REMEMBERED: usize = 4096;

/// A token verified before.
#[derive(Debug)]
struct Verified {
    principal: Principal,
    exp: f64,
    nbf: Option<f64>,
    /// The key set it was verified against.
    keys: Arc<KeySet>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    crit: Option<Value>,
}

#[derive(Deserialize)]
struct Claims {
    sub: Option<Value>,
    iss: Option<Value>,
    aud: Option<Value>,
    exp: Option<Value>,
    nbf: Option<Value>,
    iat: Option<Value>,
    scope: Option<Value>,
    scp: Option<Value>,
}

impl JwtVerifier {
    /// A verifier with the keys of `settings` loaded (see [`Jwks::load`]).
    pub async fn new(settings: &JwtSettings) -> Result<Self, String> {
        Ok(Self {
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            algorithms: settings.algorithms.clone(),
            leeway: settings.leeway,
            keys: Jwks::load(&settings.keys).await?,
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// The principal of `token`, or why it is refused (no token material in it).
    pub async fn verify(&self, token: &str) -> Result<Principal, String> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(principal) = self.remembered(&digest) {
            return Ok(principal);
        }
        let keys = self.keys.current();
        let verified = self.verify_fully(token, keys).await?;
        let principal = verified.principal.clone();
        if let Ok(mut remembered) = self.verified.lock() {
            if remembered.len() >= REMEMBERED {
                remembered.clear();
            }
            remembered.insert(digest, verified);
        }
        Ok(principal)
    }

    /// The principal of a token verified before against the key set still held, if its
    /// times still hold (otherwise the full check says why not).
    fn remembered(&self, digest: &[u8; 32]) -> Option<Principal> {
        let remembered = self.verified.lock().ok()?;
        let verified = remembered.get(digest)?;
        let (now, leeway) = (now(), self.leeway.as_secs_f64());
        let current = Arc::ptr_eq(&verified.keys, &self.keys.current());
        let in_time =
            now <= verified.exp + leeway && verified.nbf.is_none_or(|nbf| now + leeway >= nbf);
        (current && in_time).then(|| verified.principal.clone())
    }

    /// Every check; `keys` is the key set held before the key was looked up.
    async fn verify_fully(&self, token: &str, keys: Arc<KeySet>) -> Result<Verified, String> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(
                "the token is neither a static token (cap_…) nor a JWT (three base64url parts)"
                    .into(),
            );
        };
        let header: Header = decode(header, "header")?;
        let alg = header
            .alg
            .parse::<Algorithm>()
            .ok()
            .filter(|alg| self.algorithms.contains(alg))
            .ok_or_else(|| {
                format!(
                    "the token's algorithm `{}` is not accepted (auth.jwt.algorithms: {})",
                    printable(&header.alg),
                    self.algorithms
                        .iter()
                        .map(Algorithm::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
        if header.crit.is_some() {
            return Err("the token's header has `crit` extensions, which are not supported".into());
        }
        let key = self
            .keys
            .key(header.kid.as_deref(), alg)
            .await
            .map_err(|no_key| {
                format!(
                    "the token's signing key is unknown: {}",
                    printable(&no_key.to_string())
                )
            })?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| "the token's signature is not base64url".to_string())?;
        let signed = &token[..token.len() - parts_len(token)];
        if !key.verify(alg, signed.as_bytes(), &signature) {
            return Err("the token's signature is not valid".into());
        }
        let claims: Claims = decode(payload, "claims")?;
        self.check(claims, keys)
    }

    fn check(&self, claims: Claims, keys: Arc<KeySet>) -> Result<Verified, String> {
        let now = now();
        let leeway = self.leeway.as_secs_f64();
        let time = |name: &str, value: &Option<Value>| -> Result<Option<f64>, String> {
            match value {
                None => Ok(None),
                Some(value) => value
                    .as_f64()
                    .map(Some)
                    .ok_or_else(|| format!("the token's `{name}` is not a number of seconds")),
            }
        };
        let exp = time("exp", &claims.exp)?
            .ok_or("the token has no expiry (`exp`), which is required")?;
        if now > exp + leeway {
            return Err("the token has expired (`exp`)".into());
        }
        let nbf = time("nbf", &claims.nbf)?;
        if let Some(nbf) = nbf
            && now + leeway < nbf
        {
            return Err("the token is not valid yet (`nbf` is in the future)".into());
        }
        if let Some(iat) = time("iat", &claims.iat)?
            && now + leeway < iat
        {
            return Err("the token was issued in the future (`iat`)".into());
        }
        match claims.iss.as_ref().and_then(Value::as_str) {
            Some(iss) if iss == self.issuer => {}
            Some(_) => return Err("the token is from another issuer (`iss`)".into()),
            None => return Err("the token has no issuer (`iss`), which is required".into()),
        }
        let for_us = match &claims.aud {
            Some(Value::String(aud)) => *aud == self.audience,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(&self.audience)),
            _ => return Err("the token has no audience (`aud`), which is required".into()),
        };
        if !for_us {
            return Err(
                "the token is for another audience (`aud`): it was not issued for this resource"
                    .into(),
            );
        }
        let name = match claims.sub {
            Some(Value::String(sub)) if !sub.is_empty() => sub,
            _ => return Err("the token has no subject (`sub`), which is required".into()),
        };
        if name.chars().any(char::is_control) {
            // It goes into logs and messages as the principal's name.
            return Err("the token's subject (`sub`) has control characters".into());
        }
        let mut scopes = Vec::new();
        for claim in [claims.scope, claims.scp].into_iter().flatten() {
            match claim {
                Value::String(text) => scopes.extend(text.split_whitespace().map(str::to_owned)),
                Value::Array(items) => {
                    scopes.extend(items.iter().filter_map(Value::as_str).map(str::to_owned))
                }
                _ => {}
            }
        }
        Ok(Verified {
            principal: Principal::new(name, scopes),
            exp,
            nbf,
            keys,
        })
    }
}

/// Seconds since the Unix epoch.
fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// The length of `.SIGNATURE` at the end of `token`.
fn parts_len(token: &str) -> usize {
    token.rfind('.').map_or(0, |dot| token.len() - dot)
}

/// A base64url JSON part of the token.
fn decode<T: serde::de::DeserializeOwned>(part: &str, what: &str) -> Result<T, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| format!("the token's {what} is not base64url"))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| format!("the token's {what} is not the JSON a JWT has"))
}

/// `text` cut to 40 printable ASCII characters (it came from the token's header).
fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(40)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::auth::KeySource;

    async fn verifier() -> (JwtVerifier, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys.json");
        let x = URL_SAFE_NO_PAD.encode([1u8; 32]);
        std::fs::write(
            &file,
            serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "x": x, "y": x}]})
                .to_string(),
        )
        .unwrap();
        let settings = JwtSettings {
            issuer: "i".into(),
            audience: "a".into(),
            keys: KeySource::File(file),
            algorithms: vec![Algorithm::ES256],
            leeway: Duration::ZERO,
        };
        (JwtVerifier::new(&settings).await.unwrap(), dir)
    }

    fn remember(verifier: &JwtVerifier, token: &str, exp: f64, keys: Arc<KeySet>) {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let principal = Principal::new("remembered", Vec::new());
        verifier.verified.lock().unwrap().insert(
            digest,
            Verified {
                principal,
                exp,
                nbf: None,
                keys,
            },
        );
    }

    #[tokio::test]
    async fn a_remembered_token_is_served_only_in_time_and_with_the_same_key_set() {
        let (verifier, _dir) = verifier().await;
        let token = "e30.e30.AAAA";
        let refused = "the token's header is not the JSON a JWT has";
        assert_eq!(verifier.verify(token).await.unwrap_err(), refused);

        remember(&verifier, token, now() + 60.0, verifier.keys.current());
        assert_eq!(
            verifier.verify(token).await.unwrap().name.as_ref(),
            "remembered"
        );

        remember(&verifier, token, now() - 1.0, verifier.keys.current());
        assert_eq!(verifier.verify(token).await.unwrap_err(), refused);

        remember(&verifier, token, now() + 60.0, Arc::new(KeySet::default()));
        assert_eq!(verifier.verify(token).await.unwrap_err(), refused);
    }
}
