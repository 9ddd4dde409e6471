//! Where a plugin's bytes come from. A plugin is a `.wasm` file in the plugins folder
//! (today's default), or, named by `source` in its `[plugins.NAME]` entry, an OCI artifact
//! (`oci://REGISTRY/REPO:TAG[@sha256:…]`) or an HTTPS download (`https://…`, with a
//! required `sha256`). Whatever the kind, loading sees one [`Fetched`]: bytes, their digest,
//! and where they came from. Grants never come with a pulled artifact: a remote plugin's
//! policy is its `[plugins.NAME]` entry alone (no sidecar).

use std::path::PathBuf;

use oci_client::Reference;

use super::digest::Digest;

/// A remote source, as `source = "…"` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An OCI artifact in a registry.
    Oci(OciSource),
    /// A download over HTTPS (or plain HTTP from a loopback address).
    Https(String),
}

/// An `oci://` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciSource {
    /// The reference, without the `oci://` scheme.
    pub reference: Reference,
}

impl Source {
    /// Reads `oci://…` or `https://…` (`http://` only for a loopback host).
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(reference) = text.strip_prefix("oci://") {
            return parse_reference(reference)
                .map(|reference| Source::Oci(OciSource { reference }));
        }
        let url = text.parse::<http::Uri>().ok();
        let scheme = url.as_ref().and_then(|u| u.scheme_str());
        let host = url.as_ref().and_then(|u| u.host());
        match (scheme, host) {
            (Some("https"), Some(_)) => Ok(Source::Https(text.to_string())),
            (Some("http"), Some(host)) if is_loopback(host) => Ok(Source::Https(text.to_string())),
            (Some("http"), Some(host)) => Err(format!(
                "`{text}`: plain http:// is only allowed from a loopback address (not {host}); use https://"
            )),
            _ => Err(format!(
                "`{text}` is not a plugin source; write `oci://REGISTRY/REPOSITORY:TAG` or `https://HOST/PATH.wasm` (a file in the plugins folder needs no source)"
            )),
        }
    }

    /// The source as written.
    pub fn text(&self) -> String {
        match self {
            Source::Oci(oci) => format!("oci://{}", oci.reference.whole()),
            Source::Https(url) => url.clone(),
        }
    }
}

/// An OCI reference with an explicit registry (`REGISTRY/REPO:TAG[@sha256:…]`): a plugin
/// source never falls back to Docker Hub.
pub fn parse_reference(text: &str) -> Result<Reference, String> {
    let explicit = text
        .split_once('/')
        .is_some_and(|(registry, _)| registry.contains(['.', ':']) || registry == "localhost");
    if !explicit {
        return Err(format!(
            "`{text}` names no registry; write REGISTRY/REPOSITORY:TAG, e.g. `ghcr.io/acme/tool:1.0` or `127.0.0.1:5000/tool:1.0`"
        ));
    }
    text.parse::<Reference>()
        .map_err(|err| format!("`{text}` is not an OCI reference: {err}"))
}

/// Whether `host` (a name or an address, brackets allowed) is this machine.
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Where one plugin comes from and what it must be: its `source`, `sha256` and
/// `require-signature`, resolved from `[plugins.NAME]` and `[distribution]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `None`: the file `NAME.wasm` in the plugins folder.
    pub source: Option<Source>,
    /// The digest the `.wasm` must have.
    pub sha256: Option<Digest>,
    /// Whether a cosign signature by `[distribution] public-key` must sign it.
    pub require_signature: bool,
}

/// A plugin's bytes, ready to load.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The `.wasm`: its bytes, or the file to read them from if it must be compiled.
    pub wasm: super::Wasm,
    /// Their sha256.
    pub digest: Digest,
    /// The file they were read from, or for a remote source the source itself (messages,
    /// `capsule list`).
    pub path: PathBuf,
    /// The remote source, as written in the config.
    pub source: Option<String>,
    /// For a signed plugin, the key that verified it (`sha256:` of the key).
    pub signed_by: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_oci_https_or_loopback_http() {
        assert!(matches!(
            Source::parse("oci://127.0.0.1:5000/tools/echo:1.0"),
            Ok(Source::Oci(_))
        ));
        assert!(matches!(
            Source::parse("https://example.com/echo.wasm"),
            Ok(Source::Https(_))
        ));
        assert!(matches!(
            Source::parse("http://127.0.0.1:8000/echo.wasm"),
            Ok(Source::Https(_))
        ));
        assert_eq!(
            Source::parse("http://example.com/echo.wasm").expect_err("not loopback"),
            "`http://example.com/echo.wasm`: plain http:// is only allowed from a loopback address (not example.com); use https://"
        );
        assert_eq!(
            Source::parse("oci://echo:1.0").expect_err("no registry"),
            "`echo:1.0` names no registry; write REGISTRY/REPOSITORY:TAG, e.g. `ghcr.io/acme/tool:1.0` or `127.0.0.1:5000/tool:1.0`"
        );
        assert_eq!(
            Source::parse("plugins/echo.wasm").expect_err("a path"),
            "`plugins/echo.wasm` is not a plugin source; write `oci://REGISTRY/REPOSITORY:TAG` or `https://HOST/PATH.wasm` (a file in the plugins folder needs no source)"
        );
    }
}
