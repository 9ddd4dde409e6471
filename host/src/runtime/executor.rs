//! The threads WebAssembly runs on, apart from the threads that do protocol I/O.
//!
//! A plugin that spins holds its thread until the next epoch tick (2 ms) and then yields
//! only to other calls. On the runtime that also reads requests and writes responses,
//! every spinning call sits in the same run queue as the I/O tasks, and a `ping` waits
//! behind them at each task hop. Calls run here instead: the I/O threads stay idle and
//! the OS scheduler wakes them at once when a request arrives.
//!
//! Most calls are done long before that: a fresh instance of a small tool answers in
//! 10–15 µs (BENCHMARKS.md, in process), while a hand-off to another thread and back
//! costs two cross-thread wake-ups and, on a busy machine, two context switches. So a call starts on the thread that received it, and only a call
//! still running at its first yield (the next epoch tick, at most 2 ms, or a host call
//! that waits) moves here for the rest. The I/O threads thus run wasm for at most one
//! epoch tick per call.

use std::future::{Future, poll_fn};
use std::task::Poll;

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::task::JoinError;

/// A multi-threaded tokio runtime only for calls. Dropping it stops its threads without
/// waiting (calls still running are abandoned; their stores are dropped with them).
pub struct Executor {
    handle: Handle,
    runtime: Option<Runtime>,
}

impl Executor {
    /// Starts `threads` worker threads named `capsule-wasm`.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("capsule-wasm")
            .enable_all()
            .build()?;
        Ok(Self {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    /// Runs `future` on this thread until it first waits, then on the call threads.
    /// `Err` if its task there panicked or the runtime shut down.
    pub async fn run<F>(&self, future: F) -> Result<F::Output, JoinError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let mut future = Box::pin(future);
        let first = poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await;
        match first {
            Poll::Ready(output) => Ok(output),
            // The spawned task polls it again at once, with its own waker.
            Poll::Pending => self.handle.spawn(future).await,
        }
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        // A runtime dropped inside another runtime's task would panic on blocking.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thread_name() -> String {
        std::thread::current().name().unwrap_or("").to_string()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_call_done_at_once_stays_and_one_that_waits_moves_to_the_call_threads() {
        let executor = Executor::new(1).unwrap();
        let here = thread_name();
        assert_ne!(here, "capsule-wasm");

        let ran_on = executor.run(async { thread_name() }).await.unwrap();
        assert_eq!(
            ran_on, here,
            "a call that never waits runs where it was received"
        );

        let (started_on, finished_on) = executor
            .run(async {
                let started = thread_name();
                tokio::task::yield_now().await;
                (started, thread_name())
            })
            .await
            .unwrap();
        assert_eq!(started_on, here);
        assert_eq!(
            finished_on, "capsule-wasm",
            "after its first yield the call moves"
        );
    }
}
