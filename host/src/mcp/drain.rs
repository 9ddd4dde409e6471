//! The end of a stdio session: stdin reaches its end (or the process is asked to stop),
//! and the calls in flight still finish and answer before the session does.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, ReadBuf};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::inflight::Inflight;
use crate::units::format_duration;

/// Reads `inner` until its end or until `stop` is cancelled; then, before reporting the end,
/// waits until `calls` has nothing in flight or `timeout` passes (logging what it cut off).
/// rmcp's serve loop ends its session at the end of input, so holding the end back is what
/// lets in-flight calls send their results.
pub struct DrainingReader<R> {
    inner: R,
    stop: Pin<Box<WaitForCancellationFutureOwned>>,
    calls: Arc<Inflight>,
    timeout: Duration,
    drain: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    ended: bool,
}

impl<R> DrainingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R, stop: CancellationToken, calls: Arc<Inflight>, timeout: Duration) -> Self {
        Self {
            inner,
            stop: Box::pin(stop.cancelled_owned()),
            calls,
            timeout,
            drain: None,
            ended: false,
        }
    }

    fn start_drain(&mut self, why: &'static str) {
        let calls = self.calls.clone();
        let timeout = self.timeout;
        let in_flight = calls.len();
        if in_flight > 0 {
            tracing::info!(
                "{why}: letting {in_flight} calls in flight finish (at most server.drain-timeout = {})",
                format_duration(timeout)
            );
        }
        self.drain = Some(Box::pin(async move {
            if let Err(left) = calls.wait_idle(timeout).await {
                tracing::warn!(
                    "server.drain-timeout ({}) passed; cutting off {} calls: {}",
                    format_duration(timeout),
                    left.len(),
                    left.join(", ")
                );
            }
        }));
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for DrainingReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(Ok(()));
        }
        if this.drain.is_none() {
            if this.stop.as_mut().poll(cx).is_ready() {
                this.start_drain("stopping on signal, reading no more requests");
            } else {
                let before = buf.filled().len();
                match Pin::new(&mut this.inner).poll_read(cx, buf) {
                    Poll::Ready(Ok(())) if buf.filled().len() == before => {
                        this.start_drain("stdin closed");
                    }
                    other => return other,
                }
            }
        }
        let Some(drain) = this.drain.as_mut() else {
            return Poll::Pending;
        };
        match drain.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.ended = true;
                Poll::Ready(Ok(()))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
