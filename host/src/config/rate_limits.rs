//! `[rate-limits]`: limits over all of one caller's requests. Limits of single tools are
//! in their policy (`rate-limit`, [`crate::auth::access`]).

use serde::Deserialize;

use crate::auth::rate::RateLimit;

/// `[rate-limits]` as written.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawRateLimits {
    /// HTTP: MCP requests of each authenticated principal, e.g. "20/s" or "20/s burst 40"; one more gets 429 with Retry-After. Default: unlimited.
    pub per_principal: Option<RateLimit>,
}
