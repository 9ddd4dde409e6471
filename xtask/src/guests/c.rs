//! C plugins: a folder with a `Makefile` that includes `guest-sdk/c/capsule.mk`. `make`
//! compiles the tools, the SDK (`guest-sdk/c`) and wit-bindgen's checked-in C bindings with
//! Debian's clang into a wasip1 reactor module, then `capsule-componentize` (a small Rust
//! tool in `guest-sdk/c/componentize`, built into `target/c-toolchain`) wraps it into a
//! component with the WASI preview 1 reactor adapter.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cmd;

/// The SDK, relative to the workspace root.
const SDK: &str = "guest-sdk/c";
/// Debian packages that give clang a wasm32-wasi target with a libc (and `make`); the
/// compiler-rt builtins for wasm32 (`libclang-rt-<major>-dev-wasm32`) are added for clang's
/// version.
const APT_PACKAGES: &[&str] = &["clang", "lld", "wasi-libc", "make"];
/// A file clang must be able to build for the toolchain to count as installed.
const PROBE: &str = "#include <stdlib.h>\n__attribute__((export_name(\"probe\"))) \
    long long probe(long long n) { return (long long)(size_t)malloc((size_t)n) / (n | 1); }\n";

/// Builds the project in `dir` (its `Makefile`) into the component `out`.
pub fn build(root: &Path, dir: &Path, out: &Path, path: &[PathBuf]) -> Result<()> {
    let name = dir
        .file_name()
        .context("the plugin folder has no name")?
        .to_string_lossy()
        .into_owned();
    let build_dir = root.join("target/c-build").join(&name);
    let out = std::path::absolute(out)
        .with_context(|| format!("cannot resolve the output path {}", out.display()))?;
    cmd::run_command(
        Command::new("make")
            .arg("--no-print-directory")
            .arg(format!("BUILD={}", build_dir.display()))
            .arg(format!("OUT={}", out.display()))
            .arg("EXTRA_CFLAGS=-Werror")
            .env("PATH", search_path(path)?)
            .current_dir(dir),
    )
    .with_context(|| {
        format!(
            "make could not build {}; clang's or capsule-componentize's message above names \
             the problem",
            dir.display()
        )
    })
}

/// Installs clang for wasm32-wasi with apt if it cannot build a module, and builds
/// `capsule-componentize`; returns the folder holding `capsule-componentize`.
pub fn ensure_toolchain(root: &Path) -> Result<Vec<PathBuf>> {
    let tools = root.join("target/c-toolchain");
    std::fs::create_dir_all(&tools)
        .with_context(|| format!("cannot create {}", tools.display()))?;
    if let Err(first) = probe(&tools) {
        eprintln!("xtask: the C toolchain is incomplete ({first:#}); installing it");
        install_clang(root)?;
        probe(&tools).context(
            "clang still cannot build a wasm32-wasi module after installing the Debian \
             packages clang, lld, wasi-libc, make and libclang-rt-<version>-dev-wasm32",
        )?;
    }
    let manifest = root.join(SDK).join("componentize/Cargo.toml");
    let manifest = manifest.display().to_string();
    let target_dir = tools.display().to_string();
    cmd::cargo(
        root,
        &[
            "build",
            "--quiet",
            "--locked",
            "--manifest-path",
            &manifest,
            "--target-dir",
            &target_dir,
        ],
    )
    .context("cannot build capsule-componentize (guest-sdk/c/componentize)")?;
    Ok(vec![tools.join("debug")])
}

/// Checks that `make` runs and `clang` builds a tiny reactor module, as the plugins are built.
fn probe(tools: &Path) -> Result<()> {
    Command::new("make")
        .arg("--version")
        .output()
        .context("make is not installed")?;
    let source = tools.join("probe.c");
    std::fs::write(&source, PROBE).with_context(|| format!("cannot write {}", source.display()))?;
    let output = Command::new("clang")
        .args(["--target=wasm32-wasi", "-mexec-model=reactor", "-O2", "-o"])
        .arg(tools.join("probe.wasm"))
        .arg(&source)
        .output()
        .context("clang is not installed")?;
    if !output.status.success() {
        bail!(
            "clang failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Installs the Debian packages: the base ones, then the compiler-rt builtins matching the
/// clang that came with them.
fn install_clang(root: &Path) -> Result<()> {
    let hint = "C plugins need make and clang for wasm32-wasi; on Debian/Ubuntu, as root: \
                apt-get install clang lld wasi-libc make \
                libclang-rt-<clang major version>-dev-wasm32";
    let base: Vec<String> = APT_PACKAGES.iter().map(|p| p.to_string()).collect();
    apt_install(root, &base).context(hint)?;
    let major = clang_major(root).context(hint)?;
    apt_install(root, &[format!("libclang-rt-{major}-dev-wasm32")]).context(hint)
}

/// `apt-get install` without prompts or recommended extras; runs `apt-get update` and tries
/// again when the first attempt fails (a fresh machine has no package lists).
fn apt_install(root: &Path, packages: &[String]) -> Result<()> {
    let install = || {
        let mut command = Command::new("apt-get");
        command
            .args(["install", "-y", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .current_dir(root);
        command
    };
    if cmd::run_command(&mut install()).is_ok() {
        return Ok(());
    }
    cmd::run(root, "apt-get", &["update"])?;
    cmd::run_command(&mut install())
}

/// The major version of the installed clang (`14` for "Debian clang version 14.0.6").
fn clang_major(root: &Path) -> Result<String> {
    let version = cmd::output(root, "clang", &["--version"])?;
    let first = version.lines().next().unwrap_or_default();
    first
        .split_whitespace()
        .skip_while(|word| *word != "version")
        .nth(1)
        .and_then(|v| v.split('.').next())
        .filter(|major| !major.is_empty() && major.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_owned)
        .with_context(|| format!("cannot read clang's version from `{first}`"))
}

/// `PATH` with `first` in front.
fn search_path(first: &[PathBuf]) -> Result<OsString> {
    let current = std::env::var_os("PATH").unwrap_or_default();
    let all = first.iter().cloned().chain(std::env::split_paths(&current));
    std::env::join_paths(all).context("a toolchain folder cannot be put on PATH")
}

/// Checks that the checked-in bindings match `wit/capsule.wit`, then builds the SDK's unit
/// tests (`guest-sdk/c/tests`) natively with gcc under AddressSanitizer and UBSan, and runs
/// them.
pub fn test(root: &Path) -> Result<()> {
    check_bindings(root)?;
    let sdk = root.join(SDK);
    let out_dir = root.join("target/c-test");
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let binary = out_dir.join("test_capsule");
    let cc = std::env::var("CC").unwrap_or_else(|_| "gcc".into());
    let compile = || {
        let mut command = Command::new(&cc);
        command.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-g", "-O1"]);
        command.args(["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]);
        command
            .arg("-I")
            .arg(&sdk)
            .arg(sdk.join("capsule_tool.c"))
            .arg(sdk.join("tests/test_capsule.c"))
            .arg("-lm")
            .arg("-o")
            .arg(&binary)
            .current_dir(root);
        command
    };
    // The mutation ("fuzz") tests rely on AddressSanitizer and UBSan to catch what they
    // provoke: without them they prove little, so a compiler without them is an error.
    cmd::run_command(&mut compile()).with_context(|| {
        format!(
            "cannot build the C SDK tests with {cc} -fsanitize=address,undefined; install a \
             compiler with its sanitizer runtimes (Debian: gcc with libasan and libubsan, \
             e.g. `apt-get install gcc`) or point CC at one"
        )
    })?;
    cmd::run_command(&mut Command::new(&binary)).context("the C SDK tests failed")
}

/// Fails when `wit/capsule.wit` changed since the C bindings were generated: their first
/// line records the WIT's sha256.
fn check_bindings(root: &Path) -> Result<()> {
    let sum = cmd::output(root, "sha256sum", &["wit/capsule.wit"])?;
    let sum = sum.split_whitespace().next().unwrap_or_default();
    let expected = format!("// wit/capsule.wit sha256: {sum} ");
    for file in ["plugin.h", "plugin.c"] {
        let path = root.join(SDK).join("bindings").join(file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if !text.starts_with(&expected) {
            bail!(
                "{} was generated from another version of wit/capsule.wit (sha256 {sum}); \
                 regenerate the C bindings with `bash guest-sdk/c/bindings/regenerate.sh`",
                path.display()
            );
        }
    }
    Ok(())
}
