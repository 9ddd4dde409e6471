//! Which tools a principal's scopes let it call. A tool needs any one of its scopes (from
//! its policy, else its plugin's, else `[authorization] default-tool-scopes`); besides,
//! a scope `tools:<glob>` grants every tool whose exposed name matches the glob, where `*`
//! stands for any run of characters (`tools:files_*`, `tools:*`).

/// The prefix of scopes that grant tools by name.
pub const TOOLS_PREFIX: &str = "tools:";

/// Whether a principal holding `granted` may call the tool exposed as `tool`, which needs
/// any one of `required`.
pub fn permits(granted: &[String], required: &[String], tool: &str) -> bool {
    granted.iter().any(|scope| {
        required.contains(scope)
            || scope
                .strip_prefix(TOOLS_PREFIX)
                .is_some_and(|pattern| glob_matches(pattern, tool))
    })
}

/// Whether `name` matches `pattern`, in which `*` matches any run of characters (also an
/// empty one) and every other character only itself. Linear in the lengths (no
/// backtracking blow-up, whatever the pattern).
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let pattern = pattern.as_bytes();
    let name = name.as_bytes();
    let (mut p, mut n) = (0, 0);
    // Where the last `*` was, and the name position it is tried to match up to.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, n));
            p += 1;
        } else if p < pattern.len() && pattern[p] == name[n] {
            p += 1;
            n += 1;
        } else if let Some((star_p, star_n)) = star {
            // Let the last `*` swallow one more character and retry after it.
            p = star_p + 1;
            n = star_n + 1;
            star = Some((star_p, star_n + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Checks a scope written in config: the characters OAuth allows in a scope token
/// (printable ASCII except space, `"` and `\`, RFC 6749 §3.3). The error says which.
pub fn check(scope: &str) -> Result<(), String> {
    if scope.is_empty() {
        return Err("a scope cannot be empty".into());
    }
    if super::is_scope(scope) {
        return Ok(());
    }
    let bad = scope
        .chars()
        .find(|&c| !(c.is_ascii_graphic() && c != '"' && c != '\\'))
        .unwrap_or(' ');
    Err(format!(
        "scope `{}` contains `{}`; a scope is printable ASCII without spaces, `\"` or `\\` (RFC 6749)",
        scope.escape_debug(),
        bad.escape_debug()
    ))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn scopes(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_required_scope_or_a_matching_tools_glob_permits() {
        let call = scopes(&["tools:call"]);
        assert!(permits(&scopes(&["tools:call"]), &call, "files_read"));
        assert!(!permits(&scopes(&["files:read"]), &call, "files_read"));
        assert!(permits(&scopes(&["tools:files_*"]), &call, "files_read"));
        assert!(!permits(&scopes(&["tools:files_*"]), &call, "text_upper"));
        assert!(permits(&scopes(&["tools:*"]), &call, "text_upper"));
        assert!(permits(&scopes(&["tools:text_upper"]), &call, "text_upper"));
        assert!(!permits(
            &scopes(&["tools:text_upper"]),
            &call,
            "text_uppercase"
        ));
        assert!(permits(
            &scopes(&["email", "files:write"]),
            &scopes(&["files:read", "files:write"]),
            "files_write"
        ));
        assert!(!permits(&[], &call, "files_read"));
        // Another prefix is not a glob: only `tools:` scopes name tools.
        assert!(!permits(&scopes(&["files:*"]), &call, "files_read"));
    }

    #[test]
    fn globs_match_runs_of_characters() {
        assert!(glob_matches("files_*", "files_"));
        assert!(glob_matches("*_read", "files_read"));
        assert!(glob_matches("f*s_*d", "files_read"));
        assert!(glob_matches("**", ""));
        assert!(!glob_matches("files_*", "file_read"));
        assert!(!glob_matches("*_read", "files_reader"));
        assert!(!glob_matches("", "x"));
    }

    #[test]
    fn config_scopes_are_oauth_scope_tokens() {
        assert_eq!(check("tools:files_*"), Ok(()));
        assert_eq!(check("https://example.com/mcp.read"), Ok(()));
        assert_eq!(check(""), Err("a scope cannot be empty".into()));
        assert_eq!(
            check("tools call"),
            Err("scope `tools call` contains ` `; a scope is printable ASCII without spaces, `\"` or `\\` (RFC 6749)".into())
        );
        assert_eq!(
            check("ü"),
            Err("scope `ü` contains `ü`; a scope is printable ASCII without spaces, `\"` or `\\` (RFC 6749)".into())
        );
    }

    /// The reference: the definition, recursively (exponential, fine for short inputs).
    fn by_definition(pattern: &[u8], name: &[u8]) -> bool {
        match pattern.split_first() {
            None => name.is_empty(),
            Some((b'*', rest)) => (0..=name.len()).any(|i| by_definition(rest, &name[i..])),
            Some((c, rest)) => name.first() == Some(c) && by_definition(rest, &name[1..]),
        }
    }

    proptest! {
        #[test]
        fn globs_agree_with_the_definition(
            pattern in "[ab_*]{0,12}",
            name in "[ab_]{0,16}",
        ) {
            prop_assert_eq!(glob_matches(&pattern, &name), by_definition(pattern.as_bytes(), name.as_bytes()));
        }

        #[test]
        fn a_glob_without_star_is_equality(pattern in "[a-z_0-9-]{0,20}", name in "[a-z_0-9-]{0,20}") {
            prop_assert_eq!(glob_matches(&pattern, &name), pattern == name);
            prop_assert!(glob_matches(&name, &name));
        }

        #[test]
        fn a_trailing_star_is_a_prefix(prefix in "[a-z_]{0,10}", name in "[a-z_]{0,20}") {
            prop_assert_eq!(glob_matches(&format!("{prefix}*"), &name), name.starts_with(&prefix));
            prop_assert!(glob_matches("*", &name));
        }

        #[test]
        fn a_principal_without_tools_scopes_needs_a_required_one(
            granted in proptest::collection::vec("[a-z:]{1,8}", 0..5),
            required in proptest::collection::vec("[a-z:]{1,8}", 1..4),
            tool in "[a-z_]{1,12}",
        ) {
            let granted: Vec<String> = granted.into_iter().filter(|s| !s.starts_with(TOOLS_PREFIX)).collect();
            let expected = granted.iter().any(|g| required.contains(g));
            prop_assert_eq!(permits(&granted, &required, &tool), expected);
        }

        #[test]
        fn tools_star_permits_every_tool(required in proptest::collection::vec("[a-z:]{1,8}", 0..4), tool in "[a-zA-Z0-9_-]{1,64}") {
            prop_assert!(permits(&["tools:*".to_string()], &required, &tool));
        }
    }
}
