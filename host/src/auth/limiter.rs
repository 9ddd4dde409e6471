//! The rate limits a server enforces: one bucket per principal (`[rate-limits]
//! per-principal`, every MCP request an authenticated HTTP caller sends) and one per tool
//! (its `rate-limit`, every call over all callers and transports). Over a limit, the
//! answer is [`Exceeded`]: HTTP 429 with `Retry-After` at the edge, or the JSON-RPC error
//! [`RATE_LIMITED`] inside a session or over stdio.

use std::time::{Duration, Instant};

use rmcp::model::{ErrorCode, ErrorData};
use serde_json::json;

use super::access::KeyedRate;
use super::rate::RateLimit;
use super::rate_limit::Buckets;
use crate::units::format_duration;

/// The JSON-RPC error code of a request refused by a rate limit (an implementation-defined
/// server error; 429 in its last digits).
pub const RATE_LIMITED: i32 = -32029;

/// Most principals tracked at once; beyond it the ones with full buckets are forgotten.
const MAX_PRINCIPALS: usize = 10_000;
/// Most tools tracked at once (a registry serves at most this many per plugin anyway).
const MAX_TOOLS: usize = 10_000;

/// Put into an HTTP request's extensions by the edge once it has taken the tool's token
/// for that request's `tools/call`, so the handler does not take a second.
#[derive(Debug, Clone, Copy)]
pub struct ToolLimitChecked;

/// The buckets of one server.
pub struct RateLimiter {
    per_principal: Option<RateLimit>,
    principals: Buckets,
    tools: Buckets,
}

/// A request over a rate limit, with when to retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rate limit exceeded: {what} ({key} = \"{limit}\"); retry in {}", format_duration(round_up_ms(*.retry_after)))]
pub struct Exceeded {
    /// What is limited, in words: "tool `files_read` takes 5 calls per second over all callers".
    pub what: String,
    /// The key that sets the limit.
    pub key: String,
    /// The limit.
    pub limit: RateLimit,
    /// How long until the request would be allowed.
    pub retry_after: Duration,
}

impl RateLimiter {
    /// Limits of a server: `per_principal` for every authenticated caller, and each tool's
    /// own.
    pub fn new(per_principal: Option<RateLimit>) -> Self {
        Self {
            per_principal,
            principals: Buckets::new(MAX_PRINCIPALS),
            tools: Buckets::new(MAX_TOOLS),
        }
    }

    /// Whether principals are limited at all.
    pub fn limits_principals(&self) -> bool {
        self.per_principal.is_some()
    }

    /// Takes a token of principal `name`'s bucket at `now`.
    pub fn check_principal(&self, name: &str, now: Instant) -> Result<(), Exceeded> {
        let Some(limit) = &self.per_principal else {
            return Ok(());
        };
        self.principals
            .take(name, limit, now)
            .map_err(|retry_after| Exceeded {
                what: format!(
                    "principal `{name}` may send {}",
                    limit.describe("MCP requests")
                ),
                key: "rate-limits.per-principal".into(),
                limit: *limit,
                retry_after,
            })
    }

    /// Takes a token of the bucket of the tool exposed as `tool`, limited by `rate`, at `now`.
    pub fn check_tool(&self, tool: &str, rate: &KeyedRate, now: Instant) -> Result<(), Exceeded> {
        self.tools
            .take(tool, &rate.limit, now)
            .map_err(|retry_after| Exceeded {
                what: format!(
                    "tool `{tool}` takes {} over all callers",
                    rate.limit.describe("calls")
                ),
                key: rate.key.clone(),
                limit: rate.limit,
                retry_after,
            })
    }
}

impl Exceeded {
    /// The wait in whole milliseconds, rounded up (what `data.retryAfterMs` says).
    pub fn retry_after_ms(&self) -> u64 {
        u64::try_from(round_up_ms(self.retry_after).as_millis()).unwrap_or(u64::MAX)
    }

    /// The wait in whole seconds, rounded up, at least 1 (the `Retry-After` header).
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after_ms().div_ceil(1000).max(1)
    }

    /// `data` of the JSON-RPC error: `retryAfterMs` and the `limit` key.
    pub fn data(&self) -> serde_json::Value {
        json!({"retryAfterMs": self.retry_after_ms(), "limit": self.key})
    }

    /// The JSON-RPC error: code [`RATE_LIMITED`], this message, [`Self::data`].
    pub fn to_error_data(&self) -> ErrorData {
        ErrorData::new(ErrorCode(RATE_LIMITED), self.to_string(), Some(self.data()))
    }
}

/// `d` rounded up to whole milliseconds.
fn round_up_ms(d: Duration) -> Duration {
    let ms = d.as_nanos().div_ceil(1_000_000);
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_principal_over_its_limit_is_told_when_to_retry() {
        let limiter = RateLimiter::new(Some(RateLimit::parse("2/s burst 1").unwrap()));
        let t0 = Instant::now();
        assert_eq!(limiter.check_principal("alice", t0), Ok(()));
        let exceeded = limiter
            .check_principal("alice", t0 + Duration::from_micros(100))
            .unwrap_err();
        assert_eq!(
            exceeded.to_string(),
            "rate limit exceeded: principal `alice` may send 2 MCP requests per second (burst 1) (rate-limits.per-principal = \"2/s burst 1\"); retry in 500ms"
        );
        assert_eq!(exceeded.retry_after_ms(), 500);
        assert_eq!(exceeded.retry_after_secs(), 1);
        let error = exceeded.to_error_data();
        assert_eq!(error.code, ErrorCode(-32029));
        assert_eq!(
            error.data,
            Some(json!({"retryAfterMs": 500, "limit": "rate-limits.per-principal"}))
        );
        assert_eq!(limiter.check_principal("bob", t0), Ok(()));
    }

    #[test]
    fn without_a_per_principal_limit_principals_are_not_limited() {
        let limiter = RateLimiter::new(None);
        let t0 = Instant::now();
        for _ in 0..1000 {
            assert_eq!(limiter.check_principal("alice", t0), Ok(()));
        }
        assert!(limiter.principals.is_empty());
    }

    #[test]
    fn a_tool_over_its_limit_names_the_key() {
        let limiter = RateLimiter::new(None);
        let rate = KeyedRate {
            limit: RateLimit::parse("1/m").unwrap(),
            key: "plugins.files.tools.read.rate-limit".into(),
        };
        let t0 = Instant::now();
        assert_eq!(limiter.check_tool("files_read", &rate, t0), Ok(()));
        let exceeded = limiter
            .check_tool("files_read", &rate, t0 + Duration::from_millis(59_500))
            .unwrap_err();
        assert_eq!(
            exceeded.to_string(),
            "rate limit exceeded: tool `files_read` takes 1 call per minute over all callers (plugins.files.tools.read.rate-limit = \"1/m\"); retry in 500ms"
        );
    }
}
