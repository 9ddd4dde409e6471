//! The threads WebAssembly runs on, apart from the threads that do protocol I/O.
//!
//! A plugin that spins holds its thread until the next epoch tick (2 ms) and then yields
//! only to other calls. On the runtime that also reads requests and writes responses,
//! every spinning call sits in the same run queue as the I/O tasks, and a `ping` waits
//! behind them at each task hop. Calls run here instead: the I/O threads stay idle and
//! the OS scheduler wakes them at once when a request arrives.

use std::future::Future;

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::task::JoinHandle;

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

    /// Runs `future` on the call threads.
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
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
