//! Exposed tool names: `<plugin>_<tool>`, always matching `^[a-zA-Z0-9_-]{1,64}$` so
//! every MCP client and model API accepts them.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

/// Longest name model APIs accept.
pub const MAX_NAME: usize = 64;

/// Whether `name` is acceptable as a tool name for every client.
pub fn is_valid(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A plugin name from a file stem: every character outside `[a-zA-Z0-9_-]` becomes `_`.
pub fn plugin_name(stem: &str) -> String {
    let name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "plugin".into()
    } else {
        name
    }
}

/// `<plugin>_<tool>`, shortened with a stable hash suffix when longer than [`MAX_NAME`].
pub fn exposed_name(plugin: &str, tool: &str) -> String {
    fit(format!("{plugin}_{tool}"))
}

/// Cuts `name` to [`MAX_NAME`] keeping it unique: 55 characters, `_`, 8 hex digits of its hash.
fn fit(name: String) -> String {
    if name.len() <= MAX_NAME {
        return name;
    }
    let hash = hex::encode(&Sha256::digest(name.as_bytes())[..4]);
    format!("{}_{hash}", &name[..MAX_NAME - 9])
}

/// Hands out names, never the same one twice: a taken name gets `_2`, `_3`, ….
#[derive(Default)]
pub struct NameAllocator {
    taken: HashSet<String>,
}

impl NameAllocator {
    /// Claims `wanted`, or the first free variant of it. Returns the name given.
    pub fn claim(&mut self, wanted: &str) -> String {
        if self.taken.insert(wanted.to_string()) {
            return wanted.to_string();
        }
        let mut n = 2;
        loop {
            let suffix = format!("_{n}");
            let base = &wanted[..wanted.len().min(MAX_NAME - suffix.len())];
            let candidate = format!("{base}{suffix}");
            if self.taken.insert(candidate.clone()) {
                return candidate;
            }
            n += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names_are_sanitised() {
        assert_eq!(plugin_name("my tool.v2"), "my_tool_v2");
        assert_eq!(plugin_name("hash"), "hash");
    }

    #[test]
    fn long_names_fit_and_stay_distinct() {
        let a = exposed_name(&"p".repeat(40), &"a".repeat(40));
        let b = exposed_name(&"p".repeat(40), &format!("{}b", "a".repeat(39)));
        assert!(is_valid(&a) && is_valid(&b), "{a} {b}");
        assert_ne!(a, b);
    }

    #[test]
    fn collisions_get_numbered_suffixes() {
        let mut names = NameAllocator::default();
        assert_eq!(names.claim("a_b_c"), "a_b_c");
        assert_eq!(names.claim("a_b_c"), "a_b_c_2");
        assert_eq!(names.claim("a_b_c"), "a_b_c_3");
        let long = "x".repeat(64);
        let second = names.claim(&long);
        assert_eq!(names.claim(&long).len(), 64);
        assert!(is_valid(&second));
    }

    #[test]
    fn validity() {
        assert!(is_valid("text_word_count"));
        assert!(!is_valid(""));
        assert!(!is_valid("has space"));
        assert!(!is_valid(&"a".repeat(65)));
    }
}
