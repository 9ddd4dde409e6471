//! The TLS crypto provider of every TLS client of the host (plugins' outbound HTTPS, JWKS,
//! registries, downloads): `ring`, which the host
//! already builds for rustls (reqwest is built without a provider of its own).

/// Installs `ring` as the process's default rustls provider, unless one is installed.
pub fn install_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may have installed it meanwhile; either way one is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
