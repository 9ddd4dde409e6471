//! `json`: query, validate, format and diff JSON, so a model does not have to eyeball
//! brackets. Documents may be passed as JSON values or as JSON text in a string.

mod diff;
mod path;

use capsule_sdk::prelude::*;
use serde_json::Value;

use crate::diff::Change;
use crate::path::Path;

/// A document argument: a JSON value, or a string holding JSON text. A string that starts with
/// `{` or `[` is parsed; any other string is taken as a JSON string value.
fn document(value: Value, argument: &str) -> Result<Value, ToolError> {
    match value {
        Value::String(text) if text.trim_start().starts_with(['{', '[']) => {
            serde_json::from_str(&text).map_err(|error| {
                ToolError::invalid_arguments(format!("`{argument}` is not valid JSON: {error}"))
            })
        }
        other => Ok(other),
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct QueryArgs {
    /// The JSON document: an object or array, or JSON text in a string.
    document: Value,
    /// A jq-style path: `.` (whole document), `.key`, `."odd key"`, `.["key"]`, `[0]`, `[-1]`
    /// (last), `[1:3]` (slice), `[]` (every element or value); chain them, as in
    /// `.items[].name`. A `?` after a step skips values of the wrong type instead of failing.
    path: String,
}

/// What a query yielded.
#[derive(Debug, Serialize, JsonSchema)]
struct QueryResults {
    /// Every value the path produced, in document order (one for a plain path, several after
    /// `[]`). A missing key or index yields `null`, as in jq.
    results: Vec<Value>,
}

/// Extract values from a JSON document with a jq-style path such as `.items[0].name` or
/// `.users[].email`. Use it to pull a few fields out of a large document instead of reading it
/// all.
#[tool(title = "Query JSON", read_only, idempotent)]
fn query(args: QueryArgs) -> Result<QueryResults, ToolError> {
    let path = Path::parse(&args.path).map_err(ToolError::invalid_arguments)?;
    let document = document(args.document, "document")?;
    let results = path
        .evaluate(&document)
        .map_err(|error| ToolError::new(format!("the path `{}` failed: {error}", args.path)))?;
    Ok(QueryResults { results })
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ValidateArgs {
    /// The JSON value to check, or JSON text in a string.
    document: Value,
    /// The JSON Schema (drafts 4, 6, 7, 2019-09 and 2020-12; `$schema` picks the draft, 2020-12
    /// if absent), as a JSON object or JSON text in a string. Remote `$ref`s are not fetched.
    schema: Value,
}

/// The outcome of a validation.
#[derive(Debug, Serialize, JsonSchema)]
struct Validation {
    /// True when the document satisfies the schema.
    valid: bool,
    /// Each violation (at most 100), empty when valid.
    errors: Vec<Violation>,
}

/// One way the document breaks the schema.
#[derive(Debug, Serialize, JsonSchema)]
struct Violation {
    /// JSON Pointer to the offending value ("" is the whole document).
    path: String,
    /// What is wrong with it.
    message: String,
    /// JSON Pointer to the schema keyword that failed.
    schema_path: String,
}

const MAX_VIOLATIONS: usize = 100;

/// Check a JSON document against a JSON Schema and list every violation with its location.
/// Use it before handing generated JSON to another system.
#[tool(title = "Validate JSON", read_only, idempotent)]
fn validate(args: ValidateArgs) -> Result<Validation, ToolError> {
    let schema = document(args.schema, "schema")?;
    let instance = document(args.document, "document")?;
    let validator = jsonschema::validator_for(&schema).map_err(|error| {
        ToolError::invalid_arguments(format!("the schema is not a valid JSON Schema: {error}"))
    })?;
    let errors: Vec<Violation> = validator
        .iter_errors(&instance)
        .take(MAX_VIOLATIONS)
        .map(|error| Violation {
            path: error.instance_path().to_string(),
            message: error.to_string(),
            schema_path: error.schema_path().to_string(),
        })
        .collect();
    Ok(Validation {
        valid: errors.is_empty(),
        errors,
    })
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FormatArgs {
    /// The JSON to format: JSON text in a string, or a JSON value.
    json: Value,
    /// Spaces per indentation level, 0 to 8 (default 2). 0 gives minified JSON on one line.
    #[serde(default)]
    indent: Option<u8>,
    /// Sort object keys alphabetically, at every depth (default false: keep the order given).
    #[serde(default)]
    sort_keys: Option<bool>,
}

/// Pretty-print JSON with a chosen indentation, or minify it, optionally sorting keys. Also a
/// quick syntax check: invalid JSON text is reported with its line and column.
#[tool(title = "Format JSON", read_only, idempotent)]
fn format(args: FormatArgs) -> Result<String, ToolError> {
    let indent = args.indent.unwrap_or(2);
    if indent > 8 {
        return Err(ToolError::invalid_arguments(
            "indent must be between 0 and 8",
        ));
    }
    let mut value = match args.json {
        Value::String(text) => serde_json::from_str(&text)
            .map_err(|error| ToolError::invalid_arguments(format!("not valid JSON: {error}")))?,
        other => other,
    };
    if args.sort_keys.unwrap_or(false) {
        sort_keys(&mut value);
    }
    if indent == 0 {
        return Ok(value.to_string());
    }
    let spaces = " ".repeat(usize::from(indent));
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(spaces.as_bytes());
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    value.serialize(&mut serializer)?;
    Ok(String::from_utf8(out)?)
}

fn sort_keys(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.sort_keys();
            map.values_mut().for_each(sort_keys);
        }
        Value::Array(items) => items.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DiffArgs {
    /// The original JSON value, or JSON text in a string.
    before: Value,
    /// The new JSON value, or JSON text in a string.
    after: Value,
}

/// The differences between two documents.
#[derive(Debug, Serialize, JsonSchema)]
struct Differences {
    /// True when the documents are equal (key order and `1` vs `1.0` do not matter).
    equal: bool,
    /// Each difference, at most 200, depth first.
    changes: Vec<Change>,
    /// How many differences there are in all.
    total: usize,
}

const MAX_CHANGES: usize = 200;

/// Compare two JSON documents and list what was added, removed or changed, each at its JSON
/// Pointer path. Arrays are compared position by position.
#[tool(title = "Diff JSON", read_only, idempotent)]
fn diff(args: DiffArgs) -> Result<Differences, ToolError> {
    let before = document(args.before, "before")?;
    let after = document(args.after, "after")?;
    let mut changes = diff::diff(&before, &after);
    let total = changes.len();
    changes.truncate(MAX_CHANGES);
    Ok(Differences {
        equal: total == 0,
        changes,
        total,
    })
}

export_plugin!(query, validate, format, diff);

#[cfg(test)]
mod tests {
    use super::*;
    use capsule_sdk::{CallError, ToolOutput};
    use serde_json::json;

    fn call(name: &str, arguments: Value) -> Result<ToolOutput, CallError> {
        CAPSULE_PLUGIN.call(name, &arguments.to_string())
    }

    fn structured(name: &str, arguments: Value) -> Value {
        call(name, arguments).unwrap().structured.unwrap()
    }

    #[test]
    fn every_tool_has_object_schemas() {
        for tool in CAPSULE_PLUGIN.definitions() {
            assert_eq!(tool.input_schema["type"], "object", "{}", tool.name);
            if let Some(output) = &tool.output_schema {
                assert_eq!(output["type"], "object", "{}", tool.name);
            }
        }
    }

    #[test]
    fn query_accepts_values_and_text() {
        let doc = json!({"items": [{"name": "a"}, {"name": "b"}]});
        assert_eq!(
            structured("query", json!({"document": doc, "path": ".items[].name"})),
            json!({"results": ["a", "b"]})
        );
        assert_eq!(
            structured(
                "query",
                json!({"document": doc.to_string(), "path": ".items[-1]"})
            ),
            json!({"results": [{"name": "b"}]})
        );
        assert_eq!(
            structured("query", json!({"document": "plain", "path": "."})),
            json!({"results": ["plain"]})
        );
    }

    #[test]
    fn query_errors_are_explained() {
        assert!(matches!(
            call("query", json!({"document": {}, "path": "items"})),
            Err(CallError::InvalidArguments(message)) if message.contains("a path starts with `.`")
        ));
        assert_eq!(
            call("query", json!({"document": {"a": 1}, "path": ".a.b"})),
            Err(CallError::Failed(
                "the path `.a.b` failed: cannot index number with \"b\"".into()
            ))
        );
        assert!(matches!(
            call("query", json!({"document": "{oops", "path": "."})),
            Err(CallError::InvalidArguments(message)) if message.starts_with("`document` is not valid JSON")
        ));
    }

    #[test]
    fn validate_lists_violations() {
        let schema = json!({
            "type": "object",
            "properties": {"age": {"type": "integer", "minimum": 0}, "name": {"type": "string"}},
            "required": ["name"]
        });
        assert_eq!(
            structured(
                "validate",
                json!({"document": {"name": "Ada", "age": 36}, "schema": schema})
            ),
            json!({"valid": true, "errors": []})
        );
        let result = structured(
            "validate",
            json!({"document": {"age": -1}, "schema": schema.to_string()}),
        );
        assert_eq!(result["valid"], false);
        let errors = result["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 2, "{result:#}");
        let age = errors.iter().find(|e| e["path"] == "/age").unwrap();
        assert_eq!(age["schema_path"], "/properties/age/minimum");
        assert!(age["message"].as_str().unwrap().contains("-1"), "{age}");
        let root = errors.iter().find(|e| e["path"] == "").unwrap();
        assert!(root["message"].as_str().unwrap().contains("name"), "{root}");
    }

    #[test]
    fn validate_rejects_bad_schemas() {
        assert!(matches!(
            call("validate", json!({"document": 1, "schema": {"type": "nope"}})),
            Err(CallError::InvalidArguments(message)) if message.starts_with("the schema is not a valid JSON Schema")
        ));
    }

    #[test]
    fn format_pretty_prints_minifies_and_sorts() {
        let text = r#"{"b": 1, "a": [1, 2], "c": {"z": null, "y": true}}"#;
        assert_eq!(
            call("format", json!({"json": text}))
                .unwrap()
                .text_content(),
            "{\n  \"b\": 1,\n  \"a\": [\n    1,\n    2\n  ],\n  \"c\": {\n    \"z\": null,\n    \"y\": true\n  }\n}"
        );
        assert_eq!(
            call("format", json!({"json": text, "indent": 0}))
                .unwrap()
                .text_content(),
            r#"{"b":1,"a":[1,2],"c":{"z":null,"y":true}}"#
        );
        assert_eq!(
            call(
                "format",
                json!({"json": text, "indent": 0, "sort_keys": true})
            )
            .unwrap()
            .text_content(),
            r#"{"a":[1,2],"b":1,"c":{"y":true,"z":null}}"#
        );
        assert_eq!(
            call("format", json!({"json": {"x": [1]}, "indent": 4}))
                .unwrap()
                .text_content(),
            "{\n    \"x\": [\n        1\n    ]\n}"
        );
    }

    #[test]
    fn format_reports_syntax_errors_with_position() {
        assert_eq!(
            call("format", json!({"json": "{\"a\": 1,}"})),
            Err(CallError::InvalidArguments(
                "not valid JSON: trailing comma at line 1 column 9".into()
            ))
        );
        assert!(matches!(
            call("format", json!({"json": "{}", "indent": 9})),
            Err(CallError::InvalidArguments(_))
        ));
    }

    #[test]
    fn diff_reports_changes() {
        let result = structured(
            "diff",
            json!({"before": {"a": 1, "b": [1, 2]}, "after": "{\"a\": 2, \"b\": [1, 2], \"c\": 3}"}),
        );
        assert_eq!(
            result,
            json!({
                "equal": false,
                "total": 2,
                "changes": [
                    {"path": "/a", "kind": "changed", "before": 1, "after": 2},
                    {"path": "/c", "kind": "added", "after": 3}
                ]
            })
        );
        assert_eq!(
            structured(
                "diff",
                json!({"before": {"a": 1, "b": 2}, "after": {"b": 2, "a": 1.0}})
            ),
            json!({"equal": true, "total": 0, "changes": []})
        );
    }
}
