//! One plugin's circuit breaker as a state machine, with the clock passed in: closed
//! (calls run; faults counted), open (calls refused until the cool-down ends), half-open
//! (one probe call runs; its outcome closes or re-opens the breaker).

use std::time::{Duration, Instant};

use super::window::Window;
use crate::config::breaker::BreakerSettings;
use crate::units::format_duration;

/// How a call that ran ended, for the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A result, or an error the tool returned on purpose: the plugin works.
    Healthy,
    /// The sandbox stopped it (the fault kind: `crash`, `fuel`, `memory`, …).
    Fault(&'static str),
    /// It says nothing about the plugin (cancelled by the client, no free slot).
    Neutral,
}

/// Why a breaker opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trip {
    /// `count` faults in a row, the last of kind `last`.
    Consecutive { count: u32, last: &'static str },
    /// `faults` of `calls` in the window ended in a fault.
    Rate {
        faults: u32,
        calls: u32,
        window: Duration,
        percent: u32,
    },
    /// The probe call after the cool-down faulted too.
    Probe { kind: &'static str },
}

impl std::fmt::Display for Trip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Trip::Consecutive { count, last } => {
                write!(f, "{count} sandbox faults in a row (the last: {last})")
            }
            Trip::Rate {
                faults,
                calls,
                window,
                percent,
            } => write!(
                f,
                "{faults} of its last {calls} calls in {} ended in a sandbox fault (fault-percent {percent}%)",
                format_duration(*window)
            ),
            Trip::Probe { kind } => write!(f, "its probe call ended in a sandbox fault ({kind})"),
        }
    }
}

/// Where the breaker is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Calls run.
    Closed,
    /// Calls are refused until `until`.
    Open {
        since: Instant,
        until: Instant,
        trip: Trip,
    },
    /// One probe call is running; other calls are refused.
    HalfOpen { since: Instant, trip: Trip },
}

/// What the breaker says to a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admit {
    /// Run it.
    Run,
    /// Run it as the probe: its verdict closes or re-opens the breaker.
    Probe,
    /// Refuse it without running anything.
    Refuse(State),
}

/// A change of state, to log and audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The state it left.
    pub from: &'static str,
    /// The state it entered.
    pub to: &'static str,
    /// Why, in words.
    pub reason: String,
}

/// One plugin's breaker.
#[derive(Debug, Clone)]
pub struct Breaker {
    settings: BreakerSettings,
    state: State,
    consecutive: u32,
    window: Window,
}

impl Breaker {
    /// A closed breaker with `settings`.
    pub fn new(settings: BreakerSettings, now: Instant) -> Self {
        Self {
            settings,
            state: State::Closed,
            consecutive: 0,
            window: Window::new(settings.window, now),
        }
    }

    /// Its settings.
    pub fn settings(&self) -> &BreakerSettings {
        &self.settings
    }

    /// Where it is now.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Whether a call may run now. The first call after the cool-down becomes the probe.
    pub fn admit(&mut self, now: Instant) -> (Admit, Option<Change>) {
        match &self.state {
            State::Closed => (Admit::Run, None),
            State::Open { until, trip, .. } if now >= *until => {
                let trip = trip.clone();
                self.state = State::HalfOpen { since: now, trip };
                let change = Change {
                    from: "open",
                    to: "half-open",
                    reason: format!(
                        "cool-down of {} over: one probe call runs",
                        format_duration(self.settings.cool_down)
                    ),
                };
                (Admit::Probe, Some(change))
            }
            refused => (Admit::Refuse(refused.clone()), None),
        }
    }

    /// Counts how a call admitted with `admit` ended (`probe`: it was the probe).
    pub fn record(&mut self, probe: bool, verdict: Verdict, now: Instant) -> Option<Change> {
        if probe {
            return self.probe_ended(verdict, now);
        }
        if self.state != State::Closed {
            // A call admitted before the breaker opened: already decided.
            return None;
        }
        match verdict {
            Verdict::Neutral => None,
            Verdict::Healthy => {
                self.consecutive = 0;
                self.window.record(now, false);
                None
            }
            Verdict::Fault(kind) => {
                self.consecutive = self.consecutive.saturating_add(1);
                self.window.record(now, true);
                let (calls, faults) = self.window.totals(now);
                let s = &self.settings;
                let trip = if self.consecutive >= s.consecutive_faults {
                    Trip::Consecutive {
                        count: self.consecutive,
                        last: kind,
                    }
                } else if calls >= s.min_calls
                    && u64::from(faults) * 100 >= u64::from(s.fault_percent) * u64::from(calls)
                {
                    Trip::Rate {
                        faults,
                        calls,
                        window: s.window,
                        percent: s.fault_percent,
                    }
                } else {
                    return None;
                };
                Some(self.open(trip, "closed", now))
            }
        }
    }

    /// The probe ended without a verdict (cancelled, or no free slot): the next call
    /// probes instead.
    pub fn probe_abandoned(&mut self, now: Instant) {
        if let State::HalfOpen { trip, .. } = &self.state {
            self.state = State::Open {
                since: now,
                until: now,
                trip: trip.clone(),
            };
        }
    }

    fn probe_ended(&mut self, verdict: Verdict, now: Instant) -> Option<Change> {
        if !matches!(self.state, State::HalfOpen { .. }) {
            return None;
        }
        match verdict {
            Verdict::Neutral => {
                self.probe_abandoned(now);
                None
            }
            Verdict::Healthy => {
                self.state = State::Closed;
                self.consecutive = 0;
                self.window.clear();
                Some(Change {
                    from: "half-open",
                    to: "closed",
                    reason: "the probe call succeeded".into(),
                })
            }
            Verdict::Fault(kind) => Some(self.open(Trip::Probe { kind }, "half-open", now)),
        }
    }

    fn open(&mut self, trip: Trip, from: &'static str, now: Instant) -> Change {
        let reason = trip.to_string();
        self.state = State::Open {
            since: now,
            until: now + self.settings.cool_down,
            trip,
        };
        self.consecutive = 0;
        Change {
            from,
            to: "open",
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> BreakerSettings {
        BreakerSettings {
            consecutive_faults: 3,
            fault_percent: 50,
            min_calls: 6,
            window: Duration::from_secs(60),
            cool_down: Duration::from_secs(30),
            ..BreakerSettings::default()
        }
    }

    #[test]
    fn consecutive_faults_open_it_and_a_healthy_probe_closes_it() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings(), t0);
        assert_eq!(b.record(false, Verdict::Fault("crash"), t0), None);
        assert_eq!(b.record(false, Verdict::Healthy, t0), None);
        assert_eq!(b.record(false, Verdict::Fault("crash"), t0), None);
        assert_eq!(b.record(false, Verdict::Neutral, t0), None);
        assert_eq!(b.record(false, Verdict::Fault("fuel"), t0), None);
        let opened = b.record(false, Verdict::Fault("crash"), t0).unwrap();
        assert_eq!(
            (opened.from, opened.to, opened.reason.as_str()),
            (
                "closed",
                "open",
                "3 sandbox faults in a row (the last: crash)"
            )
        );
        let early = t0 + Duration::from_secs(29);
        assert!(matches!(
            b.admit(early),
            (Admit::Refuse(State::Open { .. }), None)
        ));
        let later = t0 + Duration::from_secs(30);
        let (admit, change) = b.admit(later);
        assert_eq!(admit, Admit::Probe);
        assert_eq!(change.unwrap().to, "half-open");
        assert!(
            matches!(
                b.admit(later),
                (Admit::Refuse(State::HalfOpen { .. }), None)
            ),
            "one probe at a time"
        );
        let closed = b.record(true, Verdict::Healthy, later).unwrap();
        assert_eq!((closed.from, closed.to), ("half-open", "closed"));
        assert_eq!(b.admit(later), (Admit::Run, None));
    }

    #[test]
    fn a_faulting_probe_reopens_it_and_an_abandoned_one_lets_the_next_call_probe() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings(), t0);
        for _ in 0..3 {
            b.record(false, Verdict::Fault("memory"), t0);
        }
        let t1 = t0 + Duration::from_secs(31);
        assert_eq!(b.admit(t1).0, Admit::Probe);
        b.probe_abandoned(t1);
        assert_eq!(b.admit(t1).0, Admit::Probe, "the next call probes");
        let reopened = b.record(true, Verdict::Fault("fuel"), t1).unwrap();
        assert_eq!(
            (reopened.from, reopened.to, reopened.reason.as_str()),
            (
                "half-open",
                "open",
                "its probe call ended in a sandbox fault (fuel)"
            )
        );
        assert!(matches!(
            b.admit(t1 + Duration::from_secs(29)).0,
            Admit::Refuse(_)
        ));
        assert_eq!(b.admit(t1 + Duration::from_secs(30)).0, Admit::Probe);
    }

    #[test]
    fn a_fault_rate_over_the_window_opens_it_once_enough_calls_ended() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings(), t0);
        // Faults never 3 in a row, but half of 6 calls.
        let verdicts = [
            Verdict::Fault("crash"),
            Verdict::Healthy,
            Verdict::Fault("crash"),
            Verdict::Healthy,
            Verdict::Healthy,
        ];
        for v in verdicts {
            assert_eq!(b.record(false, v, t0), None);
        }
        let opened = b.record(false, Verdict::Fault("deadline"), t0).unwrap();
        assert_eq!(
            opened.reason,
            "3 of its last 6 calls in 60s ended in a sandbox fault (fault-percent 50%)"
        );
    }
}
