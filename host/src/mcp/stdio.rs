//! MCP over stdio: stdin carries requests, stdout responses and nothing else.

use rmcp::ServiceExt;

use super::CapsuleServer;

/// Errors that end a stdio session abnormally.
#[derive(Debug, thiserror::Error)]
#[error("stdio session failed: {0}")]
pub struct StdioError(String);

/// Serves `server` on this process's stdin/stdout until the client disconnects.
/// A client that closes stdin, even before initializing, is a clean exit.
pub async fn serve(server: CapsuleServer) -> Result<(), StdioError> {
    let running = match server.serve(rmcp::transport::stdio_pipes()).await {
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
