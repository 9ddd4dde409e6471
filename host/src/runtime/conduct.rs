//! A plugin's recent conduct: whether its last calls kept running into their limits, and
//! so whether its calls are demoted to the low-priority thread (`runtime.demote-after`).
//!
//! A runaway loop runs until its fuel or time is spent, a memory bomb until it hits the
//! ceiling: each such call takes a whole core's time while short calls of every other
//! plugin wait. A plugin demoted here still runs every call, under the same limits, but on
//! a thread the OS schedules only when the others leave it time ([`super::executor`]).
//! A single fault does not demote a plugin: it is demoted while at least
//! `runtime.demote-after` of its last [`WINDOW`] calls ran into a limit, and restored
//! once enough calls within their limits have pushed the faults out of the window.
//!
//! The record also says where a plugin's next call starts: a plugin whose last [`WINDOW`]
//! calls were each busy (running, not waiting) for less than [`QUICK_CALL`] and stayed
//! within their limits is *quick*, and its calls start on the thread that received them,
//! skipping the hop to the call threads and back; any other plugin's calls go to the call
//! threads at once ([`super::executor`]).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use super::fault::Fault;

/// How many of a plugin's last calls the record keeps.
pub const WINDOW: u32 = 16;

/// The longest a call may be busy (running, not waiting) and still count as quick: half an
/// epoch tick ([`super::engine::EPOCH_TICK`]). A call that computes longer sends its
/// plugin's next calls to the call threads, where they cannot hold a protocol thread; a
/// call that merely met an epoch tick (which comes at any point of a call) or waited for
/// host I/O still counts as quick, having held its thread only briefly before it yielded.
/// Waiting is not counted, so calls slowed by a queue for the call threads do not keep
/// their plugin there.
pub const QUICK_CALL: Duration = Duration::from_millis(1);

/// One plugin's record: a bit per recent call, 1 for a call stopped by a limit.
#[derive(Debug, Default)]
pub struct Conduct {
    recent: AtomicU32,
    demoted: AtomicBool,
    /// A bit per recent call, 1 for a call busy for [`QUICK_CALL`] or longer or stopped
    /// by a limit.
    slow: AtomicU32,
}

/// How a call changed its plugin's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The plugin is demoted now: `faults` of its last [`WINDOW`] calls hit a limit.
    Demoted {
        /// Calls of the window that were stopped by a limit.
        faults: u32,
    },
    /// Fewer than `runtime.demote-after` of its last [`WINDOW`] calls hit a limit now.
    Restored {
        /// Calls of the window that were stopped by a limit.
        faults: u32,
    },
}

/// Whether `fault` says the call used up one of its own limits. Crashes and tool errors
/// end a call early (cheaply); a cancelled or queued-out call, or code that could not be
/// loaded, says nothing of how the plugin behaves.
pub fn hit_a_limit(fault: &Fault) -> Option<bool> {
    match fault {
        Fault::Cancelled | Fault::QueueTimeout { .. } | Fault::Unloadable { .. } => None,
        Fault::Crashed { .. } => Some(false),
        Fault::OutOfFuel { .. }
        | Fault::Deadline { .. }
        | Fault::Memory { .. }
        | Fault::Table { .. }
        | Fault::StackOverflow { .. }
        | Fault::ResultTooLarge { .. }
        | Fault::TransferTooLarge { .. }
        | Fault::TooManyItems { .. }
        | Fault::Instances { .. }
        | Fault::PoolShare { .. } => Some(true),
    }
}

impl Conduct {
    /// Whether the plugin's calls run on the low-priority thread now.
    pub fn demoted(&self) -> bool {
        self.demoted.load(Ordering::Relaxed)
    }

    /// Whether the plugin's calls may start on the thread that received them: each of its
    /// last [`WINDOW`] calls was busy for less than [`QUICK_CALL`], within its limits.
    pub fn quick(&self) -> bool {
        self.slow.load(Ordering::Relaxed) == 0
    }

    /// Records whether a finished call was quick (busy for less than [`QUICK_CALL`], within
    /// its limits); a call that was not keeps the plugin's next [`WINDOW`] calls off the
    /// receiving thread.
    pub fn record_pace(&self, quick: bool) {
        // The common case, a plugin whose calls are all quick: nothing to write.
        if quick && self.slow.load(Ordering::Relaxed) == 0 {
            return;
        }
        push(&self.slow, !quick);
    }

    /// Records one finished call (`limit`: whether a limit stopped it) and returns the
    /// change of standing it caused, if any. `demote_after` is `runtime.demote-after`:
    /// that many limit faults among the last [`WINDOW`] calls demote (0: never).
    pub fn record(&self, limit: bool, demote_after: u32) -> Option<Change> {
        if demote_after == 0 {
            return None;
        }
        // The common case, a plugin that never ran into a limit: nothing to write.
        if !limit && self.recent.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let faults = push(&self.recent, limit).count_ones();
        let demoted = faults >= demote_after;
        (self.demoted.swap(demoted, Ordering::Relaxed) != demoted).then_some(if demoted {
            Change::Demoted { faults }
        } else {
            Change::Restored { faults }
        })
    }
}

/// Adds `bit` as the newest of the last [`WINDOW`] calls in `window`, dropping the
/// oldest, and returns the window's new bits.
fn push(window: &AtomicU32, bit: bool) -> u32 {
    let shift = |bits: u32| ((bits << 1) | u32::from(bit)) & ((1u32 << WINDOW) - 1);
    let before = window
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
            Some(shift(bits))
        })
        .unwrap_or_else(|bits| bits);
    shift(before)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fourth_limit_fault_of_sixteen_calls_demotes() {
        let conduct = Conduct::default();
        for _ in 0..3 {
            assert_eq!(conduct.record(true, 4), None);
            assert_eq!(conduct.record(false, 4), None);
        }
        assert!(!conduct.demoted());
        assert_eq!(conduct.record(true, 4), Some(Change::Demoted { faults: 4 }));
        assert!(conduct.demoted());
        assert_eq!(conduct.record(true, 4), None, "already demoted");
    }

    #[test]
    fn calls_within_limits_restore_once_the_faults_leave_the_window() {
        let conduct = Conduct::default();
        for _ in 0..4 {
            conduct.record(true, 4);
        }
        // The four faults are the window's newest four bits; 12 more calls keep them in.
        for _ in 0..WINDOW - 4 {
            assert_eq!(conduct.record(false, 4), None);
            assert!(conduct.demoted());
        }
        assert_eq!(
            conduct.record(false, 4),
            Some(Change::Restored { faults: 3 })
        );
        assert!(!conduct.demoted());
    }

    #[test]
    fn one_slow_call_keeps_the_next_window_of_calls_off_the_receiving_thread() {
        let conduct = Conduct::default();
        assert!(conduct.quick(), "a new plugin starts quick");
        conduct.record_pace(true);
        assert!(conduct.quick());
        conduct.record_pace(false);
        for _ in 0..WINDOW - 1 {
            assert!(!conduct.quick());
            conduct.record_pace(true);
        }
        assert!(!conduct.quick(), "the slow call is the window's oldest");
        conduct.record_pace(true);
        assert!(conduct.quick(), "the slow call left the window");
    }

    #[test]
    fn faults_older_than_the_window_are_forgotten() {
        let conduct = Conduct::default();
        for _ in 0..3 {
            conduct.record(true, 4);
        }
        for _ in 0..WINDOW - 3 {
            conduct.record(false, 4);
        }
        // The oldest fault dropped out as this one came in: three in the window, not four.
        assert_eq!(conduct.record(true, 4), None);
        assert!(!conduct.demoted());
    }

    #[test]
    fn zero_never_demotes() {
        let conduct = Conduct::default();
        for _ in 0..WINDOW {
            assert_eq!(conduct.record(true, 0), None);
        }
        assert!(!conduct.demoted());
    }

    #[test]
    fn crashes_count_as_within_limits_and_waits_not_at_all() {
        assert_eq!(hit_a_limit(&Fault::OutOfFuel { limit: 1 }), Some(true));
        assert_eq!(
            hit_a_limit(&Fault::Crashed {
                detail: "panic".into()
            }),
            Some(false)
        );
        assert_eq!(hit_a_limit(&Fault::Cancelled), None);
    }
}
