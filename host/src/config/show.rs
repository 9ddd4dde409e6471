//! `capsule config show`: the effective configuration, each value with its source,
//! secrets redacted.

use serde_json::{Map, Value, json};

use super::layer::{Entry, toml_key};

/// What a secret shows instead of its value.
pub const REDACTED: &str = "<redacted>";

/// The entries as TOML: one `key = value  # source` line per key, under its table.
pub fn toml(entries: &[Entry]) -> String {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| {
        (a.path.len() > 1, &a.path[..a.path.len() - 1], &a.path).cmp(&(
            b.path.len() > 1,
            &b.path[..b.path.len() - 1],
            &b.path,
        ))
    });
    let mut out = String::from(
        "# effective configuration: file < environment < command line; defaults fill the rest\n",
    );
    let mut table: Option<&[String]> = None;
    for entry in sorted {
        let (last, parent) = entry.path.split_last().unwrap_or((&entry.path[0], &[]));
        if table != Some(parent) && !parent.is_empty() {
            let header: Vec<String> = parent.iter().map(|p| toml_key(p)).collect();
            out.push_str(&format!("\n[{}]\n", header.join(".")));
        }
        table = Some(parent);
        out.push_str(&format!(
            "{} = {}  # {}\n",
            toml_key(last),
            shown(entry),
            entry.source
        ));
    }
    out
}

/// The value as shown: redacted, as written (when it held `${VAR}`), or as it is.
fn shown(entry: &Entry) -> String {
    match (&entry.value, &entry.written) {
        (None, _) => format!("\"{REDACTED}\""),
        (Some(_), Some(written)) => written.clone(),
        (Some(value), None) => value.to_string(),
    }
}

/// The entries as JSON: `{ "runtime.max-concurrent-calls": { "value": 8, "source":
/// "env CAPSULE_RUNTIME_MAX_CONCURRENT_CALLS" } }`. A value written with `${VAR}` gives
/// `"written"` instead of `"value"`; a secret gives `"value": "<redacted>"`.
pub fn json(entries: &[Entry]) -> Value {
    let mut out = Map::new();
    for entry in entries {
        let mut item = Map::new();
        match (&entry.value, &entry.written) {
            (None, _) => {
                item.insert("value".into(), REDACTED.into());
            }
            (Some(_), Some(written)) => {
                item.insert("written".into(), written.clone().into());
            }
            (Some(value), None) => {
                item.insert(
                    "value".into(),
                    serde_json::to_value(value).unwrap_or(Value::Null),
                );
            }
        }
        item.insert("source".into(), entry.source.to_string().into());
        out.insert(entry.dotted(), Value::Object(item));
    }
    json!(out)
}
