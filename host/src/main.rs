//! The `capsule` command: a thin shell over the library. Exit codes: 0 success,
//! 1 a tool returned an error or `check` found problems, 2 the command could not run.
#![forbid(unsafe_code)]

mod cli;
mod cli_distribution;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of the C library's allocator. Per request the HTTP transport makes
/// many small, short-lived allocations on several threads (hyper's buffers, rmcp's
/// per-request service and tasks, JSON values); glibc's malloc spent ~10% of the server's
/// CPU on them (`malloc_consolidate` from aligned task allocations), and musl's, in the
/// static container binary, is slower still. BENCHMARKS.md has the side-by-side numbers.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    // One worker per core, counted once for the whole process (`TOKIO_WORKER_THREADS`,
    // tokio's own setting, still decides when set).
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        builder.worker_threads(capsule::cores::available());
    }
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(cli::run(args));
    // Plugins still compiling in the background (`capsule serve` that stops early) must not
    // hold the exit; an interrupted compile leaves at most a temporary file in the cache.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        // The reader of our output went away (`capsule list | head`): not an error.
        Err(err)
            if err
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
