//! JWT bearer tokens (RFC 7519, JWS compact form): the header's `alg` must be one of
//! `auth.jwt.algorithms` (never `none`, never `HS*`), its `kid` selects among the
//! configured keys only ([`Jwks`]); `crit` extensions are refused. Then the signature,
//! then the claims: `exp` required, `nbf` and `iat` honoured (with the leeway), `iss` and
//! `aud` exactly as configured (a token for another resource is refused, RFC 8707), `sub`
//! required: it is the principal. Scopes come from `scope` (space-separated) or `scp`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;

use super::Principal;
use super::algorithm::Algorithm;
use super::jwks::Jwks;
use crate::config::auth::JwtSettings;

/// Verifies JWTs as `[auth.jwt]` says.
#[derive(Debug)]
pub struct JwtVerifier {
    issuer: String,
    audience: String,
    algorithms: Vec<Algorithm>,
    leeway: Duration,
    keys: Arc<Jwks>,
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
        })
    }

    /// The principal of `token`, or why it is refused (no token material in it).
    pub async fn verify(&self, token: &str) -> Result<Principal, String> {
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
        self.check(claims)
    }

    fn check(&self, claims: Claims) -> Result<Principal, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
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
        if let Some(nbf) = time("nbf", &claims.nbf)?
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
        Ok(Principal { name, scopes })
    }
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
