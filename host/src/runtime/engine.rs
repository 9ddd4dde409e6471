//! The one wasmtime `Engine`: component model, fuel, epoch interruption, pooling
//! allocator with copy-on-write memory images, memories laid out as [`MemoryLayout`] says.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Strategy,
};

use super::function_memo::FunctionMemo;
use super::memory_layout::MemoryLayout;
use crate::config::{Compiler, RuntimeSettings};

/// How often the epoch advances. A running call is checked against its deadline and
/// cancellation, and yields to other tasks, once per tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(2);

/// Builds the engine for `settings`: the optimizing compiler (Cranelift), or the
/// baseline compiler (Winch) with `runtime.compiler = "winch"`; its memories laid out as
/// [`MemoryLayout::for_this_process`] prefers, or exactly at the ceiling where the guarded
/// pool cannot be reserved. Returns the layout too (the quick tier uses the same).
pub fn build(settings: &RuntimeSettings) -> wasmtime::Result<(Engine, MemoryLayout)> {
    let instances =
        settings.max_concurrent_calls + RESERVED_INSTANCES + settings.max_warm_instances;
    let memories = u64::from(instances) * u64::from(PoolShare::PER_CALL.memories);
    let preferred = MemoryLayout::for_this_process(memories);
    let (engine, layout) = match build_laid_out(settings, instances, preferred) {
        Ok(engine) => (engine, preferred),
        Err(err) if preferred == MemoryLayout::Guarded => {
            tracing::warn!(
                "cannot reserve the guarded memory layout ({err:#}); memories are laid out at exactly runtime.memory-ceiling, and compiled code checks the bounds of every access"
            );
            let exact = MemoryLayout::Exact;
            (build_laid_out(settings, instances, exact)?, exact)
        }
        Err(err) => return Err(err),
    };
    tracing::debug!(?layout, "{}", layout.describe());
    Ok((engine, layout))
}

/// [`build`] with a pool of `instances` instances and memories laid out as `layout`.
fn build_laid_out(
    settings: &RuntimeSettings,
    instances: u32,
    layout: MemoryLayout,
) -> wasmtime::Result<Engine> {
    let mut config = sandbox(settings, layout)?;
    let ceiling = settings.memory_ceiling.bytes();

    // Every call may use exactly one slot's share of the pool (see `PoolShare`), and the
    // pool holds one share per call slot: a plugin that creates many memories or
    // instances fails on its own share and can never take another plugin's.
    // Warm instances (`isolation = "reuse"`) hold their share between calls, so the pool
    // has one more share for each (`instances` counts them).
    let share = PoolShare::PER_CALL;
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(instances)
        .total_stacks(instances)
        .total_core_instances(instances * share.core_instances)
        .total_memories(instances * share.memories)
        .total_tables(instances * share.tables)
        .max_memory_size(usize::try_from(ceiling).unwrap_or(usize::MAX))
        .max_memories_per_module(share.memories)
        .max_tables_per_module(share.tables)
        .table_elements(POOL_TABLE_ELEMENTS as usize)
        .max_core_instance_size(8 << 20)
        .max_component_instance_size(8 << 20)
        .max_unused_warm_slots(instances.min(32))
        // Reset dirty pages with memset instead of madvise where the kernel can tell which
        // pages are dirty (PAGEMAP_SCAN, Linux 6.7+): no page faults and no TLB shootdowns
        // on the next call. Elsewhere the first `KEEP_RESIDENT_WITHOUT_SCAN` bytes are
        // memset. `Enabled::Auto` decides by the same probe (one `PAGEMAP_SCAN` ioctl) as
        // `is_pagemap_scan_available`, so both follow what this process can actually do
        // (a kernel with the ioctl backported, or a sandbox that denies it).
        .pagemap_scan(Enabled::Auto)
        .linear_memory_keep_resident(if PoolingAllocationConfig::is_pagemap_scan_available() {
            KEEP_RESIDENT
        } else {
            KEEP_RESIDENT_WITHOUT_SCAN
        })
        .table_keep_resident(64 << 10)
        // Fiber stacks are zeroed on release: the top `STACK_KEEP_RESIDENT` bytes in place,
        // the rest decommitted. Without this a stack keeps every page any call ever
        // touched (a deep recursion leaves ~0.5 MiB resident in its slot for good).
        .async_stack_keep_resident(STACK_KEEP_RESIDENT)
        .decommit_batch_size(16);
    config.async_stack_zeroing(true);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    if settings.compiler == Compiler::Winch {
        config.strategy(Strategy::Winch);
    }
    Engine::new(&config)
}

/// Builds the engine of the quick tier ([`super::tier`]): the baseline compiler (Winch)
/// under the same sandbox settings, with instances allocated on demand instead of from a
/// pool of their own (its plugins serve only until their optimized code is ready, and a
/// second pool would double the address space the host reserves). Call slots still bound
/// its calls, and the limiter the memories, tables and instances of each.
pub fn build_quick(settings: &RuntimeSettings, layout: MemoryLayout) -> wasmtime::Result<Engine> {
    let mut config = sandbox(settings, layout)?;
    config.strategy(Strategy::Winch);
    Engine::new(&config)
}

/// What every engine of the host shares: component model, fuel, epoch interruption, the
/// stack limit, linear memories laid out as `layout` says, and the process's
/// [`FunctionMemo`].
fn sandbox(settings: &RuntimeSettings, layout: MemoryLayout) -> wasmtime::Result<Config> {
    let mut config = Config::new();
    // Functions compiled once are reused by every later compilation of the process: all
    // of Cranelift's, and under Winch the trampolines it has Cranelift compile
    // (vendor/README.md).
    config.enable_incremental_compilation(FunctionMemo::shared())?;
    config.wasm_component_model(true);
    config.consume_fuel(true);
    config.epoch_interruption(true);
    let stack = usize::try_from(settings.max_wasm_stack.bytes()).unwrap_or(usize::MAX);
    config.max_wasm_stack(stack);
    // Host functions run on the same fiber stack: give them room beyond the wasm limit.
    config.async_stack_size(stack + (1 << 20));

    // No memory grows past the ceiling (the pool's `max_memory_size` and the limiter);
    // the layout decides only the address space around it, and with it the bounds checks.
    layout.apply(&mut config, settings.memory_ceiling.bytes());
    config.memory_init_cow(true);
    Ok(config)
}

/// What one call may take from the instance pool. The pool holds one share per call slot,
/// so these are also the per-call caps the limiter enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolShare {
    /// Core WebAssembly instances (a component holds several).
    pub core_instances: u32,
    /// Linear memories.
    pub memories: u32,
    /// Tables.
    pub tables: u32,
}

impl PoolShare {
    /// The share of every call. Measured on the examples (2026-12-03): every component
    /// defines one linear memory and two tables; Rust components instantiate 3 core
    /// modules, JavaScript 4, C 5 and componentize-py 14. Core instances cost the pool
    /// only a count, so their share matches the default `limits.instances`; memories and
    /// tables reserve address space, so theirs stay tight.
    pub const PER_CALL: PoolShare = PoolShare {
        core_instances: 32,
        memories: 2,
        tables: 4,
    };
}

/// Elements of each table slot in the pool: no plugin's `limits.table-elements` may exceed it.
pub const POOL_TABLE_ELEMENTS: u32 = 200_000;

/// Bytes of each linear memory reset in place (not decommitted) between calls; dirty
/// pages beyond it are decommitted and faulted back in by the next call. Every memory slot
/// the pool ever used keeps up to this much resident, so it bounds the pool's idle
/// footprint: `slots × KEEP_RESIDENT`. 1 MiB holds the per-call working set of the big
/// guests: a componentize-py call dirties ~1 MiB in ~300 runs of pages, and with wasmtime's
/// scan resuming past 32 runs (`vendor/README.md`) it went from 219 faults and 1.95 ms of
/// CPU per call at 256 KiB to 4 faults and 1.32–1.39 ms (BENCHMARKS.md, "Big guests"); 4
/// and 16 MiB gained nothing more. The echo fixture dirties 12 KiB. With 2 MiB and no
/// stack zeroing, idle slots held 50 MiB after 40 s of the soak (BENCHMARKS.md, soak).
const KEEP_RESIDENT: usize = 1 << 20;

/// [`KEEP_RESIDENT`] where `PAGEMAP_SCAN` is unavailable (Linux before 6.7), where wasmtime
/// cannot tell dirty pages apart and resets the first this-many bytes on every call: 1 MiB
/// there would cost every call a 1 MiB copy.
const KEEP_RESIDENT_WITHOUT_SCAN: usize = 256 << 10;

/// Bytes at the top of each fiber stack zeroed in place (not decommitted) between calls;
/// the rest is decommitted. Without zeroing, 40 of the soak's stacks held 516 KiB each.
const STACK_KEEP_RESIDENT: usize = 64 << 10;

/// Instance slots kept beyond `max_concurrent_calls` for loading plugins (`list-tools`).
pub const RESERVED_INSTANCES: u32 = 4;

/// The thread that advances the epoch of the host's engines every [`EPOCH_TICK`]: the
/// main engine's and, once it starts, the quick tier's (one thread for both, so a second
/// engine adds no wake-ups). Stops when dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    engines: Arc<Mutex<Vec<Engine>>>,
}

impl EpochTicker {
    /// Starts ticking `engine`.
    pub fn start(engine: &Engine) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let engines = Arc::new(Mutex::new(vec![engine.clone()]));
        let (flag, ticked) = (stop.clone(), engines.clone());
        thread::Builder::new()
            .name("capsule-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    thread::sleep(EPOCH_TICK);
                    for engine in ticked.lock().unwrap_or_else(PoisonError::into_inner).iter() {
                        engine.increment_epoch();
                    }
                }
            })?;
        Ok(Self { stop, engines })
    }

    /// Ticks `engine` too, from the next tick on.
    pub fn add(&self, engine: &Engine) {
        self.engines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(engine.clone());
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
