//! Where each linear memory lives in the host's address space, which decides whether the
//! compiled code checks the bounds of every load and store.
//!
//! A 32-bit memory addresses at most 4 GiB plus a static offset. When each memory slot
//! reserves 4 GiB of address space and a guard region after it, any access outside the
//! memory lands on pages that are not mapped readable or writable, so the hardware traps
//! it and the compilers (Cranelift and Winch) emit no bounds check; wasmtime's own
//! default is this layout. An offset larger than the guard region is still checked in the
//! code. When each slot reserves exactly `runtime.memory-ceiling`, every access carries an
//! explicit check. Measured (BENCHMARKS.md, "Memories in guarded slots"): the guarded
//! layout runs guest-heavy calls up to a fifth faster and compiles a little faster.
//!
//! The guarded layout costs address space only (`PROT_NONE` pages count toward no memory
//! limit), but a process with an address-space limit (`RLIMIT_AS`, `ulimit -v`) may not be
//! able to reserve it, and a very large pool would take a sizeable part of the 128 TiB of a
//! process. So the host takes the guarded layout when the pool's reservation stays within
//! [`GUARDED_BUDGET`] and within half of the process's address-space limit, if it has one,
//! and the exact layout otherwise (or when the guarded pool cannot be reserved).

use wasmtime::Config;

/// The address space each memory slot reserves in the guarded layout: all a 32-bit
/// memory can address.
const GUARDED_RESERVATION: u64 = 4 << 30;
/// The guard region after each guarded slot (wasmtime's default): static offsets up to
/// this need no check either.
const GUARDED_GUARD: u64 = 32 << 20;
/// The guard region after each slot in the exact layout.
const EXACT_GUARD: u64 = 64 << 10;
/// The most address space the guarded layout may reserve for the instance pool: 8 TiB,
/// room for about a thousand concurrent calls (two memories each) in a 128 TiB process.
pub const GUARDED_BUDGET: u64 = 8 << 40;

/// How the host lays out linear memories (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryLayout {
    /// 4 GiB and a 32 MiB guard region per memory: no bounds checks in compiled code.
    Guarded,
    /// Exactly the memory ceiling and a 64 KiB guard region per memory: a check on every
    /// access.
    Exact,
}

impl MemoryLayout {
    /// The layout for a pool of `memories` linear memories in a process whose
    /// address-space limit is `address_space_limit` (`None`: unlimited): guarded when its
    /// reservation fits in [`GUARDED_BUDGET`] and in half of the limit.
    pub fn preferred(memories: u64, address_space_limit: Option<u64>) -> Self {
        let Some(reservation) = memories.checked_mul(GUARDED_RESERVATION + GUARDED_GUARD) else {
            return Self::Exact;
        };
        // Under a limit, half of it stays for everything else the process maps.
        let allowed =
            address_space_limit.map_or(GUARDED_BUDGET, |limit| GUARDED_BUDGET.min(limit / 2));
        if reservation <= allowed {
            Self::Guarded
        } else {
            Self::Exact
        }
    }

    /// [`MemoryLayout::preferred`] for this process (its `RLIMIT_AS`).
    pub fn for_this_process(memories: u64) -> Self {
        let limit = rustix::process::getrlimit(rustix::process::Resource::As).current;
        Self::preferred(memories, limit)
    }

    /// Sets `config`'s memory reservation and guard for this layout, with memories of at
    /// most `ceiling` bytes that never move and never grow past their reservation.
    pub fn apply(self, config: &mut Config, ceiling: u64) {
        match self {
            Self::Guarded => {
                config.memory_reservation(GUARDED_RESERVATION.max(ceiling));
                config.memory_guard_size(GUARDED_GUARD);
            }
            Self::Exact => {
                config.memory_reservation(ceiling);
                config.memory_guard_size(EXACT_GUARD);
            }
        }
        config.memory_reservation_for_growth(0);
        config.memory_may_move(false);
    }

    /// What the layout means for compiled code, for the log.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Guarded => {
                "memories in 4 GiB slots with guard regions: compiled code needs no bounds checks"
            }
            Self::Exact => {
                "memories in slots of exactly runtime.memory-ceiling: compiled code checks the bounds of every access"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guarded_without_an_address_space_limit_within_the_budget() {
        // The defaults: (64 calls + 4 reserved) × 2 memories.
        assert_eq!(MemoryLayout::preferred(136, None), MemoryLayout::Guarded);
        let most = GUARDED_BUDGET / (GUARDED_RESERVATION + GUARDED_GUARD);
        assert_eq!(MemoryLayout::preferred(most, None), MemoryLayout::Guarded);
        assert_eq!(MemoryLayout::preferred(most + 1, None), MemoryLayout::Exact);
        assert_eq!(MemoryLayout::preferred(u64::MAX, None), MemoryLayout::Exact);
    }

    #[test]
    fn guarded_under_an_address_space_limit_only_within_half_of_it() {
        let slot = GUARDED_RESERVATION + GUARDED_GUARD;
        assert_eq!(
            MemoryLayout::preferred(136, Some(u64::MAX)),
            MemoryLayout::Guarded
        );
        assert_eq!(
            MemoryLayout::preferred(136, Some(136 * slot * 2)),
            MemoryLayout::Guarded
        );
        assert_eq!(
            MemoryLayout::preferred(136, Some(136 * slot * 2 - 2)),
            MemoryLayout::Exact
        );
        // `ulimit -v 8000000` (~8 GB): exact.
        assert_eq!(
            MemoryLayout::preferred(136, Some(8_000_000 * 1024)),
            MemoryLayout::Exact
        );
    }
}
