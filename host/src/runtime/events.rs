//! Progress and log events from a running call to its client, bounded whatever the plugin
//! does: messages are cut, log lines are capped per call, and progress is paced through a
//! short queue whose newest entry absorbs the overflow, so a plugin that reports progress a
//! million times in a tight loop costs the client a few dozen notifications (the last one
//! carrying its latest value) and the host a few kilobytes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use super::bindings::Level;

/// Most `host.log` calls forwarded per call; the rest are counted and dropped.
pub const MAX_LOG_CALLS: u32 = 1000;
/// Longest `host.log` or `host.progress` message forwarded, in bytes; longer ones are cut
/// on a character boundary and end with `…`.
pub const MAX_MESSAGE: usize = 4096;
/// Most progress notifications sent for one call; later progress is dropped.
pub const MAX_PROGRESS_NOTIFICATIONS: u32 = 1000;
/// Progress notifications sent at once before pacing starts.
const PROGRESS_BURST: u32 = 10;
/// After the burst, at most one progress notification per this interval (20 a second);
/// values reported in between are coalesced into the latest one.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(50);
/// Log events queued for the client before further ones are dropped.
const LOG_QUEUE: usize = 256;
/// Progress values queued for the client; further ones replace the newest queued one.
const PROGRESS_QUEUE: usize = 16;

/// Something a running call tells its client: progress or a log line.
#[derive(Debug, Clone, PartialEq)]
pub enum CallEvent {
    /// `host.progress` was called (the latest value, when several came quickly).
    Progress(Progress),
    /// `host.log` was called.
    Log {
        /// Severity.
        level: Level,
        /// The message (already cut to [`MAX_MESSAGE`]).
        message: String,
    },
}

/// A progress report: finite, non-negative and increasing (checked by [`EventGate`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Work done so far.
    pub done: f64,
    /// Total work, if known.
    pub total: Option<f64>,
    /// What is happening now (already cut to [`MAX_MESSAGE`]).
    pub message: Option<String>,
}

/// The call's side of the event channel. Cloning shares it.
#[derive(Clone)]
pub struct EventSender {
    logs: mpsc::Sender<CallEvent>,
    progress: Arc<ProgressQueue>,
}

/// Progress values not yet delivered: at most [`PROGRESS_QUEUE`]; when it is full, a new
/// value replaces the newest queued one, so a flood keeps the oldest few and the latest.
#[derive(Default)]
struct ProgressQueue {
    items: Mutex<VecDeque<Progress>>,
    added: Notify,
}

impl ProgressQueue {
    fn items(&self) -> MutexGuard<'_, VecDeque<Progress>> {
        self.items.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, progress: Progress) {
        let mut items = self.items();
        if items.len() >= PROGRESS_QUEUE {
            items.pop_back();
        }
        items.push_back(progress);
        drop(items);
        self.added.notify_one();
    }
}

/// The client's side: yields log events as they come and progress paced and coalesced,
/// until the call has ended and everything is delivered.
pub struct EventReceiver {
    plugin: Arc<str>,
    /// Closed when every sender is gone, i.e. when the call has ended.
    logs: Option<mpsc::Receiver<CallEvent>>,
    progress: Arc<ProgressQueue>,
    pacer: Pacer,
    progress_sent: u32,
}

/// A channel for the events of one call of `plugin`.
pub fn channel(plugin: Arc<str>) -> (EventSender, EventReceiver) {
    let (logs_tx, logs_rx) = mpsc::channel(LOG_QUEUE);
    let progress = Arc::new(ProgressQueue::default());
    (
        EventSender {
            logs: logs_tx,
            progress: progress.clone(),
        },
        EventReceiver {
            plugin,
            logs: Some(logs_rx),
            progress,
            pacer: Pacer::new(Instant::now()),
            progress_sent: 0,
        },
    )
}

impl EventReceiver {
    /// The next event for the client; `None` once the call has ended (every sender is
    /// dropped) and its progress was delivered.
    pub async fn next(&mut self) -> Option<CallEvent> {
        loop {
            let wait = self.pacer.wait(Instant::now());
            let queued = !self.progress.items().is_empty();
            if self.logs.is_none() {
                // The call has ended: what the pace allows now, then only the latest value.
                let progress = {
                    let mut items = self.progress.items();
                    if wait.is_none() {
                        items.pop_front()
                    } else {
                        let latest = items.pop_back();
                        items.clear();
                        latest
                    }
                };
                match progress {
                    Some(progress) => match self.deliver(progress) {
                        Some(event) => return Some(event),
                        None => continue,
                    },
                    None => return None,
                }
            }
            tokio::select! {
                biased;
                log = recv(&mut self.logs) => match log {
                    Some(event) => return Some(event),
                    None => self.logs = None,
                },
                () = std::future::ready(()), if queued && wait.is_none() => {
                    let progress = self.progress.items().pop_front();
                    if let Some(event) = progress.and_then(|p| self.deliver(p)) {
                        return Some(event);
                    }
                }
                () = tokio::time::sleep(wait.unwrap_or_default()), if queued && wait.is_some() => {}
                () = self.progress.added.notified(), if !queued => {}
            }
        }
    }

    /// Counts a progress value against the pace and the cap; `None` once over the cap.
    fn deliver(&mut self, progress: Progress) -> Option<CallEvent> {
        self.pacer.take(Instant::now());
        self.progress_sent += 1;
        if self.progress_sent > MAX_PROGRESS_NOTIFICATIONS {
            if self.progress_sent == MAX_PROGRESS_NOTIFICATIONS + 1 {
                tracing::warn!(plugin = %self.plugin, "plugin reported progress more than {MAX_PROGRESS_NOTIFICATIONS} times in one call (after coalescing); dropping the rest");
            }
            return None;
        }
        Some(CallEvent::Progress(progress))
    }
}

async fn recv(logs: &mut Option<mpsc::Receiver<CallEvent>>) -> Option<CallEvent> {
    match logs {
        Some(logs) => logs.recv().await,
        None => None,
    }
}

/// A token bucket: [`PROGRESS_BURST`] notifications at once, then one per
/// [`PROGRESS_INTERVAL`].
struct Pacer {
    tokens: u32,
    refilled: Instant,
}

impl Pacer {
    fn new(now: Instant) -> Self {
        Self {
            tokens: PROGRESS_BURST,
            refilled: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        while self.tokens < PROGRESS_BURST && now >= self.refilled + PROGRESS_INTERVAL {
            self.tokens += 1;
            self.refilled += PROGRESS_INTERVAL;
        }
        if self.tokens == PROGRESS_BURST {
            self.refilled = now;
        }
    }

    /// How long until a notification may be sent; `None` when one may be sent now.
    fn wait(&mut self, now: Instant) -> Option<Duration> {
        self.refill(now);
        (self.tokens == 0)
            .then(|| (self.refilled + PROGRESS_INTERVAL).saturating_duration_since(now))
    }

    fn take(&mut self, now: Instant) {
        self.refill(now);
        self.tokens = self.tokens.saturating_sub(1);
    }
}

/// What the call side checks before an event leaves the sandbox: the log cap, message
/// lengths, and that progress values are finite, non-negative and increasing. One per call.
#[derive(Default)]
pub struct EventGate {
    log_calls: u32,
    last_done: Option<f64>,
    warned_progress: bool,
}

/// Why a progress value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BadProgress {
    NotFinite,
    Negative,
    NotIncreasing,
}

impl EventGate {
    /// A log line to forward (cut to [`MAX_MESSAGE`]), or `None` past [`MAX_LOG_CALLS`]
    /// (the first one past it logs one warning).
    pub fn log(&mut self, plugin: &str, message: String) -> Option<String> {
        self.log_calls = self.log_calls.saturating_add(1);
        if self.log_calls > MAX_LOG_CALLS {
            if self.log_calls == MAX_LOG_CALLS + 1 {
                tracing::warn!(
                    plugin,
                    "plugin logged more than {MAX_LOG_CALLS} lines in one call; dropping the rest"
                );
            }
            return None;
        }
        Some(cut(message))
    }

    /// A progress value to forward, or `None` when it is not finite, negative, or not
    /// larger than the last one (MCP requires progress to increase). The first refused
    /// value of a call logs one warning.
    pub fn progress(
        &mut self,
        plugin: &str,
        done: f64,
        total: Option<f64>,
        message: Option<String>,
    ) -> Option<Progress> {
        let bad = [Some(done), total]
            .into_iter()
            .flatten()
            .find_map(|value| {
                if !value.is_finite() {
                    Some(BadProgress::NotFinite)
                } else if value < 0.0 {
                    Some(BadProgress::Negative)
                } else {
                    None
                }
            })
            .or_else(|| {
                self.last_done
                    .filter(|&last| done <= last)
                    .map(|_| BadProgress::NotIncreasing)
            });
        if let Some(bad) = bad {
            if !self.warned_progress {
                self.warned_progress = true;
                let why = match bad {
                    BadProgress::NotFinite => "a value that is not a finite number",
                    BadProgress::Negative => "a negative value",
                    BadProgress::NotIncreasing => "a value not larger than the one before",
                };
                tracing::warn!(
                    plugin,
                    done,
                    ?total,
                    "plugin reported progress with {why}; dropping it (and any more such values in this call)"
                );
            }
            return None;
        }
        self.last_done = Some(done);
        Some(Progress {
            done,
            total,
            message: message.map(cut),
        })
    }
}

impl EventSender {
    /// Queues a log event; dropped when the client is too slow to keep the queue short.
    pub fn log(&self, level: Level, message: String) {
        let _ = self.logs.try_send(CallEvent::Log { level, message });
    }

    /// Queues a progress value, coalescing it into the newest queued one when the queue
    /// is full.
    pub fn progress(&self, progress: Progress) {
        self.progress.push(progress);
    }
}

/// `message`, cut to at most [`MAX_MESSAGE`] bytes on a character boundary, with `…`.
/// A cut message is a fresh allocation: truncating in place would keep the whole buffer
/// (1 MiB for a 1 MiB message) alive while the event waits in the queue.
pub fn cut(message: String) -> String {
    if message.len() <= MAX_MESSAGE {
        return message;
    }
    let mut cut = String::with_capacity(MAX_MESSAGE + '…'.len_utf8());
    cut.push_str(&message[..message.floor_char_boundary(MAX_MESSAGE)]);
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_cut_on_a_character_boundary() {
        let cut_text = cut("é".repeat(MAX_MESSAGE));
        assert_eq!(cut_text, format!("{}…", "é".repeat(MAX_MESSAGE / 2)));
        assert_eq!(cut("short".into()), "short");
        // The cut message does not keep the original buffer alive.
        assert!(cut("x".repeat(1 << 20)).capacity() <= MAX_MESSAGE + 3);
    }

    #[test]
    fn progress_values_must_be_finite_non_negative_and_increasing() {
        let mut gate = EventGate::default();
        assert!(gate.progress("p", f64::NAN, None, None).is_none());
        assert!(gate.progress("p", f64::INFINITY, None, None).is_none());
        assert!(gate.progress("p", -1.0, None, None).is_none());
        assert!(gate.progress("p", 1.0, Some(f64::NAN), None).is_none());
        assert!(gate.progress("p", 1.0, Some(-5.0), None).is_none());
        assert_eq!(
            gate.progress("p", 1.0, Some(2.0), Some("x".repeat(MAX_MESSAGE + 1))),
            Some(Progress {
                done: 1.0,
                total: Some(2.0),
                message: Some(format!("{}…", "x".repeat(MAX_MESSAGE))),
            })
        );
        assert!(gate.progress("p", 1.0, None, None).is_none());
        assert!(gate.progress("p", 2.0, None, None).is_some());
    }

    #[test]
    fn logs_are_capped_per_call() {
        let mut gate = EventGate::default();
        let forwarded = (0..MAX_LOG_CALLS + 500)
            .filter_map(|i| gate.log("p", i.to_string()))
            .count();
        assert_eq!(forwarded, MAX_LOG_CALLS as usize);
    }

    #[test]
    fn pacing_allows_a_burst_then_one_per_interval() {
        let start = Instant::now();
        let mut pacer = Pacer::new(start);
        for _ in 0..PROGRESS_BURST {
            assert_eq!(pacer.wait(start), None);
            pacer.take(start);
        }
        assert_eq!(pacer.wait(start), Some(PROGRESS_INTERVAL));
        let later = start + PROGRESS_INTERVAL;
        assert_eq!(pacer.wait(later), None);
        pacer.take(later);
        assert_eq!(pacer.wait(later), Some(PROGRESS_INTERVAL));
        // A long quiet spell earns the burst back, not more.
        let much_later = later + PROGRESS_INTERVAL * 1000;
        for _ in 0..PROGRESS_BURST {
            assert_eq!(pacer.wait(much_later), None);
            pacer.take(much_later);
        }
        assert!(pacer.wait(much_later).is_some());
    }

    #[tokio::test]
    async fn a_few_values_all_arrive_even_when_the_client_reads_late() {
        let (sender, mut receiver) = channel("p".into());
        let mut gate = EventGate::default();
        for step in [1.0, 2.0, 3.0] {
            sender.progress(gate.progress("p", step, Some(3.0), None).unwrap());
        }
        drop(sender);
        let mut steps = Vec::new();
        while let Some(event) = receiver.next().await {
            if let CallEvent::Progress(p) = event {
                steps.push(p.done);
            }
        }
        assert_eq!(steps, [1.0, 2.0, 3.0]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_progress_flood_is_coalesced_to_its_latest_value() {
        let (sender, mut receiver) = channel("p".into());
        let producer = tokio::spawn(async move {
            let mut gate = EventGate::default();
            for i in 1..=1_000_000u32 {
                if let Some(progress) = gate.progress("p", f64::from(i), None, None) {
                    sender.progress(progress);
                }
                if i % 10_000 == 0 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            sender.log(Level::Info, "done".into());
        });
        let mut received = Vec::new();
        while let Some(event) = receiver.next().await {
            received.push(event);
        }
        producer.await.unwrap();
        let progress: Vec<f64> = received
            .iter()
            .filter_map(|e| match e {
                CallEvent::Progress(p) => Some(p.done),
                CallEvent::Log { .. } => None,
            })
            .collect();
        // 100 × 10 ms of flooding: the burst, then about one per 50 ms, the last value last.
        assert!(progress.len() <= 40, "{} notifications", progress.len());
        assert_eq!(progress.last(), Some(&1_000_000.0));
        assert!(progress.windows(2).all(|w| w[0] < w[1]), "{progress:?}");
        assert!(received.iter().any(|e| matches!(e, CallEvent::Log { .. })));
    }
}
