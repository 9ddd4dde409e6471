//! Signed JWTs for the tests and benchmarks that authenticate with them: the JWS compact
//! form and a P-256 key (ES256) made by `ring`. Used by `auth.rs` here and by
//! `host/benches/http.rs`, which includes this file with `#[path]`; not part of the library.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

/// A P-256 key made by ring.
pub struct EcKey(EcdsaKeyPair);

impl EcKey {
    /// A new random key.
    pub fn generate() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("generate a P-256 key");
        Self(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                .expect("read the P-256 key"),
        )
    }

    /// Its public key as a JWK with key id `kid`, for a JWKS document.
    pub fn jwk(&self, kid: &str) -> Value {
        let point = self.0.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256", "kid": kid,
               "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])})
    }

    /// `claims` as a JWT signed with ES256, naming key `kid` in its header.
    pub fn sign(&self, kid: &str, claims: &Value) -> String {
        jws(&json!({"alg": "ES256", "kid": kid}), claims, |message| {
            self.0
                .sign(&SystemRandom::new(), message)
                .expect("sign with the P-256 key")
                .as_ref()
                .to_vec()
        })
    }
}

/// `header.claims.signature` in JWS compact form, `sign` making the signature of the
/// first two parts.
pub fn jws(header: &Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = sign(message.as_bytes());
    format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature))
}
