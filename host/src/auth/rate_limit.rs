//! Token buckets by key (a principal's name, a tool's name), as GCRA: each key keeps one
//! instant, its *theoretical arrival time*; a request is allowed when that time is at most
//! `burst - 1` intervals ahead of now, and pushes it one interval further. The clock is
//! passed in, so tests need no sleeps.
//!
//! The number of keys is bounded: when the map is full, keys whose bucket is full again
//! (their instant has passed, so forgetting them changes nothing) are dropped; if every
//! key is still busy, the one closest to full is dropped. A flood of names cannot grow
//! memory, and forgetting a key can only ever give that key its full burst back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::rate::RateLimit;

/// Token buckets for many keys, at most `capacity` of them tracked.
pub struct Buckets {
    capacity: usize,
    arrivals: Mutex<HashMap<String, Instant>>,
}

impl Buckets {
    /// Buckets for at most `capacity` keys at once (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            arrivals: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token of `key`'s bucket under `limit` at `now`. `Err` is how long until a
    /// token is back (never zero); nothing is taken then.
    pub fn take(&self, key: &str, limit: &RateLimit, now: Instant) -> Result<(), Duration> {
        let interval = limit.interval();
        let tolerance = interval * (limit.burst - 1);
        let mut arrivals = self
            .arrivals
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let arrival = arrivals.get(key).copied().unwrap_or(now).max(now);
        let ahead = arrival - now;
        if ahead > tolerance {
            return Err(ahead - tolerance);
        }
        match arrivals.get_mut(key) {
            Some(slot) => *slot = arrival + interval,
            None => {
                if arrivals.len() >= self.capacity {
                    make_room(&mut arrivals, now);
                }
                arrivals.insert(key.to_string(), arrival + interval);
            }
        }
        Ok(())
    }

    /// How many keys are tracked now.
    pub fn len(&self) -> usize {
        self.arrivals
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Drops every key whose bucket is full at `now`; if none is, the one that fills first.
fn make_room(arrivals: &mut HashMap<String, Instant>, now: Instant) {
    let before = arrivals.len();
    arrivals.retain(|_, arrival| *arrival > now);
    if arrivals.len() < before {
        return;
    }
    let earliest = arrivals
        .iter()
        .min_by_key(|(_, arrival)| **arrival)
        .map(|(key, _)| key.clone());
    if let Some(key) = earliest {
        arrivals.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(text: &str) -> RateLimit {
        RateLimit::parse(text).unwrap()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_full_bucket_allows_its_burst_then_one_per_interval() {
        let buckets = Buckets::new(10);
        let five = limit("5/s burst 3");
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(buckets.take("a", &five, t0), Ok(()), "request {i}");
        }
        assert_eq!(buckets.take("a", &five, t0), Err(ms(200)));
        assert_eq!(buckets.take("a", &five, t0 + ms(150)), Err(ms(50)));
        assert_eq!(buckets.take("a", &five, t0 + ms(200)), Ok(()));
        assert_eq!(buckets.take("a", &five, t0 + ms(200)), Err(ms(200)));
        // After a quiet second the whole burst is back, and no more.
        let later = t0 + ms(2000);
        for i in 0..3 {
            assert_eq!(buckets.take("a", &five, later), Ok(()), "request {i}");
        }
        assert_eq!(buckets.take("a", &five, later), Err(ms(200)));
    }

    #[test]
    fn a_refused_request_takes_nothing() {
        let buckets = Buckets::new(10);
        let one = limit("1/s");
        let t0 = Instant::now();
        assert_eq!(buckets.take("a", &one, t0), Ok(()));
        for _ in 0..100 {
            assert_eq!(buckets.take("a", &one, t0 + ms(500)), Err(ms(500)));
        }
        assert_eq!(buckets.take("a", &one, t0 + ms(1000)), Ok(()));
    }

    #[test]
    fn keys_have_their_own_buckets() {
        let buckets = Buckets::new(10);
        let one = limit("1/m");
        let t0 = Instant::now();
        assert_eq!(buckets.take("alice", &one, t0), Ok(()));
        assert_eq!(
            buckets.take("alice", &one, t0),
            Err(Duration::from_secs(60))
        );
        assert_eq!(buckets.take("bob", &one, t0), Ok(()));
    }

    #[test]
    fn a_flood_of_keys_stays_within_capacity() {
        let buckets = Buckets::new(100);
        let one = limit("1/h");
        let t0 = Instant::now();
        assert_eq!(buckets.take("victim", &one, t0), Ok(()));
        for i in 0..10_000 {
            assert_eq!(
                buckets.take(&format!("flood-{i}"), &one, t0 + ms(i)),
                Ok(())
            );
            assert!(buckets.len() <= 100);
        }
        assert_eq!(buckets.len(), 100);
    }

    #[test]
    fn full_buckets_are_forgotten_first() {
        let buckets = Buckets::new(2);
        let fast = limit("1/s");
        let slow = limit("1/h");
        let t0 = Instant::now();
        assert_eq!(buckets.take("refilled", &fast, t0), Ok(()));
        assert_eq!(buckets.take("busy", &slow, t0), Ok(()));
        // At t0 + 2s `refilled` is full again: making room drops it, not `busy`.
        assert_eq!(buckets.take("new", &slow, t0 + ms(2000)), Ok(()));
        assert_eq!(buckets.len(), 2);
        assert_eq!(
            buckets.take("busy", &slow, t0 + ms(2000)),
            Err(Duration::from_secs(3598))
        );
    }
}
