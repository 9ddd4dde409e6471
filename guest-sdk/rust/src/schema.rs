//! JSON Schemas derived from Rust types, shaped for MCP clients:
//! - a root of `"type": "object"` (checked, with a message that says how to fix the type);
//! - subschemas inlined (no `$ref` unless a type is recursive), no `$schema` or root `title`;
//! - only standard `format`s: schemars' `uint32`, `int64`, `double`… make Ajv-based clients
//!   print a warning per field, or reject the schema in strict mode;
//! - descriptions as prose (doc comments' hard wraps joined);
//! - in input schemas, optional fields without `null`: a model should leave such a field out, and
//!   "string or null, optional" only invites it to send `null`; and enums of documented unit
//!   variants as a plain `enum` (the variants' docs move into the description), which more
//!   clients and model APIs accept than a `oneOf` of `const`s;
//! - nullable values as `anyOf` branches of one `type` each, never a `type` array such as
//!   `["number", "null"]` (clients that map schemas onto a single-`type` dialect, like Gemini's
//!   function declarations, reject or flatten those);
//! - a value of any JSON type (`serde_json::Value`) declared as such, an `anyOf` of the six
//!   JSON types, instead of a bare `true` or `{}` that constrains nothing (what the MCP
//!   Inspector's `--strict` check reports).

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema};
use serde_json::{Map, Value};

use crate::doc::unwrap_soft_breaks;

/// The input schema of a tool whose argument type is `T`.
///
/// # Panics
/// When `T` is not described by a JSON object schema (an enum, a tuple, a primitive): MCP needs
/// the arguments to be an object. The message names the tool and the fix.
pub fn input_schema<T: JsonSchema>(tool: &str) -> Value {
    let schema = SchemaSettings::draft2020_12()
        .for_deserialize()
        .with(|settings| {
            settings.inline_subschemas = true;
            settings.meta_schema = None;
        })
        .into_generator()
        .into_root_schema_for::<T>();
    let mut value = tidy_root(schema);
    drop_null_from_optional_fields(&mut value);
    walk(&mut value, &mut |schema| {
        make_portable(schema);
        unit_enum_as_enum(schema);
    });
    walk(&mut value, &mut one_type_per_schema);
    require_object(
        tool,
        "argument type",
        &value,
        "use a struct whose fields are the parameters",
    );
    value
}

/// The output schema of a tool returning `T` as structured content.
///
/// # Panics
/// When `T` is not described by a JSON object schema: MCP requires structured content to be an
/// object. Wrap lists or primitives in a struct with a named field.
pub fn output_schema<T: JsonSchema>(tool: &str) -> Value {
    let schema = SchemaSettings::draft2020_12()
        .for_serialize()
        .with(|settings| {
            settings.inline_subschemas = true;
            settings.meta_schema = None;
        })
        .into_generator()
        .into_root_schema_for::<T>();
    let mut value = tidy_root(schema);
    walk(&mut value, &mut make_portable);
    walk(&mut value, &mut one_type_per_schema);
    require_object(
        tool,
        "return type",
        &value,
        "return a struct (wrap a list in a struct with a named field), or return `String` for \
         plain text",
    );
    value
}

/// The input schema of a tool that takes no arguments.
pub fn empty_input_schema() -> Value {
    serde_json::json!({ "type": "object", "properties": {} })
}

/// The formats JSON Schema 2020-12 defines; any other `format` is dropped.
const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

fn make_portable(schema: &mut Map<String, Value>) {
    if let Some(Value::String(format)) = schema.get("format")
        && !STANDARD_FORMATS.contains(&format.as_str())
    {
        schema.remove("format");
    }
    if let Some(Value::String(description)) = schema.get_mut("description") {
        *description = unwrap_soft_breaks(description);
    }
}

/// The JSON types, in the order an "any value" schema lists them.
const JSON_TYPES: &[&str] = &["object", "array", "string", "number", "boolean", "null"];

/// The JSON type whose values `keyword` constrains, for keywords that apply to one type.
fn type_of_keyword(keyword: &str) -> Option<&'static str> {
    Some(match keyword {
        "minLength" | "maxLength" | "pattern" | "format" | "contentEncoding"
        | "contentMediaType" => "string",
        "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" | "multipleOf" => "number",
        "items" | "prefixItems" | "minItems" | "maxItems" | "uniqueItems" | "contains"
        | "minContains" | "maxContains" | "unevaluatedItems" => "array",
        "properties"
        | "required"
        | "additionalProperties"
        | "patternProperties"
        | "minProperties"
        | "maxProperties"
        | "propertyNames"
        | "dependentRequired"
        | "dependentSchemas"
        | "unevaluatedProperties" => "object",
        _ => return None,
    })
}

/// Keywords that describe a schema without constraining its values.
const ANNOTATIONS: &[&str] = &[
    "description",
    "title",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$comment",
];

/// Rewrites the subschemas of `schema` so that each says which JSON type it accepts:
/// a `type` array becomes `anyOf` branches (each with the keywords of its type), and a
/// subschema that accepts anything (`true`, or only annotations) lists the six JSON types.
fn one_type_per_schema(schema: &mut Map<String, Value>) {
    split_type_array(schema);
    for (key, child) in schema.iter_mut() {
        match key.as_str() {
            "properties" | "$defs" | "patternProperties" => {
                if let Value::Object(children) = child {
                    children.values_mut().for_each(declare_any);
                }
            }
            "items" | "contains" => declare_any(child),
            "anyOf" | "oneOf" | "allOf" | "prefixItems" => {
                if let Value::Array(children) = child {
                    children.iter_mut().for_each(declare_any);
                }
            }
            _ => {}
        }
    }
}

/// `true` or `{"description": …}` → the same annotations on an `anyOf` of every JSON type.
fn declare_any(schema: &mut Value) {
    let mut any = match schema {
        Value::Bool(true) => Map::new(),
        Value::Object(object) if object.keys().all(|k| ANNOTATIONS.contains(&k.as_str())) => {
            std::mem::take(object)
        }
        _ => return,
    };
    any.insert(
        "anyOf".into(),
        JSON_TYPES
            .iter()
            .map(|ty| serde_json::json!({ "type": ty }))
            .collect(),
    );
    *schema = Value::Object(any);
}

/// `{"type": ["number", "null"], "minimum": 0}` → `{"anyOf": [{"type": "number", "minimum":
/// 0}, {"type": "null"}]}`. An `enum` is split by the JSON type of its values.
fn split_type_array(schema: &mut Map<String, Value>) {
    let Some(Value::Array(types)) = schema.get("type") else {
        return;
    };
    let types: Vec<String> = types
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    if let [only] = types.as_slice() {
        schema.insert("type".into(), Value::String(only.clone()));
        return;
    }
    if types.is_empty() || schema.contains_key("anyOf") {
        return;
    }
    schema.remove("type");
    let enum_values = match schema.remove("enum") {
        Some(Value::Array(values)) => Some(values),
        _ => None,
    };
    let mut branches: Vec<Map<String, Value>> = types
        .iter()
        .map(|ty| Map::from_iter([("type".to_string(), Value::String(ty.clone()))]))
        .collect();
    let keywords: Vec<String> = schema
        .keys()
        .filter(|k| type_of_keyword(k).is_some())
        .cloned()
        .collect();
    for keyword in keywords {
        let (Some(value), Some(owner)) = (schema.remove(&keyword), type_of_keyword(&keyword))
        else {
            continue;
        };
        for branch in &mut branches {
            let ty = branch.get("type").and_then(Value::as_str).unwrap_or("");
            if ty == owner || (owner == "number" && ty == "integer") {
                branch.insert(keyword.clone(), value.clone());
            }
        }
    }
    if let Some(values) = enum_values {
        for branch in &mut branches {
            let ty = branch.get("type").and_then(Value::as_str).unwrap_or("");
            if ty != "null" {
                let mine = values.iter().filter(|v| json_type_matches(v, ty)).cloned();
                branch.insert("enum".into(), mine.collect());
            }
        }
    }
    schema.insert(
        "anyOf".into(),
        branches.into_iter().map(Value::Object).collect(),
    );
}

/// Whether `value` is an instance of the JSON Schema type `ty`.
fn json_type_matches(value: &Value, ty: &str) -> bool {
    match value {
        Value::Null => ty == "null",
        Value::Bool(_) => ty == "boolean",
        Value::Number(n) => ty == "number" || (ty == "integer" && (n.is_i64() || n.is_u64())),
        Value::String(_) => ty == "string",
        Value::Array(_) => ty == "array",
        Value::Object(_) => ty == "object",
    }
}

/// `{"oneOf": [{"const": "a", "type": "string", "description": "…"}, …]}` (what schemars makes
/// of an enum whose unit variants have doc comments) becomes `{"type": "string", "enum": […]}`
/// with the variants' docs listed in the description.
fn unit_enum_as_enum(schema: &mut Map<String, Value>) {
    let Some(Value::Array(variants)) = schema.get("oneOf") else {
        return;
    };
    let mut values = Vec::new();
    let mut documented = Vec::new();
    for variant in variants {
        let Some(variant) = variant.as_object() else {
            return;
        };
        let only_known_keys = variant
            .keys()
            .all(|key| matches!(key.as_str(), "const" | "enum" | "type" | "description"));
        if !only_known_keys || variant.get("type").is_some_and(|ty| ty != "string") {
            return;
        }
        match (variant.get("const"), variant.get("enum")) {
            // A documented variant.
            (Some(Value::String(value)), None) => {
                if let Some(Value::String(description)) = variant.get("description") {
                    documented.push(format!("- `{value}`: {}", unwrap_soft_breaks(description)));
                }
                values.push(Value::String(value.clone()));
            }
            // schemars groups the undocumented variants into one `enum`.
            (None, Some(Value::Array(group))) if group.iter().all(Value::is_string) => {
                values.extend(group.iter().cloned());
            }
            _ => return,
        }
    }
    schema.remove("oneOf");
    schema.insert("type".into(), Value::String("string".into()));
    schema.insert("enum".into(), Value::Array(values));
    if !documented.is_empty() {
        let list = documented.join("\n");
        let description = match schema.get("description").and_then(Value::as_str) {
            Some(own) => format!("{own}\n{list}"),
            None => list,
        };
        schema.insert("description".into(), Value::String(description));
    }
}

/// Calls `visit` on every schema object in `schema`, parents before children.
fn walk(schema: &mut Value, visit: &mut dyn FnMut(&mut Map<String, Value>)) {
    let Value::Object(object) = schema else {
        return;
    };
    visit(object);
    for (key, child) in object.iter_mut() {
        match key.as_str() {
            "properties" | "$defs" | "patternProperties" | "dependentSchemas" => {
                if let Value::Object(children) = child {
                    for grandchild in children.values_mut() {
                        walk(grandchild, visit);
                    }
                }
            }
            "items"
            | "additionalProperties"
            | "unevaluatedProperties"
            | "propertyNames"
            | "contains"
            | "not"
            | "if"
            | "then"
            | "else" => walk(child, visit),
            "anyOf" | "oneOf" | "allOf" | "prefixItems" => {
                if let Value::Array(children) = child {
                    for grandchild in children {
                        walk(grandchild, visit);
                    }
                }
            }
            _ => {}
        }
    }
}

fn tidy_root(schema: Schema) -> Value {
    let mut value = schema.to_value();
    if let Value::Object(root) = &mut value {
        root.remove("$schema");
        // The Rust type's name (`SlugifyArgs`) means nothing to a model.
        root.remove("title");
    }
    value
}

fn require_object(tool: &str, what: &str, schema: &Value, fix: &str) {
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        panic!(
            "tool `{tool}`: its {what} must serialise as a JSON object, but its schema is {schema}; {fix}"
        );
    }
}

/// For every property that is not `required`, turns `"type": ["string", "null"]` into
/// `"type": "string"` and `"anyOf": [X, {"type": "null"}]` into `X`, recursively.
fn drop_null_from_optional_fields(schema: &mut Value) {
    walk(schema, &mut |object| {
        let required: Vec<String> = object
            .get("required")
            .and_then(Value::as_array)
            .map(|names| {
                names
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(Value::Object(properties)) = object.get_mut("properties") {
            for (name, property) in properties.iter_mut() {
                if !required.contains(name) {
                    drop_null(property);
                }
            }
        }
    });
}

fn drop_null(property: &mut Value) {
    let Value::Object(object) = property else {
        return;
    };
    let mut changed = false;
    if let Some(Value::Array(types)) = object.get("type") {
        let kept: Vec<Value> = types
            .iter()
            .filter(|ty| ty.as_str() != Some("null"))
            .cloned()
            .collect();
        if kept.len() < types.len() && !kept.is_empty() {
            let new_type = if kept.len() == 1 {
                kept.into_iter().next().unwrap_or(Value::Null)
            } else {
                Value::Array(kept)
            };
            object.insert("type".into(), new_type);
            changed = true;
        }
    }
    if let Some(Value::Array(variants)) = object.get("anyOf")
        && variants.len() == 2
        && let Some(null_at) = variants.iter().position(is_null_schema)
        && let Value::Object(other) = &variants[1 - null_at]
    {
        let other: Map<String, Value> = other.clone();
        object.remove("anyOf");
        for (key, value) in other {
            // The field's own description and default win over the inner type's.
            object.entry(key).or_insert(value);
        }
        changed = true;
    }
    if let Some(Value::Array(options)) = object.get_mut("enum")
        && options.iter().any(Value::is_null)
    {
        options.retain(|option| !option.is_null());
        changed = true;
    }
    if changed && object.get("default") == Some(&Value::Null) {
        object.remove("default");
    }
}

fn is_null_schema(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
        && schema.as_object().is_some_and(|object| object.len() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    /// Case conversions.
    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "snake_case")]
    #[allow(dead_code)]
    enum Case {
        Upper,
        Lower,
    }

    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "snake_case")]
    #[allow(dead_code)]
    enum Documented {
        /// The first
        /// choice.
        First,
        Second,
    }

    #[derive(Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct WithDocumentedEnum {
        /// Pick one.
        choice: Documented,
        /// How many, at most. This line is
        /// wrapped.
        limit: Option<u64>,
    }

    #[test]
    fn documented_unit_variants_become_a_plain_enum() {
        let schema = input_schema::<WithDocumentedEnum>("test");
        assert_eq!(
            schema["properties"]["choice"],
            json!({
                "type": "string",
                "enum": ["second", "first"],
                "description": "Pick one.\n- `first`: The first choice."
            })
        );
    }

    #[test]
    fn non_standard_formats_are_dropped_and_descriptions_unwrapped() {
        let schema = input_schema::<WithDocumentedEnum>("test");
        assert_eq!(
            schema["properties"]["limit"],
            json!({
                "type": "integer",
                "minimum": 0,
                "description": "How many, at most. This line is wrapped."
            })
        );
        let output = output_schema::<Counts>("test");
        assert!(output["properties"]["words"].get("format").is_none());
    }

    #[derive(Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Inner {
        /// A label.
        label: Option<String>,
    }

    /// Arguments of a test tool.
    #[derive(Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Arguments {
        /// The text.
        text: String,
        /// Separator (default "-").
        #[serde(default)]
        separator: Option<String>,
        /// Target case.
        case: Option<Case>,
        inner: Option<Inner>,
        count: u32,
    }

    #[test]
    fn input_schema_is_an_inline_object_without_nullable_optionals() {
        let schema = input_schema::<Arguments>("test");
        assert_eq!(schema["type"], "object");
        assert!(schema.get("$schema").is_none());
        assert!(schema.get("title").is_none());
        assert!(schema.get("$defs").is_none(), "{schema:#}");
        assert_eq!(schema["description"], "Arguments of a test tool.");
        assert_eq!(schema["required"], json!(["text", "count"]));
        let properties = &schema["properties"];
        assert_eq!(
            properties["separator"],
            json!({"type": "string", "description": "Separator (default \"-\")."})
        );
        assert_eq!(properties["case"]["type"], "string");
        assert_eq!(properties["case"]["enum"], json!(["upper", "lower"]));
        assert_eq!(properties["case"]["description"], "Target case.");
        assert_eq!(properties["inner"]["type"], "object");
        assert_eq!(properties["inner"]["properties"]["label"]["type"], "string");
        assert!(!schema.to_string().contains("null"), "{schema:#}");
    }

    #[derive(Serialize, JsonSchema)]
    struct Counts {
        /// Number of words.
        words: usize,
        note: Option<String>,
    }

    #[test]
    fn output_schema_keeps_null_because_the_value_may_be_null() {
        let schema = output_schema::<Counts>("test");
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["properties"]["words"]["type"], "integer");
        assert_eq!(
            schema["properties"]["note"]["anyOf"],
            json!([{ "type": "string" }, { "type": "null" }])
        );
    }

    /// A result with values of any type and nullable numbers.
    #[derive(Serialize, JsonSchema)]
    #[allow(dead_code)]
    struct Loose {
        /// Whatever the document held.
        found: Vec<serde_json::Value>,
        /// The value before.
        before: serde_json::Value,
        /// The smallest, if any.
        min: Option<f64>,
        /// Sizes, if known.
        sizes: Option<Vec<u32>>,
    }

    #[test]
    fn any_value_is_declared_as_every_json_type_and_nullables_become_any_of() {
        let any = json!([
            { "type": "object" }, { "type": "array" }, { "type": "string" },
            { "type": "number" }, { "type": "boolean" }, { "type": "null" }
        ]);
        let schema = output_schema::<Loose>("test");
        assert_eq!(
            schema["properties"]["found"]["items"],
            json!({ "anyOf": any })
        );
        assert_eq!(
            schema["properties"]["before"],
            json!({ "description": "The value before.", "anyOf": any })
        );
        assert_eq!(
            schema["properties"]["min"],
            json!({
                "description": "The smallest, if any.",
                "anyOf": [{ "type": "number" }, { "type": "null" }]
            })
        );
        assert_eq!(
            schema["properties"]["sizes"]["anyOf"],
            json!([
                { "type": "array", "items": { "type": "integer", "minimum": 0 } },
                { "type": "null" }
            ])
        );
    }

    #[test]
    fn a_nullable_enum_keeps_each_value_in_its_branch() {
        let mut schema = json!({ "type": ["string", "null"], "enum": ["a", "b", null] });
        walk(&mut schema, &mut one_type_per_schema);
        assert_eq!(
            schema,
            json!({ "anyOf": [{ "type": "string", "enum": ["a", "b"] }, { "type": "null" }] })
        );
    }

    #[test]
    #[should_panic(expected = "tool `listy`: its return type must serialise as a JSON object")]
    fn output_schema_rejects_non_objects() {
        output_schema::<Vec<String>>("listy");
    }

    #[test]
    #[should_panic(expected = "tool `enumy`: its argument type must serialise as a JSON object")]
    fn input_schema_rejects_non_objects() {
        input_schema::<Case>("enumy");
    }

    #[test]
    fn no_argument_tools_take_an_empty_object() {
        assert_eq!(
            empty_input_schema(),
            json!({"type": "object", "properties": {}})
        );
    }
}
