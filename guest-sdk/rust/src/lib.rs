//! Write Capsule tool plugins as plain Rust functions.
//!
//! A tool is a function taking one argument struct (its fields are the tool's parameters) and
//! returning text, a struct, or a [`ToolOutput`]. The input and output JSON Schemas come from
//! `schemars`, the description from the doc comment; nobody writes JSON Schema or WIT.
//!
//! ```
//! use capsule_sdk::prelude::*;
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct SlugifyArgs {
//!     /// Text to turn into a URL slug.
//!     text: String,
//!     /// Separator between words (default "-").
//!     separator: Option<String>,
//! }
//!
//! /// Turn text into a lowercase, URL-safe slug.
//! #[tool(read_only, idempotent)]
//! fn slugify(args: SlugifyArgs) -> Result<String, ToolError> {
//!     let separator = args.separator.as_deref().unwrap_or("-");
//!     let words: Vec<String> = args
//!         .text
//!         .split(|c: char| !c.is_alphanumeric())
//!         .filter(|word| !word.is_empty())
//!         .map(str::to_lowercase)
//!         .collect();
//!     if words.is_empty() {
//!         return Err(ToolError::invalid_arguments("the text has no letters or digits"));
//!     }
//!     Ok(words.join(separator))
//! }
//!
//! capsule_sdk::export_plugin!(slugify);
//!
//! # #[cfg(not(target_arch = "wasm32"))]
//! # {
//! // On the build machine, the table `export_plugin!` made runs the tool as the host would:
//! let output = CAPSULE_PLUGIN.call("slugify", r#"{"text": "Hello, World"}"#).unwrap();
//! assert_eq!(output.text_content(), "hello-world");
//! # }
//! ```
//!
//! Build with `cargo build --target wasm32-wasip2 --release`; the `cdylib` is the component.
//! On native targets the host imports ([`log`], [`progress`], [`cancelled`], [`config`],
//! [`caller`]) are
//! served by stand-ins from [`testing`], so `cargo test` runs tools unchanged.

#![deny(unsafe_code)]

// Lets the wit-bindgen output, which names this crate by its absolute path so the export macro
// works from plugin crates, compile inside this crate too.
extern crate self as capsule_sdk;

mod arguments;
mod doc;
mod error;
#[cfg(target_arch = "wasm32")]
mod export;
mod host;
mod output;
mod plugin;
mod schema;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use capsule_sdk_macros::{export_plugin, tool};
pub use error::{CallError, ToolError};
pub use host::{Caller, Level, caller, cancelled, config, log, progress};
pub use output::{Content, IntoToolOutput, ResourceBody, ToolOutput};
pub use plugin::{Plugin, ToolAnnotations, ToolDefinition, ToolEntry};
pub use schema::{input_schema, output_schema};
pub use {schemars, serde, serde_json};

/// What a plugin needs in scope: the derives, the macros, and the result types.
pub mod prelude {
    pub use crate::{Content, ToolError, ToolOutput, export_plugin, tool};
    pub use schemars::JsonSchema;
    pub use serde::{Deserialize, Serialize};
}

/// Support for the macros' expansions; not a public API.
#[doc(hidden)]
pub mod __private {
    use crate::{CallError, ToolError, ToolOutput};
    use serde::Serialize;

    pub use crate::arguments::parse_arguments;
    pub use crate::schema::{empty_input_schema, input_schema, output_schema};

    /// A tool's doc comment as the description a model reads.
    pub fn description(doc: &str) -> String {
        crate::doc::unwrap_soft_breaks(doc)
    }

    /// A tool's `Err` value as the host's `failed` (or `invalid-arguments`) error.
    pub fn tool_failed(error: impl Into<ToolError>) -> CallError {
        error.into().into()
    }

    /// A structured result: the JSON as `structured`, and the same JSON as text.
    pub fn structured<T: Serialize>(value: &T) -> Result<ToolOutput, CallError> {
        let value = serde_json::to_value(value).map_err(|error| {
            CallError::Failed(format!("could not serialise the tool's result: {error}"))
        })?;
        Ok(ToolOutput::structured_json(value))
    }

    #[cfg(target_arch = "wasm32")]
    pub use crate::export::bindings;
    #[cfg(target_arch = "wasm32")]
    pub use crate::export::bindings::export;
    #[cfg(target_arch = "wasm32")]
    pub use crate::export::{Guest, WitCallError, WitCallResult, WitTool, call_tool, list_tools};
    #[cfg(target_arch = "wasm32")]
    pub use wit_bindgen;
}
