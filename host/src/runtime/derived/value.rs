//! Converting between JSON and component values, guided by the WIT type. The JSON shapes
//! are exactly the ones [`super::schema`] describes; a value that does not fit is reported
//! with its path (`items[0].at.x`), never guessed at.

use serde_json::{Map, Number, Value};
use wasmtime::component::types::{Case, Field};
use wasmtime::component::{Type, Val};

/// Converts `json` at `path` to a value of type `ty`.
pub fn from_json(json: &Value, ty: &Type, path: &str) -> Result<Val, String> {
    let wrong = |expected: &str| Err(format!("{path}: expected {expected}, got {}", quoted(json)));
    Ok(match ty {
        Type::Bool => match json {
            Value::Bool(b) => Val::Bool(*b),
            _ => return wrong("true or false"),
        },
        Type::S8 => Val::S8(int(json, path)?),
        Type::U8 => Val::U8(int(json, path)?),
        Type::S16 => Val::S16(int(json, path)?),
        Type::U16 => Val::U16(int(json, path)?),
        Type::S32 => Val::S32(int(json, path)?),
        Type::U32 => Val::U32(int(json, path)?),
        Type::S64 => Val::S64(int(json, path)?),
        Type::U64 => Val::U64(int(json, path)?),
        // JSON numbers are doubles; narrowing to f32 rounds, as any f32 API would, but a
        // number beyond f32's range is refused rather than turned into an infinity.
        Type::Float32 => match json.as_f64().map(|f| f as f32) {
            Some(f) if f.is_finite() => Val::Float32(f),
            _ => return wrong("a number within ±3.4028235e38 (the range of f32)"),
        },
        Type::Float64 => match json.as_f64() {
            Some(f) => Val::Float64(f),
            None => return wrong("a number"),
        },
        Type::Char => {
            let mut chars = json.as_str().unwrap_or_default().chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Val::Char(c),
                _ => return wrong("a string of exactly one character"),
            }
        }
        Type::String => match json {
            Value::String(s) => Val::String(s.clone()),
            _ => return wrong("a string"),
        },
        Type::List(list) => Val::List(items(json, &list.ty(), path, None)?),
        Type::FixedLengthList(list) => {
            Val::FixedLengthList(items(json, &list.ty(), path, Some(list.len() as usize))?)
        }
        Type::Map(map) => {
            let Value::Object(object) = json else {
                return wrong("an object");
            };
            let value_ty = map.value();
            let mut pairs = Vec::with_capacity(object.len());
            for (key, value) in object {
                let at = format!("{path}.{key}");
                pairs.push((Val::String(key.clone()), from_json(value, &value_ty, &at)?));
            }
            Val::Map(pairs)
        }
        Type::Record(record) => {
            let Value::Object(object) = json else {
                return wrong("an object");
            };
            let fields = record.fields().map(|Field { name, ty }| (name, ty));
            Val::Record(fields_from_json(object, fields, path)?)
        }
        Type::Tuple(tuple) => {
            let types: Vec<Type> = tuple.types().collect();
            let Value::Array(values) = json else {
                return wrong(&format!("an array of {} items", types.len()));
            };
            if values.len() != types.len() {
                return wrong(&format!("an array of {} items", types.len()));
            }
            let vals = values
                .iter()
                .zip(&types)
                .enumerate()
                .map(|(i, (v, t))| from_json(v, t, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?;
            Val::Tuple(vals)
        }
        Type::Variant(variant) => {
            let (name, payload) = tag(json, path)?;
            let Some(Case { name, ty }) = variant.cases().find(|c| c.name == name) else {
                let names: Vec<&str> = variant.cases().map(|c| c.name).collect();
                return wrong(&format!("one of the cases {}", names.join(", ")));
            };
            let payload = case_payload(payload, ty.as_ref(), &format!("{path}.{name}"))?;
            Val::Variant(name.to_string(), payload)
        }
        Type::Enum(e) => match json.as_str() {
            Some(name) if e.names().any(|n| n == name) => Val::Enum(name.to_string()),
            _ => {
                return wrong(&format!(
                    "one of {}",
                    e.names().collect::<Vec<_>>().join(", ")
                ));
            }
        },
        Type::Flags(flags) => {
            let Value::Array(values) = json else {
                return wrong("an array of flag names");
            };
            let mut set = Vec::with_capacity(values.len());
            for value in values {
                match value.as_str() {
                    Some(name) if flags.names().any(|n| n == name) => {
                        if !set.iter().any(|s| s == name) {
                            set.push(name.to_string());
                        }
                    }
                    _ => {
                        let names: Vec<&str> = flags.names().collect();
                        return wrong(&format!("flag names from {}", names.join(", ")));
                    }
                }
            }
            Val::Flags(set)
        }
        Type::Option(option) => match json {
            Value::Null => Val::Option(None),
            some => Val::Option(Some(Box::new(from_json(some, &option.ty(), path)?))),
        },
        Type::Result(result) => {
            let (name, payload) = tag(json, path)?;
            let at = format!("{path}.{name}");
            match name {
                "ok" => Val::Result(Ok(arm(payload, result.ok().as_ref(), &at)?)),
                "err" => Val::Result(Err(arm(payload, result.err().as_ref(), &at)?)),
                _ => return wrong("{\"ok\": …} or {\"err\": …}"),
            }
        }
        Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext => {
            return Err(format!("{path}: this type cannot come from JSON"));
        }
    })
}

/// Converts the named `fields` of `object` (a record, or a function's arguments). A missing
/// `option` field is `none`; a missing other field and an unknown key are errors.
pub fn fields_from_json<'a>(
    object: &Map<String, Value>,
    fields: impl Iterator<Item = (&'a str, Type)>,
    path: &str,
) -> Result<Vec<(String, Val)>, String> {
    let mut vals = Vec::new();
    let mut known = Vec::new();
    for (name, ty) in fields {
        let at = if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}.{name}")
        };
        let val = match (object.get(name), &ty) {
            (Some(value), _) => from_json(value, &ty, &at)?,
            (None, Type::Option(_)) => Val::Option(None),
            (None, _) => return Err(format!("{at}: missing")),
        };
        known.push(name);
        vals.push((name.to_string(), val));
    }
    if let Some(unknown) = object.keys().find(|k| !known.contains(&k.as_str())) {
        let at = if path.is_empty() { "arguments" } else { path };
        return Err(format!(
            "{at}: unknown field `{unknown}` (fields: {})",
            known.join(", ")
        ));
    }
    Ok(vals)
}

/// Converts a value the component returned to JSON.
pub fn to_json(val: &Val, path: &str) -> Result<Value, String> {
    Ok(match val {
        Val::Bool(b) => Value::Bool(*b),
        Val::S8(n) => (*n).into(),
        Val::U8(n) => (*n).into(),
        Val::S16(n) => (*n).into(),
        Val::U16(n) => (*n).into(),
        Val::S32(n) => (*n).into(),
        Val::U32(n) => (*n).into(),
        Val::S64(n) => (*n).into(),
        Val::U64(n) => (*n).into(),
        Val::Float32(f) => float(f64::from(*f), path)?,
        Val::Float64(f) => float(*f, path)?,
        Val::Char(c) => Value::String(c.to_string()),
        Val::String(s) => Value::String(s.clone()),
        Val::List(vals) | Val::Tuple(vals) | Val::FixedLengthList(vals) => Value::Array(
            vals.iter()
                .enumerate()
                .map(|(i, v)| to_json(v, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Val::Map(pairs) => {
            let mut object = Map::new();
            for (key, value) in pairs {
                let key = match key {
                    Val::String(s) => s.clone(),
                    other => to_json(other, path)?.to_string(),
                };
                let at = format!("{path}.{key}");
                object.insert(key, to_json(value, &at)?);
            }
            Value::Object(object)
        }
        Val::Record(fields) => {
            let mut object = Map::new();
            for (name, value) in fields {
                object.insert(name.clone(), to_json(value, &format!("{path}.{name}"))?);
            }
            Value::Object(object)
        }
        Val::Variant(name, None) | Val::Enum(name) => Value::String(name.clone()),
        Val::Variant(name, Some(payload)) => {
            let mut object = Map::new();
            object.insert(name.clone(), to_json(payload, &format!("{path}.{name}"))?);
            Value::Object(object)
        }
        Val::Flags(names) => Value::Array(names.iter().cloned().map(Value::String).collect()),
        Val::Option(None) => Value::Null,
        Val::Option(Some(v)) => to_json(v, path)?,
        Val::Result(result) => {
            let (name, payload) = match result {
                Ok(v) => ("ok", v),
                Err(v) => ("err", v),
            };
            let value = match payload {
                Some(v) => to_json(v, &format!("{path}.{name}"))?,
                None => Value::Null,
            };
            let mut object = Map::new();
            object.insert(name.to_string(), value);
            Value::Object(object)
        }
        Val::Resource(_) | Val::Future(_) | Val::Stream(_) | Val::ErrorContext(_) => {
            return Err(format!("{path}: a handle cannot be returned as JSON"));
        }
    })
}

/// Longest rendering of a wrong value quoted in an error message, in bytes.
const QUOTED: usize = 200;

/// `json` as text for an error message, cut to [`QUOTED`] bytes on a character boundary:
/// a wrong 10 MB argument makes a short error, not a 10 MB one.
fn quoted(json: &Value) -> String {
    let mut text = json.to_string();
    if text.len() > QUOTED {
        text.truncate(text.floor_char_boundary(QUOTED));
        text.push('…');
    }
    text
}

fn float(f: f64, path: &str) -> Result<Value, String> {
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| format!("{path}: the function returned {f}, which JSON cannot carry"))
}

/// An integer of type `T`. JSON Schema's `integer` includes numbers written with a zero
/// fraction (`2.0`, `1e3`), so those are accepted too when the value is in range.
fn int<T: TryFrom<i64> + TryFrom<u64>>(json: &Value, path: &str) -> Result<T, String> {
    let n = match json {
        Value::Number(n) => n
            .as_i64()
            .and_then(|i| T::try_from(i).ok())
            .or_else(|| n.as_u64().and_then(|u| T::try_from(u).ok()))
            .or_else(|| n.as_f64().and_then(whole)),
        _ => None,
    };
    n.ok_or_else(|| {
        format!(
            "{path}: expected an integer in the type's range, got {}",
            quoted(json)
        )
    })
}

/// `f` as a `T` when it is a whole number that `T` holds exactly.
fn whole<T: TryFrom<i64> + TryFrom<u64>>(f: f64) -> Option<T> {
    // 2^63 and 2^64 as f64: the first values outside i64 and u64.
    const I64_END: f64 = 9_223_372_036_854_775_808.0;
    const U64_END: f64 = 18_446_744_073_709_551_616.0;
    // NaN and the infinities have a NaN fraction.
    if f.fract() != 0.0 {
        None
    } else if (0.0..U64_END).contains(&f) {
        T::try_from(f as u64).ok()
    } else if (-I64_END..0.0).contains(&f) {
        T::try_from(f as i64).ok()
    } else {
        None
    }
}

fn items(json: &Value, ty: &Type, path: &str, len: Option<usize>) -> Result<Vec<Val>, String> {
    let Value::Array(values) = json else {
        return Err(format!("{path}: expected an array, got {}", quoted(json)));
    };
    if let Some(len) = len.filter(|&l| l != values.len()) {
        return Err(format!(
            "{path}: expected {len} items, got {}",
            values.len()
        ));
    }
    values
        .iter()
        .enumerate()
        .map(|(i, v)| from_json(v, ty, &format!("{path}[{i}]")))
        .collect()
}

/// A variant or result in JSON: `"name"`, or an object with exactly one key.
fn tag<'v>(json: &'v Value, path: &str) -> Result<(&'v str, Option<&'v Value>), String> {
    match json {
        Value::String(name) => Ok((name, None)),
        Value::Object(object) if object.len() == 1 => {
            let (name, payload) = object.iter().next().ok_or_else(String::new)?;
            Ok((name, Some(payload)))
        }
        _ => Err(format!(
            "{path}: expected a case name, or an object with exactly one case name as key, got {}",
            quoted(json)
        )),
    }
}

fn case_payload(
    payload: Option<&Value>,
    ty: Option<&Type>,
    path: &str,
) -> Result<Option<Box<Val>>, String> {
    match (payload, ty) {
        (None, None) => Ok(None),
        (Some(v), Some(t)) => Ok(Some(Box::new(from_json(v, t, path)?))),
        (None, Some(_)) => Err(format!(
            "{path}: this case needs a value: {{\"case\": value}}"
        )),
        (Some(_), None) => Err(format!(
            "{path}: this case carries no value; pass just its name"
        )),
    }
}

/// A `result` arm: the payload, or `null`/nothing when the arm carries no value.
fn arm(payload: Option<&Value>, ty: Option<&Type>, path: &str) -> Result<Option<Box<Val>>, String> {
    match (payload, ty) {
        (None | Some(Value::Null), None) => Ok(None),
        (Some(v), Some(t)) => Ok(Some(Box::new(from_json(v, t, path)?))),
        (None, Some(_)) => Err(format!("{path}: missing value")),
        (Some(_), None) => Err(format!("{path}: expected null")),
    }
}
