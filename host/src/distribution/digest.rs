//! A sha256 digest as config, lock and registries write it: `sha256:` and 64 lowercase hex
//! digits (the bare hex is accepted in `capsule.toml`).

use sha2::{Digest as _, Sha256};

/// The sha256 of some bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(hex::encode(Sha256::digest(bytes)))
    }

    /// The digest whose 32 bytes are `sha256`.
    pub fn from_sha256(sha256: [u8; 32]) -> Self {
        Self(hex::encode(sha256))
    }

    /// Reads `sha256:HEX` or `HEX` (64 hex digits, either case).
    pub fn parse(text: &str) -> Result<Self, String> {
        let hex = text.strip_prefix("sha256:").unwrap_or(text);
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "`{text}` is not a sha256 digest; write `sha256:` and 64 hex digits (`sha256sum FILE` prints them)"
            ));
        }
        Ok(Self(hex.to_ascii_lowercase()))
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", self.0)
    }
}

/// Bytes whose digest differs from the one they were expected to have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sha256 mismatch: expected {expected} ({from}), got {actual}")]
pub struct Mismatch {
    /// The digest asked for.
    pub expected: Digest,
    /// Where `expected` was written (`sha256 in [plugins.NAME]`).
    pub from: String,
    /// The digest of the bytes.
    pub actual: Digest,
}

/// Checks `actual` against a pinned digest, if any.
pub fn check(expected: Option<&Digest>, from: &str, actual: &Digest) -> Result<(), Mismatch> {
    match expected {
        Some(expected) if expected != actual => Err(Mismatch {
            expected: expected.clone(),
            from: from.to_string(),
            actual: actual.clone(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_read_with_or_without_prefix_and_print_with_it() {
        let hex = "AB".repeat(32);
        let a = Digest::parse(&format!("sha256:{hex}")).expect("valid");
        let b = Digest::parse(&hex).expect("valid");
        assert_eq!(a, b);
        assert_eq!(a.to_string(), format!("sha256:{}", "ab".repeat(32)));
        assert_eq!(
            Digest::parse("sha256:abc").expect_err("short"),
            "`sha256:abc` is not a sha256 digest; write `sha256:` and 64 hex digits (`sha256sum FILE` prints them)"
        );
    }
}
