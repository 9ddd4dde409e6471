//! Plugins downloaded over HTTPS (or plain HTTP from a loopback address, for local
//! mirrors and tests). The config must name the `.wasm`'s sha256, so the download is
//! checked before anything else reads it, and cached by that digest.

use std::time::Duration;

use super::digest::{self, Digest, Mismatch};
use super::{COMPONENT, MAX_COMPONENT};

/// A download failed or did not match its pin.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The request failed or the server refused.
    #[error("{url}: download failed: {message}")]
    Failed {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
    /// The bytes are not the pinned ones.
    #[error("{url}: {mismatch}; refusing it (fix `sha256` only if you trust the new file)")]
    Mismatch {
        /// The URL.
        url: String,
        /// Expected and actual digests.
        mismatch: Mismatch,
    },
}

/// Downloads `url` within `within` (`[distribution] fetch-timeout`) and checks it against
/// `sha256` (named in `from`), once it has its turn ([`super::FETCHES_AT_ONCE`] fetches run
/// at once).
pub async fn download(
    url: &str,
    sha256: &Digest,
    from: &str,
    within: Duration,
) -> Result<(Vec<u8>, Digest), DownloadError> {
    let _turn = super::fetch_turn().await;
    super::tls::install_provider();
    let failed = |message: String| DownloadError::Failed {
        url: url.to_string(),
        message,
    };
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(within)
        .build()
        .map_err(|err| failed(err.to_string()))?;
    let mut response = client
        .get(url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|err| failed(err.to_string()))?;
    let too_large = |size: u64| {
        failed(crate::bounded_file::too_large(size, MAX_COMPONENT, COMPONENT).to_string())
    };
    if let Some(size) = response.content_length().filter(|&n| n > MAX_COMPONENT.0) {
        return Err(too_large(size));
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| failed(err.to_string()))?
    {
        bytes.extend_from_slice(&chunk);
        if bytes.len() as u64 > MAX_COMPONENT.0 {
            return Err(too_large(bytes.len() as u64));
        }
    }
    let actual = Digest::of(&bytes);
    digest::check(Some(sha256), from, &actual).map_err(|mismatch| DownloadError::Mismatch {
        url: url.to_string(),
        mismatch,
    })?;
    Ok((bytes, actual))
}
