//! Work in flight (calls, HTTP requests), counted so a shutdown can let it finish: the
//! process waits until nothing is left or `server.drain-timeout` passes, and then says
//! what it cut off.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::units::format_duration;

/// A set of things in flight, each entered with a description and left when its
/// [`InflightGuard`] drops.
#[derive(Default)]
pub struct Inflight {
    running: Mutex<HashMap<u64, (String, Instant)>>,
    /// `running`'s length, read without its lock (every call reads it).
    count: AtomicUsize,
    next: AtomicU64,
    idle: Notify,
    cut_off: AtomicUsize,
}

/// Marks one thing in flight until dropped.
pub struct InflightGuard {
    owner: Arc<Inflight>,
    id: u64,
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        let mut running = self
            .owner
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        running.remove(&self.id);
        self.owner.count.fetch_sub(1, Ordering::Relaxed);
        if running.is_empty() {
            self.owner.idle.notify_waiters();
        }
    }
}

impl Inflight {
    /// An empty set.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Enters `what` (e.g. `tools/call echo_echo`) until the guard drops.
    pub fn enter(self: &Arc<Self>, what: impl Into<String>) -> InflightGuard {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut running = self.lock();
        running.insert(id, (what.into(), Instant::now()));
        self.count.fetch_add(1, Ordering::Relaxed);
        drop(running);
        InflightGuard {
            owner: self.clone(),
            id,
        }
    }

    /// How many are in flight.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Whether nothing is in flight (read under the lock, so a thing entered before is
    /// always seen).
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// What is in flight, oldest first, each as `what (running for 2s)`.
    pub fn describe(&self) -> Vec<String> {
        let mut running: Vec<(String, Instant)> = self.lock().values().cloned().collect();
        running.sort_by_key(|(_, since)| *since);
        running
            .into_iter()
            .map(|(what, since)| {
                format!(
                    "{what} (running for {})",
                    format_duration(Duration::from_millis(since.elapsed().as_millis() as u64))
                )
            })
            .collect()
    }

    /// Waits until nothing is in flight, at most `timeout`. `Err` lists what is still
    /// running when the time is up.
    pub async fn wait_idle(&self, timeout: Duration) -> Result<(), Vec<String>> {
        let idle = async {
            loop {
                let notified = self.idle.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.is_empty() {
                    return;
                }
                notified.await;
            }
        };
        match tokio::time::timeout(timeout, idle).await {
            Ok(()) => Ok(()),
            Err(_) => Err(self.cut_off_now()),
        }
    }

    /// What is in flight now, as [`Self::describe`], remembered as cut off by a shutdown
    /// (see [`Self::cut_off`]).
    pub fn cut_off_now(&self) -> Vec<String> {
        let left = self.describe();
        self.cut_off.store(left.len(), Ordering::Relaxed);
        left
    }

    /// How many were still in flight when a shutdown stopped waiting for them.
    pub fn cut_off(&self) -> usize {
        self.cut_off.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (String, Instant)>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_for_the_last_guard_and_names_what_it_cut_off() {
        let inflight = Inflight::new();
        assert_eq!(inflight.wait_idle(Duration::from_millis(1)).await, Ok(()));
        let first = inflight.enter("tools/call slow_nap");
        let second = inflight.enter("tools/call slow_spin");
        assert_eq!(inflight.len(), 2);
        drop(first);
        assert_eq!(inflight.len(), 1);
        let left = inflight
            .wait_idle(Duration::from_millis(20))
            .await
            .unwrap_err();
        assert_eq!(left.len(), 1);
        assert_eq!(inflight.cut_off(), 1);
        assert!(
            left[0].starts_with("tools/call slow_spin (running for "),
            "{left:?}"
        );
        let waiter = {
            let inflight = inflight.clone();
            tokio::spawn(async move { inflight.wait_idle(Duration::from_secs(60)).await })
        };
        drop(second);
        assert_eq!(waiter.await.unwrap(), Ok(()));
        assert_eq!((inflight.len(), inflight.is_empty()), (0, true));
    }
}
