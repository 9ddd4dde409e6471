//! Tool schemas compiled once per text while any tool uses them (issue #19): the tools of
//! a plugin reloaded with a new build, or of plugins built from one SDK, often carry the
//! same schemas, and compiling a JSON Schema (with its check against the meta-schema) is
//! the largest part of registering a tool. A schema is kept only as long as a tool holds
//! it (weak references, pruned as the table grows).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use rmcp::model::JsonObject;
use serde_json::Value;

/// A tool's schema, parsed and compiled.
pub struct Schema {
    /// The schema as `tools/list` shows it.
    pub object: Arc<JsonObject>,
    /// Its validator.
    pub validator: jsonschema::Validator,
}

/// Largest input or output schema accepted, in bytes of JSON; a tool with a larger one is
/// skipped.
pub const MAX_SCHEMA: usize = 64 << 10;

/// The schemas compiled so far, by their text.
static COMPILED: Mutex<Option<HashMap<String, Weak<Schema>>>> = Mutex::new(None);

/// Parses a schema (JSON text) of at most [`MAX_SCHEMA`] bytes, requires
/// `"type": "object"` (MCP demands it) and compiles it, or returns the schema of the same
/// text that a tool already holds. `what` names it in errors.
pub fn compile(text: &str, what: &str) -> Result<Arc<Schema>, String> {
    if text.len() > MAX_SCHEMA {
        return Err(format!(
            "{what} is {} bytes; at most {MAX_SCHEMA} bytes are accepted",
            text.len()
        ));
    }
    if let Some(known) = lookup(text) {
        return Ok(known);
    }
    let value: Value =
        serde_json::from_str(text).map_err(|err| format!("{what} is not valid JSON: {err}"))?;
    let Value::Object(object) = value else {
        return Err(format!("{what} must be a JSON object"));
    };
    if object.get("type") != Some(&Value::String("object".into())) {
        return Err(format!(
            "{what} must have \"type\": \"object\" (MCP tools take and return JSON objects)"
        ));
    }
    let object = Value::Object(object);
    let validator = jsonschema::validator_for(&object)
        .map_err(|err| format!("{what} is not a valid JSON Schema: {err}"))?;
    let Value::Object(object) = object else {
        unreachable!("built as an object just above")
    };
    let schema = Arc::new(Schema {
        object: Arc::new(object),
        validator,
    });
    remember(text, &schema);
    Ok(schema)
}

fn lookup(text: &str) -> Option<Arc<Schema>> {
    let compiled = COMPILED.lock().unwrap_or_else(|e| e.into_inner());
    compiled.as_ref()?.get(text)?.upgrade()
}

fn remember(text: &str, schema: &Arc<Schema>) {
    let mut compiled = COMPILED.lock().unwrap_or_else(|e| e.into_inner());
    let table = compiled.get_or_insert_with(HashMap::new);
    // Pruned whenever it doubles, so it stays within twice the schemas tools hold.
    if table.len() >= 64 && table.len().is_power_of_two() {
        table.retain(|_, held| held.strong_count() > 0);
    }
    table.insert(text.to_owned(), Arc::downgrade(schema));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_text_is_compiled_once_while_it_is_held() {
        let text = r#"{"type":"object","properties":{"shared-schema-test":{"type":"string"}}}"#;
        let first = compile(text, "input schema").expect("compiles");
        let again = compile(text, "input schema").expect("compiles");
        assert!(Arc::ptr_eq(&first, &again), "the same compiled schema");
        let weak = Arc::downgrade(&first);
        drop((first, again));
        assert!(weak.upgrade().is_none(), "not kept once no tool holds it");
        let fresh = compile(text, "input schema").expect("compiles again");
        assert!(
            fresh
                .validator
                .is_valid(&serde_json::json!({"shared-schema-test": "x"}))
        );
        assert!(
            !fresh
                .validator
                .is_valid(&serde_json::json!({"shared-schema-test": 1}))
        );
    }

    #[test]
    fn bad_schemas_are_refused_with_what_is_wrong() {
        let refused = |text: &str| compile(text, "input schema").err().unwrap_or_default();
        assert_eq!(refused("[1]"), "input schema must be a JSON object");
        assert_eq!(
            refused(r#"{"type":"string"}"#),
            "input schema must have \"type\": \"object\" (MCP tools take and return JSON objects)"
        );
        assert!(refused("{").starts_with("input schema is not valid JSON: "));
        assert!(
            refused(r#"{"type":"object","minProperties":-1}"#)
                .starts_with("input schema is not a valid JSON Schema: ")
        );
    }
}
