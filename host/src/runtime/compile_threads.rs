//! Compiles on threads started for the compile and ended after it.
//!
//! wasmtime compiles a component's functions in parallel on the current rayon pool. On
//! the process-wide pool, whose threads live forever, the allocator keeps the memory each
//! of them freed (mimalloc hands a page back only when its owning thread allocates or
//! exits again, and an idle pool thread does neither): after a start that compiled the
//! examples, ~0.65 GB stayed resident for good against ~40 MB after a cached start. A
//! pool of its own per compile ends its threads when the compile is done, and much of
//! their memory goes back with them: 0.4–0.5 GB stayed (BENCHMARKS.md, "Memory after a
//! compiling start"; what stays is mostly memory the surviving threads still use or
//! share pages with).

/// Runs `compile` (which uses rayon for its parallel work) on a rayon pool of its own,
/// one thread per core, ended when it returns; on the caller's pool if none can start.
pub fn run<T: Send>(compile: impl FnOnce() -> T + Send) -> T {
    match rayon::ThreadPoolBuilder::new()
        .num_threads(crate::cores::available())
        .thread_name(|i| format!("capsule-compile-{i}"))
        .build()
    {
        Ok(pool) => pool.install(compile),
        Err(err) => {
            tracing::debug!(
                "compiling on the shared threads: cannot start a pool of its own: {err}"
            );
            compile()
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_work_runs_on_a_pool_of_its_own_with_a_thread_per_core() {
        let (name, threads) = super::run(|| {
            (
                std::thread::current().name().map(str::to_owned),
                rayon::current_num_threads(),
            )
        });
        let name = name.expect("a named thread");
        assert!(name.starts_with("capsule-compile-"), "ran on {name}");
        assert_eq!(
            threads,
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
    }
}
