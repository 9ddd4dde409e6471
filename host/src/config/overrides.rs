//! The `CAPSULE_*` environment variables and the command-line flags that set keys, read
//! into assignments to lay over the file: each variable named by the rule of
//! [`super::keys`] (or an older alias), its text read by the key's type, names matched
//! against those already in the file, paths made absolute against the current folder.

use std::path::Path;

use serde_json::Value;

use super::ConfigError;
use super::keys::{ENV_PREFIX, Key, Segment, key_at};
use super::layer::{FlagValue, Source};
use super::value::from_text;

/// Variables read by the command line itself, not keys of the file.
const NOT_KEYS: &[&str] = &["CAPSULE_CONFIG", "CAPSULE_NO_CACHE"];

/// One value laid over the file.
pub(crate) struct Assignment {
    /// The key's path, names filled in.
    pub path: Vec<String>,
    /// The value, typed.
    pub value: Value,
    /// Where it came from.
    pub source: Source,
}

/// The assignments of the `CAPSULE_*` variables in `env` (older aliases first, so the
/// rule's name wins) and then of the `flags`, and warnings for variables that look like
/// keys but are none. `shape` is the file, for matching names.
pub(crate) fn assignments(
    root: &Value,
    keys: &[Key],
    shape: &toml::Table,
    cwd: &Path,
    env: &[(String, String)],
    flags: &[FlagValue],
) -> Result<(Vec<Assignment>, Vec<String>), ConfigError> {
    let mut warnings = Vec::new();
    let mut assignments = Vec::new();

    let aliases = keys
        .iter()
        .filter_map(|k| k.env_alias.as_deref().map(|alias| (alias, k)));
    let mut sorted_env: Vec<&(String, String)> = env.iter().collect();
    sorted_env.sort();
    for (alias, key) in aliases {
        if let Some((var, value)) = sorted_env.iter().find(|(var, _)| var == alias) {
            assignments.push(assign(
                root,
                key,
                &[],
                shape,
                value,
                cwd,
                Source::Env(var.clone()),
            )?);
        }
    }
    for (var, value) in sorted_env {
        if !var.starts_with(ENV_PREFIX)
            || NOT_KEYS.contains(&var.as_str())
            || keys.iter().any(|k| k.env_alias.as_deref() == Some(var))
        {
            continue;
        }
        match keys
            .iter()
            .find_map(|k| k.match_env(var).map(|names| (k, names)))
        {
            Some((key, names)) => assignments.push(assign(
                root,
                key,
                &names,
                shape,
                value,
                cwd,
                Source::Env(var.clone()),
            )?),
            None => warnings.extend(unknown_variable(var, keys)),
        }
    }
    for flag in flags {
        let parts: Vec<String> = flag.key.split('.').map(str::to_string).collect();
        let Some(key) = key_at(keys, &parts) else {
            let closest = keys
                .iter()
                .min_by_key(|k| strsim::levenshtein(&flag.key, &k.dotted()))
                .map(Key::dotted)
                .unwrap_or_default();
            return Err(ConfigError::Override {
                origin: format!("flag {}", flag.flag),
                key: flag.key.clone(),
                message: format!(
                    "no such key; did you mean {closest}? (`capsule config table` lists every key)"
                ),
            });
        };
        let names: Vec<String> = key
            .segments
            .iter()
            .zip(&parts)
            .filter(|(s, _)| **s == Segment::Name)
            .map(|(_, p)| p.clone())
            .collect();
        assignments.push(assign(
            root,
            key,
            &names,
            shape,
            &flag.value,
            cwd,
            Source::Flag(flag.flag.clone()),
        )?);
    }

    Ok((assignments, warnings))
}

/// "environment variable CAPSULE_X" or "flag --x".
pub(crate) fn origin(source: &Source) -> String {
    match source {
        Source::Env(var) => format!("environment variable {var}"),
        Source::Flag(flag) => format!("flag {flag}"),
        other => other.to_string(),
    }
}

/// The assignment of `text` to `key` (its holes filled by `names`, matched against the
/// names already in the file).
fn assign(
    root: &Value,
    key: &Key,
    names: &[String],
    shape: &toml::Table,
    text: &str,
    cwd: &Path,
    source: Source,
) -> Result<Assignment, ConfigError> {
    let mut path = key.path_with(names);
    let mut table = Some(shape);
    for (segment, part) in key.segments.iter().zip(path.iter_mut()) {
        if *segment == Segment::Name
            && let Some(existing) = table.and_then(|t| same_name(t, part))
        {
            *part = existing;
        }
        table = table
            .and_then(|t| t.get(part.as_str()))
            .and_then(toml::Value::as_table);
    }
    let mut value = from_text(root, &key.schema, text).map_err(|expects| {
        let got = if key.secret {
            String::new()
        } else {
            format!(", got `{text}`")
        };
        ConfigError::Override {
            origin: origin(&source),
            key: path.join("."),
            message: format!("expected {expects}{got}"),
        }
    })?;
    if key.path {
        absolute(&mut value, cwd);
    }
    Ok(Assignment {
        path,
        value,
        source,
    })
}

/// The name in `table` that `name` stands for: the same, or the same ignoring case with
/// `_` for `-` (so `CAPSULE_PLUGINS__MY_TOOL__…` reaches `[plugins.my-tool]`).
fn same_name(table: &toml::Table, name: &str) -> Option<String> {
    let fold = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    if table.contains_key(name) {
        return Some(name.to_string());
    }
    table.keys().find(|k| fold(k) == fold(name)).cloned()
}

/// Makes relative paths in `value` absolute against `cwd`.
fn absolute(value: &mut Value, cwd: &Path) {
    match value {
        Value::String(path) => {
            *path = cwd.join(&*path).display().to_string();
        }
        Value::Array(items) => items.iter_mut().for_each(|v| absolute(v, cwd)),
        _ => {}
    }
}

/// A warning for a `CAPSULE_*` variable that sets no key, if it looks like it meant to.
fn unknown_variable(var: &str, keys: &[Key]) -> Option<String> {
    let first = |name: &str| {
        name.trim_start_matches(ENV_PREFIX)
            .split('_')
            .next()
            .map(str::to_string)
    };
    let (distance, closest) = keys
        .iter()
        .map(|k| (strsim::levenshtein(var, &k.env_name()), k))
        .min_by_key(|(d, _)| *d)?;
    let looks_like_a_key = distance <= 2 || keys.iter().any(|k| first(&k.env_name()) == first(var));
    looks_like_a_key.then(|| {
        format!(
            "environment variable {var} is not a config key and is ignored; did you mean {} ({})?",
            closest.env_name(),
            closest.dotted()
        )
    })
}
