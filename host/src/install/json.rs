//! Adding one server entry to a client's JSON config while keeping everything else: the
//! other top-level keys and servers stay in their order, each as the very text it was.

use std::fmt::Write as _;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// The members of a JSON object in file order, each value as its original text.
struct Members(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Ordered;
        impl<'de> Visitor<'de> for Ordered {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, Box<RawValue>>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Ordered)
    }
}

/// Why a config could not be edited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditError {
    /// Not JSON: the parser's message, line and column.
    Syntax {
        /// What the parser says.
        message: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// The top level, or the servers key, is not an object.
    NotObject(String),
    /// A different entry of that name exists: the diff, one `-`/`+` line per changed key.
    Differs(String),
}

/// What [`add`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// The new file text; `replaced` when an entry of that name was there before.
    Changed {
        /// The whole new file.
        text: String,
        /// Whether an existing (different) entry was replaced.
        replaced: bool,
    },
    /// The same entry is there already.
    Unchanged,
}

/// `text` (an existing config, or `None`) with `entry` as `key.name`. An existing, different
/// entry of that name is replaced only when `force`.
pub fn add(
    text: Option<&str>,
    key: &str,
    name: &str,
    entry: &impl Serialize,
    force: bool,
) -> Result<Edit, EditError> {
    let new_value = serde_json::to_value(entry).expect("a server entry always serialises");
    let text = text.filter(|t| !t.trim().is_empty()).unwrap_or("{}");
    let value: Value = serde_json::from_str(text).map_err(|err| {
        let place = format!(" at line {} column {}", err.line(), err.column());
        EditError::Syntax {
            message: err.to_string().trim_end_matches(&place).to_string(),
            line: err.line(),
            column: err.column(),
        }
    })?;
    if !value.is_object() {
        return Err(EditError::NotObject("the top level".into()));
    }
    let mut top = members(text).map_err(|_| EditError::NotObject("the top level".into()))?;
    let new_entry = indent(&pretty(entry), 4);
    let mut replaced = false;
    let servers_text = match top.iter().find(|(k, _)| k == key) {
        None => object(&[(name.to_string(), new_entry)], 2),
        Some((_, raw)) => {
            let mut servers =
                members(raw.get()).map_err(|_| EditError::NotObject(format!("`{key}`")))?;
            match servers.iter_mut().find(|(k, _)| k == name) {
                Some((_, old)) => {
                    let old_value: Value = serde_json::from_str(old.get())
                        .map_err(|_| EditError::NotObject(format!("`{key}.{name}`")))?;
                    if old_value == new_value {
                        return Ok(Edit::Unchanged);
                    }
                    if !force {
                        return Err(EditError::Differs(diff(&old_value, &new_value)));
                    }
                    *old = raw_value(new_entry);
                    replaced = true;
                }
                None => servers.push((name.to_string(), raw_value(new_entry))),
            }
            let servers: Vec<(String, String)> = servers
                .into_iter()
                .map(|(k, v)| (k, v.get().to_string()))
                .collect();
            object(&servers, 2)
        }
    };
    match top.iter_mut().find(|(k, _)| k == key) {
        Some((_, raw)) => *raw = raw_value(servers_text),
        None => top.push((key.to_string(), raw_value(servers_text))),
    }
    let top: Vec<(String, String)> = top
        .into_iter()
        .map(|(k, v)| (k, v.get().to_string()))
        .collect();
    Ok(Edit::Changed {
        text: format!("{}\n", object(&top, 0)),
        replaced,
    })
}

/// `{ "key": { "name": entry } }`, pretty, for `--print`.
pub fn snippet(key: &str, name: &str, entry: &impl Serialize) -> String {
    let servers = object(&[(name.to_string(), indent(&pretty(entry), 4))], 2);
    object(&[(key.to_string(), servers)], 0)
}

fn members(text: &str) -> Result<Vec<(String, Box<RawValue>)>, serde_json::Error> {
    serde_json::from_str::<Members>(text).map(|m| m.0)
}

fn raw_value(text: String) -> Box<RawValue> {
    RawValue::from_string(text).expect("built from valid JSON values")
}

fn pretty(value: &impl Serialize) -> String {
    serde_json::to_string_pretty(value).expect("a server entry always serialises")
}

/// Every line of `text` after the first indented by `by` spaces.
fn indent(text: &str, by: usize) -> String {
    text.replace('\n', &format!("\n{}", " ".repeat(by)))
}

/// An object of `members` (values as JSON text) whose closing brace sits at `depth` spaces.
fn object(members: &[(String, String)], depth: usize) -> String {
    if members.is_empty() {
        return "{}".into();
    }
    let pad = " ".repeat(depth + 2);
    let body: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("{pad}{}: {v}", Value::String(k.clone())))
        .collect();
    format!("{{\n{}\n{}}}", body.join(",\n"), " ".repeat(depth))
}

/// What differs between two entries: `- key: old` / `+ key: new` per changed key.
fn diff(old: &Value, new: &Value) -> String {
    let mut out = String::new();
    match (old.as_object(), new.as_object()) {
        (Some(old), Some(new)) => {
            let keys = old
                .keys()
                .chain(new.keys().filter(|k| !old.contains_key(*k)));
            for key in keys {
                let (a, b) = (old.get(key), new.get(key));
                if a == b {
                    continue;
                }
                if let Some(a) = a {
                    let _ = writeln!(out, "  - {key}: {a}");
                }
                if let Some(b) = b {
                    let _ = writeln!(out, "  + {key}: {b}");
                }
            }
        }
        _ => {
            let _ = writeln!(out, "  - {old}\n  + {new}");
        }
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn other_keys_keep_their_order_and_text() {
        let before = "{\n  \"zeta\": 1,\n  \"mcpServers\": {\n    \"other\": {\"command\": \"x\"}\n  },\n  \"alpha\": [1,  2]\n}\n";
        let Edit::Changed { text, replaced } = add(
            Some(before),
            "mcpServers",
            "capsule",
            &json!({"command": "c"}),
            false,
        )
        .expect("merges") else {
            panic!("expected a change")
        };
        assert!(!replaced);
        assert_eq!(
            text,
            "{\n  \"zeta\": 1,\n  \"mcpServers\": {\n    \"other\": {\"command\": \"x\"},\n    \"capsule\": {\n      \"command\": \"c\"\n    }\n  },\n  \"alpha\": [1,  2]\n}\n"
        );
    }
}
