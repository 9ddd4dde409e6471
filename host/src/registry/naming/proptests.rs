//! Property tests of tool naming: any string a plugin sends as a tool name, and any file
//! name a plugin comes from, yields a valid exposed name or a clear error, never a panic,
//! and the allocator never hands out the same name twice.
//!
//! `PROPTEST_CASES` sets the number of cases (default 2000, about a second); run longer
//! locally with e.g. `PROPTEST_CASES=100000 cargo test -p capsule --lib naming::proptests`.

use std::collections::HashSet;

use proptest::prelude::*;

use super::*;
use crate::testing::proptest_config;

/// Names as a hostile plugin might send them: any Unicode (control characters and
/// multi-byte characters included), around and far beyond the length limit.
fn any_name() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,80}",
        "[a-zA-Z0-9_-]{0,70}",
        "[a-zé_\u{7}\u{1b}\u{200b}\u{10ffff}-]{50,130}",
        proptest::collection::vec(any::<char>(), 0..200).prop_map(String::from_iter),
    ]
}

/// Valid names from a small alphabet, so that collisions are frequent.
fn valid_name() -> impl Strategy<Value = String> {
    prop_oneof!["[ab_]{1,4}", "[ab]{60,64}", "[a-z0-9_-]{1,64}"]
}

proptest! {
    #![proptest_config(proptest_config(2000))]

    #[test]
    fn any_tool_name_is_checked_without_panicking(name in any_name()) {
        match check(&name) {
            Ok(()) => {
                prop_assert!((1..=MAX_NAME).contains(&name.len()));
                prop_assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
            }
            Err(err) => {
                let message = err.to_string();
                prop_assert!(message.ends_with("use 1-64 characters from a-z, A-Z, 0-9, `_` and `-`"), "{}", message);
                prop_assert!(!message.chars().any(char::is_control), "{:?}", message);
            }
        }
        let quoted = shown(&name);
        prop_assert!(!quoted.chars().any(char::is_control), "{:?}", quoted);
        // 48 characters of at most 10 escaped characters each, the quotes and the length.
        prop_assert!(quoted.len() <= 48 * 10 + 40, "{} bytes", quoted.len());
    }

    #[test]
    fn exposed_names_are_valid(stem in any_name(), tool in any_name()) {
        let plugin = plugin_name(&stem);
        // Invalid tool names never get this far, but must not panic if they do.
        let exposed = exposed_name(&plugin, &tool);
        prop_assert!(exposed.len() <= MAX_NAME, "{}", exposed);
        if check(&tool).is_ok() {
            prop_assert!(is_valid(&exposed), "{} + {} gave {}", plugin, tool, exposed);
        }
    }

    #[test]
    fn the_allocator_never_repeats_a_name(wanted in proptest::collection::vec(valid_name(), 1..60)) {
        let mut names = NameAllocator::default();
        let mut given = HashSet::new();
        for name in &wanted {
            let claimed = names.claim(name);
            prop_assert!(is_valid(&claimed), "{} for {}", claimed, name);
            prop_assert!(given.insert(claimed.clone()), "{} given twice", claimed);
        }
    }
}
