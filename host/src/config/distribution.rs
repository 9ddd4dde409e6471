//! `[distribution]`: how plugins from registries and downloads are trusted and reached.
//! A plugin's own `source`, `sha256` and `require-signature` are in its `[plugins.NAME]`
//! entry ([`crate::policy::RawPolicy`]) and resolved here into an [`Origin`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::distribution::cosign::PublicKey;
use crate::distribution::{Digest, Origin, Source};
use crate::policy::RawPolicy;
use crate::units::deserialize_duration;

/// `[distribution]` as written.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawDistribution {
    /// Refuse every `oci://` plugin without a cosign signature by `public-key` (a plugin's own `require-signature` wins).
    #[serde(default)]
    pub require_signature: bool,
    /// The PEM ECDSA P-256 public key (`cosign.pub`) that signatures of `oci://` plugins must verify with.
    #[schemars(extend("x-path" = true))]
    pub public_key: Option<PathBuf>,
    /// Registries (`HOST:PORT`) reached over plain HTTP; registries on a loopback address always are.
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// The longest fetching one remote plugin may take (a download, or a registry pull with its signatures), counted from its turn (two fetch at once); a tag whose pull takes longer is served from its last recorded pull, if there is one.
    #[serde(default, deserialize_with = "deserialize_duration")]
    #[schemars(with = "Option<crate::units::DurationText>", extend("default" = "120s"))]
    pub fetch_timeout: Option<Duration>,
}

/// `[distribution]`, resolved.
#[derive(Debug, Clone)]
pub struct DistributionSettings {
    /// `require-signature`.
    pub require_signature: bool,
    /// The key, read and parsed.
    pub public_key: Option<PublicKey>,
    /// `insecure-registries`.
    pub insecure_registries: Vec<String>,
    /// `fetch-timeout`.
    pub fetch_timeout: Duration,
}

impl Default for DistributionSettings {
    fn default() -> Self {
        Self {
            require_signature: false,
            public_key: None,
            insecure_registries: Vec::new(),
            fetch_timeout: crate::distribution::FETCH_TIMEOUT,
        }
    }
}

impl RawDistribution {
    /// Reads the key file (relative to `base`). Errors are `(key, message)`.
    pub fn resolve(&self, base: &Path) -> Result<DistributionSettings, (String, String)> {
        if self.fetch_timeout == Some(Duration::ZERO) {
            return Err((
                "distribution.fetch-timeout".to_string(),
                "0s would refuse every remote plugin; give it a duration such as \"120s\""
                    .to_string(),
            ));
        }
        let public_key = self
            .public_key
            .as_ref()
            .map(|file| {
                let path = base.join(file);
                let fail = |m: String| {
                    (
                        "distribution.public-key".to_string(),
                        format!("{}: {m}", path.display()),
                    )
                };
                let text = std::fs::read_to_string(&path)
                    .map_err(|err| fail(format!("cannot read: {err}")))?;
                PublicKey::from_pem(&text).map_err(fail)
            })
            .transpose()?;
        Ok(DistributionSettings {
            require_signature: self.require_signature,
            public_key,
            insecure_registries: self.insecure_registries.clone(),
            fetch_timeout: self
                .fetch_timeout
                .unwrap_or(crate::distribution::FETCH_TIMEOUT),
        })
    }
}

/// The origin of plugin `name` from its entry, if the entry says anything about it.
/// Errors are `(key, message)`.
pub fn origin(
    name: &str,
    policy: &RawPolicy,
    distribution: &DistributionSettings,
) -> Option<Result<Origin, (String, String)>> {
    let key = |part: &str| format!("plugins.{name}.{part}");
    let source = match policy.source.as_deref().map(Source::parse).transpose() {
        Ok(source) => source,
        Err(message) => return Some(Err((key("source"), message))),
    };
    let sha256 = match policy.sha256.as_deref().map(Digest::parse).transpose() {
        Ok(sha256) => sha256,
        Err(message) => return Some(Err((key("sha256"), message))),
    };
    let is_oci = matches!(source, Some(Source::Oci(_)));
    if source.is_none() && sha256.is_none() && policy.require_signature.is_none() {
        return None;
    }
    if matches!(source, Some(Source::Https(_))) && sha256.is_none() {
        return Some(Err((
            key("sha256"),
            "an https source needs the sha256 of the .wasm it downloads (`sha256 = \"sha256:…\"`; `sha256sum FILE` prints it)".into(),
        )));
    }
    if policy.require_signature == Some(true) && !is_oci {
        return Some(Err((
            key("require-signature"),
            "signatures are verified for oci:// sources only; pin a file or an https source with `sha256`".into(),
        )));
    }
    let require_signature = is_oci
        && policy
            .require_signature
            .unwrap_or(distribution.require_signature);
    Some(Ok(Origin {
        source,
        sha256,
        require_signature,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(toml: &str) -> RawPolicy {
        toml::from_str(toml).expect("valid entry")
    }

    #[test]
    fn a_fetch_timeout_of_zero_is_refused_and_none_is_the_default() {
        let raw: RawDistribution = toml::from_str("fetch-timeout = \"0s\"").expect("parses");
        assert_eq!(
            raw.resolve(Path::new(".")).unwrap_err(),
            (
                "distribution.fetch-timeout".to_string(),
                "0s would refuse every remote plugin; give it a duration such as \"120s\""
                    .to_string()
            )
        );
        let raw: RawDistribution = toml::from_str("fetch-timeout = \"5s\"").expect("parses");
        let set = raw.resolve(Path::new(".")).expect("valid");
        assert_eq!(set.fetch_timeout, Duration::from_secs(5));
        let unset = RawDistribution::default()
            .resolve(Path::new("."))
            .expect("valid");
        assert_eq!(unset.fetch_timeout, crate::distribution::FETCH_TIMEOUT);
    }

    #[test]
    fn an_entry_without_distribution_keys_has_no_origin() {
        let none = origin(
            "a",
            &entry("secrets = []"),
            &DistributionSettings::default(),
        );
        assert_eq!(none, None);
    }

    #[test]
    fn an_https_source_needs_a_pin_and_only_oci_sources_take_require_signature() {
        let settings = DistributionSettings::default();
        assert_eq!(
            origin("web", &entry("source = \"https://example.com/a.wasm\""), &settings),
            Some(Err((
                "plugins.web.sha256".into(),
                "an https source needs the sha256 of the .wasm it downloads (`sha256 = \"sha256:…\"`; `sha256sum FILE` prints it)".into()
            )))
        );
        assert_eq!(
            origin("notes", &entry("require-signature = true"), &settings),
            Some(Err((
                "plugins.notes.require-signature".into(),
                "signatures are verified for oci:// sources only; pin a file or an https source with `sha256`".into()
            )))
        );
    }

    #[test]
    fn the_global_require_signature_applies_to_oci_sources_unless_the_plugin_says_otherwise() {
        let strict = DistributionSettings {
            require_signature: true,
            ..DistributionSettings::default()
        };
        let required = |toml: &str| {
            origin("p", &entry(toml), &strict)
                .expect("has an origin")
                .expect("valid")
                .require_signature
        };
        assert!(required("source = \"oci://127.0.0.1:5000/p:1\""));
        assert!(!required(
            "source = \"oci://127.0.0.1:5000/p:1\"\nrequire-signature = false"
        ));
        assert!(!required(&format!("sha256 = \"{}\"", "a".repeat(64))));
    }
}
