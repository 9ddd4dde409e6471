//! The JSON Schema of `capsule.toml`, derived from the raw types (`schemars`): field doc
//! comments are the descriptions, sizes and durations are strings with patterns. Editors
//! read it through a `#:schema ./capsule.schema.json` first line; the environment
//! overrides, `capsule config show` and the docs' key table are all driven by it, so a new
//! section gets them by deriving `JsonSchema` on its raw type.
//!
//! Beyond standard keywords, a key may carry (through `#[schemars(extend(...))]`):
//! `x-flag` (its command-line flag), `x-env-alias` (an older environment variable that
//! also sets it), `x-path` (a path: from the environment or the command line it is
//! relative to the current folder) and `x-secret` (never printed).

use serde_json::Value;

use super::RawConfig;

/// The schema's `$id`: where the committed copy lives in the repository.
pub const SCHEMA_FILE: &str = "capsule.schema.json";

/// The JSON Schema (draft-07) of `capsule.toml`.
pub fn json_schema() -> Value {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let mut schema = generator.into_root_schema_for::<RawConfig>().to_value();
    without_null(&mut schema);
    if let Some(root) = schema.as_object_mut() {
        root.insert("title".into(), "capsule.toml".into());
        root.insert(
            "description".into(),
            "Configuration of Capsule, the WebAssembly plugin host for MCP tools. Every key can also be set by a CAPSULE_* environment variable (see docs/configuration.md).".into(),
        );
    }
    schema
}

/// Removes the `null` that `schemars` allows for `Option` fields: TOML has no null, a key
/// is either written or left out.
fn without_null(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if let [only] = types.as_slice() {
                    let only = only.clone();
                    map.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(options)) = map.get("anyOf") {
                let kept: Vec<Value> = options
                    .iter()
                    .filter(|o| o.get("type").is_none_or(|t| t != "null"))
                    .cloned()
                    .collect();
                if kept.len() == 1 && options.len() == 2 {
                    map.remove("anyOf");
                    if let Value::Object(inner) = &kept[0] {
                        for (k, v) in inner {
                            map.entry(k.clone()).or_insert_with(|| v.clone());
                        }
                    }
                }
            }
            map.values_mut().for_each(without_null);
        }
        Value::Array(items) => items.iter_mut().for_each(without_null),
        _ => {}
    }
}

/// The schema as committed in `capsule.schema.json`: pretty JSON with a final newline.
pub fn json_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema()).unwrap_or_default();
    text.push('\n');
    text
}

/// `schema` with its `$ref` followed (also one wrapped in a one-element `allOf`, as
/// draft-07 needs beside a description), against `root`'s definitions.
pub(crate) fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    let mut schema = schema;
    for _ in 0..8 {
        if let Some([only]) = schema
            .get("allOf")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        {
            schema = only;
        }
        let Some(target) = schema.get("$ref").and_then(Value::as_str) else {
            break;
        };
        match target
            .strip_prefix('#')
            .and_then(|pointer| root.pointer(pointer))
        {
            Some(found) => schema = found,
            None => break,
        }
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed `capsule.schema.json` is what the code derives. Regenerate it with
    /// `capsule config schema > capsule.schema.json`.
    #[test]
    fn the_committed_schema_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../capsule.schema.json");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == json_schema_text(),
            "{path} is stale; regenerate it: cargo run -p capsule -- config schema > capsule.schema.json"
        );
    }

    #[test]
    fn sizes_and_durations_are_strings_with_patterns_and_descriptions_come_from_doc_comments() {
        let schema = json_schema();
        let runtime = resolve(&schema, &schema["properties"]["runtime"]);
        let ceiling = resolve(&schema, &runtime["properties"]["memory-ceiling"]);
        assert_eq!(ceiling["title"], "size");
        assert_eq!(runtime["properties"]["memory-ceiling"]["default"], "512MiB");
        assert!(
            runtime["properties"]["max-concurrent-calls"]["description"]
                .as_str()
                .is_some_and(|d| d.starts_with("Calls running at once")),
            "{runtime}"
        );
        let limits = resolve(&schema, &schema["properties"]["limits"]);
        assert_eq!(
            resolve(&schema, &limits["properties"]["timeout"])["title"],
            "duration"
        );
        assert_eq!(runtime["additionalProperties"], false);
    }
}
