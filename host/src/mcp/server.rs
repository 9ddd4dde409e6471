//! The MCP handler, independent of transport: `tools/list` from the registry,
//! `tools/call` validated in the host and run in the sandbox, `logging/setLevel`,
//! progress and cancellation. One value per client connection.
//!
//! MCP logging is deprecated by SEP-2577 but clients still call `logging/setLevel` on
//! connect (MCP Inspector does) and show log notifications, so we keep serving it.
#![allow(deprecated)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use rmcp::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ErrorData, Implementation, JsonObject,
    ListToolsResult, LoggingLevel, LoggingMessageNotificationParam, PaginatedRequestParams,
    ProgressNotificationParam, ProgressToken, ServerCapabilities, ServerConfig,
    SetLevelRequestParams,
};
use rmcp::service::{NotificationContext, Peer, RequestContext, RoleServer};
use serde_json::Value;
use tracing::Instrument;

use super::convert::{error_result, tool_result};
use super::inflight::Inflight;
use super::peers::Peers;
use crate::audit::{Audit, CallRecord, Outcome};
use crate::auth::Principal;
use crate::auth::limiter::{RateLimiter, ToolLimitChecked};
use crate::breaker::{Breakers, Verdict};
use crate::config::breaker::{BreakerSettings, OpenTools};
use crate::degraded::Degraded;
use crate::loading::Loading;
use crate::metrics::Metrics;
use crate::registry::{RegisteredTool, Registry};
use crate::runtime::bindings::Level;
use crate::runtime::events::{self, EventReceiver};
use crate::runtime::fault::Fault;
use crate::runtime::{CallContext, CallEvent, CallFailure, Runtime, Usage};
use crate::trace;

/// Stored in [`CapsuleServer::client_level`] while the client has not asked for logs.
const NO_LOGS: u8 = u8::MAX;

/// Serves the registry's tools to one MCP client.
#[derive(Clone)]
pub struct CapsuleServer {
    runtime: Arc<Runtime>,
    registry: Arc<Registry>,
    client_level: Arc<AtomicU8>,
    calls: Arc<Inflight>,
    /// The transport's requests in flight (HTTP), if it counts them: while others are in
    /// flight, calls are crowded ([`CallContext::crowded`]).
    requests: Option<Arc<Inflight>>,
    audit: Audit,
    metrics: Metrics,
    limiter: Arc<RateLimiter>,
    breakers: Arc<Breakers>,
    degraded: Degraded,
    loading: Arc<Loading>,
    list_wait: Duration,
    peers: Arc<Peers>,
}

/// How long a `tools/call` of a name not (yet) served waits for plugins still loading.
const CALL_WAITS_FOR_LOADING: Duration = Duration::from_secs(60);

impl CapsuleServer {
    /// A handler for one connection, without per-principal rate limits (see
    /// [`Self::with_limiter`]).
    pub fn new(runtime: Arc<Runtime>, registry: Arc<Registry>) -> Self {
        let peers = Arc::<Peers>::default();
        Self {
            runtime,
            registry,
            client_level: Arc::new(AtomicU8::new(NO_LOGS)),
            calls: Inflight::new(),
            requests: None,
            audit: Audit::off(),
            metrics: Metrics::off(),
            limiter: Arc::new(RateLimiter::new(None)),
            breakers: Arc::new(Breakers::new(BreakerSettings::default(), peers.clone())),
            degraded: Degraded::default(),
            loading: Loading::finished(),
            list_wait: Duration::ZERO,
            peers,
        }
    }

    /// This handler with circuit breakers of `breakers` (`[runtime.breaker]`; a plugin's
    /// `[plugins.NAME.breaker]` over it) and the `degraded` switch, both shared by every
    /// client made from it.
    pub fn with_resilience(self, breakers: BreakerSettings, degraded: Degraded) -> Self {
        Self {
            breakers: Arc::new(Breakers::new(breakers, self.peers.clone())),
            degraded,
            ..self
        }
    }

    /// The degraded-mode switch (SIGUSR1 flips it).
    pub fn degraded(&self) -> &Degraded {
        &self.degraded
    }

    /// This handler (and every one made from it) on a transport whose threads also serve
    /// `requests`: a call that arrives while another request is in flight runs on the
    /// call threads from the start ([`CallContext::crowded`]).
    pub fn with_requests(self, requests: Arc<Inflight>) -> Self {
        Self {
            requests: Some(requests),
            ..self
        }
    }

    /// This handler, recording to `audit` (and every one made from it).
    pub fn with_audit(self, audit: Audit) -> Self {
        Self { audit, ..self }
    }

    /// The audit log (off unless [`Self::with_audit`] set one), for the transports.
    pub fn audit(&self) -> &Audit {
        &self.audit
    }

    /// This handler, counting calls in `metrics` (and every one made from it).
    pub fn with_metrics(self, metrics: Metrics) -> Self {
        Self { metrics, ..self }
    }

    /// The metrics (off unless [`Self::with_metrics`] set them), for the transports.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// This handler with `limiter`'s buckets (shared by every client made from it).
    pub fn with_limiter(self, limiter: RateLimiter) -> Self {
        Self {
            limiter: Arc::new(limiter),
            ..self
        }
    }

    /// The rate limits' buckets, shared with the HTTP edge.
    pub fn limiter(&self) -> &Arc<RateLimiter> {
        &self.limiter
    }

    /// Serves tools while `loading` still adds plugins to the registry: `tools/list` waits
    /// (at most `list_wait`) for the plugins loading in the foreground.
    pub fn with_loading(mut self, loading: Arc<Loading>, list_wait: Duration) -> Self {
        self.loading = loading;
        self.list_wait = list_wait;
        self
    }

    /// The clients to notify when the tool set changes.
    pub fn peers(&self) -> &Arc<Peers> {
        &self.peers
    }

    /// How far loading the plugins is.
    pub fn loading(&self) -> &Arc<Loading> {
        &self.loading
    }

    /// A handler for another client (an HTTP session or stateless request): the same
    /// tools and runtime, its own log level, the calls counted with this one's.
    pub fn for_new_client(&self) -> Self {
        Self {
            client_level: Arc::new(AtomicU8::new(NO_LOGS)),
            ..self.clone()
        }
    }

    /// The `tools/call`s running now, of this handler and every one made from it with
    /// [`Self::for_new_client`].
    pub fn calls(&self) -> &Arc<Inflight> {
        &self.calls
    }

    /// The tools being served.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Ends a call of `tool` refused with `outcome` before anything ran: audited, counted
    /// and timed (from `received`), and logged at `debug` with `why` and its times.
    fn refused(
        &self,
        tool: &RegisteredTool,
        outcome: Outcome,
        record: Option<CallRecord>,
        received: &Received,
        why: &str,
    ) {
        if let Some(record) = record {
            record.finish(outcome);
        }
        let took = received.elapsed();
        self.metrics.refused(tool, outcome, took.wall);
        tracing::debug!(
            tool = %tool.exposed_name,
            outcome = outcome.as_str(),
            took_us = took.wall.as_micros(),
            cpu_us = took.cpu.map(|cpu| cpu.as_micros()),
            "refused: {why}"
        );
    }

    /// The least severe plugin log level the client asked to receive, if any.
    fn client_level(&self) -> Option<LoggingLevel> {
        match self.client_level.load(Ordering::Relaxed) {
            NO_LOGS => None,
            n => Some(level_from_rank(n)),
        }
    }
}

impl ServerHandler for CapsuleServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_logging()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
        .with_server_info(Implementation::new("capsule", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Tools served by Capsule run in sandboxed WebAssembly plugins. Tool names are \
             <plugin>_<tool>. A result with isError names the problem: invalid arguments, a \
             tool error, or a sandbox limit (fuel, time, memory, stack, result size).",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        if !self.loading.is_finished() {
            self.loading.foreground_loaded(self.list_wait).await;
        }
        let set = self.registry.snapshot();
        let principal = Principal::of_request(&context);
        Ok(ListToolsResult::with_all_items(
            set.tools()
                .iter()
                .filter(|t| t.access.permits(principal, &t.exposed_name))
                .filter(|t| self.degraded.serves(t))
                .filter_map(|t| match self.breakers.listing(&t.plugin) {
                    None => Some(t.descriptor.clone()),
                    Some((OpenTools::Hide, _)) => None,
                    Some((OpenTools::Mark, note)) => {
                        let mut descriptor = t.descriptor.clone();
                        let description = descriptor.description.as_deref().unwrap_or_default();
                        descriptor.description = Some(format!("{note}{description}").into());
                        Some(descriptor)
                    }
                })
                .collect(),
        ))
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        tracing::debug!("client initialized");
        self.peers.add(context.peer);
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.client_level
            .store(level_rank(request.level), Ordering::Relaxed);
        Ok(())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // A call refused before it runs reports how long its answer took from here.
        let mut received = Received::now();
        let principal = Principal::of_request(&context).cloned();
        let record = self.audit.call(
            principal.as_ref().map(|p| &*p.name),
            &request.name,
            request.arguments.as_ref(),
        );
        // A tool the caller may not call is answered exactly like one that does not
        // exist (after the same wait while plugins load), so names cannot be probed.
        let permitted = |set: &crate::registry::ToolSet| {
            set.get(&request.name)
                .filter(|t| t.access.permits(principal.as_ref(), &t.exposed_name))
                .cloned()
        };
        // Read before the registry: loading swaps the registry before it counts a plugin
        // as done, so a finished loading seen here means the snapshot below is complete.
        let loaded = self.loading.is_finished();
        let mut tool = permitted(&self.registry.snapshot());
        if tool.is_none() && !loaded {
            // A client may call a tool it knows from before while its plugin still loads.
            self.loading.finished_within(CALL_WAITS_FOR_LOADING).await;
            received.awaited();
            tool = permitted(&self.registry.snapshot());
        }
        let Some(tool) = tool else {
            tracing::debug!(tool = %request.name, principal = principal.as_ref().map(|p| &*p.name), "tools/call of an unknown or forbidden tool");
            if let Some(record) = record {
                record.finish(Outcome::UnknownTool);
            }
            self.metrics.unknown_tool();
            return Err(ErrorData::invalid_params(
                format!(
                    "unknown tool `{}`; call tools/list to see the available tools",
                    request.name
                ),
                None,
            ));
        };
        if !self.degraded.serves(&tool) {
            self.refused(&tool, Outcome::Degraded, record, &received, "degraded mode");
            return Err(ErrorData::invalid_params(
                format!(
                    "tool `{}` is not available: the server is in degraded mode and serves only read-only tools (readOnlyHint) until an operator turns it off (SIGUSR1 or server.degraded); call tools/list to see the tools served now",
                    request.name
                ),
                None,
            ));
        }
        if let Some(rate) = &tool.access.rate_limit
            && !checked_at_edge(&context)
            && let Err(exceeded) = self
                .limiter
                .check_tool(&tool.exposed_name, rate, Instant::now())
        {
            let why = format!("rate limited: {exceeded}");
            self.refused(&tool, Outcome::Rejected, record, &received, &why);
            return Err(exceeded.to_error_data());
        }
        let ticket = match self.breakers.admit(&tool.plugin, &self.audit) {
            Ok(ticket) => ticket,
            Err(refused) => {
                let why = refused.to_string();
                let answer: CallToolResponse = error_result(why.clone()).into();
                self.refused(&tool, Outcome::BreakerOpen, record, &received, &why);
                return Ok(answer);
            }
        };
        let _running = self.calls.enter(format!("tools/call {}", request.name));
        let progress = context.meta.get_progress_token();
        // 2026-07-28 clients opt in per request (`_meta` logLevel); older ones via setLevel.
        let level = context.meta.log_level().or_else(|| self.client_level());
        let arguments = request.arguments.unwrap_or_default();
        let mut call = CallContext {
            cancel: context.ct.clone(),
            events: None,
            caller: principal,
            // This call's own request is one of them.
            crowded: self.requests.as_ref().is_some_and(|r| r.len() > 1),
        };
        let span = trace::call_span(&tool.plugin.name, &tool.exposed_name, || {
            traceparent(&context)
        });
        let (result, outcome, verdict, usage) = if progress.is_none() && level.is_none() {
            execute_with_outcome(&self.runtime, &tool, arguments, call)
                .instrument(span.span().clone())
                .await
        } else {
            // The events are forwarded on this task, beside the call: the sender lives in
            // the call's store, so forwarding ends when the call does, and progress and logs
            // reach the client before the result. Progress is paced and coalesced (see
            // `events`).
            let (tx, rx) = events::channel(tool.plugin.name.clone());
            call.events = Some(tx);
            let logger = tool.exposed_name.clone();
            let (executed, ()) = tokio::join!(
                execute_with_outcome(&self.runtime, &tool, arguments, call)
                    .instrument(span.span().clone()),
                forward_events(rx, context.peer.clone(), progress, level, logger),
            );
            executed
        };
        ticket.finish(verdict);
        if let Some(record) = record {
            record.finish(outcome);
        }
        match outcome {
            // Invalid arguments: refused before an instance ran.
            Outcome::Rejected => self
                .metrics
                .refused(&tool, outcome, received.elapsed().wall),
            _ => self.metrics.call(&tool, outcome, &usage),
        }
        trace::finish(span, &tool.plugin.name, &tool.exposed_name, outcome, &usage);
        Ok(result.into())
    }
}

/// When the handler received a call, by the wall clock and by its thread's CPU clock.
struct Received {
    at: Instant,
    /// `None` once the handler awaited: it may have resumed on another thread.
    cpu: Option<Duration>,
}

/// How long since a call was received: the wall time (what the client waits for, also
/// the time the thread waited for a CPU on a busy machine) and, when known, the CPU time
/// the handler's thread spent on it (the work itself, which scheduling does not change).
struct Elapsed {
    wall: Duration,
    cpu: Option<Duration>,
}

impl Received {
    /// Now. The CPU clock (a system call) is read only when the `debug` line that
    /// reports it is on.
    fn now() -> Self {
        let debug = tracing::enabled!(tracing::Level::DEBUG);
        Self {
            at: Instant::now(),
            cpu: debug.then(thread_cpu_time).flatten(),
        }
    }

    /// The handler awaited something: its thread's CPU clock no longer measures this call.
    fn awaited(&mut self) {
        self.cpu = None;
    }

    fn elapsed(&self) -> Elapsed {
        Elapsed {
            wall: self.at.elapsed(),
            cpu: self
                .cpu
                .and_then(|start| Some(thread_cpu_time()?.saturating_sub(start))),
        }
    }
}

/// CPU time the calling thread has used.
#[cfg(unix)]
fn thread_cpu_time() -> Option<Duration> {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Some(Duration::new(
        u64::try_from(now.tv_sec).ok()?,
        u32::try_from(now.tv_nsec).ok()?,
    ))
}

/// CPU time the calling thread has used: not read on this platform.
#[cfg(not(unix))]
fn thread_cpu_time() -> Option<Duration> {
    None
}

/// The caller's W3C `traceparent`: from the request's `_meta`, else the HTTP header.
fn traceparent(context: &RequestContext<RoleServer>) -> Option<&str> {
    context.meta.get_traceparent().or_else(|| {
        context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.headers.get("traceparent"))
            .and_then(|value| value.to_str().ok())
    })
}

/// Whether the HTTP edge already took this call's token of its tool's rate limit.
fn checked_at_edge(context: &RequestContext<RoleServer>) -> bool {
    context
        .extensions
        .get::<http::request::Parts>()
        .is_some_and(|parts| parts.extensions.get::<ToolLimitChecked>().is_some())
}

/// Runs one call of `tool` the way every transport and the CLI do: arguments checked
/// against the input schema first (no instance runs for invalid ones), then the sandbox,
/// then the result checked against the output schema. Never fails: every problem is an
/// `isError` result with a message a model can act on.
pub async fn execute(
    runtime: &Runtime,
    tool: &RegisteredTool,
    arguments: JsonObject,
    call: CallContext,
) -> CallToolResult {
    execute_with_outcome(runtime, tool, arguments, call).await.0
}

/// [`execute`], how the call ended (for the audit log and the plugin's circuit breaker)
/// and what it used (for metrics).
async fn execute_with_outcome(
    runtime: &Runtime,
    tool: &RegisteredTool,
    arguments: JsonObject,
    call: CallContext,
) -> (CallToolResult, Outcome, Verdict, Usage) {
    let mut usage = Usage::default();
    let (result, outcome, verdict) = run_checked(runtime, tool, arguments, call, &mut usage).await;
    (result, outcome, verdict, usage)
}

/// Checks the arguments, runs the call and checks its result; `usage` gets what it used.
async fn run_checked(
    runtime: &Runtime,
    tool: &RegisteredTool,
    arguments: JsonObject,
    call: CallContext,
    usage: &mut Usage,
) -> (CallToolResult, Outcome, Verdict) {
    let arguments = Value::Object(arguments);
    if let Err(message) = tool.check_arguments(&arguments) {
        return (error_result(message), Outcome::Rejected, Verdict::Neutral);
    }
    let arguments = arguments.to_string();
    let started = Instant::now();
    let outcome = runtime
        .call_measured(&tool.plugin, &tool.tool_name, &arguments, call, usage)
        .await;
    let elapsed = started.elapsed();
    match outcome {
        Ok(result) => {
            tracing::debug!(tool = %tool.exposed_name, ?elapsed, "call finished");
            let result = tool_result(tool, result);
            let outcome = if result.is_error == Some(true) {
                Outcome::ToolError
            } else {
                Outcome::Ok
            };
            (result, outcome, Verdict::Healthy)
        }
        Err(CallFailure::Tool(err)) => {
            tracing::debug!(tool = %tool.exposed_name, ?elapsed, "tool error: {err}");
            (
                error_result(CallFailure::Tool(err).to_string()),
                Outcome::ToolError,
                Verdict::Healthy,
            )
        }
        Err(CallFailure::Fault(fault)) => {
            tracing::warn!(
                tool = %tool.exposed_name,
                plugin = %tool.plugin.name,
                fault = fault.kind(),
                ?elapsed,
                "sandbox fault: {fault}"
            );
            let result = error_result(format!(
                "sandbox fault: plugin `{}` {fault}",
                tool.plugin.name
            ));
            // Waiting for a slot and the client's cancel say nothing about the plugin.
            let verdict = match &fault {
                Fault::Cancelled | Fault::QueueTimeout { .. } => Verdict::Neutral,
                _ => Verdict::Fault(fault.kind()),
            };
            (result, Outcome::Fault(fault.kind()), verdict)
        }
        Err(busy @ CallFailure::Busy { .. }) => {
            tracing::warn!(tool = %tool.exposed_name, "rejected: {busy}");
            (
                error_result(busy.to_string()),
                Outcome::Busy,
                Verdict::Neutral,
            )
        }
    }
}

/// Sends a call's progress and log events to its client until the call ends.
async fn forward_events(
    mut events: EventReceiver,
    peer: Peer<RoleServer>,
    progress: Option<ProgressToken>,
    level: Option<LoggingLevel>,
    logger: String,
) {
    while let Some(event) = events.next().await {
        match event {
            CallEvent::Progress(events::Progress {
                done,
                total,
                message,
            }) => {
                let Some(token) = &progress else { continue };
                let mut param = ProgressNotificationParam::new(token.clone(), done);
                param.total = total;
                param.message = message;
                let _ = peer.notify_progress(param).await;
            }
            CallEvent::Log {
                level: wit,
                message,
            } => {
                let Some(min) = level else { continue };
                let lvl = mcp_level(wit);
                if level_rank(lvl) < level_rank(min) {
                    continue;
                }
                let param = LoggingMessageNotificationParam::new(lvl, Value::String(message))
                    .with_logger(logger.clone());
                let _ = peer.notify_logging_message(param).await;
            }
        }
    }
}

fn mcp_level(level: Level) -> LoggingLevel {
    match level {
        Level::Trace | Level::Debug => LoggingLevel::Debug,
        Level::Info => LoggingLevel::Info,
        Level::Warn => LoggingLevel::Warning,
        Level::Error => LoggingLevel::Error,
    }
}

const LEVELS: [LoggingLevel; 8] = [
    LoggingLevel::Debug,
    LoggingLevel::Info,
    LoggingLevel::Notice,
    LoggingLevel::Warning,
    LoggingLevel::Error,
    LoggingLevel::Critical,
    LoggingLevel::Alert,
    LoggingLevel::Emergency,
];

fn level_rank(level: LoggingLevel) -> u8 {
    LEVELS.iter().position(|l| *l == level).unwrap_or(0) as u8
}

fn level_from_rank(rank: u8) -> LoggingLevel {
    LEVELS
        .get(rank as usize)
        .copied()
        .unwrap_or(LoggingLevel::Debug)
}
