//! One call = one fresh `Store` and instance (unless its plugin opted into reuse:
//! [`super::warm`]), with fuel, an epoch deadline, a memory
//! limiter and cancellation. Traps are mapped to the [`Fault`] they really were.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;
use wasmtime::{Engine, Store, Trap, UpdateDeadline};

use super::Runtime;
use super::bindings::{CallError, CallResult, Content, ResourceBody, Tool};
use super::conduct::{self, Change, QUICK_CALL, WINDOW};
use super::engine::PoolShare;
use super::executor::{Busy, Started};
use super::fault::Fault;
use super::plugin::{Entry, Plugin};
use super::state::{CallContext, CallState};
use super::warm::{Instantiated, Lease};
use crate::capability::limits::Limits;
use crate::capability::net::outbound::Outbound;
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

enum Invocation {
    ListTools,
    CallTool { name: String, arguments: String },
}

enum Returned {
    Tools(Vec<Tool>),
    Called(Result<CallResult, CallError>),
}

impl Runtime {
    /// Runs tool `name` of `plugin` with `arguments` (a JSON object as text). The call's
    /// time limit starts now: time spent waiting for a slot counts toward it.
    ///
    /// A call of a quick plugin ([`super::conduct::Conduct::quick`]) starts on the
    /// caller's thread and moves to the call threads ([`super::executor`]) at its first
    /// yield, unless the caller is crowded ([`CallContext::crowded`]) or a call runs on
    /// the call threads already; other calls run there from the start. If the caller stops
    /// waiting, the call is cancelled.
    pub async fn call(
        &self,
        plugin: &Arc<Plugin>,
        name: &str,
        arguments: &str,
        context: CallContext,
    ) -> Result<CallResult, CallFailure> {
        let mut usage = Usage::default();
        self.call_measured(plugin, name, arguments, context, &mut usage)
            .await
    }

    /// [`Self::call`], recording into `usage` what the call used (for metrics and traces).
    pub async fn call_measured(
        &self,
        plugin: &Arc<Plugin>,
        name: &str,
        arguments: &str,
        mut context: CallContext,
        usage: &mut Usage,
    ) -> Result<CallResult, CallFailure> {
        // A plugin listed from its remembered tools may still be loading its code; the
        // call waits for that (or ends when the client cancels) before its time starts.
        if plugin.code_pending() {
            tokio::select! {
                ready = self.code_ready(plugin) => ready.map_err(CallFailure::Fault)?,
                _ = context.cancel.cancelled() => return Err(CallFailure::Fault(Fault::Cancelled)),
            }
        }
        let deadline = deadline_after(plugin.policy.limits.timeout);
        let arrived = Instant::now();
        let admitted = self.admit(plugin, &context, deadline).await;
        usage.queue_wait = arrived.elapsed();
        let slots = admitted?;
        tracing::debug!(plugin = %plugin.name, tool = name, "call admitted");
        context.cancel = context.cancel.child_token();
        let _cancel_when_abandoned = context.cancel.clone().drop_guard();
        let stack = self.settings.max_wasm_stack;
        let outbound = self.outbound.clone();
        let running = plugin.clone();
        let invocation = Invocation::CallTool {
            name: name.to_owned(),
            arguments: arguments.to_owned(),
        };
        let started = Instant::now();
        usage.demoted = plugin.conduct.demoted();
        // A call of a quick plugin (its last calls were all busy briefly, within their
        // limits) starts on this thread: most calls end before their first yield, and then no
        // thread is woken to run them and none to hand back the result (on an idle machine
        // each such wake-up waits for a halted CPU). A call that yields (an epoch tick,
        // host I/O) moves to the call threads and continues there, so no call holds a
        // protocol thread for more than one tick; if it was busy long, the plugin's next
        // calls go to the call threads at once, as every call of a demoted plugin does.
        // While any call runs on the call threads, calls join it there: the protocol
        // threads then only do I/O, which the OS schedules ahead of threads that compute
        // (an HTTP soak beside hostile plugins measured good-call p99 1.79× its unloaded
        // p99 with quick calls started here regardless, BENCHMARKS.md). So do calls of a
        // crowded caller: a stateless HTTP server with other requests in flight served
        // 1.2-1.5× the calls per second with its instances on the call threads, away from
        // its HTTP work (BENCHMARKS.md, "Crowded stateless servers run calls on the call
        // threads").
        let here = !usage.demoted
            && !context.crowded
            && plugin.conduct.quick()
            && self.executor.running() == 0;
        let executor = if usage.demoted {
            &self.demoted
        } else {
            &self.executor
        };
        let work = Busy::new(async move {
            // The slots are the instance's: held until it is gone.
            let _slots = slots;
            invoke(stack, &running, invocation, context, outbound, deadline).await
        });
        usage.started_here = here;
        let started_here = if here {
            executor.start_here(work).await
        } else {
            Started::Moved(executor.spawn(work))
        };
        let finished = match started_here {
            Started::Done(finished) => finished,
            Started::Moved(mut task) => {
                // The call's own thread stops it at its deadline. Should that thread get
                // no CPU (the low-priority one, on a saturated machine), the caller is
                // answered anyway, [`ANSWERED_LATE`] after the deadline; the task ends at
                // its next chance.
                let answer_by = deadline.checked_add(ANSWERED_LATE).unwrap_or(deadline);
                match tokio::time::timeout_at(answer_by.into(), &mut task).await {
                    Ok(joined) => joined.map_err(|err| {
                        CallFailure::Fault(Fault::Crashed {
                            detail: format!("the call's task ended abnormally: {err}"),
                        })
                    })?,
                    Err(_) => {
                        task.abort();
                        usage.run_time = Some(started.elapsed());
                        let fault = Fault::Deadline {
                            limit: plugin.policy.limits.timeout,
                        };
                        self.judge(plugin, Some(&fault), None);
                        return Err(CallFailure::Fault(fault));
                    }
                }
            }
        };
        usage.run_time = Some(started.elapsed());
        let ((returned, used), busy) = finished;
        usage.fuel = Some(used.fuel);
        usage.memory_peak = Some(used.memory_peak);
        usage.instantiated = used.instantiated;
        let outcome = returned.and_then(|returned| {
            let Returned::Called(result) = returned else {
                unreachable!("call-tool returns a call result")
            };
            match result {
                Ok(result) => {
                    check_result(&result, plugin.policy.limits.result).map(|()| Ok(result))
                }
                Err(err) => Ok(Err(err)),
            }
        });
        self.judge(plugin, outcome.as_ref().err(), Some(busy));
        outcome
            .map_err(CallFailure::Fault)?
            .map_err(CallFailure::Tool)
    }

    /// Adds a finished call to `plugin`'s record (`fault`: the fault that stopped it, if
    /// any; `busy`: how long it ran, not waiting, if it ended) and logs a change of its
    /// standing.
    fn judge(&self, plugin: &Plugin, fault: Option<&Fault>, busy: Option<Duration>) {
        let limit = match fault {
            None => false,
            Some(fault) => match conduct::hit_a_limit(fault) {
                Some(limit) => limit,
                None => return,
            },
        };
        plugin
            .conduct
            .record_pace(!limit && busy.is_some_and(|busy| busy < QUICK_CALL));
        match plugin.conduct.record(limit, self.settings.demote_after) {
            Some(Change::Demoted { faults }) => tracing::warn!(
                plugin = %plugin.name,
                "plugin `{}` demoted: {faults} of its last {WINDOW} calls ran into a limit (runtime.demote-after = {}); its calls run on the low-priority thread until fewer do",
                plugin.name,
                self.settings.demote_after
            ),
            Some(Change::Restored { faults }) => tracing::info!(
                plugin = %plugin.name,
                "plugin `{}` restored: {faults} of its last {WINDOW} calls ran into a limit; its calls run on the normal call threads again",
                plugin.name
            ),
            None => {}
        }
    }

    /// Asks `plugin` for its tools, in a fresh instance under its limits.
    pub(crate) async fn list_tools(&self, plugin: &Plugin) -> Result<Vec<Tool>, Fault> {
        let deadline = deadline_after(plugin.policy.limits.timeout);
        match invoke(
            self.settings.max_wasm_stack,
            plugin,
            Invocation::ListTools,
            CallContext::default(),
            self.outbound.clone(),
            deadline,
        )
        .await
        .0?
        {
            Returned::Tools(tools) => Ok(tools),
            Returned::Called(_) => unreachable!("list-tools returns tools"),
        }
    }

    /// Takes a slot of `plugin` and then a slot of the host, waiting if needed, unless the
    /// call is cancelled already.
    async fn admit(
        &self,
        plugin: &Plugin,
        context: &CallContext,
        deadline: Instant,
    ) -> Result<Admission, CallFailure> {
        if context.cancel.is_cancelled() {
            return Err(CallFailure::Fault(Fault::Cancelled));
        }
        let own = match plugin.slots.clone().try_acquire_owned() {
            Ok(own) => match self.slots.clone().try_acquire_owned() {
                Ok(global) => {
                    return Ok(Admission {
                        _plugin: own,
                        _global: global,
                    });
                }
                Err(_) => Some(own),
            },
            Err(_) => None,
        };
        self.wait_for_slots(plugin, context, deadline, own).await
    }

    /// Waits in the bounded queue for the slots [`Self::admit`] could not take at once,
    /// until the call is cancelled or its deadline passes.
    async fn wait_for_slots(
        &self,
        plugin: &Plugin,
        context: &CallContext,
        deadline: Instant,
        own: Option<OwnedSemaphorePermit>,
    ) -> Result<Admission, CallFailure> {
        let busy = || CallFailure::Busy {
            running: self.settings.max_concurrent_calls,
            queued: self.settings.max_queued_calls,
        };
        let waiting = self.queued.fetch_add(1, Ordering::AcqRel);
        let _leave = QueueSeat(&self.queued);
        if waiting >= self.settings.max_queued_calls as usize {
            return Err(busy());
        }
        tracing::debug!(plugin = %plugin.name, "call queued");
        let acquire = async {
            let own = match own {
                Some(own) => own,
                None => plugin
                    .slots
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| busy())?,
            };
            let global = self
                .slots
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| busy())?;
            Ok(Admission {
                _plugin: own,
                _global: global,
            })
        };
        tokio::select! {
            admitted = acquire => admitted,
            _ = context.cancel.cancelled() => Err(CallFailure::Fault(Fault::Cancelled)),
            _ = tokio::time::sleep_until(deadline.into()) => Err(CallFailure::Fault(Fault::QueueTimeout {
                limit: plugin.policy.limits.timeout,
            })),
        }
    }
}

/// What a call used, for metrics and traces ([`Runtime::call_measured`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Time spent waiting for a call slot (zero when one was free).
    pub queue_wait: Duration,
    /// Time from handing the call to the call threads until it ended (instantiation
    /// included); `None` when it never got a slot.
    pub run_time: Option<Duration>,
    /// Fuel consumed; `None` when it never ran.
    pub fuel: Option<u64>,
    /// The most linear memory the call held, over all its memories, in bytes.
    pub memory_peak: Option<u64>,
    /// Whether an instance was created for it.
    pub instantiated: bool,
    /// Whether it ran on the low-priority thread, its plugin being demoted
    /// (`runtime.demote-after`).
    pub demoted: bool,
    /// Whether it started on the thread that received it, its plugin being quick
    /// ([`super::conduct::Conduct::quick`]).
    pub started_here: bool,
}

/// What [`invoke`] measured.
#[derive(Default)]
struct Used {
    fuel: u64,
    memory_peak: u64,
    instantiated: bool,
}

/// Runs `invocation` in a fresh instance of `plugin` (or, for a call of a plugin with
/// `isolation = "reuse"`, in an instance it kept for this caller: [`super::warm`]), under
/// its limits, until `deadline`; its outgoing HTTP goes through `outbound`.
async fn invoke(
    max_wasm_stack: ByteSize,
    plugin: &Plugin,
    invocation: Invocation,
    context: CallContext,
    outbound: Arc<Outbound>,
    deadline: Instant,
) -> (Result<Returned, Fault>, Used) {
    // The code the call started with, held until it ends (optimized code replacing it
    // meanwhile serves the next calls).
    let current = match plugin.code.get() {
        Some(Ok(entry)) => entry,
        Some(Err(detail)) => {
            let fault = Fault::Unloadable {
                detail: detail.to_owned(),
            };
            return (Err(fault), Used::default());
        }
        None => {
            let fault = Fault::Unloadable {
                detail: "its code was not loaded before the call (a host bug)".into(),
            };
            return (Err(fault), Used::default());
        }
    };
    let entry: &Entry = &current;
    let mut instantiated = false;
    let limits = &plugin.policy.limits;
    let cancel = context.cancel.clone();
    let warm = match invocation {
        Invocation::CallTool { .. } => plugin.warm.as_deref(),
        Invocation::ListTools => None,
    };
    // Whom a kept instance serves; only looked at for plugins that keep instances.
    let caller = warm
        .and(context.caller.as_ref())
        .map(|principal| principal.name.clone());
    // An instance kept from before the plugin's optimized code replaced its quick code
    // ([`super::tier`]) is not entered again.
    let taken = warm
        .and_then(|pool| pool.take(caller.as_deref()))
        .filter(|kept| Engine::same(kept.store.engine(), entry.engine()));
    let (mut store, kept, lease) = match taken {
        Some(mut warm) => {
            warm.store.data_mut().begin_call(context);
            (warm.store, Some(warm.instance), warm.lease)
        }
        None => {
            let state = CallState::new(plugin.name.clone(), &plugin.policy, context, outbound);
            let mut store = Store::new(entry.engine(), state);
            store.limiter(|state| &mut state.limiter);
            (store, None, Lease::new(caller))
        }
    };
    if let Err(err) = store.set_fuel(limits.fuel) {
        let fault = Fault::Crashed {
            detail: format!("cannot set fuel: {err}"),
        };
        return (Err(fault), Used::default());
    }
    // Bounds what the host copies out of guest memory in one transfer (the result, or
    // an argument of a host call) before any check of ours could run.
    store.set_hostcall_fuel(transfer_budget(limits.result));
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
        if let Entry::Functions { functions, .. } = entry {
            // A WIT-derived plugin's tools are known without an instance.
            match &invocation {
                Invocation::ListTools => return Ok((Returned::Tools(plugin.tools.clone()), None)),
                Invocation::CallTool { name, .. } if !functions.iter().any(|f| f.tool == *name) => {
                    let unknown = CallError::UnknownTool(name.clone());
                    return Ok((Returned::Called(Err(unknown)), kept));
                }
                Invocation::CallTool { .. } => {}
            }
        }
        let instance = match kept {
            Some(instance) => instance,
            None => {
                let instance = instantiate(entry, &mut store).await?;
                instantiated = true;
                instance
            }
        };
        let returned = run_in(&instance, entry, &mut store, invocation).await?;
        Ok((returned, Some(instance)))
    };
    // The epoch callback stops code that is running; the timeout and the cancellation
    // token also stop a call that is blocked in the host (e.g. a WASI sleep).
    let outcome = tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(Some(Fault::Cancelled.into())),
        outcome = tokio::time::timeout_at(deadline.into(), run) => match outcome {
            // A plugin that saw the cancellation (`host.cancelled`) may still return a
            // result; nobody will read it, and the call ends the same way every time.
            Ok(Ok(_)) if cancel.is_cancelled() => Err(Some(Fault::Cancelled.into())),
            Ok(Ok(returned)) => Ok(returned),
            Ok(Err(err)) => Err(Some(err)),
            Err(_elapsed) => Err(None),
        },
    };
    let used = Used {
        fuel: limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0)),
        memory_peak: store.data().limiter.memory_used() as u64,
        instantiated,
    };
    let state = store.data();
    state.finish_output();
    let outcome = match outcome {
        Ok((returned, instance)) => {
            // Only an instance whose call returned is kept: one that faulted is never
            // entered again.
            if let (Some(pool), Some(instance)) = (warm, instance) {
                store.data_mut().end_call();
                pool.give_back(store, instance, lease);
            }
            Ok(returned)
        }
        Err(None) => Err(Fault::Deadline { limit: timeout }),
        Err(Some(err)) => Err(classify(err, state, limits, max_wasm_stack)),
    };
    (outcome, used)
}

/// A new instance of `entry` in `store`.
async fn instantiate(
    entry: &Entry,
    store: &mut Store<CallState>,
) -> wasmtime::Result<Instantiated> {
    Ok(match entry {
        Entry::Tools(pre) => Instantiated::Tools(pre.instantiate_async(store).await?),
        Entry::Functions { pre, .. } => {
            Instantiated::Functions(pre.instantiate_async(store).await?)
        }
    })
}

/// Runs `invocation` in `instance` (of `entry`).
async fn run_in(
    instance: &Instantiated,
    entry: &Entry,
    store: &mut Store<CallState>,
    invocation: Invocation,
) -> wasmtime::Result<Returned> {
    match (instance, entry, invocation) {
        (Instantiated::Tools(instance), _, Invocation::ListTools) => instance
            .capsule_plugin_tools()
            .call_list_tools(store)
            .await
            .map(Returned::Tools),
        (Instantiated::Tools(instance), _, Invocation::CallTool { name, arguments }) => instance
            .capsule_plugin_tools()
            .call_call_tool(store, &name, &arguments)
            .await
            .map(Returned::Called),
        (
            Instantiated::Functions(instance),
            Entry::Functions { functions, .. },
            Invocation::CallTool { name, arguments },
        ) => {
            let Some(function) = functions.iter().find(|f| f.tool == name) else {
                return Ok(Returned::Called(Err(CallError::UnknownTool(name))));
            };
            function
                .call(store, instance, &arguments)
                .await
                .map(Returned::Called)
        }
        _ => Err(wasmtime::format_err!(
            "the instance does not match the plugin's code (a host bug)"
        )),
    }
}

/// The slots a running call holds: one of its plugin's and one of the host's.
struct Admission {
    _plugin: OwnedSemaphorePermit,
    _global: OwnedSemaphorePermit,
}

/// Releases a place in the wait queue when dropped.
struct QueueSeat<'a>(&'a AtomicUsize);

impl Drop for QueueSeat<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Turns the error of a failed call into the fault it was, by type, never by message.
fn classify(err: wasmtime::Error, state: &CallState, limits: &Limits, stack: ByteSize) -> Fault {
    if let Some(fault) = err.downcast_ref::<Fault>() {
        return fault.clone();
    }
    if is_transfer_exhausted(&err) {
        return Fault::TransferTooLarge {
            limit: limits.result,
            budget: ByteSize(transfer_budget(limits.result) as u64),
        };
    }
    if let Some(detail) = pool_share_exceeded(&err) {
        if within_pool_share(&detail) {
            return Fault::Instances {
                limit: limits.instances,
                detail,
                most: PoolShare::PER_CALL.core_instances,
            };
        }
        let share = state.limiter.share();
        return Fault::PoolShare {
            detail,
            core_instances: share.core_instances,
            memories: share.memories,
            tables: share.tables,
        };
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
        Some(Trap::OutOfFuel) => Fault::OutOfFuel { limit: limits.fuel },
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

/// When a call that starts now must end. Config bounds keep timeouts far from overflowing;
/// a year from now stands in if one ever did.
fn deadline_after(timeout: std::time::Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(std::time::Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(now)
}

/// How long after its deadline a call is answered with [`Fault::Deadline`] when its thread
/// has not ended it by then ([`Runtime::call_measured`]).
pub const ANSWERED_LATE: std::time::Duration = std::time::Duration::from_millis(100);

/// Most content blocks one result may have.
pub const MAX_CONTENT_ITEMS: usize = 1024;

/// What one transfer from the plugin to the host may copy: twice the result limit, so a
/// result just under the limit fits with the per-item overhead wasmtime counts.
fn transfer_budget(result: ByteSize) -> usize {
    usize::try_from(result.bytes().saturating_mul(2)).unwrap_or(usize::MAX)
}

/// Whether wasmtime stopped a copy out of guest memory because the transfer budget
/// (`Store::set_hostcall_fuel`) ran out. Its error type is private to wasmtime 48, so
/// it is recognised by its `Debug` name; `tests/e2e/memory.rs` fails if that changes.
fn is_transfer_exhausted(err: &wasmtime::Error) -> bool {
    err.chain()
        .any(|cause| format!("{cause:?}") == "HostcallFuelExhausted")
}

/// wasmtime's message when an instantiation needs more core instances, memories or
/// tables than the limiter grants (it has no error type of its own).
fn pool_share_exceeded(err: &wasmtime::Error) -> Option<String> {
    err.chain()
        .map(|cause| cause.to_string())
        .find(|message| message.starts_with("resource limit exceeded:"))
        .map(|message| {
            message
                .trim_start_matches("resource limit exceeded: ")
                .to_string()
        })
}

/// Whether the count in wasmtime's message (`instance count too high at 4`) fits one
/// call's pool share: then the plugin's lower `limits.instances` stopped it, and raising
/// that limit would let the component run.
fn within_pool_share(detail: &str) -> bool {
    let share = PoolShare::PER_CALL;
    let Some((what, count)) = detail.split_once(" count too high at ") else {
        return false;
    };
    let Ok(count) = count.trim().parse::<u32>() else {
        return false;
    };
    let most = match what {
        "instance" => share.core_instances,
        "memory" => share.memories,
        "table" => share.tables,
        _ => return false,
    };
    count <= most
}

/// Checks a result against the result limits: total size and number of content blocks.
fn check_result(result: &CallResult, limit: ByteSize) -> Result<(), Fault> {
    if result.content.len() > MAX_CONTENT_ITEMS {
        return Err(Fault::TooManyItems {
            limit: MAX_CONTENT_ITEMS,
            actual: result.content.len(),
        });
    }
    let actual = result_size(result);
    if actual > limit.bytes() {
        return Err(Fault::ResultTooLarge {
            limit,
            actual: ByteSize(actual),
        });
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A call whose thread gets no CPU at all (here: the low-priority thread, held by a
    /// blocking task) is still answered soon after its deadline, with the deadline fault.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_whose_thread_gets_no_cpu_is_answered_soon_after_its_deadline() {
        let config =
            "[runtime]\nmax-concurrent-calls = 4\n[plugins.hostile.limits]\ntimeout = \"200ms\"\n";
        let (runtime, plugin, settings) = crate::testing::load_fixture("hostile", config).await;
        for _ in 0..settings.runtime.demote_after {
            plugin.conduct.record(true, settings.runtime.demote_after);
        }
        assert!(plugin.conduct.demoted());
        // The low-priority executor has one thread: this holds it for 10 s.
        let _held = runtime
            .demoted
            .spawn(async { std::thread::sleep(Duration::from_secs(10)) });
        let started = Instant::now();
        let failure = runtime
            .call(&plugin, "ok", "{}", CallContext::default())
            .await
            .expect_err("the call cannot run");
        let took = started.elapsed();
        assert_eq!(
            failure.to_string(),
            "exceeded its time limit of 200ms per call; raise limits.timeout for this plugin if the work is legitimate"
        );
        // 200 ms + ANSWERED_LATE, far from the 10 s the thread is held.
        assert!(took < Duration::from_secs(5), "answered after {took:?}");
    }

    /// Calls of a plugin whose calls are busy briefly start on the receiving thread; one
    /// that runs into a limit sends the next ones to the call threads
    /// ([`conduct::Conduct::quick`] says for how long).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_start_here_until_one_runs_long() {
        let (runtime, plugin, _) = crate::testing::load_fixture(
            "hostile",
            "[plugins.hostile.limits]\ntimeout = \"50ms\"\n",
        )
        .await;
        let call = |name: &'static str| {
            let (runtime, plugin) = (&runtime, &plugin);
            async move {
                let mut usage = Usage::default();
                let result = runtime
                    .call_measured(plugin, name, "{}", CallContext::default(), &mut usage)
                    .await
                    .map(|_| ())
                    .map_err(|failure| failure.to_string());
                (usage.started_here, result)
            }
        };
        assert_eq!(call("ok").await, (true, Ok(())), "a new plugin is quick");
        let (here, spun) = call("spin").await;
        assert!(here, "the plugin was still quick");
        assert_eq!(
            spun,
            Err("exceeded its time limit of 50ms per call; raise limits.timeout for this plugin if the work is legitimate".to_owned())
        );
        assert!(!plugin.conduct.quick(), "a call that ran into a limit");
        assert_eq!(
            call("ok").await,
            (false, Ok(())),
            "the call after a long one goes to the call threads"
        );
    }

    /// A crowded caller's calls run on the call threads from the start, even a quick
    /// plugin's on idle call threads.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_crowded_callers_calls_run_on_the_call_threads() {
        let (runtime, plugin, _) = crate::testing::load_fixture("hostile", "").await;
        let started_here = |crowded| {
            let (runtime, plugin) = (&runtime, &plugin);
            async move {
                let mut usage = Usage::default();
                let context = CallContext {
                    crowded,
                    ..CallContext::default()
                };
                runtime
                    .call_measured(plugin, "ok", "{}", context, &mut usage)
                    .await
                    .expect("the call succeeds");
                usage.started_here
            }
        };
        assert!(!started_here(true).await, "the caller is crowded");
        assert_eq!(runtime.executor.running(), 0, "the call has ended");
        assert!(started_here(false).await, "the same plugin, a caller alone");
    }

    /// While anything runs on the call threads, even a quick plugin's calls go there.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_join_a_call_running_on_the_call_threads() {
        let (runtime, plugin, _) = crate::testing::load_fixture("hostile", "").await;
        let started_here = || async {
            let mut usage = Usage::default();
            runtime
                .call_measured(&plugin, "ok", "{}", CallContext::default(), &mut usage)
                .await
                .expect("the call succeeds");
            usage.started_here
        };
        let held = runtime
            .executor
            .spawn(tokio::time::sleep(Duration::from_secs(10)));
        assert_eq!(runtime.executor.running(), 1);
        assert!(!started_here().await, "something runs on the call threads");
        held.abort();
        let _ = held.await;
        assert_eq!(
            runtime.executor.running(),
            0,
            "an aborted task is not running"
        );
        assert!(started_here().await, "the call threads are idle again");
    }

    #[test]
    fn counts_within_the_pool_share_are_the_plugins_own_limit() {
        assert!(within_pool_share("instance count too high at 4"));
        assert!(within_pool_share("instance count too high at 32"));
        assert!(within_pool_share("memory count too high at 2"));
        assert!(within_pool_share("table count too high at 4"));
        assert!(!within_pool_share("instance count too high at 33"));
        assert!(!within_pool_share("memory count too high at 3"));
        assert!(!within_pool_share("table count too high at 5"));
        assert!(!within_pool_share("tag count too high at 1"));
        assert!(!within_pool_share("something else"));
    }
}
