//! A response body that holds something (a session slot, an in-flight mark) until the
//! response has been sent or abandoned: an SSE response is in flight until its stream ends.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// `inner`, with `held` dropped when the body is.
pub struct TrackedBody<B, H> {
    inner: B,
    _held: H,
}

impl<B, H> TrackedBody<B, H> {
    /// Holds `held` as long as `inner` is being sent.
    pub fn new(inner: B, held: H) -> Self {
        Self { inner, _held: held }
    }
}

impl<B, H> Body for TrackedBody<B, H>
where
    B: Body<Data = Bytes> + Unpin,
    H: Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
