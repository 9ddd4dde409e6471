//! MCP over stdio: stdin carries requests, stdout responses and nothing else.

use std::sync::Arc;
use std::time::Duration;

use rmcp::ServiceExt;
use tokio_util::sync::CancellationToken;

use super::CapsuleServer;
use super::drain::DrainingReader;

/// Errors that end a stdio session abnormally.
#[derive(Debug, thiserror::Error)]
#[error("stdio session failed: {0}")]
pub struct StdioError(String);

/// Serves `server` on this process's stdin/stdout until the client disconnects or
/// `shutdown` is cancelled. Either way, no more requests are read, the calls in flight
/// finish (for at most `drain_timeout`) and their responses are written before it returns.
/// A client that closes stdin, even before initializing, is a clean exit.
pub async fn serve(
    server: CapsuleServer,
    shutdown: CancellationToken,
    drain_timeout: Duration,
) -> Result<(), StdioError> {
    server
        .audit()
        .server_start(crate::config::Transport::Stdio, None);
    let (stdin, stdout) = rmcp::transport::stdio_pipes();
    let calls = Arc::clone(server.calls());
    let stdin = DrainingReader::new(stdin, shutdown, calls, drain_timeout);
    let running = match server.serve((stdin, stdout)).await {
        Ok(running) => running,
        Err(err) => {
            tracing::info!("client disconnected before the session started: {err}");
            return Ok(());
        }
    };
    let reason = running
        .waiting()
        .await
        .map_err(|err| StdioError(err.to_string()))?;
    tracing::info!(?reason, "client disconnected");
    Ok(())
}
