//! One request's credentials → its [`Principal`], or the reason it is refused. The
//! provider is chosen by the token's shape: `cap_…` static tokens, anything else a JWT.

use super::Principal;
use super::jwt::JwtVerifier;
use super::static_tokens::StaticTokens;
use crate::config::auth::AuthSettings;

/// Why a request was not let through. Its `Display` is the reason given to the client
/// (`error_description`) and logged; it never contains token material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No `Authorization` header.
    #[error("no bearer token: send `Authorization: Bearer TOKEN`")]
    Missing,
    /// An `Authorization` header that is not `Bearer TOKEN`.
    #[error("the Authorization header is not `Bearer TOKEN`")]
    NotBearer,
    /// `access_token` in the URL query (it would end up in logs and browser history).
    #[error(
        "a token in the URL query (access_token) is refused: URLs end up in logs and histories; send it in the Authorization header"
    )]
    InQuery,
    /// A token that does not authenticate anyone, and why.
    #[error("{0}")]
    Invalid(String),
    /// A valid token without a scope every request needs.
    #[error("the token of `{principal}` lacks the required scope {}", .missing.join(" "))]
    InsufficientScope {
        /// Who it was.
        principal: String,
        /// The required scopes it lacks.
        missing: Vec<String>,
    },
}

/// Verifies the credentials of HTTP requests against `[auth]`.
#[derive(Debug)]
pub struct Authenticator {
    tokens: StaticTokens,
    jwt: Option<JwtVerifier>,
    required_scopes: Vec<String>,
}

impl Authenticator {
    /// The providers `settings` configure, with the JWT keys loaded (a key file that
    /// cannot be read is an error; a JWKS URL that cannot be fetched yet is logged).
    pub async fn new(settings: &AuthSettings) -> Result<Self, String> {
        let jwt = match &settings.jwt {
            Some(jwt) => Some(JwtVerifier::new(jwt).await?),
            None => None,
        };
        Ok(Self {
            tokens: StaticTokens::new(settings.tokens.clone()),
            jwt,
            required_scopes: settings.required_scopes.clone(),
        })
    }

    /// The scopes every request needs.
    pub fn required_scopes(&self) -> &[String] {
        &self.required_scopes
    }

    /// The principal of a request with this `Authorization` header and URL query.
    pub async fn authenticate(
        &self,
        authorization: Option<&[u8]>,
        query: Option<&str>,
    ) -> Result<Principal, Refusal> {
        if query.is_some_and(has_access_token) {
            return Err(Refusal::InQuery);
        }
        let token = bearer(authorization.ok_or(Refusal::Missing)?)?;
        let principal = match &self.jwt {
            _ if StaticTokens::claims(token) => self.tokens.verify(token).ok_or_else(|| {
                Refusal::Invalid("the token is not one of the configured static tokens".into())
            })?,
            Some(jwt) => jwt.verify(token).await.map_err(Refusal::Invalid)?,
            None => {
                return Err(Refusal::Invalid(
                    "the token is not a static token (cap_…) and no [auth.jwt] is configured"
                        .into(),
                ));
            }
        };
        let missing: Vec<String> = self
            .required_scopes
            .iter()
            .filter(|scope| !principal.has_scope(scope))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(Refusal::InsufficientScope {
                principal: principal.name.to_string(),
                missing,
            });
        }
        Ok(principal)
    }
}

/// The token of `Bearer TOKEN` (the scheme is case-insensitive, RFC 7235).
fn bearer(header: &[u8]) -> Result<&str, Refusal> {
    let text = std::str::from_utf8(header).map_err(|_| Refusal::NotBearer)?;
    let (scheme, token) = text.split_once(' ').ok_or(Refusal::NotBearer)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(' ') {
        return Err(Refusal::NotBearer);
    }
    Ok(token)
}

/// Whether the query has an `access_token` parameter.
fn has_access_token(query: &str) -> bool {
    query
        .split('&')
        .any(|pair| pair.split('=').next() == Some("access_token"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::static_tokens::generate;
    use crate::config::auth::TokenSettings;

    async fn authenticator(required: &[&str]) -> (Authenticator, String) {
        let (token, hash) = generate().unwrap();
        let settings = AuthSettings {
            resource: None,
            authorization_servers: vec![],
            required_scopes: required.iter().map(|s| s.to_string()).collect(),
            tokens: vec![TokenSettings {
                name: "ci".into(),
                hash,
                scopes: vec!["mcp".into()],
            }],
            jwt: None,
        };
        (Authenticator::new(&settings).await.unwrap(), token)
    }

    #[tokio::test]
    async fn bearer_headers_are_read_strictly() {
        let (auth, token) = authenticator(&[]).await;
        let header = format!("bearer {token}");
        assert_eq!(
            auth.authenticate(Some(header.as_bytes()), None)
                .await
                .unwrap()
                .name
                .as_ref(),
            "ci"
        );
        for bad in ["Basic abc", "Bearer", "Bearer a b", "Bearer "] {
            assert_eq!(
                auth.authenticate(Some(bad.as_bytes()), None).await,
                Err(Refusal::NotBearer),
                "{bad}"
            );
        }
        assert_eq!(auth.authenticate(None, None).await, Err(Refusal::Missing));
        assert_eq!(
            auth.authenticate(Some(header.as_bytes()), Some("x=1&access_token=abc"))
                .await,
            Err(Refusal::InQuery)
        );
    }

    #[tokio::test]
    async fn required_scopes_are_checked_after_the_token() {
        let (auth, token) = authenticator(&["mcp", "admin"]).await;
        let header = format!("Bearer {token}");
        let refusal = auth
            .authenticate(Some(header.as_bytes()), None)
            .await
            .unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "the token of `ci` lacks the required scope admin"
        );
    }
}
