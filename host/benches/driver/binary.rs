//! The `capsule` executable a benchmark measures: the one users get.
//!
//! The executable cargo builds for a benchmark (`CARGO_BIN_EXE_capsule`) is linked with the
//! features the dev-dependencies turn on too (reqwest's aws-lc-rs, rmcp's client, tokio's
//! test utilities): 3.4 MB and ~4,500 relocations more than `cargo build --release`'s.
//! So a benchmark builds and measures the release executable;
//! `CAPSULE_BENCH_BINARY=/path/to/capsule` measures another one instead. Both builds
//! write `target/release/capsule`, so a bench run after either relinks it (a minute or
//! two; the dependencies of both are kept).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The executable to measure as "this build" (built once per benchmark process).
pub fn capsule_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(binary) = std::env::var_os("CAPSULE_BENCH_BINARY") {
            return PathBuf::from(binary);
        }
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["build", "--release", "-p", "capsule", "--bin", "capsule"])
            .current_dir(&workspace)
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build --release -p capsule failed");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| workspace.join("target"), PathBuf::from);
        target.join("release/capsule")
    })
}
