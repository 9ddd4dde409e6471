//! A private Python environment under `target/python` for tools and tests written in
//! Python, so nothing is installed into the user's own Python.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::cmd;

/// Creates `target/python` if needed and installs `requirements` (pip specifiers) into
/// it. Returns the environment's `python`.
pub fn venv(root: &Path, requirements: &[&str]) -> Result<PathBuf> {
    let dir = root.join("target/python");
    let python = dir.join("bin/python");
    if !python.exists() {
        let system = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let dir_arg = dir.display().to_string();
        cmd::run(root, &system, &["-m", "venv", &dir_arg])
            .context("Python 3.10+ with the venv module is needed for the Python tests")?;
    }
    let python_arg = python.display().to_string();
    let mut args = vec![
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ];
    args.extend_from_slice(requirements);
    cmd::run(root, &python_arg, &args)?;
    Ok(python)
}
