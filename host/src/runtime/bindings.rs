//! Host bindings for `wit/capsule.wit`, generated at build time from the same WIT
//! package the guest SDKs read. Exports are called asynchronously so a running plugin
//! never blocks the protocol loop and can be interrupted by its deadline.
//!
//! The generated items are documented in the WIT itself, hence the lint exception.
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    exports: { default: async },
});

pub use self::capsule::plugin::types::{
    Blob, CallError, CallResult, Content, Embedded, Level, Link, ResourceBody, Tool,
    ToolAnnotations,
};

/// The fully qualified name of the interface every Capsule plugin exports.
pub const TOOLS_EXPORT: &str = "capsule:plugin/tools@0.1.0";
