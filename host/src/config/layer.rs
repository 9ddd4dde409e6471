//! The layers of the configuration, merged into one document before it is read into
//! [`RawConfig`]: `capsule.toml` (with `${VAR}` expanded), then `CAPSULE_*` environment
//! variables, then command-line flags; defaults fill what none of them sets. Each value
//! remembers where it came from, for `capsule config show`.
//!
//! The environment and the flags are laid onto the parsed TOML document, not onto the
//! raw types, so every key the schema describes can be set this way, including those of
//! sections added later, without code per key. Their text is read by the key's type in
//! the schema ([`super::value`]); the document then goes through the same deserializer
//! as the file, so unknown keys and wrong types in the file keep their line and column.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

use super::expand::expand;
use super::keys::{Key, Segment, key_at, keys};
use super::overrides::{self, Assignment, origin};
use super::schema::json_schema;
use super::{ConfigError, RawConfig};

/// A value given with a command-line flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagValue {
    /// The key it sets, e.g. `runtime.max-concurrent-calls`.
    pub key: String,
    /// The flag, e.g. `--max-concurrent-calls`.
    pub flag: String,
    /// The text given.
    pub value: String,
}

/// Where an effective value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Nothing set it.
    Default,
    /// The config file, at this line and column.
    File {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// This environment variable.
    Env(String),
    /// This command-line flag.
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::File { path, line, column } => {
                write!(f, "file {}:{line}:{column}", path.display())
            }
            Self::Env(var) => write!(f, "env {var}"),
            Self::Flag(flag) => write!(f, "cli {flag}"),
        }
    }
}

/// One key's effective value.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The key's path, e.g. `["plugins", "text", "limits", "fuel"]`.
    pub path: Vec<String>,
    /// The value; `None` for a secret, which is never shown.
    pub value: Option<toml::Value>,
    /// The value as written in the file, when it holds `${VAR}` (shown instead of the
    /// expanded value, which may be secret).
    pub written: Option<String>,
    /// Where it came from.
    pub source: Source,
}

impl Entry {
    /// The key as TOML writes it: `plugins.text.limits.fuel`, `net.hosts."a.example"`.
    pub fn dotted(&self) -> String {
        self.path
            .iter()
            .map(|p| toml_key(p))
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// A key as TOML writes it: bare when it can be, quoted otherwise.
pub(crate) fn toml_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare {
        key.to_string()
    } else {
        toml::Value::String(key.to_string()).to_string()
    }
}

/// The merged configuration.
#[derive(Debug)]
pub(crate) struct Layered {
    /// The document read into the raw types.
    pub raw: RawConfig,
    /// Every value set, and the defaults of the keys nothing set.
    pub entries: Vec<Entry>,
    /// Variables that look like keys but are not.
    pub warnings: Vec<String>,
}

/// Merges `text` (the contents of `file`, if any), the `CAPSULE_*` variables of `env` and
/// the `flags`; `${VAR}` in the file is read from `env` too. Paths from `env` and `flags`
/// are made absolute against `cwd`.
pub(crate) fn layer(
    file: Option<&Path>,
    text: &str,
    cwd: &Path,
    env: &[(String, String)],
    flags: &[FlagValue],
) -> Result<Layered, ConfigError> {
    let file_path = file.map(Path::to_path_buf).unwrap_or_default();
    let parse_error = |message: String| ConfigError::Parse {
        path: file_path.clone(),
        message,
    };
    let shape: toml::Table = toml::from_str(text).map_err(|e| parse_error(e.to_string()))?;
    let root = json_schema();
    let keys = keys(&root);
    let (assignments, warnings) = overrides::assignments(&root, &keys, &shape, cwd, env, flags)?;
    // One string holds the file and the assigned values as TOML, so that every value of
    // the merged document borrows from it; an assigned value's span lies past the file.
    let mut combined = text.to_string();
    let mut ranges: Vec<Range<usize>> = Vec::new();
    for assignment in &assignments {
        combined.push('\n');
        let start = combined.len();
        let value = toml::Value::try_from(&assignment.value)
            .map(|v| v.to_string())
            .unwrap_or_default();
        combined.push_str(&value);
        ranges.push(start..combined.len());
    }
    let combined = combined;
    let mut document = DeTable::parse(&combined[..text.len()])
        .map_err(|e| parse_error(e.to_string()))?
        .into_inner();

    let host_env = |name: &str| {
        env.iter()
            .find(|(var, _)| var == name)
            .map(|(_, value)| value.clone())
    };
    let mut written = Vec::new();
    expand_table(
        &mut document,
        &mut Vec::new(),
        &keys,
        text,
        &host_env,
        &mut written,
    )
    .map_err(|(key, message)| ConfigError::Invalid {
        path: file.map(Path::to_path_buf),
        key,
        message,
    })?;

    for (assignment, range) in assignments.iter().zip(&ranges) {
        let value = DeValue::parse(&combined[range.clone()])
            .map_err(|e| parse_error(e.to_string()))?
            .into_inner();
        insert(
            &mut document,
            &assignment.path,
            Spanned::new(range.clone(), value),
        )
        .map_err(|message| ConfigError::Override {
            origin: origin(&assignment.source),
            key: assignment.path.join("."),
            message,
        })?;
    }

    let mut entries = Vec::new();
    let origins = Origins {
        keys: &keys,
        text,
        file: &file_path,
        assignments: &assignments,
        written: &written,
    };
    origins.collect(&document, &mut Vec::new(), &mut entries);
    for key in &keys {
        let fixed = key.segments.iter().all(|s| matches!(s, Segment::Field(_)));
        let path = key.path_with(&[]);
        if fixed
            && !entries.iter().any(|e| e.path == path)
            && let Some(default) = key.default.as_ref()
        {
            entries.push(Entry {
                path,
                value: toml::Value::try_from(default).ok(),
                written: None,
                source: Source::Default,
            });
        }
    }

    let deserializer = toml::de::Deserializer::from(Spanned::new(0..text.len(), document));
    let raw = RawConfig::deserialize(deserializer).map_err(|mut err| {
        let at = err.span().map_or(0, |s| s.start);
        match assignments
            .iter()
            .zip(&ranges)
            .find(|(_, range)| range.contains(&at) || (at >= text.len() && range.start == at))
        {
            Some((assignment, _)) => ConfigError::Override {
                origin: origin(&assignment.source),
                key: assignment.path.join("."),
                message: err.message().to_string(),
            },
            None => {
                err.set_input(Some(text));
                parse_error(err.to_string())
            }
        }
    })?;
    Ok(Layered {
        raw,
        entries,
        warnings,
    })
}

/// Whether `path` is, or is inside, a secret.
fn is_secret(keys: &[Key], path: &[String]) -> bool {
    keys.iter().any(|k| {
        k.secret
            && k.segments.iter().zip(path).all(|(s, p)| match s {
                Segment::Field(f) => f == p,
                Segment::Name => true,
            })
            && path.len()
                >= k.segments
                    .iter()
                    .take_while(|s| matches!(s, Segment::Field(_)))
                    .count()
    })
}

/// 1-based line and column of byte `offset` in `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

type Located = (String, String);

/// Expands `${VAR}` in every string of `table` outside secrets; records the paths of the
/// values it changed. The error is the key and the message with line and column.
fn expand_table(
    table: &mut DeTable<'_>,
    path: &mut Vec<String>,
    keys: &[Key],
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    written: &mut Vec<Vec<String>>,
) -> Result<(), Located> {
    for (name, value) in table.iter_mut() {
        path.push(name.get_ref().to_string());
        if !is_secret(keys, path) {
            let changed = expand_value(value, path, text, env, keys, written)?;
            if changed {
                written.push(path.clone());
            }
        }
        path.pop();
    }
    Ok(())
}

fn expand_value(
    value: &mut Spanned<DeValue<'_>>,
    path: &mut Vec<String>,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    keys: &[Key],
    written: &mut Vec<Vec<String>>,
) -> Result<bool, Located> {
    let span = value.span();
    match value.get_mut() {
        DeValue::String(s) => match expand(s, env) {
            Ok(Some(expanded)) => {
                *s = DeString::Owned(expanded);
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(why) => {
                let (line, column) = line_column(text, span.start);
                Err((
                    path.join("."),
                    format!("line {line}, column {column}: {why}"),
                ))
            }
        },
        DeValue::Array(items) => {
            let mut changed = false;
            for item in items.iter_mut() {
                changed |= expand_value(item, path, text, env, keys, written)?;
            }
            Ok(changed)
        }
        DeValue::Table(inner) => {
            expand_table(inner, path, keys, text, env, written)?;
            Ok(false)
        }
        _ => Ok(false),
    }
}

/// Sets `path` in `table` to `value`, creating the tables on the way.
fn insert<'i>(
    table: &mut DeTable<'i>,
    path: &[String],
    value: Spanned<DeValue<'i>>,
) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Ok(());
    };
    let mut table = table;
    for (depth, part) in parents.iter().enumerate() {
        let span = value.span();
        let entry = table
            .entry(Spanned::new(span.clone(), DeString::Owned(part.clone())))
            .or_insert_with(|| Spanned::new(span, DeValue::Table(DeTable::default())));
        match entry.get_mut() {
            DeValue::Table(inner) => table = inner,
            _ => {
                return Err(format!(
                    "{} in the config file is not a table",
                    path[..=depth].join(".")
                ));
            }
        }
    }
    let span = value.span();
    table.insert(Spanned::new(span, DeString::Owned(last.clone())), value);
    Ok(())
}

/// What tells where each value of the merged document came from.
struct Origins<'a> {
    keys: &'a [Key],
    text: &'a str,
    file: &'a Path,
    assignments: &'a [Assignment],
    written: &'a [Vec<String>],
}

impl Origins<'_> {
    /// Gathers the values of `table` (arrays and non-table values are leaves) with their
    /// sources.
    fn collect(&self, table: &DeTable<'_>, path: &mut Vec<String>, out: &mut Vec<Entry>) {
        for (name, value) in table.iter() {
            path.push(name.get_ref().to_string());
            if let DeValue::Table(inner) = value.get_ref()
                && key_at(self.keys, path).is_none()
            {
                self.collect(inner, path, out);
            } else {
                let source = self
                    .assignments
                    .iter()
                    .rev()
                    .find(|a| a.path == *path)
                    .map(|a| a.source.clone())
                    .unwrap_or_else(|| {
                        let (line, column) = line_column(self.text, value.span().start);
                        Source::File {
                            path: self.file.to_path_buf(),
                            line,
                            column,
                        }
                    });
                let from_file = matches!(source, Source::File { .. });
                let secret = is_secret(self.keys, path);
                out.push(Entry {
                    path: path.clone(),
                    value: (!secret).then(|| to_toml(value.get_ref())),
                    written: (from_file && !secret && self.written.contains(path))
                        .then(|| self.text[value.span()].to_string()),
                    source,
                });
            }
            path.pop();
        }
    }
}

/// A document value as a `toml::Value`.
fn to_toml(value: &DeValue<'_>) -> toml::Value {
    match value {
        DeValue::String(s) => toml::Value::String(s.to_string()),
        DeValue::Integer(i) => i64::from_str_radix(&i.as_str().replace('_', ""), i.radix())
            .map(toml::Value::Integer)
            .unwrap_or_else(|_| toml::Value::String(i.as_str().to_string())),
        DeValue::Float(f) => f
            .as_str()
            .replace('_', "")
            .parse()
            .map(toml::Value::Float)
            .unwrap_or_else(|_| toml::Value::String(f.as_str().to_string())),
        DeValue::Boolean(b) => toml::Value::Boolean(*b),
        DeValue::Datetime(d) => toml::Value::Datetime(*d),
        DeValue::Array(items) => {
            toml::Value::Array(items.iter().map(|v| to_toml(v.get_ref())).collect())
        }
        DeValue::Table(table) => toml::Value::Table(
            table
                .iter()
                .map(|(k, v)| (k.get_ref().to_string(), to_toml(v.get_ref())))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn layered(text: &str, vars: &[(&str, &str)]) -> Result<Layered, ConfigError> {
        layer(
            Some(Path::new("/etc/capsule/capsule.toml")),
            text,
            Path::new("/work"),
            &env(vars),
            &[],
        )
    }

    #[test]
    fn a_variable_expands_before_the_value_is_read_by_its_type() {
        let layered = layered("[limits]\nmemory = \"${MEM}\"\n", &[("MEM", "96MiB")]).unwrap();
        assert_eq!(
            layered.raw.limits.memory,
            Some(crate::units::ByteSize::mib(96))
        );
        let entry = layered
            .entries
            .iter()
            .find(|e| e.dotted() == "limits.memory")
            .unwrap();
        assert_eq!(entry.written.as_deref(), Some("\"${MEM}\""));
        assert_eq!(
            entry.source.to_string(),
            "file /etc/capsule/capsule.toml:2:10"
        );
    }

    #[test]
    fn a_bad_value_names_the_variable_the_key_and_the_type_and_a_section_is_not_a_key() {
        let err = layered("", &[("CAPSULE_PLUGINS__x__SECRETS", "[1, 2]")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value in environment variable CAPSULE_PLUGINS__x__SECRETS for plugins.x.secrets: expected a list of strings: comma-separated, or a TOML array such as [\"a\", \"b\"], got `[1, 2]`"
        );
        let layered = layered("", &[("CAPSULE_SECRETS", "oops")]).unwrap();
        assert_eq!(
            layered.warnings,
            [
                "environment variable CAPSULE_SECRETS is not a config key and is ignored; did you mean CAPSULE_SECRETS_FILE (secrets-file)?"
            ]
        );
    }

    #[test]
    fn paths_from_the_environment_are_relative_to_the_current_folder() {
        let layered = layered(
            "plugins-dir = \"tools\"\n",
            &[("CAPSULE_CEILING_MOUNT_ROOTS", "data, /srv/shared")],
        )
        .unwrap();
        assert_eq!(layered.raw.plugins_dir, Some(PathBuf::from("tools")));
        assert_eq!(
            layered.raw.ceiling.mount_roots,
            [PathBuf::from("/work/data"), PathBuf::from("/srv/shared")]
        );
    }
}
