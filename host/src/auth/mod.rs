//! Who calls over HTTP and what they may call (issue #16).
//!
//! Authentication (the `[auth]` providers) turns a request's bearer token into a
//! [`Principal`] and puts it into the request's extensions; rmcp hands the request's
//! `http::request::Parts` to the MCP handler, which reads it back with
//! [`Principal::of_request`]. stdio has no principal: the local user owns the process.
//!
//! Authorization: [`access`] (the scopes and rate limit each tool needs, from policy),
//! [`scopes`] (whether a principal's scopes permit a tool), [`rate`] (a rate limit as
//! written), [`rate_limit`] (token buckets by key) and [`limiter`] (a server's per-principal
//! and per-tool buckets and the answer over a limit).

pub mod access;
pub mod limiter;
mod principal;
pub mod rate;
pub mod rate_limit;
pub mod scopes;

pub use principal::Principal;
