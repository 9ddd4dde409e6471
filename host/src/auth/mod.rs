//! Who calls over HTTP and what they may call (issue #16; `docs/auth.md`).
//!
//! Authentication (the `[auth]` providers: [`static_tokens`] and [`jwt`], whose keys
//! [`jwks`] caches and [`keys`] reads) turns a request's
//! bearer token into a [`Principal`] ([`Authenticator`]) and puts it into the request's
//! extensions; rmcp hands the request's `http::request::Parts` to the MCP handler, which
//! reads it back with [`Principal::of_request`]. [`metadata`] is the RFC 9728 document
//! naming the authorization servers. [`add_token`] is `capsule auth add-token`. stdio has
//! no principal: the local user owns the process.
//!
//! Authorization: [`access`] (the scopes and rate limit each tool needs, from policy),
//! [`scopes`] (whether a principal's scopes permit a tool), [`rate`] (a rate limit as
//! written), [`rate_limit`] (token buckets by key) and [`limiter`] (a server's per-principal
//! and per-tool buckets and the answer over a limit).

pub mod access;
pub mod add_token;
pub mod algorithm;
mod authenticator;
pub(crate) mod fetch;
pub mod jwks;
pub mod jwt;
pub mod keys;
pub mod limiter;
pub mod metadata;
mod principal;
pub mod rate;
pub mod rate_limit;
pub mod scopes;
pub mod static_tokens;

pub use authenticator::{Authenticator, Refusal};
pub use principal::Principal;
pub use static_tokens::TokenHash;

/// Whether `scope` is a scope token: printable ASCII without spaces, `"` or `\`
/// (RFC 6749 §3.3).
pub fn is_scope(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| (0x21..=0x7E).contains(&b) && b != b'"' && b != b'\\')
}
