//! End-to-end tests: the real `capsule` binary, real plugins built from source by
//! `cargo xtask plugins`, driven by a real MCP client (rmcp) over stdio.
//!
//! MCP logging is deprecated by SEP-2577, but we still serve it, so we still test it.
#![allow(deprecated)]

mod audit;
mod auth;
mod authz;
mod bounds;
mod c_guest;
mod cache;
mod caller;
mod cli;
mod config;
mod derived;
mod distribution;
mod docs;
mod documented;
mod escape_tools;
mod escapes;
mod examples;
mod fairness;
mod grants;
mod hostile_plugins;
mod hostile_sources;
mod http;
mod install;
mod js_guest;
mod jws;
mod limits;
mod loading;
mod lock;
mod memory;
mod metrics;
mod otlp;
mod protocol;
mod python_guest;
mod reload;
mod resilience;
mod scaffold;
mod support;
mod telemetry;
mod tools;
mod trust;
