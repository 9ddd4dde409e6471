//! Static bearer tokens: 32 random bytes (`cap_` + base64url), stored only as a salted
//! SHA-256 (`sha256:SALT_HEX:HASH_HEX`). A token has 256 bits of entropy, so a slow
//! password hash would add nothing but latency; the comparison is constant-time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Principal;
use crate::config::auth::TokenSettings;

/// What every generated token starts with (so scanners recognize leaked ones).
pub const TOKEN_PREFIX: &str = "cap_";
/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;
/// Random bytes in a salt.
const SALT_BYTES: usize = 16;

/// A token's salted hash as stored in `capsule.toml`.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenHash {
    salt: Vec<u8>,
    digest: [u8; 32],
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHash(<redacted>)")
    }
}

impl std::str::FromStr for TokenHash {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || {
            "not a token hash (expected `sha256:SALT_HEX:HASH_HEX`, as `capsule auth add-token` writes it; a token itself never goes into the config)".to_string()
        };
        let mut parts = text.split(':');
        let (Some("sha256"), Some(salt), Some(digest), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let salt = hex::decode(salt).map_err(|_| bad())?;
        let digest = hex::decode(digest)
            .ok()
            .and_then(|d| <[u8; 32]>::try_from(d).ok())
            .ok_or_else(bad)?;
        if salt.len() < 8 {
            return Err(bad());
        }
        Ok(Self { salt, digest })
    }
}

impl std::fmt::Display for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sha256:{}:{}",
            hex::encode(&self.salt),
            hex::encode(self.digest)
        )
    }
}

impl TokenHash {
    fn of(salt: Vec<u8>, token: &str) -> Self {
        let digest = Sha256::new()
            .chain_update(&salt)
            .chain_update(token.as_bytes())
            .finalize()
            .into();
        Self { salt, digest }
    }

    /// Whether `token` hashes to this, compared in constant time.
    pub fn matches(&self, token: &str) -> bool {
        let candidate = Self::of(self.salt.clone(), token);
        bool::from(candidate.digest.ct_eq(&self.digest))
    }
}

/// A new random token and its salted hash.
pub fn generate() -> Result<(String, TokenHash), String> {
    let random = SystemRandom::new();
    let mut token = [0u8; TOKEN_BYTES];
    let mut salt = vec![0u8; SALT_BYTES];
    random
        .fill(&mut token)
        .and_then(|()| random.fill(&mut salt))
        .map_err(|_| "the operating system's random number generator failed".to_string())?;
    let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(token));
    let hash = TokenHash::of(salt, &token);
    Ok((token, hash))
}

/// The configured static tokens.
#[derive(Debug)]
pub struct StaticTokens {
    /// Each token's hash and the principal it authenticates.
    tokens: Vec<(TokenHash, Principal)>,
}

impl StaticTokens {
    /// The tokens of `[auth.tokens]`.
    pub fn new(tokens: Vec<TokenSettings>) -> Self {
        Self {
            tokens: tokens
                .into_iter()
                .map(|t| (t.hash, Principal::new(t.name, t.scopes)))
                .collect(),
        }
    }

    /// Whether `token` looks like one of ours (so a JWT is not hashed against them).
    pub fn claims(token: &str) -> bool {
        token.starts_with(TOKEN_PREFIX)
    }

    /// The principal of `token`, if it is one of the configured tokens. Every token is
    /// checked, so the time taken does not say which one matched.
    pub fn verify(&self, token: &str) -> Option<Principal> {
        let mut found = None;
        for (hash, principal) in &self.tokens {
            if hash.matches(token) && found.is_none() {
                found = Some(principal);
            }
        }
        found.cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_matches_its_hash_and_nothing_else() {
        let (token, hash) = generate().unwrap();
        assert!(token.starts_with("cap_"));
        assert_eq!(token.len(), 4 + 43);
        assert!(hash.matches(&token));
        assert!(!hash.matches(&format!("{token}x")));
        let reparsed: TokenHash = hash.to_string().parse().unwrap();
        assert_eq!(reparsed, hash);
        let (other, _) = generate().unwrap();
        assert_ne!(token, other);
        assert_eq!(format!("{hash:?}"), "TokenHash(<redacted>)");
    }

    #[test]
    fn tokens_verify_to_their_principal() {
        let (alice, alice_hash) = generate().unwrap();
        let (ci, ci_hash) = generate().unwrap();
        let tokens = StaticTokens::new(vec![
            TokenSettings {
                name: "alice".into(),
                hash: alice_hash,
                scopes: vec!["mcp".into()],
            },
            TokenSettings {
                name: "ci".into(),
                hash: ci_hash,
                scopes: vec![],
            },
        ]);
        assert_eq!(
            tokens.verify(&alice),
            Some(Principal::new("alice", vec!["mcp".to_string()]))
        );
        assert_eq!(&*tokens.verify(&ci).unwrap().name, "ci");
        assert_eq!(tokens.verify("cap_wrong"), None);
    }

    #[test]
    fn malformed_hashes_are_refused() {
        for text in [
            "sha256:00:00",
            "md5:0011223344556677:00",
            "sha256:zz11223344556677:0000000000000000000000000000000000000000000000000000000000000000",
            "sha256:0011223344556677:0000000000000000000000000000000000000000000000000000000000000000:x",
        ] {
            assert!(text.parse::<TokenHash>().is_err(), "{text}");
        }
    }
}
