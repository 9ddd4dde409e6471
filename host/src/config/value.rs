//! Values given as text (an environment variable, a command-line flag) read by the type
//! their key has in the JSON Schema, and that type described for people.

use serde_json::Value;

use super::schema::resolve;

/// Reads `text` as a value of `schema` (a key's schema within `root`). The error is what
/// the key expects, e.g. "a whole number from 0 to 4294967295".
pub fn from_text(root: &Value, schema: &Value, text: &str) -> Result<Value, String> {
    let resolved = resolve(root, schema);
    let types = types(root, resolved);
    let has = |t: &str| types.iter().any(|x| x == t);
    let trimmed = text.trim();
    let candidate = if has("boolean") && matches!(trimmed, "true" | "false" | "1" | "0") {
        Value::Bool(matches!(trimmed, "true" | "1"))
    } else if has("integer") && trimmed.parse::<i64>().is_ok() {
        trimmed
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or(Value::Null)
    } else if has("integer") && !has("string") && trimmed.parse::<u64>().is_ok() {
        trimmed
            .parse::<u64>()
            .map(Value::from)
            .unwrap_or(Value::Null)
    } else if has("number") && trimmed.parse::<f64>().is_ok_and(f64::is_finite) {
        trimmed
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number)
    } else if (has("array") || has("object"))
        && (trimmed.starts_with('[') || trimmed.starts_with('{'))
    {
        toml::from_str::<toml::Table>(&format!("v = {trimmed}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .and_then(|v| serde_json::to_value(v).ok())
            .unwrap_or(Value::Null)
    } else if has("array") {
        Value::Array(
            trimmed
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_string()))
                .collect(),
        )
    } else if has("string") {
        Value::String(text.to_string())
    } else {
        Value::Null
    };
    if is_valid(root, resolved, &candidate) {
        Ok(candidate)
    } else {
        Err(expected(root, schema))
    }
}

/// Whether `value` fits `schema`, including the integer formats (`uint32`, …) that JSON
/// Schema validators do not check. A schema of a type and annotations only is checked
/// here; any other is compiled with the definitions it refers to (compiling the whole
/// config schema for each override took a good part of a start).
fn is_valid(root: &Value, schema: &Value, value: &Value) -> bool {
    if !fits_format(schema, value) || value.is_null() {
        return false;
    }
    if let Some(object) = schema.as_object()
        && object.iter().all(|(keyword, v)| is_annotation(keyword, v))
    {
        return match object.get("type") {
            Some(Value::String(t)) => has_type(value, t),
            Some(Value::Array(ts)) => ts
                .iter()
                .filter_map(Value::as_str)
                .any(|t| has_type(value, t)),
            _ => true,
        };
    }
    let mut standalone = schema.clone();
    let definitions = referenced_definitions(root, schema);
    if let Some(object) = standalone.as_object_mut()
        && !definitions.is_empty()
    {
        object.insert("definitions".into(), Value::Object(definitions));
    }
    jsonschema::validator_for(&standalone).is_ok_and(|v| v.is_valid(value))
}

/// Whether `value` fits the unsigned integer `format` of `schema`, if it has one.
fn fits_format(schema: &Value, value: &Value) -> bool {
    match (schema.get("format").and_then(Value::as_str), value.as_u64()) {
        (Some("uint32"), Some(n)) => u32::try_from(n).is_ok(),
        (Some("uint16"), Some(n)) => u16::try_from(n).is_ok(),
        (Some("uint8"), Some(n)) => u8::try_from(n).is_ok(),
        _ => true,
    }
}

/// Whether `keyword` (with `value`) constrains nothing besides `type` (checked by
/// [`has_type`]): an annotation, or a numeric `format`, which validators ignore (the
/// unsigned ones are checked by [`fits_format`]).
fn is_annotation(keyword: &str, value: &Value) -> bool {
    match keyword {
        "type" | "description" | "default" | "title" | "examples" => true,
        "format" => value.as_str().is_some_and(|format| {
            ["uint", "int", "float", "double"]
                .iter()
                .any(|numeric| format.starts_with(numeric))
        }),
        _ => keyword.starts_with("x-"),
    }
}

/// Whether `value` is of the JSON Schema type `name`.
fn has_type(value: &Value, name: &str) -> bool {
    match name {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => false,
    }
}

/// The definitions of `root` that `schema` refers to (`#/definitions/NAME`), directly or
/// through other definitions.
fn referenced_definitions(root: &Value, schema: &Value) -> serde_json::Map<String, Value> {
    let mut found = serde_json::Map::new();
    let mut pending = vec![schema];
    while let Some(next) = pending.pop() {
        match next {
            Value::Object(object) => {
                if let Some(name) = object
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|target| target.strip_prefix("#/definitions/"))
                    && !found.contains_key(name)
                    && let Some(definition) = root.get("definitions").and_then(|d| d.get(name))
                {
                    found.insert(name.to_string(), definition.clone());
                    pending.push(definition);
                }
                pending.extend(object.values());
            }
            Value::Array(items) => pending.extend(items),
            _ => {}
        }
    }
    found
}

/// The JSON types `schema` allows (following `$ref` and `anyOf`/`oneOf`).
fn types(root: &Value, schema: &Value) -> Vec<String> {
    let schema = resolve(root, schema);
    let mut out: Vec<String> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    for combinator in ["anyOf", "oneOf"] {
        for option in schema
            .get(combinator)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.extend(types(root, option));
        }
    }
    if out.is_empty() && (schema.get("enum").is_some() || schema.get("const").is_some()) {
        out.push("string".into());
    }
    out
}

/// What a key of `schema` expects, for an error message.
pub fn expected(root: &Value, schema: &Value) -> String {
    let resolved = resolve(root, schema);
    match type_name(root, schema).as_str() {
        "size" => "a size: a number of bytes or a string such as \"64MiB\"".into(),
        "duration" => "a duration such as \"10s\" or \"250ms\"".into(),
        "boolean" => "true or false".into(),
        "integer" => match resolved.get("format").and_then(Value::as_str) {
            Some("uint32") => "a whole number from 0 to 4294967295".into(),
            Some("uint64") => "a whole number from 0 to 18446744073709551615".into(),
            _ => "a whole number".into(),
        },
        "number" => match (
            resolved.get("minimum").and_then(Value::as_f64),
            resolved.get("maximum").and_then(Value::as_f64),
        ) {
            (Some(min), Some(max)) => format!("a number from {min} to {max}"),
            _ => "a number".into(),
        },
        "string" | "path" => "a string".into(),
        list if list.starts_with("list") => {
            format!("a {list}: comma-separated, or a TOML array such as [\"a\", \"b\"]")
        }
        other => other.to_string(),
    }
}

/// A short name of the key's type, for the docs' table: `integer`, `size`, `duration`,
/// `boolean`, `string`, `path`, `list of strings`, `table`, `one of a, b`.
pub fn type_name(root: &Value, schema: &Value) -> String {
    let resolved = resolve(root, schema);
    if let Some(title) = resolved.get("title").and_then(Value::as_str) {
        return title.to_string();
    }
    let path = schema.get("x-path").and_then(Value::as_bool) == Some(true);
    let types = types(root, resolved);
    match types.first().map(String::as_str) {
        Some("array") => {
            let items = resolved.get("items").unwrap_or(&Value::Null);
            let item = if path {
                "path".to_string()
            } else {
                type_name(root, items)
            };
            let item = match item.as_str() {
                "object" | "table" => "table".to_string(),
                other => other.to_string(),
            };
            format!("list of {item}s")
        }
        Some("string") if path => "path".into(),
        Some("string") => match enum_values(root, resolved) {
            Some(values) => format!("one of {}", values.join(", ")),
            None => "string".into(),
        },
        Some("object") => "table".into(),
        Some(other) => other.to_string(),
        None => "value".into(),
    }
}

fn enum_values(root: &Value, schema: &Value) -> Option<Vec<String>> {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return Some(
            values
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
        );
    }
    let options = schema.get("oneOf").and_then(Value::as_array)?;
    options
        .iter()
        .map(|o| {
            resolve(root, o)
                .get("const")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::keys::keys;
    use crate::config::schema::json_schema;

    fn read(dotted: &str, text: &str) -> Result<Value, String> {
        let root = json_schema();
        let key = keys(&root)
            .into_iter()
            .find(|k| k.dotted() == dotted)
            .unwrap_or_else(|| panic!("no key {dotted}"));
        from_text(&root, &key.schema, text)
    }

    /// The shortcut for schemas of a type and annotations, and the definitions a schema
    /// is compiled with, decide as compiling every key's schema with all of them does.
    #[test]
    fn every_key_validates_as_with_the_whole_schema() {
        let root = json_schema();
        let values = [
            serde_json::json!(1),
            serde_json::json!(-1),
            serde_json::json!(1.5),
            serde_json::json!(4294967296u64),
            serde_json::json!(true),
            serde_json::json!("abc"),
            serde_json::json!("10s"),
            serde_json::json!("64MiB"),
            serde_json::json!("info"),
            serde_json::json!(["a"]),
            serde_json::json!([{ "host": "/srv", "guest": "/srv" }]),
            serde_json::json!({ "a": 1 }),
        ];
        let mut shortcut = 0;
        for key in keys(&root) {
            let schema = resolve(&root, &key.schema);
            let mut whole = schema.clone();
            whole["definitions"] = root["definitions"].clone();
            let validator = jsonschema::validator_for(&whole).expect("compiles");
            for value in &values {
                assert_eq!(
                    is_valid(&root, schema, value),
                    !value.is_null() && fits_format(schema, value) && validator.is_valid(value),
                    "{} = {value}",
                    key.dotted()
                );
            }
            shortcut += usize::from(
                schema
                    .as_object()
                    .is_some_and(|o| o.iter().all(|(k, v)| is_annotation(k, v))),
            );
        }
        assert!(shortcut > 10, "only {shortcut} keys take the shortcut");
    }

    #[test]
    fn text_is_read_by_the_type_of_its_key() {
        assert_eq!(read("runtime.max-concurrent-calls", "8"), Ok(8.into()));
        assert_eq!(
            read("runtime.memory-ceiling", "256MiB"),
            Ok("256MiB".into())
        );
        assert_eq!(
            read("runtime.memory-ceiling", "1048576"),
            Ok(1048576.into())
        );
        assert_eq!(read("limits.timeout", "5s"), Ok("5s".into()));
        assert_eq!(read("trust-sidecars", "true"), Ok(true.into()));
        assert_eq!(read("log-level", "debug"), Ok("debug".into()));
        assert_eq!(
            read("ceiling.hosts", "a.example.com, b.example.com"),
            Ok(serde_json::json!(["a.example.com", "b.example.com"]))
        );
        assert_eq!(
            read("ceiling.hosts", "[\"a.example.com\"]"),
            Ok(serde_json::json!(["a.example.com"]))
        );
        assert_eq!(
            read(
                "plugins.NAME.fs.mounts",
                "[{ host = \"/srv\", guest = \"/srv\" }]"
            ),
            Ok(serde_json::json!([{ "host": "/srv", "guest": "/srv" }]))
        );
        assert_eq!(read("telemetry.sample-ratio", "0.25"), Ok(0.25.into()));
        assert_eq!(read("telemetry.sample-ratio", "1"), Ok(1.0.into()));
    }

    #[test]
    fn a_value_of_the_wrong_type_names_what_the_key_expects() {
        assert_eq!(
            read("runtime.max-concurrent-calls", "lots"),
            Err("a whole number from 0 to 4294967295".into())
        );
        assert_eq!(
            read("runtime.max-concurrent-calls", "4294967296"),
            Err("a whole number from 0 to 4294967295".into())
        );
        assert_eq!(
            read("runtime.memory-ceiling", "big"),
            Err("a size: a number of bytes or a string such as \"64MiB\"".into())
        );
        assert_eq!(
            read("limits.timeout", "5 parsecs"),
            Err("a duration such as \"10s\" or \"250ms\"".into())
        );
        assert_eq!(read("trust-sidecars", "yes"), Err("true or false".into()));
        for wrong in ["half", "1.5", "NaN"] {
            assert_eq!(
                read("telemetry.sample-ratio", wrong),
                Err("a number from 0 to 1".into()),
                "{wrong}"
            );
        }
    }
}
