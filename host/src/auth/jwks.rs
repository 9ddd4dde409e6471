//! The cached key set of `[auth.jwt]`: a key file read once, or a JWKS URL fetched at
//! start and again when a token names a `kid` the cache does not hold, at most once a
//! second (a request that finds the last fetch younger than that waits for the next one
//! instead of failing, so a rotated key is accepted within a second of its publication,
//! without a restart). Concurrent requests share one fetch. The set is also refreshed in
//! the background when it is older than [`MAX_AGE`], so removed keys stop verifying.
//! Nothing a token says (`jku`, `x5u`, `jwk`) is ever fetched: only the configured URL.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::time::Instant;

use super::algorithm::Algorithm;
use super::fetch;
use super::keys::{KeySet, VerifyingKey};
use crate::config::auth::KeySource;

/// The shortest time between two fetches of the JWKS URL.
pub const MIN_REFRESH: Duration = Duration::from_secs(1);
/// A key set older than this is fetched again (in the background).
pub const MAX_AGE: Duration = Duration::from_secs(300);

/// The verification keys and where they come from.
pub struct Jwks {
    url: Option<http::Uri>,
    keys: ArcSwap<KeySet>,
    /// When the last fetch started (`None`: never); held while fetching, so concurrent
    /// refreshes queue behind one fetch.
    fetched: tokio::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks")
            .field("url", &self.url)
            .field("keys", &self.keys.load().keys.len())
            .finish()
    }
}

/// Why no key verifies a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoKey {
    /// The token's `kid` is not in the key set (after a refresh).
    UnknownKid(String),
    /// No `kid`, and not exactly one key fits the algorithm.
    Ambiguous(Algorithm),
    /// The key named by `kid` is not for this algorithm.
    WrongKind(String, Algorithm),
}

impl std::fmt::Display for NoKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownKid(kid) => write!(f, "no key with kid `{kid}` in the key set"),
            Self::Ambiguous(alg) => write!(
                f,
                "the token names no kid and the key set has not exactly one {alg} key"
            ),
            Self::WrongKind(kid, alg) => write!(f, "key `{kid}` is not a key for {alg}"),
        }
    }
}

impl Jwks {
    /// Reads the key file, or fetches the JWKS URL once (a failure is logged, and the
    /// fetch retried when a token needs a key). The error names the file and the problem.
    pub async fn load(source: &KeySource) -> Result<Arc<Self>, String> {
        match source {
            KeySource::File(path) => {
                let bytes = std::fs::read(path).map_err(|e| {
                    format!("cannot read auth.jwt.key-file {}: {e}", path.display())
                })?;
                let set = KeySet::parse(&bytes)
                    .map_err(|e| format!("auth.jwt.key-file {}: {e}", path.display()))?;
                if set.keys.is_empty() {
                    return Err(format!(
                        "auth.jwt.key-file {} holds no usable signature key ({})",
                        path.display(),
                        set.skipped.join("; ")
                    ));
                }
                log_skipped(&set);
                Ok(Arc::new(Self {
                    url: None,
                    keys: ArcSwap::from_pointee(set),
                    fetched: tokio::sync::Mutex::new(None),
                }))
            }
            KeySource::Url(url) => {
                let jwks = Arc::new(Self {
                    url: Some(url.clone()),
                    keys: ArcSwap::from_pointee(KeySet::default()),
                    fetched: tokio::sync::Mutex::new(None),
                });
                jwks.refresh(Instant::now()).await;
                Ok(jwks)
            }
        }
    }

    /// The key set held now.
    pub fn current(&self) -> Arc<KeySet> {
        self.keys.load_full()
    }

    /// The key that verifies a token signed with `alg` naming `kid`: from the cache, or
    /// after a refresh when the cache does not have it.
    pub async fn key(
        self: &Arc<Self>,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<VerifyingKey, NoKey> {
        let arrival = Instant::now();
        let found = select(&self.keys.load(), kid, alg);
        let Some(url) = &self.url else {
            return found;
        };
        match found {
            Err(NoKey::UnknownKid(_)) => {
                self.refresh(arrival).await;
                select(&self.keys.load(), kid, alg)
            }
            found => {
                self.refresh_if_old(url);
                found
            }
        }
    }

    /// Starts a background fetch when the set is older than [`MAX_AGE`] and none runs.
    fn refresh_if_old(self: &Arc<Self>, url: &http::Uri) {
        let Ok(fetched) = self.fetched.try_lock() else {
            return;
        };
        if fetched.is_some_and(|at| at.elapsed() < MAX_AGE) {
            return;
        }
        drop(fetched);
        tracing::debug!(target: "capsule::auth", %url, "the key set is older than 5 minutes; fetching it again");
        let jwks = self.clone();
        tokio::spawn(async move { jwks.refresh(Instant::now()).await });
    }

    /// Fetches the URL unless a fetch started after `arrival` (then its result stands),
    /// waiting until [`MIN_REFRESH`] has passed since the last one.
    async fn refresh(&self, arrival: Instant) {
        let Some(url) = &self.url else { return };
        let mut fetched = self.fetched.lock().await;
        if let Some(at) = *fetched {
            if at >= arrival {
                return;
            }
            tokio::time::sleep_until(at + MIN_REFRESH).await;
        }
        *fetched = Some(Instant::now());
        match fetch::get(url).await.and_then(|body| KeySet::parse(&body)) {
            Ok(set) => {
                tracing::info!(target: "capsule::auth", %url, keys = set.keys.len(), "fetched the JWT key set");
                log_skipped(&set);
                self.keys.store(Arc::new(set));
            }
            Err(reason) => {
                tracing::warn!(target: "capsule::auth", %url, "cannot fetch the JWT key set (auth.jwt.jwks-url): {reason}; keeping the {} keys held", self.keys.load().keys.len());
            }
        }
    }
}

/// The key of `set` for `kid` and `alg`.
fn select(set: &KeySet, kid: Option<&str>, alg: Algorithm) -> Result<VerifyingKey, NoKey> {
    match kid {
        Some(kid) => {
            let key = set
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .ok_or_else(|| NoKey::UnknownKid(kid.to_string()))?;
            if !key.fits(alg) {
                return Err(NoKey::WrongKind(kid.to_string(), alg));
            }
            Ok(key.clone())
        }
        None => {
            let mut fitting = set.keys.iter().filter(|k| k.fits(alg));
            match (fitting.next(), fitting.next()) {
                (Some(key), None) => Ok(key.clone()),
                _ => Err(NoKey::Ambiguous(alg)),
            }
        }
    }
}

fn log_skipped(set: &KeySet) {
    for skipped in &set.skipped {
        tracing::debug!(target: "capsule::auth", "ignored a key of the key set: {skipped}");
    }
}
