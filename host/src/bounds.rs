//! The allowed range of every number in the configuration. Each is checked when the config
//! (or a sidecar policy) is read, so an absurd value — a timeout of years, a size that
//! overflows once multiplied, more table elements than a pool slot holds — is an error
//! naming the key and the range, never a panic or a wrapped value at call time.

use std::fmt::Display;
use std::time::Duration;

use crate::runtime::engine::PoolShare;
use crate::units::{ByteSize, format_duration};

/// `runtime.max-concurrent-calls`.
pub const CONCURRENT_CALLS: (u32, u32) = (1, 10_000);
/// `runtime.max-queued-calls` (0: a call that finds no free slot fails at once).
pub const QUEUED_CALLS: (u32, u32) = (0, 1_000_000);
/// `runtime.demote-after`: limit faults among the last 16 calls (0: never demote).
pub const DEMOTE_AFTER: (u32, u32) = (0, crate::runtime::conduct::WINDOW);
/// `runtime.memory-ceiling`.
pub const MEMORY_CEILING: (ByteSize, ByteSize) = (ByteSize::mib(1), ByteSize::mib(4096));
/// `runtime.max-wasm-stack`.
pub const WASM_STACK: (ByteSize, ByteSize) = (ByteSize::kib(64), ByteSize::mib(64));
/// The most virtual address space the instance pool may reserve:
/// `(max-concurrent-calls + 4) × 2 × memory-ceiling`.
pub const MAX_RESERVATION: ByteSize = ByteSize::mib(1 << 20);

/// `limits.fuel`: about ten thousand seconds of straight-line code.
pub const FUEL: (u64, u64) = (1, 10_000_000_000_000);
/// `limits.timeout`.
pub const TIMEOUT: (Duration, Duration) = (Duration::from_millis(1), Duration::from_secs(86_400));
/// `limits.memory` (the upper bound is `runtime.memory-ceiling`).
pub const MIN_MEMORY: ByteSize = ByteSize::kib(64);
/// `limits.instances`: at most one call's share of the pool.
pub const INSTANCES: (u32, u32) = (1, PoolShare::PER_CALL.core_instances);
/// `limits.result`.
pub const RESULT: (ByteSize, ByteSize) = (ByteSize(1024), ByteSize::mib(256));
/// `limits.log-output` (0 drops all plugin output).
pub const LOG_OUTPUT: (ByteSize, ByteSize) = (ByteSize(0), ByteSize::mib(64));
/// `net.timeout`.
pub const NET_TIMEOUT: (Duration, Duration) =
    (Duration::from_millis(1), Duration::from_secs(3_600));
/// `net.max-response`.
pub const NET_RESPONSE: (ByteSize, ByteSize) = (ByteSize(0), ByteSize::mib(1024));
/// `reuse-calls`: calls one reused instance serves.
pub const REUSE_CALLS: (u32, u32) = (1, 1_000_000);
/// `reuse-idle`: how long an unused reused instance is kept.
pub const REUSE_IDLE: (Duration, Duration) =
    (Duration::from_millis(10), Duration::from_secs(86_400));
/// `runtime.max-warm-instances`: reused instances kept over all plugins.
pub const WARM_INSTANCES: (u32, u32) = (0, 1024);
/// `auth.jwt.leeway`: the clock skew allowed on `exp`, `nbf`, `iat`.
pub const JWT_LEEWAY: (Duration, Duration) = (Duration::ZERO, Duration::from_secs(60));

/// `Err("KEY = VALUE is out of range; allowed: MIN to MAX")` unless `min <= value <= max`.
pub fn check<T: PartialOrd + Display>(
    key: &str,
    value: T,
    (min, max): (T, T),
) -> Result<(), String> {
    if value < min || value > max {
        return Err(format!(
            "{key} = {value} is out of range; allowed: {min} to {max}"
        ));
    }
    Ok(())
}

/// [`check`] for durations, written the way the config accepts them (`"10s"`).
pub fn check_duration(
    key: &str,
    value: Duration,
    (min, max): (Duration, Duration),
) -> Result<(), String> {
    if value < min || value > max {
        return Err(format!(
            "{key} = {} is out of range; allowed: {} to {}",
            format_duration(value),
            format_duration(min),
            format_duration(max)
        ));
    }
    Ok(())
}

/// The virtual address space the instance pool reserves for `slots` concurrent calls
/// (plus `reserved`: the load slots and the warm instances) of `ceiling` each, two memories per slot; an error past
/// [`MAX_RESERVATION`] or on overflow.
pub fn check_reservation(slots: u32, reserved: u32, ceiling: ByteSize) -> Result<(), String> {
    let total = u64::from(slots)
        .checked_add(u64::from(reserved))
        .and_then(|n| n.checked_mul(2))
        .and_then(|n| n.checked_mul(ceiling.bytes()));
    match total {
        Some(bytes) if bytes <= MAX_RESERVATION.bytes() => Ok(()),
        _ => Err(format!(
            "(max-concurrent-calls {slots} + {reserved}) × 2 × memory-ceiling {ceiling} reserves more than {MAX_RESERVATION} of virtual memory; lower runtime.max-concurrent-calls, runtime.max-warm-instances or runtime.memory-ceiling"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_outside_the_range_name_the_key_and_the_range() {
        assert_eq!(
            check("runtime.max-concurrent-calls", 5, CONCURRENT_CALLS),
            Ok(())
        );
        assert_eq!(
            check("runtime.max-concurrent-calls", 0, CONCURRENT_CALLS).unwrap_err(),
            "runtime.max-concurrent-calls = 0 is out of range; allowed: 1 to 10000"
        );
        assert_eq!(
            check("limits.result", ByteSize::mib(512), RESULT).unwrap_err(),
            "limits.result = 512 MiB is out of range; allowed: 1 KiB to 256 MiB"
        );
        assert_eq!(
            check_duration("limits.timeout", Duration::from_secs(86_401), TIMEOUT).unwrap_err(),
            "limits.timeout = 86401s is out of range; allowed: 1ms to 86400s"
        );
    }

    #[test]
    fn the_pool_reservation_is_bounded_and_never_overflows() {
        assert_eq!(check_reservation(64, 4, ByteSize::mib(512)), Ok(()));
        assert_eq!(
            check_reservation(10_000, 4, ByteSize::mib(4096)).unwrap_err(),
            "(max-concurrent-calls 10000 + 4) × 2 × memory-ceiling 4 GiB reserves more than 1024 GiB of virtual memory; lower runtime.max-concurrent-calls, runtime.max-warm-instances or runtime.memory-ceiling"
        );
        assert!(check_reservation(u32::MAX, 4, ByteSize(u64::MAX)).is_err());
    }
}
