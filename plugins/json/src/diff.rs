//! Structural differences between two JSON values, as JSON Pointer paths. Objects are compared
//! key by key; arrays position by position (an insertion shows as changes from there on, which
//! keeps the output predictable for a model).

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

/// What happened at one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

/// One difference.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Change {
    /// JSON Pointer to the value ("" is the whole document).
    pub path: String,
    /// `added` (only in `after`), `removed` (only in `before`) or `changed`.
    pub kind: ChangeKind,
    /// The value in `before`; absent when added.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// The value in `after`; absent when removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

/// Every difference between `before` and `after`, depth first, in document order.
pub fn diff(before: &Value, after: &Value) -> Vec<Change> {
    let mut changes = Vec::new();
    walk(String::new(), before, after, &mut changes);
    changes
}

fn walk(path: String, before: &Value, after: &Value, changes: &mut Vec<Change>) {
    match (before, after) {
        (Value::Object(old), Value::Object(new)) => {
            for (key, old_value) in old {
                let child = format!("{path}/{}", escape(key));
                match new.get(key) {
                    Some(new_value) => walk(child, old_value, new_value, changes),
                    None => changes.push(Change {
                        path: child,
                        kind: ChangeKind::Removed,
                        before: Some(old_value.clone()),
                        after: None,
                    }),
                }
            }
            for (key, new_value) in new {
                if !old.contains_key(key) {
                    changes.push(Change {
                        path: format!("{path}/{}", escape(key)),
                        kind: ChangeKind::Added,
                        before: None,
                        after: Some(new_value.clone()),
                    });
                }
            }
        }
        (Value::Array(old), Value::Array(new)) => {
            for (index, old_value) in old.iter().enumerate() {
                let child = format!("{path}/{index}");
                match new.get(index) {
                    Some(new_value) => walk(child, old_value, new_value, changes),
                    None => changes.push(Change {
                        path: child,
                        kind: ChangeKind::Removed,
                        before: Some(old_value.clone()),
                        after: None,
                    }),
                }
            }
            for (index, new_value) in new.iter().enumerate().skip(old.len()) {
                changes.push(Change {
                    path: format!("{path}/{index}"),
                    kind: ChangeKind::Added,
                    before: None,
                    after: Some(new_value.clone()),
                });
            }
        }
        (Value::Number(old), Value::Number(new)) if numbers_equal(old, new) => {}
        _ if before == after => {}
        _ => changes.push(Change {
            path,
            kind: ChangeKind::Changed,
            before: Some(before.clone()),
            after: Some(after.clone()),
        }),
    }
}

/// JSON has one number type: `1` and `1.0` are the same value. Integers compare exactly, so
/// large ones do not collide through `f64` rounding.
fn numbers_equal(a: &serde_json::Number, b: &serde_json::Number) -> bool {
    match (a.as_i128(), b.as_i128()) {
        (Some(a), Some(b)) => a == b,
        _ => a.as_f64() == b.as_f64(),
    }
}

/// JSON Pointer escaping (RFC 6901): `~` as `~0`, `/` as `~1`.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_documents_have_no_changes() {
        let doc = json!({"a": [1, {"b": null}], "c": "x"});
        assert!(diff(&doc, &doc).is_empty());
    }

    #[test]
    fn reports_added_removed_and_changed_with_pointers() {
        let before = json!({"name": "a", "tags": ["x", "y"], "gone": 1, "a/b": {"~": 1}});
        let after = json!({"name": "b", "tags": ["x", "y", "z"], "new": true, "a/b": {"~": 2}});
        let changes = diff(&before, &after);
        let summary: Vec<_> = changes.iter().map(|c| (c.path.as_str(), c.kind)).collect();
        assert_eq!(
            summary,
            [
                ("/name", ChangeKind::Changed),
                ("/tags/2", ChangeKind::Added),
                ("/gone", ChangeKind::Removed),
                ("/a~1b/~0", ChangeKind::Changed),
                ("/new", ChangeKind::Added),
            ]
        );
        assert_eq!(changes[0].before, Some(json!("a")));
        assert_eq!(changes[0].after, Some(json!("b")));
        assert_eq!(changes[2].after, None);
    }

    #[test]
    fn type_changes_replace_the_whole_value() {
        let changes = diff(&json!({"a": [1]}), &json!({"a": {"0": 1}}));
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].path, "/a");
        assert_eq!(diff(&json!(1), &json!(2))[0].path, "");
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(diff(&json!(1), &json!(1.0)).is_empty());
        assert!(diff(&json!([2.5]), &json!([2.5])).is_empty());
        assert_eq!(diff(&json!(u64::MAX), &json!(u64::MAX - 1)).len(), 1);
        assert_eq!(diff(&json!(1), &json!(1.5)).len(), 1);
    }
}
