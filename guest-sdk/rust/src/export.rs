//! The WIT side, compiled for wasm only: bindings generated from `wit/capsule.wit`, and the
//! conversions between them and the SDK's plain Rust types. `export_plugin!` implements
//! [`Guest`] with [`list_tools`] and [`call_tool`], then calls the generated `export!`.

#[allow(unsafe_code, clippy::all, missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "export",
        // The export macro expands in the plugin crate, so it must name everything absolutely.
        default_bindings_module: "::capsule_sdk::__private::bindings",
        runtime_path: "::capsule_sdk::__private::wit_bindgen::rt",
    });
}

use crate::{
    CallError, Content, Plugin, ResourceBody, ToolAnnotations, ToolDefinition, ToolOutput,
};
use bindings::capsule::plugin::types as wit;

pub use bindings::exports::capsule::plugin::tools::Guest;
pub use wit::{CallError as WitCallError, CallResult as WitCallResult, Tool as WitTool};

/// `list-tools`: every definition, schemas as JSON text.
pub fn list_tools(plugin: &Plugin) -> Vec<WitTool> {
    plugin.definitions().into_iter().map(tool).collect()
}

/// `call-tool`: dispatch by name and convert the outcome.
pub fn call_tool(
    plugin: &Plugin,
    name: &str,
    arguments: &str,
) -> Result<WitCallResult, WitCallError> {
    plugin
        .call(name, arguments)
        .map(call_result)
        .map_err(call_error)
}

fn tool(definition: ToolDefinition) -> WitTool {
    WitTool {
        name: definition.name,
        title: definition.title,
        description: definition.description,
        input_schema: definition.input_schema.to_string(),
        output_schema: definition.output_schema.map(|schema| schema.to_string()),
        annotations: definition.annotations.map(annotations),
    }
}

fn annotations(annotations: ToolAnnotations) -> wit::ToolAnnotations {
    wit::ToolAnnotations {
        read_only: annotations.read_only,
        destructive: annotations.destructive,
        idempotent: annotations.idempotent,
        open_world: annotations.open_world,
    }
}

fn call_result(output: ToolOutput) -> WitCallResult {
    WitCallResult {
        content: output.content.into_iter().map(content).collect(),
        structured: output.structured.map(|value| value.to_string()),
        is_error: output.is_error,
    }
}

fn content(content: Content) -> wit::Content {
    match content {
        Content::Text(text) => wit::Content::Text(text),
        Content::Image { data, mime_type } => wit::Content::Image(wit::Blob { data, mime_type }),
        Content::Audio { data, mime_type } => wit::Content::Audio(wit::Blob { data, mime_type }),
        Content::ResourceLink {
            uri,
            name,
            description,
            mime_type,
        } => wit::Content::ResourceLink(wit::Link {
            uri,
            name,
            description,
            mime_type,
        }),
        Content::Resource {
            uri,
            mime_type,
            body,
        } => wit::Content::Resource(wit::Embedded {
            uri,
            mime_type,
            body: match body {
                ResourceBody::Text(text) => wit::ResourceBody::Text(text),
                ResourceBody::Binary(data) => wit::ResourceBody::Binary(data),
            },
        }),
    }
}

fn call_error(error: CallError) -> WitCallError {
    match error {
        CallError::UnknownTool(message) => WitCallError::UnknownTool(message),
        CallError::InvalidArguments(message) => WitCallError::InvalidArguments(message),
        CallError::Failed(message) => WitCallError::Failed(message),
    }
}
