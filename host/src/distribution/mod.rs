//! Plugin distribution (docs/distribution.md): where a plugin's bytes come from
//! ([`source`]: a file in the plugins folder, `oci://`, `https://`), fetching them through
//! the cache ([`fetch`], [`store`]), pinning ([`digest`]), OCI push and pull ([`oci`]),
//! blobs pulled within their sizes ([`blob`]), cosign signatures ([`cosign`]), the `.wasm` handed to the runtime ([`wasm`]) and the cache's listing and garbage collection ([`gc`]).

pub mod blob;
pub mod cosign;
pub mod digest;
pub mod fetch;
pub mod gc;
pub mod https;
pub mod oci;
pub mod source;
pub mod store;
pub(crate) mod tls;
pub mod wasm;

/// The largest plugin component accepted from any source: a file in the plugins folder, a
/// download or a registry pull. The biggest guests of the examples (componentize-py) are
/// ~20 MiB; the bound keeps a wrong or hostile file from being read into the host's memory.
pub const MAX_COMPONENT: crate::units::ByteSize = crate::units::ByteSize::mib(256);

/// What [`MAX_COMPONENT`] bounds, in messages.
pub const COMPONENT: &str = "plugin component";
/// The longest fetching one remote plugin may take: an `https://` download, or a registry
/// pull (manifest, layer and signatures together). Each read also has its own timeout, but a
/// source that trickles bytes would otherwise hold a start for as long as it liked.
pub const FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// The remote fetches (`https://` downloads, registry pulls) that run at once in a process.
/// Each may hold up to [`MAX_COMPONENT`] in memory while it arrives, so however many remote
/// plugins a config lists, their downloads hold at most this many times that; the others
/// wait their turn (their [`FETCH_TIMEOUT`] starts with it).
pub const FETCHES_AT_ONCE: usize = 2;

static FETCHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(FETCHES_AT_ONCE);

/// Waits for a turn to fetch (see [`FETCHES_AT_ONCE`]); the turn ends when the permit drops.
async fn fetch_turn() -> tokio::sync::SemaphorePermit<'static> {
    // Never closed, so acquiring cannot fail.
    FETCHING
        .acquire()
        .await
        .expect("the fetch semaphore is never closed")
}

pub use digest::Digest;
pub use fetch::{FetchError, Fetcher};
pub use source::{Fetched, Origin, Source};
pub use wasm::{Stamp, Wasm};
