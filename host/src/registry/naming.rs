//! Exposed tool names: `<plugin>_<tool>`, always matching `^[a-zA-Z0-9_-]{1,64}$` so
//! every MCP client and model API accepts them.
//!
//! A plugin's own tool names are untrusted input: [`check`] validates them before anything
//! is cut or combined, and [`shown`] quotes a rejected name safely (escaped, cut on a
//! character boundary) for error messages.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

/// Longest name model APIs accept.
pub const MAX_NAME: usize = 64;

/// Characters of a rejected name quoted in an error message; the rest is elided.
const SHOWN_CHARS: usize = 48;

/// The naming rule, as every error message states it.
const RULE: &str = "use 1-64 characters from a-z, A-Z, 0-9, `_` and `-`";

/// Why a plugin's tool name cannot be served. The message states the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is the empty string.
    #[error("the name is empty; {RULE}")]
    Empty,
    /// The name has more than [`MAX_NAME`] characters.
    #[error("the name is {chars} characters long; {RULE}")]
    TooLong {
        /// Its length in characters.
        chars: usize,
    },
    /// The name contains a control character.
    #[error("the name contains the control character {} at position {position}; {RULE}", .found.escape_unicode())]
    Control {
        /// The character.
        found: char,
        /// Its position, counted in characters from 1.
        position: usize,
    },
    /// The name contains a character outside the allowed set.
    #[error("the name contains `{}` at position {position}; {RULE}", .found.escape_debug())]
    Character {
        /// The character.
        found: char,
        /// Its position, counted in characters from 1.
        position: usize,
    },
}

/// Checks a name a plugin gave one of its tools against the rule every client accepts.
pub fn check(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    let chars = name.chars().count();
    if chars > MAX_NAME {
        return Err(NameError::TooLong { chars });
    }
    for (i, c) in name.chars().enumerate() {
        let position = i + 1;
        if c.is_control() {
            return Err(NameError::Control { found: c, position });
        }
        if !(c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(NameError::Character { found: c, position });
        }
    }
    Ok(())
}

/// Whether `name` is acceptable as a tool name for every client.
pub fn is_valid(name: &str) -> bool {
    check(name).is_ok()
}

/// `name` quoted for an error message: control and non-printable characters escaped, at
/// most [`SHOWN_CHARS`] characters of it (cut on a character boundary), and its length
/// when it was cut: `` `ab\u{7}c` `` or `` `ééé…` (300 characters) ``.
pub fn shown(name: &str) -> String {
    let chars = name.chars().count();
    let head: String = name.chars().take(SHOWN_CHARS).collect();
    let escaped = head.escape_debug();
    if chars > SHOWN_CHARS {
        format!("`{escaped}…` ({chars} characters)")
    } else {
        format!("`{escaped}`")
    }
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
/// Both parts are expected to be valid ([`plugin_name`], [`check`]); the result is then
/// always valid. Other input never panics: it is cut on character boundaries.
pub fn exposed_name(plugin: &str, tool: &str) -> String {
    fit(format!("{plugin}_{tool}"))
}

/// Cuts `name` to [`MAX_NAME`] keeping it unique: 55 bytes, `_`, 8 hex digits of its hash.
fn fit(name: String) -> String {
    if name.len() <= MAX_NAME {
        return name;
    }
    let hash = hex::encode(&Sha256::digest(name.as_bytes())[..4]);
    format!("{}_{hash}", head(&name, MAX_NAME - 9))
}

/// The longest prefix of `text` of at most `bytes` bytes that ends on a character boundary.
fn head(text: &str, bytes: usize) -> &str {
    &text[..text.floor_char_boundary(bytes)]
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
            let base = head(wanted, MAX_NAME - suffix.len());
            let candidate = format!("{base}{suffix}");
            if self.taken.insert(candidate.clone()) {
                return candidate;
            }
            n += 1;
        }
    }
}

#[cfg(test)]
mod proptests;

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
        // A taken name of the maximum length is cut to make room for its suffix.
        let long = "x".repeat(64);
        assert_eq!(names.claim(&long), long);
        let second = names.claim(&long);
        assert_eq!(second, format!("{}_2", "x".repeat(62)));
        assert!(is_valid(&second), "{second}");
        assert_eq!(names.claim(&long), format!("{}_3", "x".repeat(62)));
    }

    #[test]
    fn validity() {
        assert!(is_valid("text_word_count"));
        assert!(!is_valid(""));
        assert!(!is_valid("has space"));
        assert!(!is_valid(&"a".repeat(65)));
    }

    /// Found by reading the code (issue #14, item 3): a long non-ASCII name was cut by byte
    /// position and panicked the host during start.
    #[test]
    fn long_non_ascii_input_never_panics() {
        let name = exposed_name("plugin", &"é".repeat(100));
        assert!(name.len() <= MAX_NAME, "{name}");
        let mut names = NameAllocator::default();
        let wanted = "ü".repeat(40);
        names.claim(&wanted);
        assert_eq!(names.claim(&wanted), format!("{}_2", "ü".repeat(31)));
    }

    #[test]
    fn every_rule_has_its_message() {
        assert_eq!(
            check("").unwrap_err().to_string(),
            "the name is empty; use 1-64 characters from a-z, A-Z, 0-9, `_` and `-`"
        );
        assert_eq!(
            check(&"é".repeat(65)).unwrap_err().to_string(),
            "the name is 65 characters long; use 1-64 characters from a-z, A-Z, 0-9, `_` and `-`"
        );
        assert_eq!(
            check("ab\u{7}").unwrap_err().to_string(),
            "the name contains the control character \\u{7} at position 3; use 1-64 characters from a-z, A-Z, 0-9, `_` and `-`"
        );
        assert_eq!(
            check("a.b").unwrap_err().to_string(),
            "the name contains `.` at position 2; use 1-64 characters from a-z, A-Z, 0-9, `_` and `-`"
        );
        assert_eq!(
            check("grüße").unwrap_err().to_string(),
            "the name contains `ü` at position 3; use 1-64 characters from a-z, A-Z, 0-9, `_` and `-`"
        );
    }

    #[test]
    fn shown_names_are_escaped_and_cut() {
        assert_eq!(shown("a\nb\u{1b}[31m"), "`a\\nb\\u{1b}[31m`");
        assert_eq!(
            shown(&"é".repeat(300)),
            format!("`{}…` (300 characters)", "é".repeat(48))
        );
    }
}
