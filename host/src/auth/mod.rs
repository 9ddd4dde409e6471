//! Who calls over HTTP and what they may call (issue #16).
//!
//! Authentication (the `[auth]` providers) turns a request's bearer token into a
//! [`Principal`] and puts it into the request's extensions; rmcp hands the request's
//! `http::request::Parts` to the MCP handler, which reads it back with
//! [`Principal::of_request`]. stdio has no principal: the local user owns the process.

mod principal;

pub use principal::Principal;
