//! Python plugins: a folder with an `app.py` that defines tools with `capsule_sdk`
//! (`guest-sdk/python`) and binds `Tools = exports()`, built into a component by
//! componentize-py, which is installed into the private venv `target/python`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{cmd, python};

/// The componentize-py release the SDK and the template are written for.
const COMPONENTIZE_PY: &str = "componentize-py==0.25.*";
/// What `componentize-py --version` prints for that release.
const COMPONENTIZE_PY_VERSION: &str = "componentize-py 0.25.";

/// Builds the project in `dir` (its `app.py`) into the component `out`.
pub fn build(root: &Path, dir: &Path, out: &Path, bin: &[PathBuf]) -> Result<()> {
    let componentize = bin[0].join("componentize-py");
    let wit = root.join("wit");
    let sdk = root.join("guest-sdk/python");
    let out = std::path::absolute(out)
        .with_context(|| format!("cannot resolve the output path {}", out.display()))?;
    cmd::run_command(
        Command::new(&componentize)
            .arg("--quiet")
            .arg("-d")
            .arg(&wit)
            .args(["-w", "plugin", "componentize", "app", "-p"])
            .arg(dir)
            .arg("-p")
            .arg(&sdk)
            .arg("-o")
            .arg(&out)
            .current_dir(dir),
    )
    .context(
        "componentize-py could not build the plugin; the Python traceback above names the \
         problem (an import error, or a tool whose annotations capsule_sdk cannot turn into a \
         schema)",
    )
}

/// Installs componentize-py into `target/python` if it is missing or another release;
/// returns the venv's `bin` folder, where `componentize-py` lives.
pub fn ensure_toolchain(root: &Path) -> Result<Vec<PathBuf>> {
    let bin = root.join("target/python/bin");
    let componentize = bin.join("componentize-py");
    if !installed(&componentize) {
        python::venv(root, &[COMPONENTIZE_PY])
            .context("cannot install componentize-py from PyPI into target/python")?;
        if !installed(&componentize) {
            bail!(
                "{} is still missing or not {COMPONENTIZE_PY} after installing it",
                componentize.display()
            );
        }
    }
    Ok(vec![bin])
}

/// Whether `componentize` runs and is the expected release.
fn installed(componentize: &Path) -> bool {
    let program = componentize.display().to_string();
    componentize.is_file()
        && cmd::output(Path::new("."), &program, &["--version"])
            .is_ok_and(|v| v.trim().starts_with(COMPONENTIZE_PY_VERSION))
}

/// Runs the SDK's unit tests (`python -m unittest` in `guest-sdk/python`) and the example
/// plugin's (`plugins/tables`) on plain CPython: no wasm needed.
pub fn test(root: &Path) -> Result<()> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let sdk = root.join("guest-sdk/python");
    cmd::run_command(
        Command::new(&python)
            .args(["-m", "unittest", "discover", "-s", "tests", "-t", "."])
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .current_dir(&sdk),
    )
    .context("the Python SDK's unit tests failed (guest-sdk/python/tests)")?;
    let tables = root.join("plugins/tables");
    cmd::run_command(
        Command::new(&python)
            .args(["-m", "unittest", "discover", "-s", ".", "-p", "test_*.py"])
            .env("PYTHONPATH", &sdk)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .current_dir(&tables),
    )
    .context("the tables plugin's unit tests failed (plugins/tables/test_app.py)")
}
