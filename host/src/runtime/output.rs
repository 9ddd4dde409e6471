//! A plugin's stdout and stderr. They never reach the protocol stream: each complete line
//! becomes a log event on the host's stderr, up to a byte budget per call; the rest is
//! counted and dropped. The tail of stderr is kept so a panic message can be quoted in the
//! error the client sees.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// How much of the end of the stream is kept for error messages.
const TAIL_BYTES: usize = 2048;
/// Longest line forwarded to the log; longer lines are cut.
const MAX_LINE: usize = 4096;
/// Most lines logged per stream and call: a budget of 64 KiB of newlines would otherwise
/// be 64 Ki log events of about 100 bytes each on the host's stderr.
const MAX_LINES: usize = 1000;

/// One output stream of one call (stdout or stderr), shared by every WASI handle to it.
#[derive(Clone)]
pub struct PluginOutput {
    state: Arc<Mutex<OutputState>>,
}

struct OutputState {
    plugin: Arc<str>,
    stream: &'static str,
    pending: Vec<u8>,
    per_call: usize,
    budget: usize,
    dropped: usize,
    lines: usize,
    tail: Vec<u8>,
}

impl PluginOutput {
    /// A stream named `stream` ("stdout"/"stderr") of `plugin`, logging at most `budget` bytes.
    pub fn new(plugin: Arc<str>, stream: &'static str, budget: usize) -> Self {
        Self {
            state: Arc::new(Mutex::new(OutputState {
                plugin,
                stream,
                pending: Vec::new(),
                per_call: budget,
                budget,
                dropped: 0,
                lines: 0,
                tail: Vec::new(),
            })),
        }
    }

    /// Starts another call of the same instance ([`super::warm`]): its budget and line
    /// count start again and the tail is the new call's only.
    pub fn begin_call(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.budget = state.per_call;
        state.lines = 0;
        state.dropped = 0;
        state.pending.clear();
        state.tail.clear();
    }

    /// Logs any unterminated last line and how many bytes were dropped. Call after the call.
    pub fn finish(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !state.pending.is_empty() {
            let line = std::mem::take(&mut state.pending);
            state.emit(&line);
        }
        if state.dropped > 0 {
            tracing::warn!(
                plugin = %state.plugin,
                stream = state.stream,
                dropped_bytes = state.dropped,
                "plugin output over the log budget was dropped (limits.log-output; at most {MAX_LINES} lines per stream and call)"
            );
            state.dropped = 0;
        }
    }

    /// The last lines written, lossily decoded, trimmed; empty when nothing was written.
    pub fn tail(&self) -> String {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&state.tail).trim().to_string()
    }

    fn write(&self, buf: &[u8]) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.keep_tail(buf);
        let take = buf.len().min(state.budget);
        state.budget -= take;
        state.dropped += buf.len() - take;
        let mut rest = &buf[..take];
        while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
            let mut line = std::mem::take(&mut state.pending);
            line.extend_from_slice(&rest[..newline]);
            state.emit(&line);
            rest = &rest[newline + 1..];
        }
        state.pending.extend_from_slice(rest);
        if state.pending.len() > MAX_LINE {
            let line = std::mem::take(&mut state.pending);
            state.emit(&line);
        }
    }
}

impl OutputState {
    fn emit(&mut self, line: &[u8]) {
        if self.lines >= MAX_LINES {
            self.dropped += line.len() + 1;
            return;
        }
        self.lines += 1;
        let line = &line[..line.len().min(MAX_LINE)];
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\r');
        tracing::info!(target: "capsule::plugin", plugin = %self.plugin, stream = self.stream, "{text}");
    }

    fn keep_tail(&mut self, buf: &[u8]) {
        let start = buf.len().saturating_sub(TAIL_BYTES);
        self.tail.extend_from_slice(&buf[start..]);
        let excess = self.tail.len().saturating_sub(TAIL_BYTES);
        self.tail.drain(..excess);
    }
}

impl IsTerminal for PluginOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for PluginOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for PluginOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_drops_the_excess_but_keeps_the_tail() {
        let out = PluginOutput::new("p".into(), "stderr", 4);
        out.write(b"hello\nworld: boom\n");
        let state = out.state.lock().unwrap();
        assert_eq!(state.dropped, 14);
        drop(state);
        assert_eq!(out.tail(), "hello\nworld: boom");
    }

    #[test]
    fn lines_are_capped_per_stream() {
        let out = PluginOutput::new("p".into(), "stdout", 1 << 20);
        out.write(&vec![b'\n'; 5000]);
        let state = out.state.lock().unwrap();
        assert_eq!(state.lines, MAX_LINES);
        assert_eq!(state.dropped, 4000);
    }

    #[test]
    fn another_call_starts_with_the_whole_budget_and_no_tail() {
        let out = PluginOutput::new("p".into(), "stderr", 4);
        out.write(b"first call: boom\n");
        out.finish();
        out.begin_call();
        assert_eq!(out.tail(), "");
        out.write(b"ok\n");
        let state = out.state.lock().unwrap();
        assert_eq!((state.budget, state.lines, state.dropped), (1, 1, 0));
        drop(state);
        assert_eq!(out.tail(), "ok");
    }

    #[test]
    fn tail_is_bounded() {
        let out = PluginOutput::new("p".into(), "stderr", 0);
        out.write(&vec![b'x'; 10_000]);
        out.write(b"end");
        let tail = out.tail();
        assert_eq!(tail.len(), TAIL_BYTES);
        assert!(tail.ends_with("end"));
    }
}
