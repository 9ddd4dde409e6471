//! `capsule top`: a running server's calls per plugin, read from its `/metrics` (parsed
//! with `prometheus-parse`): calls, calls/s between two scrapes, p50/p99 run time from
//! the histogram buckets, tool errors, rejected, busy, calls run demoted (on the
//! low-priority thread) and sandbox faults by kind.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use prometheus_parse::{Scrape, Value};

use crate::runtime::fault::Fault;

/// Counter of calls by plugin, tool and outcome.
const CALLS: &str = "capsule_tool_calls_total";
/// Histogram of run time by plugin and tool.
const RUN: &str = "capsule_call_run_seconds";
/// Counter of calls run on the low-priority thread, by plugin.
const DEMOTED: &str = "capsule_demoted_calls_total";

/// What one scrape says about each plugin.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// By plugin name.
    pub plugins: BTreeMap<String, PluginStats>,
}

/// One plugin's counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginStats {
    /// Calls by outcome (`ok`, `tool-error`, fault kinds, `rejected`, `busy`), all tools.
    pub outcomes: BTreeMap<String, f64>,
    /// Run-time buckets over all its tools: (upper bound in seconds, cumulative count).
    pub run_buckets: Vec<(f64, f64)>,
    /// Calls that ran demoted, on the low-priority thread (`runtime.demote-after`).
    pub demoted: f64,
}

impl PluginStats {
    /// Every call counted.
    pub fn calls(&self) -> f64 {
        self.outcomes.values().fold(0.0, |sum, n| sum + n)
    }

    /// Calls that ended with `outcome`.
    pub fn count(&self, outcome: &str) -> f64 {
        self.outcomes.get(outcome).copied().unwrap_or(0.0)
    }

    /// Sandbox faults, by kind (only kinds that happened).
    pub fn faults(&self) -> Vec<(&str, f64)> {
        Fault::KINDS
            .iter()
            .map(|kind| (*kind, self.count(kind)))
            .filter(|(_, n)| *n > 0.0)
            .collect()
    }
}

impl Snapshot {
    /// Scrapes `url` (`http://HOST:PORT/metrics`; a URL without a path gets `/metrics`).
    /// The error names the URL and what failed.
    pub async fn scrape(url: &str) -> Result<Self, String> {
        let uri = metrics_uri(url)?;
        let body = crate::auth::fetch::get(&uri)
            .await
            .map_err(|err| format!("cannot read {uri}: {err}"))?;
        let text = String::from_utf8_lossy(&body);
        Self::parse(&text).map_err(|err| format!("{uri}: {err}"))
    }

    /// Reads an exposition in the Prometheus text format. The error says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let lines = text.lines().map(|line| Ok(line.to_owned()));
        let scrape =
            Scrape::parse(lines).map_err(|err| format!("cannot parse the metrics: {err}"))?;
        let mut snapshot = Snapshot::default();
        let mut seen = false;
        for sample in &scrape.samples {
            let Some(plugin) = sample.labels.get("plugin") else {
                continue;
            };
            if sample.metric == CALLS {
                seen = true;
                let (Some(outcome), Value::Counter(n) | Value::Untyped(n)) =
                    (sample.labels.get("outcome"), &sample.value)
                else {
                    continue;
                };
                let stats = snapshot.plugins.entry(plugin.to_owned()).or_default();
                *stats.outcomes.entry(outcome.to_owned()).or_default() += n;
            } else if sample.metric == RUN
                && let Value::Histogram(buckets) = &sample.value
            {
                let stats = snapshot.plugins.entry(plugin.to_owned()).or_default();
                add_buckets(&mut stats.run_buckets, buckets);
            } else if sample.metric == DEMOTED
                && let Value::Counter(n) | Value::Untyped(n) = &sample.value
            {
                snapshot
                    .plugins
                    .entry(plugin.to_owned())
                    .or_default()
                    .demoted += n;
            }
        }
        if !seen && !text.contains(CALLS) {
            return Err(format!(
                "no `{CALLS}` in the answer: is this a capsule server's /metrics, with [metrics] enabled?"
            ));
        }
        Ok(snapshot)
    }
}

/// `url` as a URI, with `/metrics` when it has no path.
fn metrics_uri(url: &str) -> Result<http::Uri, String> {
    let bad = |why: String| {
        format!("`{url}` is not a metrics URL ({why}); write e.g. http://127.0.0.1:8080/metrics")
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| bad(e.to_string()))?;
    if uri.scheme_str().is_none() || uri.host().is_none() {
        return Err(bad("it needs a scheme and a host".into()));
    }
    if matches!(uri.path(), "" | "/") {
        let authority = uri.authority().map_or("", |a| a.as_str());
        let scheme = uri.scheme_str().unwrap_or("http");
        return format!("{scheme}://{authority}/metrics")
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad(e.to_string()));
    }
    Ok(uri)
}

fn add_buckets(into: &mut Vec<(f64, f64)>, buckets: &[prometheus_parse::HistogramCount]) {
    for bucket in buckets {
        match into.iter_mut().find(|(le, _)| *le == bucket.less_than) {
            Some((_, count)) => *count += bucket.count,
            None => into.push((bucket.less_than, bucket.count)),
        }
    }
    into.sort_by(|a, b| a.0.total_cmp(&b.0));
}

/// The `q` quantile (0..1) of a histogram's cumulative buckets, interpolated linearly
/// within its bucket as Prometheus' `histogram_quantile` does; `None` without
/// observations. In the `+Inf` bucket, the highest finite bound.
pub fn quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(lower.0);
            }
            let within = count - lower.1;
            if within <= 0.0 {
                return Some(le);
            }
            return Some(lower.0 + (le - lower.0) * (rank - lower.1) / within);
        }
        lower = (le, count);
    }
    Some(lower.0)
}

/// The buckets of `now` minus those of `before` (the observations between the scrapes).
fn since(now: &[(f64, f64)], before: &[(f64, f64)]) -> Vec<(f64, f64)> {
    now.iter()
        .map(|&(le, count)| {
            let earlier = before
                .iter()
                .find(|(l, _)| *l == le)
                .map_or(0.0, |(_, c)| *c);
            (le, (count - earlier).max(0.0))
        })
        .collect()
}

/// The table `capsule top` prints: one line per plugin. With `previous` (an earlier
/// scrape and the time since), calls/s and the percentiles are of the calls between the
/// two; without, the percentiles are over everything since the server started.
pub fn render(now: &Snapshot, previous: Option<(&Snapshot, Duration)>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<20} {:>9} {:>8} {:>9} {:>9} {:>8} {:>8} {:>6} {:>7} {:>7}  FAULTS BY KIND",
        "PLUGIN",
        "CALLS",
        "CALLS/S",
        "P50",
        "P99",
        "TOOL-ERR",
        "REJECTED",
        "BUSY",
        "DEMOTED",
        "FAULTS"
    );
    for (name, stats) in &now.plugins {
        let before = previous.and_then(|(p, _)| p.plugins.get(name).map(|s| (s, previous)));
        let (rate, buckets) = match (previous, before) {
            (Some((_, elapsed)), Some((before, _))) if elapsed > Duration::ZERO => (
                format!(
                    "{:.1}",
                    (stats.calls() - before.calls()).max(0.0) / elapsed.as_secs_f64()
                ),
                since(&stats.run_buckets, &before.run_buckets),
            ),
            _ => ("-".into(), stats.run_buckets.clone()),
        };
        let faults = stats.faults();
        let fault_total = faults.iter().fold(0.0, |sum, (_, n)| sum + n);
        let kinds: Vec<String> = faults.iter().map(|(k, n)| format!("{k}={n}")).collect();
        let _ = writeln!(
            out,
            "{:<20} {:>9} {:>8} {:>9} {:>9} {:>8} {:>8} {:>6} {:>7} {:>7}  {}",
            name,
            stats.calls(),
            rate,
            seconds(quantile(&buckets, 0.5)),
            seconds(quantile(&buckets, 0.99)),
            stats.count("tool-error"),
            stats.count("rejected"),
            stats.count("busy"),
            stats.demoted,
            fault_total,
            kinds.join(" ")
        );
    }
    out
}

/// `1.2ms`, `340µs`, `2.5s`, or `-`.
fn seconds(value: Option<f64>) -> String {
    match value {
        None => "-".into(),
        Some(s) if s >= 1.0 => format!("{s:.2}s"),
        Some(s) if s >= 0.001 => format!("{:.2}ms", s * 1e3),
        Some(s) => format!("{:.0}µs", s * 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# HELP capsule_tool_calls_total tools/call requests.
# TYPE capsule_tool_calls_total counter
capsule_tool_calls_total{plugin=\"echo\",tool=\"echo_echo\",outcome=\"ok\"} 4
capsule_tool_calls_total{plugin=\"hostile\",tool=\"hostile_spin\",outcome=\"fuel\"} 2
capsule_tool_calls_total{plugin=\"hostile\",tool=\"hostile_panic\",outcome=\"crash\"} 1
capsule_tool_calls_total{plugin=\"hostile\",tool=\"hostile_panic\",outcome=\"ok\"} 0
# HELP capsule_call_run_seconds Time a call ran.
# TYPE capsule_call_run_seconds histogram
capsule_call_run_seconds_bucket{plugin=\"echo\",tool=\"echo_echo\",le=\"0.001\"} 2
capsule_call_run_seconds_bucket{plugin=\"echo\",tool=\"echo_echo\",le=\"0.002\"} 4
capsule_call_run_seconds_bucket{plugin=\"echo\",tool=\"echo_echo\",le=\"+Inf\"} 4
capsule_call_run_seconds_sum{plugin=\"echo\",tool=\"echo_echo\"} 0.005
capsule_call_run_seconds_count{plugin=\"echo\",tool=\"echo_echo\"} 4
# HELP capsule_demoted_calls_total Calls run on the low-priority thread.
# TYPE capsule_demoted_calls_total counter
capsule_demoted_calls_total{plugin=\"echo\"} 0
capsule_demoted_calls_total{plugin=\"hostile\"} 1
";

    #[test]
    fn counts_and_faults_by_plugin() {
        let snapshot = Snapshot::parse(TEXT).unwrap();
        let echo = &snapshot.plugins["echo"];
        assert_eq!(echo.calls(), 4.0);
        let hostile = &snapshot.plugins["hostile"];
        assert_eq!(hostile.calls(), 3.0);
        assert_eq!(hostile.faults(), vec![("fuel", 2.0), ("crash", 1.0)]);
        assert_eq!((echo.demoted, hostile.demoted), (0.0, 1.0));
        assert_eq!(
            echo.run_buckets,
            vec![(0.001, 2.0), (0.002, 4.0), (f64::INFINITY, 4.0)]
        );
    }

    #[test]
    fn quantiles_interpolate_within_the_bucket() {
        let buckets = [(0.001, 2.0), (0.002, 4.0), (f64::INFINITY, 4.0)];
        assert_eq!(quantile(&buckets, 0.5), Some(0.001));
        assert_eq!(quantile(&buckets, 0.75), Some(0.0015));
        assert_eq!(quantile(&[(0.001, 0.0), (f64::INFINITY, 0.0)], 0.5), None);
        assert_eq!(
            quantile(&[(0.001, 0.0), (f64::INFINITY, 3.0)], 0.99),
            Some(0.001)
        );
    }

    #[test]
    fn the_table_shows_rates_between_scrapes() {
        let before = Snapshot::parse(TEXT).unwrap();
        let now =
            Snapshot::parse(&TEXT.replace("outcome=\"ok\"} 4", "outcome=\"ok\"} 14")).unwrap();
        let table = render(&now, Some((&before, Duration::from_secs(2))));
        let echo = table.lines().find(|l| l.starts_with("echo")).unwrap();
        assert!(echo.contains(" 14 ") && echo.contains(" 5.0 "), "{table}");
        let hostile = table.lines().find(|l| l.starts_with("hostile")).unwrap();
        let columns: Vec<&str> = hostile.split_whitespace().collect();
        // DEMOTED, FAULTS, then the faults by kind.
        assert_eq!(columns[8..], ["1", "3", "fuel=2", "crash=1"], "{table}");
    }

    #[test]
    fn a_url_without_a_path_gets_metrics() {
        assert_eq!(
            metrics_uri("http://127.0.0.1:8080").unwrap().to_string(),
            "http://127.0.0.1:8080/metrics"
        );
        assert_eq!(
            metrics_uri("http://127.0.0.1:9464/custom")
                .unwrap()
                .to_string(),
            "http://127.0.0.1:9464/custom"
        );
        assert_eq!(
            metrics_uri("127.0.0.1:8080").unwrap_err(),
            "`127.0.0.1:8080` is not a metrics URL (it needs a scheme and a host); write e.g. http://127.0.0.1:8080/metrics"
        );
    }

    #[test]
    fn another_page_is_named_as_such() {
        assert_eq!(
            Snapshot::parse("# TYPE up gauge\nup 1\n").unwrap_err(),
            "no `capsule_tool_calls_total` in the answer: is this a capsule server's /metrics, with [metrics] enabled?"
        );
    }
}
