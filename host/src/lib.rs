//! Capsule: a WebAssembly plugin host for sandboxed MCP tools.
//!
//! Plugins are WebAssembly components built against `wit/capsule.wit`. The host loads
//! each one ([`runtime`]), merges their tools into one [`registry`], and serves them over
//! MCP ([`mcp`]). Every call runs in a fresh sandboxed instance with the limits and
//! capabilities of the plugin's policy ([`capability`]); settings come from [`config`].
//!
//! `unsafe` is denied everywhere except [`runtime::cache`], which maps precompiled
//! artifacts that this host wrote itself (see the safety note there).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod app;
pub mod approve;
pub mod audit;
pub mod auth;
pub mod bounded_file;
pub mod bounds;
pub mod breaker;
pub mod capability;
pub mod config;
pub mod cores;
pub mod degraded;
pub mod distribution;
pub mod install;
pub mod loader;
pub mod loading;
pub mod lock;
pub mod logging;
pub mod mcp;
pub mod metrics;
pub mod policy;
pub mod registry;
pub mod reload;
pub mod runtime;
pub mod scaffold;
pub mod telemetry;
#[cfg(test)]
mod testing;
pub mod trace;
pub mod trust;
pub mod units;
