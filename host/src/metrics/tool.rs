//! One tool's metric handles, resolved once (at load, or at its first call) so a call
//! records by index and pointer, without hashing label strings.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use super::REFUSALS;
use super::families::{CallLabels, Families, PluginLabels, RefusedLabels, ToolLabels};
use crate::audit::Outcome;
use crate::runtime::Usage;
use crate::runtime::fault::Fault;

/// The outcomes of a tool's handles, in index order: `ok`, `tool-error`, `rejected`,
/// `busy`, then every [`Fault::KINDS`]. Only `ok`'s series exists before the first call
/// (so every tool shows); each other one from the first call that ends so.
const FIXED: [&str; 6] = [
    "ok",
    "tool-error",
    "rejected",
    "busy",
    "breaker-open",
    "degraded",
];

/// A tool's slot for its handles, kept in the registered tool.
#[derive(Default)]
pub struct ToolSlot(OnceLock<ToolMetrics>);

impl ToolSlot {
    /// The handles, resolved by `resolve` the first time.
    pub(super) fn get_or_init(&self, resolve: impl FnOnce() -> ToolMetrics) -> &ToolMetrics {
        self.0.get_or_init(resolve)
    }
}

/// The handles of one tool.
pub struct ToolMetrics {
    labels: ToolLabels,
    outcomes: Vec<OnceLock<Counter>>,
    run: Histogram,
    fuel: Histogram,
    queue_wait: Histogram,
    memory_peak: Histogram,
    instances: Counter,
    demoted: Counter,
    /// By [`REFUSALS`] index; each made by the first call refused so.
    refused: [OnceLock<Histogram>; REFUSALS.len()],
}

impl ToolMetrics {
    /// The handles of tool `tool` of plugin `plugin`; its `ok` series exists (at 0)
    /// from now on.
    pub(super) fn resolve(families: &Families, plugin: &str, tool: &str) -> Self {
        let labels = ToolLabels {
            plugin: plugin.to_owned(),
            tool: tool.to_owned(),
        };
        let plugin_labels = PluginLabels {
            plugin: plugin.to_owned(),
        };
        let outcomes: Vec<OnceLock<Counter>> = FIXED
            .iter()
            .chain(Fault::KINDS)
            .map(|_| OnceLock::new())
            .collect();
        let ok = families
            .calls
            .get_or_create(&call_labels(&labels, FIXED[0]));
        let _ = outcomes[0].set(ok.clone());
        Self {
            outcomes,
            run: families.run_seconds.get_or_create(&labels).clone(),
            fuel: families.fuel.get_or_create(&labels).clone(),
            queue_wait: families
                .queue_wait_seconds
                .get_or_create(&plugin_labels)
                .clone(),
            memory_peak: families.memory_peak.get_or_create(&plugin_labels).clone(),
            instances: families.instances.get_or_create(&plugin_labels).clone(),
            demoted: families.demoted.get_or_create(&plugin_labels).clone(),
            refused: Default::default(),
            labels,
        }
    }

    /// Counts one call that ended with `outcome` and records what it used. A call refused
    /// before it ran is counted only (its time is [`ToolMetrics::refused`]'s).
    pub(super) fn record(&self, families: &Families, outcome: Outcome, usage: &Usage) {
        self.count(families, outcome);
        if refusal_index(outcome).is_some() {
            return;
        }
        self.queue_wait.observe(usage.queue_wait.as_secs_f64());
        if let Some(run) = usage.run_time {
            self.run.observe(run.as_secs_f64());
        }
        if let Some(fuel) = usage.fuel {
            self.fuel.observe(fuel as f64);
        }
        if let Some(peak) = usage.memory_peak {
            self.memory_peak.observe(peak as f64);
        }
        if usage.instantiated {
            self.instances.inc();
        }
        if usage.demoted {
            self.demoted.inc();
        }
    }

    /// Counts one call refused with `outcome` before anything ran, and how long the host
    /// took to answer it (`took`, from receiving the request).
    pub(super) fn refused(&self, families: &Families, outcome: Outcome, took: Duration) {
        self.count(families, outcome);
        if let Some(index) = refusal_index(outcome) {
            self.refused[index]
                .get_or_init(|| {
                    families
                        .refused_seconds
                        .get_or_create(&RefusedLabels {
                            plugin: self.labels.plugin.clone(),
                            outcome: REFUSALS[index],
                        })
                        .clone()
                })
                .observe(took.as_secs_f64());
        }
    }

    /// Adds one to the calls of this tool that ended with `outcome`.
    fn count(&self, families: &Families, outcome: Outcome) {
        match self.index(outcome) {
            Some(index) => {
                self.outcomes[index]
                    .get_or_init(|| {
                        families
                            .calls
                            .get_or_create(&call_labels(&self.labels, outcome.as_str()))
                            .clone()
                    })
                    .inc();
            }
            // An outcome added later than this list: counted all the same, by label.
            None => {
                families
                    .calls
                    .get_or_create(&call_labels(&self.labels, outcome.as_str()))
                    .inc();
            }
        }
    }

    fn index(&self, outcome: Outcome) -> Option<usize> {
        match outcome {
            Outcome::Ok => Some(0),
            Outcome::ToolError => Some(1),
            Outcome::Rejected => Some(2),
            Outcome::Busy => Some(3),
            Outcome::BreakerOpen => Some(4),
            Outcome::Degraded => Some(5),
            Outcome::Fault(kind) => Fault::KINDS
                .iter()
                .position(|k| *k == kind)
                .map(|i| FIXED.len() + i),
            Outcome::UnknownTool => None,
        }
    }
}

/// The index of `outcome` in [`REFUSALS`], if it is a refusal.
fn refusal_index(outcome: Outcome) -> Option<usize> {
    match outcome {
        Outcome::BreakerOpen => Some(0),
        Outcome::Degraded => Some(1),
        Outcome::Rejected => Some(2),
        _ => None,
    }
}

fn call_labels(labels: &ToolLabels, outcome: &str) -> CallLabels {
    CallLabels {
        plugin: labels.plugin.clone(),
        tool: labels.tool.clone(),
        outcome: outcome.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_indexes_follow_the_label_list() {
        for outcome in [Outcome::BreakerOpen, Outcome::Degraded, Outcome::Rejected] {
            let index = refusal_index(outcome).expect("a refusal");
            assert_eq!(REFUSALS[index], outcome.as_str());
        }
        assert_eq!(refusal_index(Outcome::Ok), None);
        assert_eq!(refusal_index(Outcome::Busy), None);
    }
}
