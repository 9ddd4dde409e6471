//! How many cores this process may use, found once. `std::thread::available_parallelism`
//! reads the cgroup's CPU quota from `/proc` and `/sys` on every call; a start asked it
//! five times (the async runtime, the call executor, loading, the HTTP threads), a few
//! percent of the time before `initialize` is answered.

use std::sync::OnceLock;

/// The cores this process may use (at least 1; 2 if the system cannot tell), as
/// `std::thread::available_parallelism` said the first time it was asked.
pub fn available() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}
