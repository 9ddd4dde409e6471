//! Plugin distribution (docs/distribution.md): where a plugin's bytes come from
//! ([`source`]: a file in the plugins folder, `oci://`, `https://`), fetching them through
//! the cache ([`fetch`], [`store`]), pinning ([`digest`]), OCI push and pull ([`oci`]),
//! cosign signatures ([`cosign`]), the `.wasm` handed to the runtime ([`wasm`]) and the cache's listing and garbage collection ([`gc`]).

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

pub use digest::Digest;
pub use fetch::{FetchError, Fetcher};
pub use source::{Fetched, Origin, Source};
pub use wasm::{Stamp, Wasm};
