//! The accept loop: each connection gets `TCP_NODELAY` (without it, Nagle's algorithm and
//! delayed ACKs hold a small response back ~40 ms), a header-read timeout, a place in
//! the graceful shutdown, and its peer address in every request's extensions
//! ([`Peer`], for the logs of authentication).

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::io_threads::IoThreads;

/// The client's address, in every request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// How long the loop pauses after a failed `accept` (e.g. out of file descriptors), so it
/// does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Accepts connections on `listener` and serves `router` on each until `stop` is
/// cancelled; then drops the listener, so no new connection is accepted. Connections
/// already open keep running, watched by `graceful`. Each connection runs on the next of
/// `threads` ([`IoThreads`]), or on the current runtime without them.
pub async fn accept(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    graceful: &GracefulShutdown,
    threads: Option<&IoThreads>,
    stop: CancellationToken,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!("cannot accept a connection: {err}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(%peer, "cannot set TCP_NODELAY: {err}");
        }
        let service = TowerToHyperService::new(router.clone().layer(axum::Extension(Peer(peer))));
        let Some(threads) = threads else {
            let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
            tokio::spawn(async move {
                if let Err(err) = connection.await {
                    tracing::debug!(%peer, "connection ended: {err}");
                }
            });
            continue;
        };
        // The socket moves to the reactor of the thread that serves it.
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(err) => {
                tracing::warn!(%peer, "cannot hand a connection to its thread: {err}");
                continue;
            }
        };
        let (http, watcher) = (http.clone(), graceful.watcher());
        threads.next().spawn(async move {
            let stream = match TcpStream::from_std(stream) {
                Ok(stream) => stream,
                Err(err) => {
                    tracing::warn!(%peer, "cannot serve a connection on its thread: {err}");
                    return;
                }
            };
            let connection = watcher.watch(http.serve_connection(TokioIo::new(stream), service));
            if let Err(err) = connection.await {
                tracing::debug!(%peer, "connection ended: {err}");
            }
        });
    }
}
