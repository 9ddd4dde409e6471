//! Sandbox faults: a call stopped by the host because it broke a limit or crashed.
//! Each names the limit and its value so the model and the operator know what happened.

use std::time::Duration;

use crate::units::{ByteSize, format_duration};

/// Why the sandbox stopped a call. Shown to the client as an `isError` result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    /// The call executed more instructions than its fuel allowed.
    #[error(
        "ran out of fuel (limit: {limit} units per call); raise limits.fuel for this plugin if the work is legitimate"
    )]
    OutOfFuel {
        /// The fuel the call started with.
        limit: u64,
    },
    /// The call ran past its wall-clock deadline.
    #[error(
        "exceeded its time limit of {} per call; raise limits.timeout for this plugin if the work is legitimate",
        format_duration(*limit)
    )]
    Deadline {
        /// The deadline.
        limit: Duration,
    },
    /// A linear memory tried to grow beyond its limit.
    #[error(
        "exceeded its memory limit of {limit} (it asked for {requested}); raise limits.memory for this plugin if the work is legitimate"
    )]
    Memory {
        /// The memory limit.
        limit: ByteSize,
        /// The size the memory tried to grow to.
        requested: ByteSize,
    },
    /// A table tried to grow beyond its limit.
    #[error("exceeded its table limit of {limit} elements (limits.table-elements)")]
    Table {
        /// The table element limit.
        limit: u32,
    },
    /// The call overflowed the WebAssembly stack (usually unbounded recursion).
    #[error(
        "overflowed its stack (limit: {limit}); unbounded recursion? raise runtime.max-wasm-stack only if the recursion is legitimate"
    )]
    StackOverflow {
        /// The engine's stack limit.
        limit: ByteSize,
    },
    /// The result was larger than allowed.
    #[error(
        "returned a result of {actual}, over the result size limit of {limit}; return less data or raise limits.result"
    )]
    ResultTooLarge {
        /// The result size limit.
        limit: ByteSize,
        /// The size the plugin returned.
        actual: ByteSize,
    },
    /// The plugin trapped: a panic, `unreachable`, an out-of-bounds access, ….
    #[error("crashed: {detail}")]
    Crashed {
        /// The trap and, when the plugin printed one, its last stderr lines (e.g. the panic message).
        detail: String,
    },
    /// The sandbox could not be set up for the call (a grant failed, e.g. a mounted
    /// folder no longer exists).
    #[error("could not be started: {detail}; check the plugin's policy (`capsule check`)")]
    Setup {
        /// What failed.
        detail: String,
    },
    /// The client cancelled the call.
    #[error("was cancelled by the client")]
    Cancelled,
}

impl Fault {
    /// A short stable name for logs and metrics (`fuel`, `deadline`, `memory`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::OutOfFuel { .. } => "fuel",
            Fault::Deadline { .. } => "deadline",
            Fault::Memory { .. } => "memory",
            Fault::Table { .. } => "table",
            Fault::StackOverflow { .. } => "stack",
            Fault::ResultTooLarge { .. } => "result-size",
            Fault::Crashed { .. } => "crash",
            Fault::Setup { .. } => "setup",
            Fault::Cancelled => "cancelled",
        }
    }
}
