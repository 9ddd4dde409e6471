//! What a tool gives back: content blocks for the model, and optionally structured JSON.

use serde_json::Value;

/// One piece of a tool result (the WIT `content` variant).
#[derive(Clone, Debug, PartialEq)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// An image, e.g. `image/png`.
    Image { data: Vec<u8>, mime_type: String },
    /// Audio, e.g. `audio/wav`.
    Audio { data: Vec<u8>, mime_type: String },
    /// A link to a resource the client may fetch.
    ResourceLink {
        uri: String,
        name: String,
        description: Option<String>,
        mime_type: Option<String>,
    },
    /// A resource embedded in the result.
    Resource {
        uri: String,
        mime_type: Option<String>,
        body: ResourceBody,
    },
}

/// The body of an embedded resource.
#[derive(Clone, Debug, PartialEq)]
pub enum ResourceBody {
    Text(String),
    Binary(Vec<u8>),
}

impl Content {
    pub fn text(text: impl Into<String>) -> Self {
        Content::Text(text.into())
    }

    pub fn image(data: impl Into<Vec<u8>>, mime_type: impl Into<String>) -> Self {
        Content::Image {
            data: data.into(),
            mime_type: mime_type.into(),
        }
    }

    pub fn audio(data: impl Into<Vec<u8>>, mime_type: impl Into<String>) -> Self {
        Content::Audio {
            data: data.into(),
            mime_type: mime_type.into(),
        }
    }

    /// A link without description or MIME type; set those fields on the variant if needed.
    pub fn resource_link(uri: impl Into<String>, name: impl Into<String>) -> Self {
        Content::ResourceLink {
            uri: uri.into(),
            name: name.into(),
            description: None,
            mime_type: None,
        }
    }

    /// An embedded text resource.
    pub fn embedded_text(
        uri: impl Into<String>,
        mime_type: Option<&str>,
        text: impl Into<String>,
    ) -> Self {
        Content::Resource {
            uri: uri.into(),
            mime_type: mime_type.map(str::to_owned),
            body: ResourceBody::Text(text.into()),
        }
    }

    /// The text of a `Text` block, `None` for any other kind.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Content::Text(text) => Some(text),
            _ => None,
        }
    }
}

/// A full tool result (the WIT `call-result`). Return it from a tool for mixed content, or
/// to flag a soft error the model should see (`is_error`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ToolOutput {
    pub content: Vec<Content>,
    /// Structured result; must match the tool's output schema when it has one.
    pub structured: Option<Value>,
    /// The tool ran but the outcome is a failure the model should act on.
    pub is_error: bool,
}

impl ToolOutput {
    /// A result of one text block.
    pub fn text(text: impl Into<String>) -> Self {
        ToolOutput {
            content: vec![Content::text(text)],
            ..ToolOutput::default()
        }
    }

    /// A result of the given content blocks.
    pub fn from_content(content: impl IntoIterator<Item = Content>) -> Self {
        ToolOutput {
            content: content.into_iter().collect(),
            ..ToolOutput::default()
        }
    }

    /// A soft error: the call succeeded at the protocol level but `is_error` is set, so the model
    /// reads `message` as a failure report.
    pub fn error(message: impl Into<String>) -> Self {
        ToolOutput {
            is_error: true,
            ..ToolOutput::text(message)
        }
    }

    /// Appends a content block.
    pub fn with(mut self, content: Content) -> Self {
        self.content.push(content);
        self
    }

    /// Sets the structured result (no output schema is declared for `ToolOutput` tools).
    pub fn with_structured(mut self, value: Value) -> Self {
        self.structured = Some(value);
        self
    }

    /// All text blocks joined by newlines; handy in tests.
    pub fn text_content(&self) -> String {
        self.content
            .iter()
            .filter_map(Content::as_text)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Structured JSON plus the same JSON as text, as MCP asks for older clients.
    pub(crate) fn structured_json(value: Value) -> Self {
        ToolOutput {
            content: vec![Content::Text(value.to_string())],
            structured: Some(value),
            is_error: false,
        }
    }
}

/// A value a tool can return as-is. `#[tool]` uses it for `String`, `&str`, `Content`,
/// `Vec<Content>` and `ToolOutput`; every other return type is serialised as structured JSON.
pub trait IntoToolOutput {
    /// The JSON Schema of the structured result, if this type produces one.
    fn output_schema() -> Option<Value> {
        None
    }

    fn into_tool_output(self) -> ToolOutput;
}

impl IntoToolOutput for ToolOutput {
    fn into_tool_output(self) -> ToolOutput {
        self
    }
}

impl IntoToolOutput for String {
    fn into_tool_output(self) -> ToolOutput {
        ToolOutput::text(self)
    }
}

impl IntoToolOutput for &str {
    fn into_tool_output(self) -> ToolOutput {
        ToolOutput::text(self)
    }
}

impl IntoToolOutput for Content {
    fn into_tool_output(self) -> ToolOutput {
        ToolOutput::from_content([self])
    }
}

impl IntoToolOutput for Vec<Content> {
    fn into_tool_output(self) -> ToolOutput {
        ToolOutput::from_content(self)
    }
}
