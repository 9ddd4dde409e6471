//! JSON Schema for WIT types, as precise as JSON allows: integer ranges, one-character
//! strings for `char`, closed objects for records, externally tagged variants.

use serde_json::{Map, Value, json};
use wasmtime::component::Type;
use wasmtime::component::types::{Case, Field};

/// A type JSON cannot carry (resources, futures, streams, error contexts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} values cannot be passed as JSON")]
pub struct Unsupported(pub &'static str);

/// The schema of a value of type `ty`.
pub fn of(ty: &Type) -> Result<Value, Unsupported> {
    Ok(match ty {
        Type::Bool => json!({"type": "boolean"}),
        Type::S8 => integer(i8::MIN, i8::MAX),
        Type::U8 => integer(u8::MIN, u8::MAX),
        Type::S16 => integer(i16::MIN, i16::MAX),
        Type::U16 => integer(u16::MIN, u16::MAX),
        Type::S32 => integer(i32::MIN, i32::MAX),
        Type::U32 => integer(u32::MIN, u32::MAX),
        Type::S64 => integer(i64::MIN, i64::MAX),
        Type::U64 => integer(u64::MIN, u64::MAX),
        // Larger numbers would become infinities when narrowed to f32.
        Type::Float32 => json!({
            "type": "number",
            "minimum": -f64::from(f32::MAX),
            "maximum": f64::from(f32::MAX),
        }),
        Type::Float64 => json!({"type": "number"}),
        Type::Char => json!({"type": "string", "minLength": 1, "maxLength": 1}),
        Type::String => json!({"type": "string"}),
        Type::List(list) => json!({"type": "array", "items": of(&list.ty())?}),
        Type::FixedLengthList(list) => json!({
            "type": "array",
            "items": of(&list.ty())?,
            "minItems": list.len(),
            "maxItems": list.len(),
        }),
        Type::Map(map) if map.key() == Type::String => {
            json!({"type": "object", "additionalProperties": of(&map.value())?})
        }
        Type::Map(_) => return Err(Unsupported("maps with non-string keys")),
        Type::Record(record) => object(record.fields().map(|Field { name, ty }| (name, ty)))?,
        Type::Tuple(tuple) => {
            let items = tuple
                .types()
                .map(|t| of(&t))
                .collect::<Result<Vec<_>, _>>()?;
            let n = items.len();
            json!({"type": "array", "prefixItems": items, "minItems": n, "maxItems": n})
        }
        Type::Variant(variant) => {
            let cases = variant
                .cases()
                .map(|Case { name, ty }| tagged(name, ty.as_ref()))
                .collect::<Result<Vec<_>, _>>()?;
            json!({"oneOf": cases})
        }
        Type::Enum(e) => json!({"type": "string", "enum": e.names().collect::<Vec<_>>()}),
        Type::Flags(flags) => json!({
            "type": "array",
            "items": {"type": "string", "enum": flags.names().collect::<Vec<_>>()},
            "uniqueItems": true,
        }),
        Type::Option(option) => json!({"anyOf": [of(&option.ty())?, {"type": "null"}]}),
        Type::Result(result) => {
            let ok = tagged_or_null("ok", result.ok().as_ref())?;
            let err = tagged_or_null("err", result.err().as_ref())?;
            json!({"oneOf": [ok, err]})
        }
        Type::Own(_) | Type::Borrow(_) => return Err(Unsupported("resource")),
        Type::Future(_) => return Err(Unsupported("future")),
        Type::Stream(_) => return Err(Unsupported("stream")),
        Type::ErrorContext => return Err(Unsupported("error-context")),
    })
}

/// A closed object with one property per `(name, type)`; every non-`option` one is required.
pub fn object<'a>(fields: impl Iterator<Item = (&'a str, Type)>) -> Result<Value, Unsupported> {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (name, ty) in fields {
        if !matches!(ty, Type::Option(_)) {
            required.push(Value::from(name));
        }
        properties.insert(name.to_string(), of(&ty)?);
    }
    let mut schema = Map::new();
    schema.insert("type".into(), "object".into());
    schema.insert("properties".into(), properties.into());
    if !required.is_empty() {
        schema.insert("required".into(), required.into());
    }
    schema.insert("additionalProperties".into(), false.into());
    Ok(schema.into())
}

/// A variant case: its name as a string when it carries nothing, else `{"<name>": payload}`.
fn tagged(name: &str, payload: Option<&Type>) -> Result<Value, Unsupported> {
    match payload {
        None => Ok(json!({"const": name})),
        Some(ty) => single_key(name, of(ty)?),
    }
}

/// A `result` arm: always `{"ok": …}` / `{"err": …}`, with `null` when it carries nothing.
fn tagged_or_null(name: &str, payload: Option<&Type>) -> Result<Value, Unsupported> {
    let schema = match payload {
        None => json!({"type": "null"}),
        Some(ty) => of(ty)?,
    };
    single_key(name, schema)
}

fn single_key(name: &str, schema: Value) -> Result<Value, Unsupported> {
    Ok(json!({
        "type": "object",
        "properties": {name: schema},
        "required": [name],
        "additionalProperties": false,
    }))
}

fn integer(min: impl Into<Value>, max: impl Into<Value>) -> Value {
    json!({"type": "integer", "minimum": min.into(), "maximum": max.into()})
}
