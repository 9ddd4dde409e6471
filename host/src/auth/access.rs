//! Who may call a plugin's tools and how often: `scopes` and `rate-limit` in
//! `[plugins.NAME]` (or a profile) for all its tools, and in `[plugins.NAME.tools.TOOL]`
//! for one of them (TOOL is the plugin's own name for it). A tool's setting wins over its
//! plugin's; a plugin without `scopes` needs `[authorization] default-tool-scopes`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use super::Principal;
use super::rate::RateLimit;
use super::scopes;

/// `[plugins.NAME.tools.TOOL]` as written.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawToolPolicy {
    /// Scopes any one of which lets an HTTP caller call this tool (instead of the plugin's).
    pub scopes: Option<Vec<String>>,
    /// Calls of this tool over all callers, e.g. "5/s" or "5/s burst 10" (instead of the plugin's).
    pub rate_limit: Option<RateLimit>,
}

impl RawToolPolicy {
    /// `self` with `over`'s settings where it has them.
    pub fn under(&self, over: &RawToolPolicy) -> RawToolPolicy {
        RawToolPolicy {
            scopes: over.scopes.clone().or_else(|| self.scopes.clone()),
            rate_limit: over.rate_limit.or(self.rate_limit),
        }
    }
}

/// A rate limit and the key it was set by, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedRate {
    /// The limit.
    pub limit: RateLimit,
    /// Where it is set, e.g. `plugins.files.tools.read.rate-limit`.
    pub key: String,
}

/// What one tool needs from its callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolAccess {
    /// Any one of these lets a principal call it.
    pub scopes: Arc<[String]>,
    /// Calls over all callers, if limited.
    pub rate_limit: Option<KeyedRate>,
}

/// The resolved access settings of one plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// What its tools need unless set per tool.
    plugin: ToolAccess,
    /// Whether `plugin.scopes` is the default (`[authorization] default-tool-scopes`).
    default_scopes: bool,
    /// Per-tool settings, by the plugin's tool name.
    tools: BTreeMap<String, ToolAccess>,
}

impl Access {
    /// Every tool needs one of `default_scopes`; no rate limit.
    pub fn default_for(default_scopes: &[String]) -> Self {
        Self {
            plugin: ToolAccess {
                scopes: default_scopes.into(),
                rate_limit: None,
            },
            default_scopes: true,
            tools: BTreeMap::new(),
        }
    }

    /// Resolves a plugin's `scopes`, `rate-limit` and `tools` (profiles merged in).
    /// `prefix` is how keys are named in messages (`plugins.NAME.`, empty in a sidecar).
    /// The error is `(key, message)`.
    pub fn resolve(
        scopes: Option<&[String]>,
        rate_limit: Option<RateLimit>,
        tools: &BTreeMap<String, RawToolPolicy>,
        default_scopes: &[String],
        prefix: &str,
    ) -> Result<Self, (String, String)> {
        let keyed =
            |key: String, limit: Option<RateLimit>| limit.map(|limit| KeyedRate { limit, key });
        let mut access = Self::default_for(default_scopes);
        if let Some(list) = scopes {
            access.plugin.scopes = checked(list, &format!("{prefix}scopes"))?;
            access.default_scopes = false;
        }
        access.plugin.rate_limit = keyed(format!("{prefix}rate-limit"), rate_limit);
        for (tool, raw) in tools {
            let key = |part: &str| format!("{prefix}tools.{tool}.{part}");
            let scopes = match &raw.scopes {
                Some(list) => checked(list, &key("scopes"))?,
                None => access.plugin.scopes.clone(),
            };
            let rate_limit = keyed(key("rate-limit"), raw.rate_limit)
                .or_else(|| access.plugin.rate_limit.clone());
            access
                .tools
                .insert(tool.clone(), ToolAccess { scopes, rate_limit });
        }
        Ok(access)
    }

    /// What the plugin's tool `tool` (its own name for it) needs.
    pub fn for_tool(&self, tool: &str) -> ToolAccess {
        self.tools
            .get(tool)
            .cloned()
            .unwrap_or_else(|| self.plugin.clone())
    }

    /// The tool names with settings of their own.
    pub fn configured_tools(&self) -> impl Iterator<Item = &str> {
        self.tools.keys().map(String::as_str)
    }

    /// The settings, one line each, for `capsule list`, `inspect` and `check`.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "scopes: {}{}",
            self.plugin.scopes.join(" or "),
            if self.default_scopes {
                " (default)"
            } else {
                ""
            }
        )];
        if let Some(rate) = &self.plugin.rate_limit {
            lines.push(format!(
                "rate-limit: {} per tool, over all callers",
                rate.limit.describe("calls")
            ));
        }
        for (tool, access) in &self.tools {
            lines.push(format!("tool {tool}: {}", access.describe()));
        }
        lines
    }
}

impl ToolAccess {
    /// Whether `principal` may call the tool exposed as `tool`. No principal (stdio, HTTP
    /// without authentication) may call every tool.
    pub fn permits(&self, principal: Option<&Principal>, tool: &str) -> bool {
        principal.is_none_or(|p| scopes::permits(&p.scopes, &self.scopes, tool))
    }

    /// `scopes a or b; rate-limit 5 per second`.
    pub fn describe(&self) -> String {
        let mut text = format!("scopes {}", self.scopes.join(" or "));
        if let Some(rate) = &self.rate_limit {
            text.push_str(&format!("; rate-limit {}", rate.limit.describe("calls")));
        }
        text
    }
}

/// `list` checked as scopes under `key`: non-empty, each a valid scope, duplicates dropped.
pub fn checked(list: &[String], key: &str) -> Result<Arc<[String]>, (String, String)> {
    if list.is_empty() {
        return Err((
            key.to_string(),
            "an empty list would let no HTTP caller call the tool; list the scopes that may, or leave the key out for the default".into(),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for scope in list {
        scopes::check(scope).map_err(|m| (key.to_string(), m))?;
        if !out.contains(scope) {
            out.push(scope.clone());
        }
    }
    Ok(out.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_tool_setting_wins_over_its_plugin_which_wins_over_the_default() {
        let mut tools = BTreeMap::new();
        tools.insert(
            "write".to_string(),
            RawToolPolicy {
                scopes: Some(strings(&["files:write"])),
                rate_limit: Some(RateLimit::parse("1/s").unwrap()),
            },
        );
        tools.insert(
            "stat".to_string(),
            RawToolPolicy {
                scopes: None,
                rate_limit: None,
            },
        );
        let access = Access::resolve(
            Some(&strings(&["files:read"])),
            Some(RateLimit::parse("10/s").unwrap()),
            &tools,
            &strings(&["tools:call"]),
            "plugins.files.",
        )
        .unwrap();
        let write = access.for_tool("write");
        assert_eq!(&*write.scopes, &strings(&["files:write"])[..]);
        assert_eq!(
            write.rate_limit.map(|r| r.key),
            Some("plugins.files.tools.write.rate-limit".to_string())
        );
        let read = access.for_tool("read");
        assert_eq!(&*read.scopes, &strings(&["files:read"])[..]);
        assert_eq!(
            read.rate_limit.map(|r| r.key),
            Some("plugins.files.rate-limit".to_string())
        );
        assert_eq!(access.for_tool("stat"), access.for_tool("read"));
        assert_eq!(
            access.describe(),
            vec![
                "scopes: files:read",
                "rate-limit: 10 calls per second per tool, over all callers",
                "tool stat: scopes files:read; rate-limit 10 calls per second",
                "tool write: scopes files:write; rate-limit 1 call per second",
            ]
        );
        let default =
            Access::resolve(None, None, &BTreeMap::new(), &strings(&["tools:call"]), "").unwrap();
        assert_eq!(
            &*default.for_tool("x").scopes,
            &strings(&["tools:call"])[..]
        );
        assert_eq!(default.describe(), vec!["scopes: tools:call (default)"]);
    }

    #[test]
    fn bad_scopes_name_their_key() {
        let err = |scopes: &[&str], tools: &BTreeMap<String, RawToolPolicy>| {
            Access::resolve(Some(&strings(scopes)), None, tools, &[], "plugins.files.").unwrap_err()
        };
        assert_eq!(
            err(&[], &BTreeMap::new()),
            (
                "plugins.files.scopes".to_string(),
                "an empty list would let no HTTP caller call the tool; list the scopes that may, or leave the key out for the default".to_string()
            )
        );
        let mut tools = BTreeMap::new();
        tools.insert(
            "read".to_string(),
            RawToolPolicy {
                scopes: Some(strings(&["a b"])),
                rate_limit: None,
            },
        );
        assert_eq!(
            err(&["files"], &tools),
            (
                "plugins.files.tools.read.scopes".to_string(),
                "scope `a b` contains ` `; a scope is printable ASCII without spaces, `\"` or `\\` (RFC 6749)".to_string()
            )
        );
    }
}
