//! The threads WebAssembly runs on, apart from the threads that do protocol I/O.
//!
//! A plugin that spins holds its thread until the next epoch tick (2 ms) and then yields
//! only to other calls. On the runtime that also reads requests and writes responses,
//! every spinning call sits in the same run queue as the I/O tasks, and a `ping` waits
//! behind them at each task hop. Calls run here instead: the I/O threads stay idle and
//! the OS scheduler wakes them at once when a request arrives. The exception is a call of
//! a plugin whose recent calls were all busy briefly ([`super::conduct`]'s quick plugins,
//! measured by [`Busy`]) while nothing runs here ([`Executor::running`]) and its caller is
//! not crowded (`CallContext::crowded`: a stateless HTTP server with other requests in
//! flight): it
//! starts on the I/O thread that received it ([`Executor::start_here`]), so no thread is woken to run it
//! and none to hand back its result, and if it yields, it moves here at that first yield,
//! which is at most one epoch tick. While any call runs here (a long one, a spinning one),
//! new calls queue here beside it, and the I/O threads only do I/O, which the OS schedules
//! ahead of threads that compute.
//!
//! Calls of a demoted plugin ([`super::conduct`]) run on a second executor of one thread
//! at the lowest CPU priority (`nice` 19): it gets the CPU the other threads leave, and
//! under load only a sliver of it, so short calls of well-behaved plugins are not queued
//! behind calls that keep running into their limits.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::task::JoinHandle;

/// The `nice` value of the low-priority thread: the lowest priority there is.
pub const LOW_PRIORITY_NICE: i32 = 19;

/// A multi-threaded tokio runtime only for calls. Dropping it stops its threads without
/// waiting (calls still running are abandoned; their stores are dropped with them).
pub struct Executor {
    handle: Handle,
    runtime: Option<Runtime>,
    /// Futures spawned here and not yet ended (finished, cancelled or aborted).
    running: Arc<AtomicUsize>,
}

/// Counts a future as running on an [`Executor`] until it is dropped.
struct Running(Arc<AtomicUsize>);

impl Running {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(count))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
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
            running: Arc::default(),
        })
    }

    /// Runs `future` on the call threads.
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let running = Running::new(&self.running);
        self.handle.spawn(async move {
            let _running = running;
            future.await
        })
    }

    /// How many futures run on the call threads now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    /// Polls `future` once on the calling thread and, unless that finished it, hands it
    /// to the call threads, where it continues from where it yielded.
    pub async fn start_here<F>(&self, mut future: F) -> Started<F::Output>
    where
        F: Future + Unpin + Send + 'static,
        F::Output: Send + 'static,
    {
        let first = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut future).poll(cx))).await;
        match first {
            Poll::Ready(output) => Started::Done(output),
            Poll::Pending => Started::Moved(self.spawn(future)),
        }
    }
}

/// A call's future that reports, with its output, how long it was busy: the sum of its
/// polls, on whichever thread ran them, without the time it waited for a thread, a timer
/// or host I/O. That is how long it held threads, whatever else ran beside it.
pub struct Busy<F> {
    future: Pin<Box<F>>,
    busy: Duration,
}

impl<F: Future> Busy<F> {
    /// Wraps `future`.
    pub fn new(future: F) -> Self {
        Self {
            future: Box::pin(future),
            busy: Duration::ZERO,
        }
    }
}

impl<F: Future> Future for Busy<F> {
    type Output = (F::Output, Duration);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let started = Instant::now();
        let polled = self.future.as_mut().poll(cx);
        self.busy += started.elapsed();
        polled.map(|output| (output, self.busy))
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
