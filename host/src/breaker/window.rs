//! The calls and sandbox faults of one plugin over a sliding window, in ten buckets, so
//! the fault rate forgets old calls a tenth of the window at a time.

use std::time::{Duration, Instant};

const BUCKETS: usize = 10;

/// Calls and faults per bucket of `window / 10`.
#[derive(Debug, Clone)]
pub struct Window {
    origin: Instant,
    bucket: Duration,
    /// `(bucket number since origin, calls, faults)`; a slot holds its latest bucket.
    slots: [(u64, u32, u32); BUCKETS],
}

impl Window {
    /// An empty window of `width`, starting at `now`.
    pub fn new(width: Duration, now: Instant) -> Self {
        Self {
            origin: now,
            bucket: (width / BUCKETS as u32).max(Duration::from_millis(1)),
            slots: [(u64::MAX, 0, 0); BUCKETS],
        }
    }

    fn index(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(since / self.bucket.as_nanos().max(1)).unwrap_or(u64::MAX - 1)
    }

    /// Counts one call that ended at `now`, and whether it was a sandbox fault.
    pub fn record(&mut self, now: Instant, fault: bool) {
        let index = self.index(now);
        let slot = &mut self.slots[(index % BUCKETS as u64) as usize];
        if slot.0 != index {
            *slot = (index, 0, 0);
        }
        slot.1 = slot.1.saturating_add(1);
        if fault {
            slot.2 = slot.2.saturating_add(1);
        }
    }

    /// `(calls, faults)` that ended within the window before `now`.
    pub fn totals(&self, now: Instant) -> (u32, u32) {
        let index = self.index(now);
        self.slots
            .iter()
            .filter(|(at, _, _)| *at <= index && index - *at < BUCKETS as u64)
            .fold((0, 0), |(calls, faults), (_, c, f)| {
                (calls.saturating_add(*c), faults.saturating_add(*f))
            })
    }

    /// Forgets every call (the breaker closed: the plugin starts afresh).
    pub fn clear(&mut self) {
        self.slots = [(u64::MAX, 0, 0); BUCKETS];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_calls_leave_the_window_a_bucket_at_a_time() {
        let start = Instant::now();
        let mut window = Window::new(Duration::from_secs(10), start);
        window.record(start, true);
        window.record(start + Duration::from_secs(5), false);
        assert_eq!(window.totals(start + Duration::from_secs(5)), (2, 1));
        assert_eq!(window.totals(start + Duration::from_millis(9_999)), (2, 1));
        assert_eq!(window.totals(start + Duration::from_secs(10)), (1, 0));
        assert_eq!(window.totals(start + Duration::from_secs(15)), (0, 0));
        window.record(start + Duration::from_secs(30), true);
        assert_eq!(window.totals(start + Duration::from_secs(30)), (1, 1));
        window.clear();
        assert_eq!(window.totals(start + Duration::from_secs(30)), (0, 0));
    }
}
