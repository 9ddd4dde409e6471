//! The threads WebAssembly runs on, apart from the threads that do protocol I/O.
//!
//! A plugin that spins holds its thread until the next epoch tick (2 ms) and then yields
//! only to other calls. On the runtime that also reads requests and writes responses,
//! every spinning call sits in the same run queue as the I/O tasks, and a `ping` waits
//! behind them at each task hop. Calls run here instead: the I/O threads stay idle and
//! the OS scheduler wakes them at once when a request arrives. The one exception is a
//! call that runs alone ([`Executor::start_here`]): it starts on the I/O thread that
//! received it and moves here at its first yield, which is at most one epoch tick.
//!
//! Calls of a demoted plugin ([`super::conduct`]) run on a second executor of one thread
//! at the lowest CPU priority (`nice` 19): it gets the CPU the other threads leave, and
//! under load only a sliver of it, so short calls of well-behaved plugins are not queued
//! behind calls that keep running into their limits.

use std::future::Future;
use std::task::Poll;

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::task::JoinHandle;

/// The `nice` value of the low-priority thread: the lowest priority there is.
pub const LOW_PRIORITY_NICE: i32 = 19;

/// A multi-threaded tokio runtime only for calls. Dropping it stops its threads without
/// waiting (calls still running are abandoned; their stores are dropped with them).
pub struct Executor {
    handle: Handle,
    runtime: Option<Runtime>,
}

impl Executor {
    /// Starts `threads` worker threads named `capsule-wasm`.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        Self::start(
            Builder::new_multi_thread()
                .worker_threads(threads.max(1))
                .thread_name("capsule-wasm"),
        )
    }

    /// Starts one worker thread named `capsule-demoted` at [`LOW_PRIORITY_NICE`] (its
    /// blocking threads, for WASI file I/O, too). Where the OS refuses (not Linux), the
    /// thread runs at normal priority and a warning says so.
    pub fn low_priority() -> std::io::Result<Self> {
        Self::start(
            Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("capsule-demoted")
                .on_thread_start(lower_priority),
        )
    }

    fn start(builder: &mut Builder) -> std::io::Result<Self> {
        let runtime = builder.enable_all().build()?;
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

    /// Polls `future` once on the calling thread and, unless that finished it, hands it
    /// to the call threads, where it continues from where it yielded.
    pub async fn start_here<F>(&self, future: F) -> Started<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let mut future = Box::pin(future);
        let first = std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await;
        match first {
            Poll::Ready(output) => Started::Done(output),
            Poll::Pending => Started::Moved(self.spawn(future)),
        }
    }
}

/// Where [`Executor::start_here`] left a future.
pub enum Started<T> {
    /// It finished on the calling thread.
    Done(T),
    /// It yielded and runs on the call threads now.
    Moved(JoinHandle<T>),
}

/// Lowers the calling thread to [`LOW_PRIORITY_NICE`] (Linux: `setpriority` on its tid
/// sets that thread's nice value alone).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    let lowered =
        rustix::process::setpriority_process(Some(rustix::thread::gettid()), LOW_PRIORITY_NICE)
            .map_err(std::io::Error::from);
    #[cfg(not(target_os = "linux"))]
    let lowered: std::io::Result<()> =
        Err(std::io::Error::other("only Linux sets a thread's priority"));
    if let Err(err) = lowered {
        tracing::warn!(
            "cannot lower the priority of the thread for demoted plugins ({err}); their calls run at normal priority"
        );
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
