//! Plugin results → MCP results. Plugin output is untrusted: structured content must be
//! valid JSON and match the tool's output schema, or the client gets an error result.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rmcp::model::{CallToolResult, ContentBlock, Resource, ResourceContents};
use serde_json::Value;

use crate::registry::RegisteredTool;
use crate::runtime::bindings::{CallResult, Content, ResourceBody};

/// Converts a plugin's result for `tool`, checking it against the output schema.
pub fn tool_result(tool: &RegisteredTool, result: CallResult) -> CallToolResult {
    let content: Vec<ContentBlock> = result.content.into_iter().map(content_block).collect();
    let structured = match result.structured {
        None => None,
        Some(text) => match serde_json::from_str::<Value>(&text) {
            Ok(value) => Some(value),
            Err(err) => {
                return error_result(format!(
                    "plugin `{}` returned structured content that is not valid JSON: {err}",
                    tool.plugin.name
                ));
            }
        },
    };
    if !result.is_error {
        match &structured {
            Some(value) => {
                if let Err(message) = tool.check_output(value) {
                    return error_result(message);
                }
            }
            None if tool.has_output_schema() => {
                return error_result(format!(
                    "plugin `{}` declares an output schema for `{}` but returned no structured content",
                    tool.plugin.name, tool.exposed_name
                ));
            }
            None => {}
        }
    }
    let mut out = if result.is_error {
        CallToolResult::error(content)
    } else {
        CallToolResult::success(content)
    };
    out.structured_content = structured;
    out
}

/// A result with `isError: true` and one text block: for tool errors and sandbox faults.
pub fn error_result(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

fn content_block(content: Content) -> ContentBlock {
    match content {
        Content::Text(text) => ContentBlock::text(text),
        Content::Image(blob) => ContentBlock::image(STANDARD.encode(&blob.data), blob.mime_type),
        Content::Audio(blob) => ContentBlock::audio(STANDARD.encode(&blob.data), blob.mime_type),
        Content::ResourceLink(link) => {
            let mut resource = Resource::new(link.uri, link.name);
            resource.description = link.description;
            resource.mime_type = link.mime_type;
            ContentBlock::resource_link(resource)
        }
        Content::Resource(embedded) => ContentBlock::resource(match embedded.body {
            ResourceBody::Text(text) => ResourceContents::TextResourceContents {
                uri: embedded.uri,
                mime_type: embedded.mime_type,
                text,
                meta: None,
            },
            ResourceBody::Binary(data) => ResourceContents::BlobResourceContents {
                uri: embedded.uri,
                mime_type: embedded.mime_type,
                blob: STANDARD.encode(&data),
                meta: None,
            },
        }),
    }
}
