//! What plugins' outgoing HTTP shares per destination host, over every plugin and call
//! (`[runtime.outbound]`): a cap on requests in flight, and a retry budget, so a failing
//! upstream gets a bounded share of extra requests instead of every caller's retries. The
//! retry policy itself (which requests, which failures, the backoff) is in `retry`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::breaker::window::Window;
use crate::config::outbound::OutboundSettings;

/// The shared state of outgoing HTTP, by host (`scheme://name:port`). One per runtime.
pub struct Outbound {
    settings: OutboundSettings,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
}

/// One destination host.
struct Host {
    slots: Arc<Semaphore>,
    /// Attempts in the budget window: first attempts as calls, retries as "faults".
    attempts: Mutex<Window>,
}

/// Hosts kept before the ones with nothing in flight are forgotten.
const MAX_HOSTS: usize = 4096;

impl Outbound {
    /// Nothing sent yet, under `settings`.
    pub fn new(settings: OutboundSettings) -> Self {
        Self {
            settings,
            hosts: Mutex::default(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &OutboundSettings {
        &self.settings
    }

    fn host(&self, key: &str) -> Arc<Host> {
        let mut hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        if hosts.len() >= MAX_HOSTS && !hosts.contains_key(key) {
            let max = self.settings.max_connections_per_host as usize;
            hosts.retain(|_, h| h.slots.available_permits() < max);
        }
        hosts
            .entry(key.to_string())
            .or_insert_with(|| {
                Arc::new(Host {
                    slots: Arc::new(Semaphore::new(
                        self.settings.max_connections_per_host as usize,
                    )),
                    attempts: Mutex::new(Window::new(
                        self.settings.retry_budget_window,
                        Instant::now(),
                    )),
                })
            })
            .clone()
    }

    /// A slot for one request to `host`, waiting at most until `by`; `None` if none
    /// became free (`runtime.outbound.max-connections-per-host` are all in flight).
    pub async fn slot(&self, host: &str, by: tokio::time::Instant) -> Option<OwnedSemaphorePermit> {
        let slots = self.host(host).slots.clone();
        tokio::time::timeout_at(by, slots.acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
    }

    /// Counts a first attempt of a request to `host`.
    pub fn count_request(&self, host: &str) {
        let host = self.host(host);
        let mut attempts = host.attempts.lock().unwrap_or_else(PoisonError::into_inner);
        attempts.record(Instant::now(), false);
    }

    /// Takes one retry to `host` from its budget (and counts it), or says no when the
    /// retries in the window would exceed `retry-budget-min` + `retry-budget-percent` of
    /// its requests.
    pub fn try_retry(&self, host: &str) -> bool {
        let host = self.host(host);
        let mut attempts = host.attempts.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let (all, retries) = attempts.totals(now);
        let requests = u64::from(all - retries);
        let allowed = u64::from(self.settings.retry_budget_min)
            + requests * u64::from(self.settings.retry_budget_percent) / 100;
        if u64::from(retries) >= allowed {
            return false;
        }
        attempts.record(now, true);
        true
    }

    /// How long to wait before retry number `retry` (1, 2, …): a random time up to
    /// `retry-base-delay × 2^(retry-1)`, capped at `retry-max-delay` (full jitter).
    pub fn backoff(&self, retry: u32) -> Duration {
        let s = &self.settings;
        let ceiling = s
            .retry_base_delay
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20))
            .min(s.retry_max_delay);
        ceiling.mul_f64(random_fraction())
    }
}

/// A uniformly random number in [0, 1).
fn random_fraction() -> f64 {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0u8; 8];
    if SystemRandom::new().fill(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbound(percent: u32, min: u32) -> Outbound {
        Outbound::new(OutboundSettings {
            retry_budget_percent: percent,
            retry_budget_min: min,
            ..OutboundSettings::default()
        })
    }

    #[test]
    fn retries_stay_within_the_minimum_plus_a_share_of_requests() {
        let o = outbound(20, 2);
        let host = "http://a.test:80";
        for _ in 0..10 {
            o.count_request(host);
        }
        // 2 + 20% of 10 = 4 retries, then no more.
        let granted = (0..10).filter(|_| o.try_retry(host)).count();
        assert_eq!(granted, 4);
        // Another host has its own budget.
        assert!(o.try_retry("http://b.test:80"));
    }

    #[test]
    fn backoff_is_full_jitter_under_a_doubling_capped_ceiling() {
        let o = Outbound::new(OutboundSettings {
            retry_base_delay: Duration::from_millis(100),
            retry_max_delay: Duration::from_millis(300),
            ..OutboundSettings::default()
        });
        for _ in 0..100 {
            assert!(o.backoff(1) < Duration::from_millis(100));
            assert!(o.backoff(2) < Duration::from_millis(200));
            assert!(o.backoff(5) < Duration::from_millis(300));
        }
    }

    #[tokio::test]
    async fn requests_in_flight_to_one_host_are_capped() {
        let o = Outbound::new(OutboundSettings {
            max_connections_per_host: 1,
            ..OutboundSettings::default()
        });
        let soon = || tokio::time::Instant::now() + Duration::from_millis(20);
        let first = o.slot("h", soon()).await;
        assert!(first.is_some());
        assert!(o.slot("h", soon()).await.is_none(), "the cap is full");
        assert!(o.slot("other", soon()).await.is_some());
        drop(first);
        assert!(o.slot("h", soon()).await.is_some());
    }
}
