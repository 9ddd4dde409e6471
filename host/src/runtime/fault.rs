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
    #[error(
        "exceeded its table limit of {limit} elements; raise limits.table-elements for this plugin if the work is legitimate"
    )]
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
    /// The plugin tried to pass more data to the host in one transfer (its result, or an
    /// argument of a host call) than the result budget allows. Stopped while the data was
    /// being copied, so the host never holds more than the budget.
    #[error(
        "tried to pass more than {budget} to the host in one transfer (its result or a host-call argument), over the result size limit of {limit}; return less data or raise limits.result"
    )]
    TransferTooLarge {
        /// The result size limit.
        limit: ByteSize,
        /// What one transfer may copy: twice the limit, for per-item overhead.
        budget: ByteSize,
    },
    /// The result had more content blocks than any client should be sent.
    #[error(
        "returned {actual} content blocks, over the limit of {limit} per result; return fewer, larger blocks"
    )]
    TooManyItems {
        /// Most content blocks per result.
        limit: usize,
        /// How many the plugin returned.
        actual: usize,
    },
    /// The call waited for a free slot until its time limit ran out.
    #[error(
        "waited its whole time limit of {} for a free call slot (runtime.max-calls-per-plugin / max-concurrent-calls were all busy); retry later, or raise them if the host has room",
        format_duration(*limit)
    )]
    QueueTimeout {
        /// The deadline.
        limit: Duration,
    },
    /// The component creates more core instances, memories or tables than the plugin's
    /// `limits.instances` allows, though no more than one call's share of the pool.
    #[error(
        "exceeded its instance limit of {limit} ({detail}); raise limits.instances for this plugin (up to {most}) if the component needs them"
    )]
    Instances {
        /// The plugin's `limits.instances`.
        limit: u32,
        /// wasmtime's message, naming what ran out.
        detail: String,
        /// The most `limits.instances` may be: one call's share of core instances.
        most: u32,
    },
    /// The component creates more core instances, memories or tables than one call's
    /// share of the instance pool.
    #[error(
        "needs more than one call's share of the instance pool ({detail}; each call may use {core_instances} core instances, {memories} linear memories and {tables} tables); such a component cannot be served"
    )]
    PoolShare {
        /// wasmtime's message, naming what ran out.
        detail: String,
        /// Core instances per call.
        core_instances: u32,
        /// Linear memories per call.
        memories: u32,
        /// Tables per call.
        tables: u32,
    },
    /// The plugin trapped: a panic, `unreachable`, an out-of-bounds access, ….
    #[error("crashed: {detail}")]
    Crashed {
        /// The trap and, when the plugin printed one, its last stderr lines (e.g. the panic message).
        detail: String,
    },
    /// The client cancelled the call.
    #[error("was cancelled by the client")]
    Cancelled,
    /// The plugin was listed from its cached tool list, but its code could not be loaded
    /// when it was first needed (the host's log has the whole message).
    #[error(
        "could not be loaded: {detail}; its tools are withdrawn (run `capsule check` to see why)"
    )]
    Unloadable {
        /// Why, naming the file.
        detail: String,
    },
}

impl Fault {
    /// Every value [`Fault::kind`] returns, for metrics labels known in advance.
    pub const KINDS: &'static [&'static str] = &[
        "fuel",
        "deadline",
        "memory",
        "table",
        "stack",
        "result-size",
        "instances",
        "pool-share",
        "crash",
        "cancelled",
        "unloadable",
    ];

    /// A short stable name for logs and metrics (`fuel`, `deadline`, `memory`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::OutOfFuel { .. } => "fuel",
            Fault::Deadline { .. } => "deadline",
            Fault::Memory { .. } => "memory",
            Fault::Table { .. } => "table",
            Fault::StackOverflow { .. } => "stack",
            Fault::ResultTooLarge { .. }
            | Fault::TransferTooLarge { .. }
            | Fault::TooManyItems { .. } => "result-size",
            Fault::QueueTimeout { .. } => "deadline",
            Fault::Instances { .. } => "instances",
            Fault::PoolShare { .. } => "pool-share",
            Fault::Crashed { .. } => "crash",
            Fault::Cancelled => "cancelled",
            Fault::Unloadable { .. } => "unloadable",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One of every fault, with sample values, as the client sees it.
    fn every_fault() -> Vec<Fault> {
        vec![
            Fault::OutOfFuel { limit: 50_000_000 },
            Fault::Deadline {
                limit: Duration::from_millis(750),
            },
            Fault::Memory {
                limit: ByteSize::mib(32),
                requested: ByteSize::mib(40),
            },
            Fault::Table { limit: 100_000 },
            Fault::StackOverflow {
                limit: ByteSize::kib(512),
            },
            Fault::ResultTooLarge {
                limit: ByteSize::mib(4),
                actual: ByteSize::mib(5),
            },
            Fault::TransferTooLarge {
                limit: ByteSize::mib(4),
                budget: ByteSize::mib(8),
            },
            Fault::TooManyItems {
                limit: 1024,
                actual: 2000,
            },
            Fault::QueueTimeout {
                limit: Duration::from_secs(10),
            },
            Fault::Instances {
                limit: 3,
                detail: "instance count too high at 4".into(),
                most: 32,
            },
            Fault::PoolShare {
                detail: "memory count too high at 3".into(),
                core_instances: 32,
                memories: 2,
                tables: 4,
            },
            Fault::Crashed {
                detail: "wasm trap: wasm `unreachable` instruction executed".into(),
            },
            Fault::Cancelled,
            Fault::Unloadable {
                detail: "/plugins/p.wasm: cannot be linked: component imports instance `wasi:cli/environment@0.2.9`, but a matching implementation was not found in the linker".into(),
            },
        ]
    }

    #[test]
    fn every_kind_is_listed_in_kinds() {
        for fault in every_fault() {
            assert!(
                Fault::KINDS.contains(&fault.kind()),
                "add `{}` to Fault::KINDS",
                fault.kind()
            );
        }
    }

    /// The exact text of every fault message is reviewed in `tests/e2e/golden/faults.txt`.
    /// Run with `CAPSULE_BLESS=1` to rewrite the file after an intended change.
    #[test]
    fn fault_messages_match_the_golden_file() {
        let rendered: String = every_fault()
            .iter()
            .map(|fault| format!("[{}] plugin `p` {fault}\n", fault.kind()))
            .collect();
        let golden =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/golden/faults.txt");
        if std::env::var_os("CAPSULE_BLESS").is_some() {
            std::fs::write(&golden, &rendered).expect("write the golden file");
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_default();
        assert_eq!(
            rendered,
            expected,
            "fault messages changed; review and run with CAPSULE_BLESS=1 to update {}",
            golden.display()
        );
    }
}
