//! JavaScript plugins: a folder with a `package.json` whose `build` script bundles the tools
//! and the SDK (`guest-sdk/js/capsule-sdk`) with esbuild into one ES module and turns it into a
//! component with componentize-js, writing `<folder>.wasm`. Both tools are npm packages,
//! installed into `target/node`; the system's Node.js (20.6+) and npm run them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::guests::{self, Lang};
use crate::{cmd, npm};

/// The npm packages the build scripts use, at the exact versions the SDK is tested with.
const PACKAGES: &[(&str, &str)] = &[
    ("@bytecodealliance/componentize-js", "0.23.0"),
    ("esbuild", "0.28.2"),
];

/// Where the packages are installed, relative to the workspace root.
const NODE_DIR: &str = "target/node";

/// Builds the project in `dir` with its own `npm run build` (the command its README gives)
/// and moves the `<folder>.wasm` it writes to `out`.
pub fn build(dir: &Path, out: &Path, bins: &[PathBuf]) -> Result<()> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let built = dir.join(format!("{name}.wasm"));
    if built.exists() {
        std::fs::remove_file(&built)
            .with_context(|| format!("cannot remove the old {}", built.display()))?;
    }
    cmd::run_command(
        Command::new("npm")
            .args(["run", "--silent", "build"])
            .env("PATH", path_with(bins)?)
            .current_dir(dir),
    )
    .with_context(|| {
        format!(
            "`npm run build` failed in {}; the esbuild or componentize-js message above names \
             the problem (a syntax error, an unresolved import, or a tool definition the SDK \
             rejected while the module was initialised)",
            dir.display()
        )
    })?;
    if !built.is_file() {
        bail!(
            "`npm run build` in {} did not write {name}.wasm; its build script must write the \
             component to <folder name>.wasm",
            dir.display()
        );
    }
    if std::fs::rename(&built, out).is_err() {
        std::fs::copy(&built, out)
            .with_context(|| format!("cannot copy {} to {}", built.display(), out.display()))?;
        std::fs::remove_file(&built)
            .with_context(|| format!("cannot remove {}", built.display()))?;
    }
    Ok(())
}

/// Installs componentize-js and esbuild into `target/node` unless those exact versions are
/// there; returns `target/node/node_modules/.bin`, where their commands live.
pub fn ensure_toolchain(root: &Path) -> Result<Vec<PathBuf>> {
    check_node()?;
    let bin = npm::ensure(root, NODE_DIR, PACKAGES)
        .context("cannot install the JavaScript guest toolchain")?;
    Ok(vec![bin])
}

/// Runs the SDK's unit tests (with the template's), then those of every JavaScript plugin in
/// `plugins/` that has a `test/` folder, with node's own test runner: no wasm, no npm packages.
pub fn test(root: &Path) -> Result<()> {
    check_node()?;
    let sdk = root.join("guest-sdk/js");
    let register = sdk.join("capsule-sdk/register.js");
    let mut files = test_files(&sdk.join("test"))?;
    files.extend(test_files(&sdk.join("template/test"))?);
    node_test(&sdk, &register, &files)
        .context("the JavaScript SDK's unit tests failed (guest-sdk/js/test, template/test)")?;
    for project in guests::discover(root)? {
        let tests = project.dir.join("test");
        if project.lang == Lang::Js && tests.is_dir() {
            node_test(&project.dir, &register, &test_files(&tests)?)
                .with_context(|| format!("the unit tests of {} failed", project.dir.display()))?;
        }
    }
    Ok(())
}

/// The `*.test.js` files directly in `dir`, sorted (named one by one: node 20 takes no globs,
/// and newer nodes no directories).
fn test_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.to_string_lossy().ends_with(".test.js") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// `node --import <register> --test <files>` in `dir`: the SDK's module hook resolves
/// `capsule-sdk` and stands in for the host imports.
fn node_test(dir: &Path, register: &Path, files: &[PathBuf]) -> Result<()> {
    cmd::run_command(
        Command::new("node")
            .arg("--import")
            .arg(register)
            .arg("--test")
            .args(files)
            .current_dir(dir),
    )
}

/// Fails with install advice unless `node` is 20.6 or newer (for `module.register`).
fn check_node() -> Result<()> {
    let version = cmd::output(Path::new("."), "node", &["--version"])
        .context("Node.js 20.6+ with npm is needed for JavaScript plugins; install it (e.g. `apt-get install nodejs npm`)")?;
    let mut parts = version.trim().trim_start_matches('v').split('.');
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    if (major, minor) < (20, 6) {
        bail!(
            "Node.js {} is too old for JavaScript plugins; 20.6 or newer is needed",
            version.trim()
        );
    }
    Ok(())
}

/// `PATH` with `first` in front.
fn path_with(first: &[PathBuf]) -> Result<OsString> {
    let rest = std::env::var_os("PATH").unwrap_or_default();
    let paths = first.iter().cloned().chain(std::env::split_paths(&rest));
    std::env::join_paths(paths).context("cannot put target/node/node_modules/.bin on PATH")
}
