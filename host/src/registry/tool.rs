//! A tool as the registry serves it: the MCP descriptor plus compiled JSON Schema
//! validators, built from what a plugin's `list-tools` returned.

use std::sync::Arc;

use rmcp::model::ToolAnnotations;
use serde_json::Value;

use super::schemas::{self, Schema};
use crate::auth::access::ToolAccess;
use crate::policy::PluginPolicy;
use crate::runtime::Plugin;
use crate::runtime::bindings;

/// One tool of one plugin, under the name clients see.
pub struct RegisteredTool {
    /// The name clients call (`<plugin>_<tool>`, unique in the tool set).
    pub exposed_name: String,
    /// The plugin's own name for it.
    pub tool_name: String,
    /// The plugin that serves it.
    pub plugin: Arc<Plugin>,
    /// What `tools/list` shows.
    pub descriptor: rmcp::model::Tool,
    /// The scopes a caller needs (any one) and the rate limit over all callers.
    pub access: ToolAccess,
    /// Its metric handles, resolved once ([`crate::metrics`]).
    pub metrics: crate::metrics::ToolSlot,
    input: Arc<Schema>,
    output: Option<Arc<Schema>>,
}

/// Most tools served from one plugin; `list-tools` entries past it are skipped.
pub const MAX_TOOLS: usize = 1000;
/// Longest tool description served, in bytes; longer ones are cut on a character boundary.
pub const MAX_DESCRIPTION: usize = 8 << 10;
/// Longest tool title served, in bytes; longer ones are cut on a character boundary.
pub const MAX_TITLE: usize = 256;
pub use super::schemas::MAX_SCHEMA;

impl RegisteredTool {
    /// Checks a plugin's tool (its name must have passed [`super::naming::check`]) and compiles its
    /// schemas. The error says what is wrong; `warnings` gets what was fixed on the way
    /// (an over-long description or title is cut).
    pub(crate) fn new(
        plugin: Arc<Plugin>,
        tool: &bindings::Tool,
        exposed_name: String,
        warnings: &mut Vec<String>,
    ) -> Result<Self, String> {
        let input = schemas::compile(&tool.input_schema, "input schema")?;
        let output = match &tool.output_schema {
            Some(text) => Some(schemas::compile(text, "output schema")?),
            None => None,
        };
        if tool.description.trim().is_empty() {
            tracing::warn!(plugin = %plugin.name, tool = %tool.name, "tool has no description; models will not know when to call it");
        }
        let description = bounded(&tool.description, MAX_DESCRIPTION, "description", warnings);
        let title = tool
            .title
            .as_deref()
            .map(|title| bounded(title, MAX_TITLE, "title", warnings));
        let mut descriptor =
            rmcp::model::Tool::new(exposed_name.clone(), description, input.object.clone());
        descriptor.title = title;
        descriptor.output_schema = output.as_ref().map(|schema| schema.object.clone());
        descriptor.annotations = annotations(tool.annotations.as_ref(), &plugin.policy);
        Ok(Self {
            exposed_name,
            tool_name: tool.name.clone(),
            access: plugin.policy.access.for_tool(&tool.name),
            plugin,
            descriptor,
            metrics: Default::default(),
            input,
            output,
        })
    }

    /// Checks call arguments against the input schema. The error lists every violation
    /// with its location, phrased for a model to correct the call.
    pub fn check_arguments(&self, arguments: &Value) -> Result<(), String> {
        violations(&self.input.validator, arguments).map_err(|problems| {
            format!(
                "invalid arguments for `{}`: {problems}. The input schema is in tools/list.",
                self.exposed_name
            )
        })
    }

    /// Checks a structured result against the output schema, if the tool has one.
    pub fn check_output(&self, structured: &Value) -> Result<(), String> {
        match &self.output {
            Some(schema) => violations(&schema.validator, structured).map_err(|problems| {
                format!(
                    "plugin `{}` returned structured content that does not match the output schema of `{}`: {problems}",
                    self.plugin.name, self.exposed_name
                )
            }),
            None => Ok(()),
        }
    }

    /// Whether successful results must carry structured content.
    pub fn has_output_schema(&self) -> bool {
        self.output.is_some()
    }
}

fn violations(validator: &jsonschema::Validator, value: &Value) -> Result<(), String> {
    let problems: Vec<String> = validator
        .iter_errors(value)
        .take(10)
        .map(|err| {
            let at = err.instance_path().to_string();
            if at.is_empty() {
                err.to_string()
            } else {
                format!("at `{at}`: {err}")
            }
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// `text`, cut to at most `max` bytes on a character boundary (with `…` appended) when
/// longer; the cut is reported in `warnings`.
fn bounded(text: &str, max: usize, what: &str, warnings: &mut Vec<String>) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    warnings.push(format!(
        "{what} is {} bytes; cut to the first {max} bytes (at most {max} are served)",
        text.len()
    ));
    let mut cut = text[..text.floor_char_boundary(max)].to_string();
    cut.push('…');
    cut
}

/// The plugin's own hints, overridden by its grants wherever they claim less than the
/// grants allow: the host cannot check what a tool does, only what it can reach, and clients
/// may auto-approve tools that say they are read-only or harmless. A plugin that can write
/// files is not read-only and may be destructive (`readOnlyHint: false`,
/// `destructiveHint: true`, whatever it states); one with network access reaches an open
/// world (`openWorldHint: true`). Other hints are kept as stated.
fn annotations(
    stated: Option<&bindings::ToolAnnotations>,
    policy: &PluginPolicy,
) -> Option<ToolAnnotations> {
    let mut out = ToolAnnotations::new();
    if let Some(a) = stated {
        out.read_only_hint = a.read_only;
        out.destructive_hint = a.destructive;
        out.idempotent_hint = a.idempotent;
        out.open_world_hint = a.open_world;
    }
    if policy.can_write() {
        out.read_only_hint = Some(false);
        out.destructive_hint = Some(true);
    }
    if policy.has_network() {
        out.open_world_hint = Some(true);
    }
    let empty = out.read_only_hint.is_none()
        && out.destructive_hint.is_none()
        && out.idempotent_hint.is_none()
        && out.open_world_hint.is_none();
    (!empty).then_some(out)
}
