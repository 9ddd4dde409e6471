//! `[auth]`: who may call over HTTP. Named static bearer tokens (stored as salted hashes)
//! and JWTs verified against a JWKS URL or a key file; the resource's identifier and
//! authorization servers for the RFC 9728 metadata; scopes every request needs. stdio
//! ignores it (the local user owns the process). See `docs/auth.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::auth::TokenHash;
use crate::auth::algorithm::Algorithm;
use crate::bounds;
use crate::units::deserialize_duration;

/// `[auth]` as written.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawAuth {
    /// The resource identifier clients and tokens name (RFC 8707/9728), e.g. `https://mcp.example.com/mcp`. Default: `http://` + the listen address + `server.path`.
    pub resource: Option<String>,
    /// The OAuth authorization servers that issue tokens for this resource (listed in the protected resource metadata).
    pub authorization_servers: Option<Vec<String>>,
    /// Scopes every request needs; a valid token without one of them gets 403 `insufficient_scope`.
    pub required_scopes: Option<Vec<String>>,
    /// Static bearer tokens by name (the principal's name); add one with `capsule auth add-token NAME`.
    #[serde(default)]
    pub tokens: BTreeMap<String, RawToken>,
    /// JWT bearer tokens, verified with public keys.
    pub jwt: Option<RawJwt>,
}

/// `[auth.tokens.NAME]` as written.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawToken {
    /// The token's salted hash, `sha256:SALT_HEX:HASH_HEX`, as `capsule auth add-token` writes it (never the token).
    #[schemars(extend("x-secret" = true))]
    pub hash: Option<String>,
    /// The scopes the token grants.
    pub scopes: Option<Vec<String>>,
}

/// `[auth.jwt]` as written.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawJwt {
    /// The `iss` every token must carry (required).
    pub issuer: Option<String>,
    /// The `aud` every token must carry, usually the resource identifier (required; a token for another resource is refused).
    pub audience: Option<String>,
    /// Where the signing keys are published (JWKS, `https://`; `http://` only to a loopback address). Fetched at start, again for an unknown `kid` (at most once a second) and every 5 minutes.
    pub jwks_url: Option<String>,
    /// A file of public keys instead of `jwks-url`: a JWKS (JSON) or one PEM `PUBLIC KEY`. Relative to the config file.
    #[schemars(extend("x-path" = true))]
    pub key_file: Option<PathBuf>,
    /// The signature algorithms accepted: RS256/384/512, PS256/384/512, ES256/384, EdDSA. Shared-secret (HS*) and `none` are never accepted.
    #[schemars(extend("default" = ["RS256", "ES256"]))]
    pub algorithms: Option<Vec<String>>,
    /// Clock skew allowed when checking `exp`, `nbf` and `iat` (0s to 60s).
    #[serde(default, deserialize_with = "deserialize_duration")]
    #[schemars(with = "Option<crate::units::DurationText>", extend("default" = "30s"))]
    pub leeway: Option<Duration>,
}

/// `[auth]`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// The resource identifier; `None`: derived from the listen address and path.
    pub resource: Option<String>,
    /// The authorization servers named in the metadata.
    pub authorization_servers: Vec<String>,
    /// Scopes every request needs.
    pub required_scopes: Vec<String>,
    /// Static tokens, in name order.
    pub tokens: Vec<TokenSettings>,
    /// JWT verification, if configured.
    pub jwt: Option<JwtSettings>,
}

/// One static token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSettings {
    /// Its name: the principal.
    pub name: String,
    /// Its salted hash.
    pub hash: TokenHash,
    /// What it grants.
    pub scopes: Vec<String>,
}

/// `[auth.jwt]`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSettings {
    /// The required `iss`.
    pub issuer: String,
    /// The required `aud`.
    pub audience: String,
    /// Where the keys come from.
    pub keys: KeySource,
    /// The accepted algorithms (all asymmetric).
    pub algorithms: Vec<Algorithm>,
    /// Clock skew allowed.
    pub leeway: Duration,
}

/// Where JWT verification keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A JWKS URL, fetched and cached.
    Url(http::Uri),
    /// A local file (JWKS JSON or PEM), read once at start.
    File(PathBuf),
}

/// `auth.jwt.leeway`: default and range.
const LEEWAY_DEFAULT: Duration = Duration::from_secs(30);

impl RawAuth {
    /// Checks every value; `base` is the config file's folder. The error is the key and
    /// what to write instead.
    pub fn resolve(self, base: &Path) -> Result<AuthSettings, (String, String)> {
        if self.tokens.is_empty() && self.jwt.is_none() {
            return Err((
                "auth".into(),
                "[auth] has no way to authenticate anyone: add a static token with `capsule auth add-token NAME --scopes …` or an [auth.jwt] section (issuer, audience, jwks-url)".into(),
            ));
        }
        if let Some(resource) = &self.resource {
            check_url("auth.resource", resource)?;
        }
        for server in self.authorization_servers.iter().flatten() {
            check_url("auth.authorization-servers", server)?;
        }
        let required_scopes = self.required_scopes.unwrap_or_default();
        for scope in &required_scopes {
            check_scope("auth.required-scopes", scope)?;
        }
        let mut tokens = Vec::new();
        for (name, token) in self.tokens {
            let key = |field: &str| format!("auth.tokens.{name}.{field}");
            let Some(hash) = token.hash else {
                return Err((
                    key("hash"),
                    format!(
                        "token `{name}` has no hash; create tokens with `capsule auth add-token {name} --force`, which writes it"
                    ),
                ));
            };
            let hash = hash.parse().map_err(|m| (key("hash"), m))?;
            let scopes = token.scopes.unwrap_or_default();
            for scope in &scopes {
                check_scope(&key("scopes"), scope)?;
            }
            tokens.push(TokenSettings { name, hash, scopes });
        }
        let jwt = self.jwt.map(|jwt| jwt.resolve(base)).transpose()?;
        Ok(AuthSettings {
            resource: self.resource,
            authorization_servers: self.authorization_servers.unwrap_or_default(),
            required_scopes,
            tokens,
            jwt,
        })
    }
}

impl RawJwt {
    fn resolve(self, base: &Path) -> Result<JwtSettings, (String, String)> {
        let key = |name: &str| format!("auth.jwt.{name}");
        let required = |name: &str, value: Option<String>, example: &str| {
            value.filter(|v| !v.is_empty()).ok_or_else(|| {
                (
                    key(name),
                    format!(
                        "auth.jwt.{name} is missing; a JWT is only accepted with the `{}` the server expects, write e.g. {name} = \"{example}\"",
                        if name == "issuer" { "iss" } else { "aud" }
                    ),
                )
            })
        };
        let issuer = required("issuer", self.issuer, "https://auth.example.com")?;
        let audience = required("audience", self.audience, "https://mcp.example.com/mcp")?;
        let keys = match (self.jwks_url, self.key_file) {
            (Some(url), None) => KeySource::Url(jwks_url(&url).map_err(|m| (key("jwks-url"), m))?),
            (None, Some(file)) => KeySource::File(base.join(file)),
            (Some(_), Some(_)) => {
                return Err((
                    key("jwks-url"),
                    "auth.jwt has both jwks-url and key-file; keep one".into(),
                ));
            }
            (None, None) => {
                return Err((
                    key("jwks-url"),
                    "auth.jwt needs its keys: write jwks-url = \"https://auth.example.com/.well-known/jwks.json\" or key-file = \"keys.json\"".into(),
                ));
            }
        };
        let names = self
            .algorithms
            .unwrap_or_else(|| vec!["RS256".into(), "ES256".into()]);
        if names.is_empty() {
            return Err((
                key("algorithms"),
                "auth.jwt.algorithms is empty; list what your issuer signs with, e.g. [\"RS256\"]"
                    .into(),
            ));
        }
        let mut algorithms = Vec::new();
        for name in &names {
            let algorithm: Algorithm = name.parse().map_err(|m| (key("algorithms"), m))?;
            if !algorithms.contains(&algorithm) {
                algorithms.push(algorithm);
            }
        }
        let leeway = self.leeway.unwrap_or(LEEWAY_DEFAULT);
        bounds::check_duration("auth.jwt.leeway", leeway, bounds::JWT_LEEWAY)
            .map_err(|m| (key("leeway"), m))?;
        Ok(JwtSettings {
            issuer,
            audience,
            keys,
            algorithms,
            leeway,
        })
    }
}

/// A JWKS URL: `https://`, or `http://` to a loopback address.
fn jwks_url(text: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = text.parse().map_err(|_| {
        format!(
            "`{text}` is not a URL; write e.g. \"https://auth.example.com/.well-known/jwks.json\""
        )
    })?;
    let host = uri.host().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match uri.scheme_str() {
        Some("https") if !host.is_empty() => Ok(uri),
        Some("http") if loopback => Ok(uri),
        Some("http") => Err(format!(
            "`{text}` is plain HTTP: keys fetched without TLS could be replaced on the way; use https:// (http:// is allowed only to a loopback address)"
        )),
        _ => Err(format!(
            "`{text}` is not an https:// URL; write e.g. \"https://auth.example.com/.well-known/jwks.json\""
        )),
    }
}

/// An absolute `http(s)://` URL without a fragment.
fn check_url(key: &str, text: &str) -> Result<(), (String, String)> {
    let valid = text.parse::<http::Uri>().is_ok_and(|uri| {
        matches!(uri.scheme_str(), Some("https" | "http")) && uri.host().is_some()
    }) && !text.contains('#');
    if valid {
        return Ok(());
    }
    Err((
        key.into(),
        format!(
            "`{text}` is not an absolute http(s) URL without a fragment; write e.g. \"https://mcp.example.com/mcp\""
        ),
    ))
}

/// A scope: printable ASCII without spaces, quotes or backslashes (RFC 6749 §3.3).
fn check_scope(key: &str, scope: &str) -> Result<(), (String, String)> {
    if crate::auth::is_scope(scope) {
        return Ok(());
    }
    Err((
        key.into(),
        format!(
            "`{scope}` is not a scope; a scope is printable ASCII without spaces, `\"` or `\\`, e.g. \"tools:call\""
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "sha256:00112233445566778899aabbccddeeff:0000000000000000000000000000000000000000000000000000000000000000";

    fn resolve(text: &str) -> Result<AuthSettings, (String, String)> {
        let raw: RawAuth = toml::from_str(text).expect("valid [auth] TOML");
        raw.resolve(Path::new("/etc/capsule"))
    }

    fn jwt(extra: &str) -> String {
        format!(
            "[jwt]\nissuer = \"https://auth.example.com\"\naudience = \"https://mcp.example.com/mcp\"\njwks-url = \"https://auth.example.com/jwks.json\"\n{extra}"
        )
    }

    #[test]
    fn a_jwt_section_resolves_with_defaults() {
        let settings = resolve(&jwt("")).unwrap();
        let jwt = settings.jwt.unwrap();
        assert_eq!(jwt.algorithms, vec![Algorithm::RS256, Algorithm::ES256]);
        assert_eq!(jwt.leeway, Duration::from_secs(30));
        assert_eq!(
            jwt.keys,
            KeySource::Url("https://auth.example.com/jwks.json".parse().unwrap())
        );
        let file = resolve(
            "[jwt]\nissuer = \"i\"\naudience = \"a\"\nkey-file = \"keys.json\"\nalgorithms = [\"ES256\"]\nleeway = \"0s\"\n",
        )
        .unwrap()
        .jwt
        .unwrap();
        assert_eq!(
            file.keys,
            KeySource::File(PathBuf::from("/etc/capsule/keys.json"))
        );
    }

    #[test]
    fn static_tokens_resolve_in_name_order() {
        let settings = resolve(&format!(
            "required-scopes = [\"mcp\"]\n[tokens.ci]\nhash = \"{HASH}\"\nscopes = [\"mcp\", \"tools:call\"]\n[tokens.alice]\nhash = \"{HASH}\"\n"
        ))
        .unwrap();
        let names: Vec<_> = settings.tokens.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["alice", "ci"]);
        assert_eq!(settings.tokens[1].scopes, ["mcp", "tools:call"]);
        assert_eq!(settings.required_scopes, ["mcp"]);
    }

    #[test]
    fn shared_secret_and_unsigned_algorithms_are_refused() {
        assert_eq!(
            resolve(&jwt("algorithms = [\"RS256\", \"HS256\"]")).unwrap_err(),
            (
                "auth.jwt.algorithms".into(),
                "`HS256` is a shared-secret algorithm: Capsule verifies JWTs only with public keys, so a public key can never be misused as an HMAC secret; use an asymmetric algorithm: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA".into()
            )
        );
        assert_eq!(
            resolve(&jwt("algorithms = [\"none\"]")).unwrap_err().1,
            "`none` means unsigned tokens, which are never accepted; list signature algorithms: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA"
        );
        assert_eq!(
            resolve(&jwt("algorithms = [\"RS257\"]")).unwrap_err().1,
            "unknown algorithm `RS257`; use one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA"
        );
    }

    #[test]
    fn leeway_is_at_most_a_minute() {
        assert_eq!(
            resolve(&jwt("leeway = \"61s\"")).unwrap_err(),
            (
                "auth.jwt.leeway".into(),
                "auth.jwt.leeway = 61s is out of range; allowed: 0ms to 60s".into()
            )
        );
    }

    #[test]
    fn issuer_audience_and_keys_are_required() {
        assert_eq!(
            resolve("[jwt]\naudience = \"a\"\njwks-url = \"https://a.example/k\"\n").unwrap_err(),
            (
                "auth.jwt.issuer".into(),
                "auth.jwt.issuer is missing; a JWT is only accepted with the `iss` the server expects, write e.g. issuer = \"https://auth.example.com\"".into()
            )
        );
        assert_eq!(
            resolve("[jwt]\nissuer = \"i\"\njwks-url = \"https://a.example/k\"\n")
                .unwrap_err()
                .0,
            "auth.jwt.audience"
        );
        assert_eq!(
            resolve("[jwt]\nissuer = \"i\"\naudience = \"a\"\n")
                .unwrap_err()
                .1,
            "auth.jwt needs its keys: write jwks-url = \"https://auth.example.com/.well-known/jwks.json\" or key-file = \"keys.json\""
        );
        assert_eq!(
            resolve("[jwt]\nissuer = \"i\"\naudience = \"a\"\njwks-url = \"http://auth.example.com/k\"\n")
                .unwrap_err()
                .1,
            "`http://auth.example.com/k` is plain HTTP: keys fetched without TLS could be replaced on the way; use https:// (http:// is allowed only to a loopback address)"
        );
        assert!(
            resolve(
                "[jwt]\nissuer = \"i\"\naudience = \"a\"\njwks-url = \"http://127.0.0.1:9/k\"\n"
            )
            .is_ok()
        );
    }

    #[test]
    fn an_empty_auth_section_and_bad_tokens_are_explained() {
        assert_eq!(
            resolve("").unwrap_err(),
            (
                "auth".into(),
                "[auth] has no way to authenticate anyone: add a static token with `capsule auth add-token NAME --scopes …` or an [auth.jwt] section (issuer, audience, jwks-url)".into()
            )
        );
        assert_eq!(
            resolve("[tokens.ci]\nhash = \"hunter2\"\n").unwrap_err(),
            (
                "auth.tokens.ci.hash".into(),
                "not a token hash (expected `sha256:SALT_HEX:HASH_HEX`, as `capsule auth add-token` writes it; a token itself never goes into the config)".into()
            )
        );
        assert_eq!(
            resolve(&format!(
                "[tokens.ci]\nhash = \"{HASH}\"\nscopes = [\"a b\"]\n"
            ))
            .unwrap_err()
            .1,
            "`a b` is not a scope; a scope is printable ASCII without spaces, `\"` or `\\`, e.g. \"tools:call\""
        );
    }
}
