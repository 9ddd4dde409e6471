//! Running child processes with their command line echoed and failures named.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// Runs `program args...` in `dir`, inheriting stdio; fails if it exits non-zero.
pub fn run(dir: &Path, program: &str, args: &[&str]) -> Result<()> {
    run_command(Command::new(program).args(args).current_dir(dir))
}

/// Runs `cargo args...` in `dir` with the cargo that runs this xtask.
pub fn cargo(dir: &Path, args: &[&str]) -> Result<()> {
    run(dir, &cargo_program(), args)
}

/// The cargo binary to use (the one that started us, else `cargo`).
pub fn cargo_program() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Runs a prepared command, echoing it and its duration.
pub fn run_command(command: &mut Command) -> Result<()> {
    let line = describe(command);
    eprintln!("$ {line}");
    let started = Instant::now();
    let status = command
        .status()
        .with_context(|| format!("cannot start `{line}`; is it installed?"))?;
    eprintln!("  ({:.1}s)", started.elapsed().as_secs_f64());
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Runs `program args...` and returns its stdout; fails if it exits non-zero.
pub fn output(dir: &Path, program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .with_context(|| format!("cannot start `{program}`; is it installed?"))?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn describe(command: &Command) -> String {
    let mut line = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}
