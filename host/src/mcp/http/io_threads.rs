//! The threads that serve HTTP connections: each runs a single-threaded async runtime of
//! its own, and every connection lives on one of them, round robin, with all the tasks
//! its requests start (rmcp starts a service and three tasks per stateless request).
//!
//! On the process's multi-threaded runtime, beside the call threads, those tasks hopped
//! between workers and cores. With threads of their own the protocol work of a request
//! stays on one core; how many there are (`server.io-threads`, by default half the cores
//! and at least 2) trades throughput against isolation between clients: on 2 cores one
//! thread served ~1.3× the calls per second of two, but one client's large responses then
//! delayed every other client's calls (BENCHMARKS.md, "HTTP connections on threads of
//! their own"). Plugin calls still run on the call threads (`runtime/executor.rs`), so a
//! spinning plugin never holds a connection's thread.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::{Builder, Handle};
use tokio_util::sync::CancellationToken;

/// Threads, each with a single-threaded runtime that runs until the set is dropped.
pub struct IoThreads {
    handles: Vec<Handle>,
    next: AtomicUsize,
    stop: CancellationToken,
}

impl IoThreads {
    /// Starts `count` (at least 1) threads named `capsule-http`.
    pub fn start(count: usize) -> std::io::Result<Self> {
        let stop = CancellationToken::new();
        let mut handles = Vec::new();
        for _ in 0..count.max(1) {
            let runtime = Builder::new_current_thread()
                .enable_all()
                .thread_name("capsule-http")
                .build()?;
            handles.push(runtime.handle().clone());
            let stop = stop.clone();
            // Detached: it ends when `stop` is cancelled.
            std::thread::Builder::new()
                .name("capsule-http".into())
                .spawn(move || {
                    runtime.block_on(stop.cancelled());
                    // Blocking tasks still running are not waited for.
                    runtime.shutdown_background();
                })?;
        }
        Ok(Self {
            handles,
            next: AtomicUsize::new(0),
            stop,
        })
    }

    /// The runtime of the next connection.
    pub fn next(&self) -> &Handle {
        let at = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        &self.handles[at]
    }
}

impl Drop for IoThreads {
    /// Stops the threads; tasks still on them are dropped.
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
