//! `cargo xtask test`: every check CI runs, in the order that fails fastest.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::plugins::{self, WASM_TARGET};
use crate::{clients, cmd, conformance, container, guests, python, schemas};

/// The Python MCP SDK the client tests use (2.x speaks `server/discover` first).
pub const PYTHON_MCP: &str = "mcp>=2.3,<3";
/// The offline Kubernetes schema check of `deploy/k8s` (ships the API schemas).
pub const KUBERNETES_VALIDATE: &str = "kubernetes-validate==1.37.0";

/// How long CI runs the soak benchmark (`CAPSULE_SOAK_SECS`; a full run is 600).
const SOAK_SECS: &str = "20";
/// How long CI runs the HTTP soak benchmark (a full run is 600).
const HTTP_SOAK_SECS: &str = "60";

/// The guest SDK: its own workspace, tested on the build machine's target.
const SDK: &str = "guest-sdk/rust/Cargo.toml";
/// The plugins workspace: built for wasm, its example plugins' logic tested natively.
const PLUGINS: &str = "plugins/Cargo.toml";
/// The C guests' componentizer: its own workspace, built into `target/c-toolchain`.
const C_COMPONENTIZE: &str = "guest-sdk/c/componentize/Cargo.toml";
/// Plugins whose unit tests run natively (fixtures are wasm-only on purpose).
const NATIVE_TESTED_PLUGINS: &[&str] = &["text", "json", "hash", "files", "fetch"];

/// Builds the plugins, lints every workspace, runs the Rust and Python tests.
pub fn all(root: &Path) -> Result<()> {
    let built = plugins::build(root)?;
    let target_dir = root.join("target").display().to_string();
    let other = |manifest: &'static str, args: &[&'static str]| -> Vec<String> {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let at = all.iter().position(|a| a == "--").unwrap_or(all.len());
        let extra = ["--manifest-path", manifest, "--target-dir", &target_dir];
        all.splice(at..at, extra.iter().map(|a| a.to_string()));
        all
    };
    let cargo = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cmd::cargo(root, &args)
    };

    cmd::cargo(root, &["fmt", "--all", "--check"])?;
    for manifest in [SDK, PLUGINS, C_COMPONENTIZE] {
        cmd::cargo(
            root,
            &["fmt", "--all", "--check", "--manifest-path", manifest],
        )?;
    }
    cmd::cargo(
        root,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    cargo(other(
        SDK,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    ))?;
    cargo(other(
        PLUGINS,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--target",
            WASM_TARGET,
            "--",
            "-D",
            "warnings",
        ],
    ))?;

    let c_toolchain = root.join("target/c-toolchain").display().to_string();
    cmd::cargo(
        root,
        &[
            "clippy",
            "--locked",
            "--all-targets",
            "--manifest-path",
            C_COMPONENTIZE,
            "--target-dir",
            &c_toolchain,
            "--",
            "-D",
            "warnings",
        ],
    )?;

    oci_registry(root)?;
    cmd::cargo(root, &["test", "--workspace"])?;
    // The soak benchmark's short form: the same checks (no good call lost beside every
    // hostile fixture, memory flat) for 20 s instead of 10 minutes.
    soak(root, "soak", SOAK_SECS)?;
    // The HTTP soak's short form (issue #18): 64 clients, good calls beside a runaway loop,
    // a memory bomb, a result flood and a panic: no call lost or hung, the good calls' p99
    // within 4x of their unloaded p99 (3x in the 10-minute run), memory flat. Its plots
    // land in target/soak-http/.
    soak(root, "soak_http", HTTP_SOAK_SECS)?;
    // `capsule new` in every language: real release + LTO, componentize-py/-js and clang
    // builds, plus each project's own test command. Alone and one at a time, so they
    // neither slow the end-to-end tests' timing-sensitive cases nor each other.
    cmd::cargo(
        root,
        &[
            "test",
            "-p",
            "capsule",
            "--test",
            "e2e",
            "scaffold",
            "--",
            "--ignored",
            "--test-threads=1",
        ],
    )?;
    cargo(other(SDK, &["test", "--workspace"]))?;
    let mut plugin_tests = vec!["test"];
    for name in NATIVE_TESTED_PLUGINS {
        plugin_tests.extend(["-p", name]);
    }
    cargo(other(PLUGINS, &plugin_tests))?;
    guests::test_all(root)?;
    clients::test(root)?;

    let python = python::venv(root, &[PYTHON_MCP, KUBERNETES_VALIDATE])?;
    // `cargo test --workspace` built target/debug/capsule for the e2e tests already; a
    // `cargo build` here would rebuild half the graph for the non-test feature set.
    cmd::run_command(
        Command::new(&python)
            .arg("tests/python/test_stdio.py")
            .current_dir(root)
            .env("CAPSULE_BIN", root.join("target/debug/capsule"))
            .env("CAPSULE_EXAMPLES", &built.examples)
            .env("CAPSULE_FIXTURES", &built.fixtures),
    )?;
    cmd::run_command(
        Command::new(&python)
            .arg("tests/python/test_http.py")
            .current_dir(root)
            .env("CAPSULE_BIN", root.join("target/debug/capsule"))
            .env("CAPSULE_FIXTURES", &built.fixtures),
    )?;
    // The official MCP conformance suite over HTTP, against the same debug binary.
    conformance::run(root, &root.join("target/debug/capsule"), &built.fixtures)?;
    // Tool schemas that every model provider's dialect accepts, on every example and fixture.
    schemas::check(
        root,
        &root.join("target/debug/capsule"),
        &[&built.examples, &built.fixtures],
    )?;
    // Last: the release musl build and the image take the longest and need the plugins.
    container::test(root, &python)?;
    eprintln!("xtask: all checks passed");
    Ok(())
}

/// Installs the local OCI registry that `tests/e2e/distribution.rs` pushes to and pulls
/// from (Debian's `docker-registry`, distribution 2.8) when it is missing; with `CI=true`
/// those tests fail rather than skip without it.
fn oci_registry(root: &Path) -> Result<()> {
    if cmd::output(root, "which", &["docker-registry"]).is_ok() {
        return Ok(());
    }
    cmd::run(root, "apt-get", &["update", "-qq"])?;
    cmd::run_command(
        Command::new("apt-get")
            .args([
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "docker-registry",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .current_dir(root),
    )
    .context(
        "cannot install docker-registry (the OCI registry of the distribution tests) with apt-get",
    )
}

/// Runs the soak benchmark `bench` in its short form: `secs` seconds, unoptimised like the
/// tests (`cargo test --bench`), its checks the same as the full run's.
fn soak(root: &Path, bench: &str, secs: &str) -> Result<()> {
    cmd::run_command(
        Command::new(cmd::cargo_program())
            .args(["test", "-p", "capsule", "--bench", bench])
            .current_dir(root)
            .env("CAPSULE_SOAK_SECS", secs),
    )
}
