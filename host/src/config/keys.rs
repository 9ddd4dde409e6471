//! Every key of `capsule.toml`, read from the JSON Schema, and its environment variable.
//!
//! The naming rule: `CAPSULE_` followed by the key's path in upper case, `-` written `_`,
//! path segments joined by `_`; a name chosen by the user (a map key such as the plugin
//! in `plugins.NAME.limits.fuel`) is set off by `__` on each side and written as is:
//!
//! | Key | Variable |
//! |---|---|
//! | `runtime.max-concurrent-calls` | `CAPSULE_RUNTIME_MAX_CONCURRENT_CALLS` |
//! | `plugins.NAME.limits.fuel` | `CAPSULE_PLUGINS__NAME__LIMITS_FUEL` |
//! | `secrets.NAME` | `CAPSULE_SECRETS__NAME` |
//!
//! A single `_` can stand for both `-` inside a key and the `.` between keys, so the rule
//! is only unambiguous because no two keys of the schema give the same name (a unit test
//! checks every key against every other); `__` never occurs in a key.

use serde_json::Value;

use super::schema::resolve;

/// The prefix of every variable that sets a key.
pub const ENV_PREFIX: &str = "CAPSULE_";

/// One step of a key's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A key of the schema, e.g. `runtime`.
    Field(String),
    /// A name the user chooses, e.g. the plugin in `plugins.NAME`.
    Name,
}

/// One key of `capsule.toml` (a value, not a section), as the schema describes it.
#[derive(Debug, Clone)]
pub struct Key {
    /// The path, e.g. `runtime`, `max-concurrent-calls`.
    pub segments: Vec<Segment>,
    /// The key's schema (its `$ref`s point into the root schema's definitions).
    pub schema: Value,
    /// The description (from the field's doc comment).
    pub description: String,
    /// The default value, if the schema states one.
    pub default: Option<Value>,
    /// The command-line flag that sets it, if any.
    pub flag: Option<String>,
    /// An older environment variable that also sets it.
    pub env_alias: Option<String>,
    /// Whether the value is a path (or a list of paths).
    pub path: bool,
    /// Whether the value is secret: never printed.
    pub secret: bool,
}

impl Key {
    /// `plugins.NAME.limits.fuel`.
    pub fn dotted(&self) -> String {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Field(f) => f.as_str(),
                Segment::Name => "NAME",
            })
            .collect::<Vec<_>>()
            .join(".")
    }

    /// `CAPSULE_PLUGINS__NAME__LIMITS_FUEL`.
    pub fn env_name(&self) -> String {
        self.env_parts()
            .iter()
            .map(|p| p.as_deref().unwrap_or("NAME"))
            .collect()
    }

    /// The variable's name as literal parts and holes (`None`) for the user's names.
    fn env_parts(&self) -> Vec<Option<String>> {
        let mut parts = vec![Some(ENV_PREFIX.to_string())];
        let mut previous: Option<&Segment> = None;
        for segment in &self.segments {
            let separator = match (previous, segment) {
                (None, _) => "",
                (Some(Segment::Field(_)), Segment::Field(_)) => "_",
                _ => "__",
            };
            if !separator.is_empty() {
                parts.push(Some(separator.to_string()));
            }
            match segment {
                Segment::Field(f) => parts.push(Some(f.to_ascii_uppercase().replace('-', "_"))),
                Segment::Name => parts.push(None),
            }
            previous = Some(segment);
        }
        // Merge neighbouring literals so that matching sees one literal between holes.
        let mut merged: Vec<Option<String>> = Vec::new();
        for part in parts {
            match (merged.last_mut(), part) {
                (Some(Some(last)), Some(text)) => last.push_str(&text),
                (_, part) => merged.push(part),
            }
        }
        merged
    }

    /// The names that fill this key's holes if `var` is its variable, e.g. `["text"]` for
    /// `CAPSULE_PLUGINS__text__LIMITS_FUEL`.
    pub fn match_env(&self, var: &str) -> Option<Vec<String>> {
        let mut names = Vec::new();
        match_parts(&self.env_parts(), var, &mut names).then_some(names)
    }

    /// The path with the holes filled by `names`.
    pub fn path_with(&self, names: &[String]) -> Vec<String> {
        let mut names = names.iter();
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Field(f) => f.clone(),
                Segment::Name => names.next().cloned().unwrap_or_default(),
            })
            .collect()
    }
}

/// Whether `text` is made of `parts` (a hole takes a non-empty name without `__`, or, as
/// the last part, the rest).
fn match_parts(parts: &[Option<String>], text: &str, names: &mut Vec<String>) -> bool {
    match parts.split_first() {
        None => text.is_empty(),
        Some((Some(literal), rest)) => text
            .strip_prefix(literal.as_str())
            .is_some_and(|tail| match_parts(rest, tail, names)),
        Some((None, rest)) => {
            let end = if rest.is_empty() {
                text.len()
            } else {
                match text.find("__") {
                    Some(end) => end,
                    None => return false,
                }
            };
            if end == 0 {
                return false;
            }
            names.push(text[..end].to_string());
            match_parts(rest, &text[end..], names)
        }
    }
}

/// Every key of the schema `root`, in schema order.
pub fn keys(root: &Value) -> Vec<Key> {
    let mut out = Vec::new();
    walk_properties(root, root, &mut Vec::new(), false, &mut out);
    out
}

fn walk_properties(
    root: &Value,
    object: &Value,
    path: &mut Vec<Segment>,
    secret: bool,
    out: &mut Vec<Key>,
) {
    let Some(properties) = object.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, property) in properties {
        path.push(Segment::Field(name.clone()));
        walk(root, property, path, secret, out);
        path.pop();
    }
}

fn walk(root: &Value, property: &Value, path: &mut Vec<Segment>, secret: bool, out: &mut Vec<Key>) {
    let resolved = resolve(root, property);
    let secret = secret || flag(property, "x-secret");
    if resolved.get("properties").is_some() {
        return walk_properties(root, resolved, path, secret, out);
    }
    if resolved.get("type").is_some_and(|t| t == "object")
        && let Some(values) = resolved
            .get("additionalProperties")
            .filter(|v| v.is_object())
    {
        path.push(Segment::Name);
        let before = out.len();
        walk(root, values, path, secret, out);
        path.pop();
        let description = property.get("description").and_then(Value::as_str);
        for key in &mut out[before..] {
            if key.description.is_empty() {
                key.description = description.unwrap_or_default().to_string();
            }
        }
        return;
    }
    let text = |k: &str| {
        property
            .get(k)
            .or_else(|| resolved.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    out.push(Key {
        segments: path.clone(),
        schema: property.clone(),
        description: text("description").unwrap_or_default(),
        default: property.get("default").filter(|d| !d.is_null()).cloned(),
        flag: text("x-flag"),
        env_alias: text("x-env-alias"),
        path: flag(property, "x-path"),
        secret,
    });
}

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool).unwrap_or(false)
}

/// The key of `keys` at `path` (a name in `path` fills a hole).
pub fn key_at<'k>(keys: &'k [Key], path: &[String]) -> Option<&'k Key> {
    keys.iter().find(|k| {
        k.segments.len() == path.len()
            && k.segments.iter().zip(path).all(|(s, p)| match s {
                Segment::Field(f) => f == p,
                Segment::Name => true,
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::json_schema;

    fn key(dotted: &str) -> Key {
        keys(&json_schema())
            .into_iter()
            .find(|k| k.dotted() == dotted)
            .unwrap_or_else(|| panic!("no key {dotted}"))
    }

    #[test]
    fn names_follow_the_key_path_with_user_names_set_off_by_double_underscores() {
        let cases = [
            (
                "runtime.max-concurrent-calls",
                "CAPSULE_RUNTIME_MAX_CONCURRENT_CALLS",
            ),
            ("plugins-dir", "CAPSULE_PLUGINS_DIR"),
            ("limits.log-output", "CAPSULE_LIMITS_LOG_OUTPUT"),
            (
                "plugins.NAME.limits.fuel",
                "CAPSULE_PLUGINS__NAME__LIMITS_FUEL",
            ),
            (
                "plugins.NAME.config.NAME",
                "CAPSULE_PLUGINS__NAME__CONFIG__NAME",
            ),
            (
                "plugins.NAME.net.hosts.NAME",
                "CAPSULE_PLUGINS__NAME__NET_HOSTS__NAME",
            ),
            ("secrets.NAME", "CAPSULE_SECRETS__NAME"),
        ];
        for (dotted, env) in cases {
            assert_eq!(key(dotted).env_name(), env, "{dotted}");
        }
    }

    #[test]
    fn a_variable_gives_back_the_names_in_its_holes() {
        let fuel = key("plugins.NAME.limits.fuel");
        assert_eq!(
            fuel.match_env("CAPSULE_PLUGINS__my_tool__LIMITS_FUEL"),
            Some(vec!["my_tool".to_string()])
        );
        assert_eq!(fuel.match_env("CAPSULE_PLUGINS____LIMITS_FUEL"), None);
        assert_eq!(fuel.match_env("CAPSULE_PLUGINS__x__LIMITS_FUELS"), None);
        let hosts = key("plugins.NAME.net.hosts.NAME");
        assert_eq!(
            hosts.match_env("CAPSULE_PLUGINS__wiki__NET_HOSTS__wiki.internal"),
            Some(vec!["wiki".to_string(), "wiki.internal".to_string()])
        );
        assert_eq!(
            hosts.path_with(&["wiki".into(), "wiki.internal".into()]),
            ["plugins", "wiki", "net", "hosts", "wiki.internal"]
        );
    }

    /// The rule is unambiguous: no variable sets two keys. Each key's variable (with a
    /// sample name in each hole) is matched against every key.
    #[test]
    fn no_two_keys_map_to_one_variable() {
        let all = keys(&json_schema());
        assert!(all.len() > 40, "{} keys", all.len());
        for sample in ["x", "a_b", "ALPHA-1"] {
            for key in &all {
                let var = key.env_name().replace("NAME", sample);
                let matching: Vec<String> = all
                    .iter()
                    .filter(|k| k.match_env(&var).is_some())
                    .map(Key::dotted)
                    .collect();
                assert_eq!(matching, [key.dotted()], "{var}");
            }
        }
        for key in &all {
            for segment in &key.segments {
                if let Segment::Field(f) = segment {
                    assert!(
                        !f.contains("--") && !f.starts_with('-') && !f.ends_with('-'),
                        "{f}"
                    );
                }
            }
        }
    }
}
