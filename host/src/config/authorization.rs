//! `[authorization]`: what HTTP callers need to call tools whose policy says nothing.
//! Per plugin and per tool, `scopes` in the policy ([`crate::auth::access`]).

use serde::Deserialize;

use crate::auth::access::checked;

/// The scopes of tools whose policy names none, when `default-tool-scopes` is not set.
pub const DEFAULT_TOOL_SCOPES: &str = "tools:call";

/// `[authorization]` as written.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawAuthorization {
    /// Scopes any one of which lets an HTTP caller call a tool whose policy (`[plugins.NAME] scopes`, `[plugins.NAME.tools.TOOL] scopes`) names none. Besides, a scope `tools:GLOB` grants every tool whose name matches (`tools:files_*`).
    #[schemars(extend("default" = ["tools:call"]))]
    pub default_tool_scopes: Option<Vec<String>>,
}

impl RawAuthorization {
    /// The default tool scopes, checked. The error is the key and what is wrong.
    pub fn default_tool_scopes(&self) -> Result<Vec<String>, (String, String)> {
        match &self.default_tool_scopes {
            Some(list) => {
                checked(list, "authorization.default-tool-scopes").map(|scopes| scopes.to_vec())
            }
            None => Ok(vec![DEFAULT_TOOL_SCOPES.to_string()]),
        }
    }
}
