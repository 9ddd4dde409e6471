//! Which outgoing requests are retried and when: idempotent methods only (GET, HEAD,
//! OPTIONS, PUT, DELETE; never POST or PATCH), after a failure to connect or a 502, 503 or
//! 504, with a body the host can send again (kept up to [`REPLAY_LIMIT`]). How many retries
//! a host may get and how long to wait are `outbound`'s.

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use http::{Method, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, BodyStream, Full, StreamBody};
use tokio::time::{Instant, timeout_at};
use wasmtime_wasi_http::{Error, WasiBody};

/// The largest request body kept to send again; a larger one is sent once.
pub const REPLAY_LIMIT: usize = 64 << 10;

/// Whether a request with `method` may be sent again without changing its effect.
pub fn idempotent(method: &Method) -> bool {
    [
        Method::GET,
        Method::HEAD,
        Method::OPTIONS,
        Method::PUT,
        Method::DELETE,
    ]
    .contains(method)
}

/// Whether an attempt's outcome is worth another: the upstream could not be reached or
/// said it is temporarily unable (502, 503, 504). A response is otherwise the plugin's.
pub fn worth_retrying(outcome: Result<StatusCode, &Error>) -> bool {
    match outcome {
        Ok(status) => matches!(
            status,
            StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
        ),
        Err(
            Error::Connect(_)
            | Error::ConnectionRefused
            | Error::ConnectionTimeout
            | Error::ConnectionTerminated,
        ) => true,
        Err(Error::Hyper(err)) => err.is_incomplete_message() || err.is_closed(),
        Err(_) => false,
    }
}

/// A request body, kept whole so it can be sent again, or streamed once.
pub enum Body {
    /// The whole body (at most [`REPLAY_LIMIT`]).
    Replay(Bytes),
    /// A body sent once: too large to keep, or the plugin did not finish writing it in time.
    Once(WasiBody),
}

impl Body {
    /// Reads the plugin's `body` until it ends (kept whole, [`Body::Replay`]), grows past
    /// [`REPLAY_LIMIT`] or `by` passes (then what was read goes first, [`Body::Once`]).
    pub async fn read(mut body: WasiBody, by: Instant) -> Body {
        let mut kept = BytesMut::new();
        let mut read: Vec<Result<Frame<Bytes>, Error>> = Vec::new();
        while kept.len() <= REPLAY_LIMIT {
            match timeout_at(by, body.frame()).await {
                Ok(None) => return Body::Replay(kept.freeze()),
                Ok(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => kept.extend_from_slice(&data),
                    Err(trailers) => {
                        read.push(Ok(trailers));
                        break;
                    }
                },
                Ok(Some(Err(err))) => {
                    read.push(Err(err));
                    break;
                }
                Err(_) => break,
            }
        }
        let mut first = vec![Ok(Frame::data(kept.freeze()))];
        first.extend(read);
        let rest = BodyStream::new(body);
        Body::Once(StreamBody::new(futures::stream::iter(first).chain(rest)).boxed_unsync())
    }

    /// The body for one attempt, and what is left to send again (`None`: nothing).
    pub fn take(self) -> (WasiBody, Option<Body>) {
        match self {
            Body::Replay(bytes) => (
                Full::new(bytes.clone())
                    .map_err(|never| match never {})
                    .boxed_unsync(),
                Some(Body::Replay(bytes)),
            ),
            Body::Once(body) => (body, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_idempotent_methods_are_retried() {
        for method in ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"] {
            assert!(idempotent(&method.parse().unwrap()), "{method}");
        }
        for method in ["POST", "PATCH", "CONNECT"] {
            assert!(!idempotent(&method.parse().unwrap()), "{method}");
        }
    }

    #[tokio::test]
    async fn a_small_body_is_kept_and_a_large_one_streams_once_whole() {
        let by = Instant::now() + std::time::Duration::from_secs(5);
        let small = Full::new(Bytes::from_static(b"hello"))
            .map_err(|never| match never {})
            .boxed_unsync();
        let Body::Replay(kept) = Body::read(small, by).await else {
            panic!("a small body is kept")
        };
        assert_eq!(&kept[..], b"hello");
        let big = vec![7u8; REPLAY_LIMIT + 10];
        let large = Full::new(Bytes::from(big.clone()))
            .map_err(|never| match never {})
            .boxed_unsync();
        let Body::Once(once) = Body::read(large, by).await else {
            panic!("a large body is not kept")
        };
        let sent = once.collect().await.unwrap().to_bytes();
        assert_eq!(sent.len(), big.len(), "nothing lost");
    }
}
