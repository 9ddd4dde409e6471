//! A rate limit as written in `capsule.toml`: `"20/s"`, `"100/m"`, `"30/10s"`, optionally
//! with a burst: `"20/s burst 40"`. Without `burst`, the burst is the count (a full
//! period's worth may come at once).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, de};

use crate::units::{format_duration, parse_duration};

/// Most requests per period, and largest burst.
const MAX_COUNT: u32 = 1_000_000;
/// Shortest and longest period.
const PERIOD: (Duration, Duration) = (Duration::from_millis(1), Duration::from_secs(86_400));

/// `count` requests per `period`, at most `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimit {
    /// Requests per period (1 to 1000000).
    pub count: u32,
    /// The period (1ms to 1 day).
    pub period: Duration,
    /// Requests that may come at once after a quiet time (1 to 1000000).
    pub burst: u32,
}

impl RateLimit {
    /// The time one request's token takes to come back: `period / count`.
    pub fn interval(&self) -> Duration {
        self.period / self.count
    }

    /// Parses `"20/s"`, `"100/m"`, `"5/h"`, `"30/10s"`, `"20/s burst 40"`. The error says
    /// what is wrong and shows the syntax.
    pub fn parse(text: &str) -> Result<Self, String> {
        let syntax = "write COUNT/PERIOD with an optional burst, e.g. \"20/s\", \"100/m\", \"30/10s\" or \"20/s burst 40\"";
        let bad = |what: String| format!("rate limit `{text}`: {what}; {syntax}");
        let (count, rest) = text
            .trim()
            .split_once('/')
            .ok_or_else(|| bad("no `/`".into()))?;
        let count = parse_count(count.trim()).map_err(|m| bad(format!("the count {m}")))?;
        let mut words = rest.split_whitespace();
        let period = words.next().ok_or_else(|| bad("no period".into()))?;
        let period = parse_period(period).map_err(bad)?;
        let tail: Vec<&str> = words.collect();
        let burst = match tail.as_slice() {
            [] => count,
            ["burst", n] => parse_count(n).map_err(|m| bad(format!("the burst {m}")))?,
            _ => return Err(bad(format!("unexpected `{}`", tail.join(" ")))),
        };
        Ok(Self {
            count,
            period,
            burst,
        })
    }

    /// The limit in words, counting `what` (a plural): `20 calls per second (burst 40)`,
    /// `1 call per minute`.
    pub fn describe(&self, what: &str) -> String {
        let what = match self.count {
            1 => what.strip_suffix('s').unwrap_or(what),
            _ => what,
        };
        let per = match self.period.as_millis() {
            1000 => "second".to_string(),
            60_000 => "minute".to_string(),
            3_600_000 => "hour".to_string(),
            _ => format_duration(self.period),
        };
        if self.burst == self.count {
            format!("{} {what} per {per}", self.count)
        } else {
            format!("{} {what} per {per} (burst {})", self.count, self.burst)
        }
    }
}

/// A whole number from 1 to [`MAX_COUNT`].
fn parse_count(text: &str) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(n) if (1..=MAX_COUNT).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{text}` is not a whole number from 1 to {MAX_COUNT}"
        )),
    }
}

/// `s`, `m`/`min`, `h`, or a duration with a number (`10s`, `500ms`, `5m`, `2h`).
fn parse_period(text: &str) -> Result<Duration, String> {
    let with_number = if text.starts_with(|c: char| c.is_ascii_digit()) {
        text.to_string()
    } else {
        format!("1{text}")
    };
    let period = match with_number.strip_suffix('h') {
        Some(hours) if hours.chars().all(|c| c.is_ascii_digit()) => hours
            .parse::<u64>()
            .ok()
            .and_then(|h| h.checked_mul(3600))
            .map(Duration::from_secs)
            .ok_or_else(|| format!("the period `{text}` is too long"))?,
        _ => parse_duration(&with_number)
            .map_err(|_| format!("the period `{text}` is not s, m, h or a duration"))?,
    };
    if period < PERIOD.0 || period > PERIOD.1 {
        return Err(format!("the period `{text}` is not from 1ms to 24h"));
    }
    Ok(period)
}

impl fmt::Display for RateLimit {
    /// The form config accepts back: `20/s`, `30/10s`, `20/s burst 40`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let period = match self.period.as_millis() {
            1000 => "s".to_string(),
            60_000 => "m".to_string(),
            3_600_000 => "h".to_string(),
            _ => format_duration(self.period),
        };
        write!(f, "{}/{period}", self.count)?;
        if self.burst != self.count {
            write!(f, " burst {}", self.burst)?;
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for RateLimit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer).map_err(|_| {
            de::Error::custom(
                "expected a rate limit: a string such as \"20/s\" or \"20/s burst 40\"",
            )
        })?;
        Self::parse(&text).map_err(de::Error::custom)
    }
}

impl schemars::JsonSchema for RateLimit {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RateLimit".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "title": "rate limit",
            "description": "COUNT/PERIOD with an optional burst: \"20/s\", \"100/m\", \"5/h\", \"30/10s\", \"20/s burst 40\" (without burst, COUNT may come at once).",
            "type": "string",
            "pattern": "^\\s*[0-9]+\\s*/\\s*[0-9]*(ms|s|m|min|h)(\\s+burst\\s+[0-9]+)?\\s*$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(count: u32, period: Duration, burst: u32) -> RateLimit {
        RateLimit {
            count,
            period,
            burst,
        }
    }

    #[test]
    fn rates_parse_with_units_and_bursts() {
        let second = Duration::from_secs(1);
        assert_eq!(RateLimit::parse("20/s"), Ok(rate(20, second, 20)));
        assert_eq!(
            RateLimit::parse(" 20 / s burst 40 "),
            Ok(rate(20, second, 40))
        );
        assert_eq!(
            RateLimit::parse("100/m"),
            Ok(rate(100, Duration::from_secs(60), 100))
        );
        assert_eq!(
            RateLimit::parse("100/min"),
            Ok(rate(100, Duration::from_secs(60), 100))
        );
        assert_eq!(
            RateLimit::parse("5/h"),
            Ok(rate(5, Duration::from_secs(3600), 5))
        );
        assert_eq!(
            RateLimit::parse("30/10s burst 1"),
            Ok(rate(30, Duration::from_secs(10), 1))
        );
        assert_eq!(
            RateLimit::parse("1/250ms"),
            Ok(rate(1, Duration::from_millis(250), 1))
        );
        assert_eq!(
            RateLimit::parse("5/s").map(|r| r.interval()),
            Ok(Duration::from_millis(200))
        );
    }

    #[test]
    fn bad_rates_say_what_is_wrong() {
        let syntax = "write COUNT/PERIOD with an optional burst, e.g. \"20/s\", \"100/m\", \"30/10s\" or \"20/s burst 40\"";
        for (text, what) in [
            ("20", "no `/`"),
            (
                "0/s",
                "the count `0` is not a whole number from 1 to 1000000",
            ),
            (
                "x/s",
                "the count `x` is not a whole number from 1 to 1000000",
            ),
            ("20/", "no period"),
            (
                "20/fortnight",
                "the period `fortnight` is not s, m, h or a duration",
            ),
            ("20/48h", "the period `48h` is not from 1ms to 24h"),
            ("20/0s", "the period `0s` is not from 1ms to 24h"),
            ("20/s burst", "unexpected `burst`"),
            (
                "20/s burst 0",
                "the burst `0` is not a whole number from 1 to 1000000",
            ),
            ("20/s bust 4", "unexpected `bust 4`"),
        ] {
            assert_eq!(
                RateLimit::parse(text),
                Err(format!("rate limit `{text}`: {what}; {syntax}")),
                "{text}"
            );
        }
    }

    #[test]
    fn rates_display_the_way_they_parse() {
        for text in ["20/s", "100/m", "5/h", "30/10s", "20/s burst 40", "1/250ms"] {
            let parsed = RateLimit::parse(text).unwrap();
            assert_eq!(parsed.to_string(), text);
            assert_eq!(RateLimit::parse(&parsed.to_string()), Ok(parsed));
        }
        assert_eq!(
            RateLimit::parse("20/s burst 40").unwrap().describe("calls"),
            "20 calls per second (burst 40)"
        );
        assert_eq!(
            RateLimit::parse("3/10s").unwrap().describe("requests"),
            "3 requests per 10s"
        );
    }
}
