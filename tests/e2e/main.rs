//! End-to-end tests: the real `capsule` binary, real plugins built from source by
//! `cargo xtask plugins`, driven by a real MCP client (rmcp) over stdio.
//!
//! MCP logging is deprecated by SEP-2577, but we still serve it, so we still test it.
#![allow(deprecated)]

mod c_guest;
mod cli;
mod derived;
mod examples;
mod grants;
mod hostile_plugins;
mod js_guest;
mod limits;
mod loading;
mod protocol;
mod python_guest;
mod scaffold;
mod support;
mod tools;
