//! One call = one fresh `Store` and instance, with fuel, an epoch deadline, a memory
//! limiter and cancellation. Traps are mapped to the [`Fault`] they really were.

use std::time::Instant;

use wasmtime::{Store, Trap, UpdateDeadline};

use super::Runtime;
use super::bindings::{CallError, CallResult, Content, ResourceBody, Tool};
use super::fault::Fault;
use super::plugin::{Entry, Plugin};
use super::state::{CallContext, CallState};
use crate::units::ByteSize;

/// Why a call produced no result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallFailure {
    /// The plugin returned an error.
    #[error("{}", describe_call_error(.0))]
    Tool(CallError),
    /// The sandbox stopped the call.
    #[error("{0}")]
    Fault(Fault),
    /// Too many calls are running and waiting already.
    #[error(
        "the server is busy: {running} calls running and {queued} waiting (runtime.max-concurrent-calls / max-queued-calls); retry shortly"
    )]
    Busy {
        /// Calls running at once.
        running: u32,
        /// Calls allowed to wait.
        queued: u32,
    },
}

fn describe_call_error(err: &CallError) -> String {
    match err {
        CallError::UnknownTool(name) => format!("the plugin has no tool `{name}`"),
        CallError::InvalidArguments(msg) => format!("invalid arguments: {msg}"),
        CallError::Failed(msg) => msg.clone(),
    }
}

enum Invocation<'a> {
    ListTools,
    CallTool { name: &'a str, arguments: &'a str },
}

enum Returned {
    Tools(Vec<Tool>),
    Called(Result<CallResult, CallError>),
}

impl Runtime {
    /// Runs tool `name` of `plugin` with `arguments` (a JSON object as text).
    pub async fn call(
        &self,
        plugin: &Plugin,
        name: &str,
        arguments: &str,
        context: CallContext,
    ) -> Result<CallResult, CallFailure> {
        let _slot = self.admit(&context).await?;
        let returned = self
            .invoke(plugin, Invocation::CallTool { name, arguments }, context)
            .await
            .map_err(CallFailure::Fault)?;
        let Returned::Called(result) = returned else {
            unreachable!("call-tool returns a call result")
        };
        let result = result.map_err(CallFailure::Tool)?;
        let limit = plugin.policy.limits.result;
        let actual = result_size(&result);
        if actual > limit.bytes() {
            return Err(CallFailure::Fault(Fault::ResultTooLarge {
                limit,
                actual: ByteSize(actual),
            }));
        }
        Ok(result)
    }

    /// Asks `plugin` for its tools, in a fresh instance under its limits.
    pub(crate) async fn list_tools(&self, plugin: &Plugin) -> Result<Vec<Tool>, Fault> {
        match self
            .invoke(plugin, Invocation::ListTools, CallContext::default())
            .await?
        {
            Returned::Tools(tools) => Ok(tools),
            Returned::Called(_) => unreachable!("list-tools returns tools"),
        }
    }

    /// Waits for a call slot, unless too many calls wait already or the call is cancelled.
    async fn admit(
        &self,
        context: &CallContext,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, CallFailure> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let busy = || CallFailure::Busy {
            running: self.settings.max_concurrent_calls,
            queued: self.settings.max_queued_calls,
        };
        let waiting = self
            .queued
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let _leave = QueueSeat(&self.queued);
        if waiting >= self.settings.max_queued_calls as usize {
            return Err(busy());
        }
        tokio::select! {
            permit = self.slots.clone().acquire_owned() => permit.map_err(|_| busy()),
            _ = context.cancel.cancelled() => Err(CallFailure::Fault(Fault::Cancelled)),
        }
    }

    async fn invoke(
        &self,
        plugin: &Plugin,
        invocation: Invocation<'_>,
        context: CallContext,
    ) -> Result<Returned, Fault> {
        let limits = &plugin.policy.limits;
        let cancel = context.cancel.clone();
        let state =
            CallState::new(plugin.name.clone(), &plugin.policy, context).map_err(|err| {
                Fault::Setup {
                    detail: format!("{err:#}"),
                }
            })?;
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.set_fuel(limits.fuel).map_err(|err| Fault::Crashed {
            detail: format!("cannot set fuel: {err}"),
        })?;
        let deadline = Instant::now() + limits.timeout;
        let timeout = limits.timeout;
        let epoch_cancel = cancel.clone();
        store.epoch_deadline_callback(move |_| {
            if epoch_cancel.is_cancelled() {
                return Err(Fault::Cancelled.into());
            }
            if Instant::now() >= deadline {
                return Err(Fault::Deadline { limit: timeout }.into());
            }
            Ok(UpdateDeadline::Yield(1))
        });
        store.set_epoch_deadline(1);

        let run = async {
            match &plugin.entry {
                Entry::Tools(pre) => {
                    let instance = pre.instantiate_async(&mut store).await?;
                    let tools = instance.capsule_plugin_tools();
                    match invocation {
                        Invocation::ListTools => {
                            tools.call_list_tools(&mut store).await.map(Returned::Tools)
                        }
                        Invocation::CallTool { name, arguments } => tools
                            .call_call_tool(&mut store, name, arguments)
                            .await
                            .map(Returned::Called),
                    }
                }
                Entry::Functions { pre, functions } => match invocation {
                    Invocation::ListTools => Ok(Returned::Tools(plugin.tools.clone())),
                    Invocation::CallTool { name, arguments } => {
                        let Some(function) = functions.iter().find(|f| f.tool == name) else {
                            let unknown = CallError::UnknownTool(name.to_string());
                            return Ok(Returned::Called(Err(unknown)));
                        };
                        let instance = pre.instantiate_async(&mut store).await?;
                        function
                            .call(&mut store, &instance, arguments)
                            .await
                            .map(Returned::Called)
                    }
                },
            }
        };
        // The epoch callback stops code that is running; the timeout and the cancellation
        // token also stop a call that is blocked in the host (e.g. a WASI sleep).
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(timeout, run) => match outcome {
                Ok(Ok(returned)) => Ok(returned),
                Ok(Err(err)) => Err(Some(err)),
                Err(_elapsed) => Err(None),
            },
            _ = cancel.cancelled() => Err(Some(Fault::Cancelled.into())),
        };
        let state = store.data();
        state.finish_output();
        outcome.map_err(|err| match err {
            None => Fault::Deadline { limit: timeout },
            Some(err) => classify(err, state, limits.fuel, self.settings.max_wasm_stack),
        })
    }
}

/// Releases a place in the wait queue when dropped.
struct QueueSeat<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for QueueSeat<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Turns the error of a failed call into the fault it was, by type, never by message.
fn classify(err: wasmtime::Error, state: &CallState, fuel: u64, stack: ByteSize) -> Fault {
    if let Some(fault) = err.downcast_ref::<Fault>() {
        return fault.clone();
    }
    if let Some(requested) = state.limiter.memory_hit {
        return Fault::Memory {
            limit: ByteSize(state.limiter.memory_limit() as u64),
            requested: ByteSize(requested as u64),
        };
    }
    if state.limiter.table_hit {
        return Fault::Table {
            limit: state.limiter.table_limit(),
        };
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Fault::OutOfFuel { limit: fuel },
        Some(Trap::StackOverflow) => Fault::StackOverflow { limit: stack },
        Some(Trap::MemoryOutOfBounds) => Fault::Crashed {
            detail: with_stderr(
                format!(
                    "{}; in compiled Rust/C plugins this is often an overflow of the \
                     plugin's own stack in linear memory (unbounded recursion)",
                    Trap::MemoryOutOfBounds
                ),
                state,
            ),
        },
        Some(trap) => Fault::Crashed {
            detail: with_stderr(trap.to_string(), state),
        },
        None => Fault::Crashed {
            detail: with_stderr(format!("{err:#}"), state),
        },
    }
}

/// Appends what the plugin last wrote to stderr (e.g. its panic message), if anything.
fn with_stderr(detail: String, state: &CallState) -> String {
    let tail = state.stderr.tail();
    let lines: Vec<&str> = tail
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
        .collect();
    if lines.is_empty() {
        return detail;
    }
    let start = lines.len().saturating_sub(4);
    format!("{detail}; plugin stderr: {}", lines[start..].join(" | "))
}

/// Bytes a result occupies: text, binary data and structured JSON.
fn result_size(result: &CallResult) -> u64 {
    let content: usize = result
        .content
        .iter()
        .map(|c| match c {
            Content::Text(t) => t.len(),
            Content::Image(b) | Content::Audio(b) => b.data.len() + b.mime_type.len(),
            Content::ResourceLink(l) => l.uri.len() + l.name.len(),
            Content::Resource(e) => {
                e.uri.len()
                    + match &e.body {
                        ResourceBody::Text(t) => t.len(),
                        ResourceBody::Binary(b) => b.len(),
                    }
            }
        })
        .sum();
    (content + result.structured.as_ref().map_or(0, String::len)) as u64
}
