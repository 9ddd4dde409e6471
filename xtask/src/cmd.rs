//! Running child processes with their command line echoed and failures named.

use std::io::IsTerminal;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

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

/// The longest any one step may run before it is called hung and killed. The slowest step
/// on a clean 2-core CI machine (the first clippy, which compiles every dependency) takes
/// about 15 minutes.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Whether this runs in CI (`CI=true`): no terminal, a clean clone, a disk shared with others.
pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// What CI's cargo builds leave out to keep a clean clone's `target/` small: incremental
/// state (a clean run never reuses it; it was over half of a warm `target/debug`) and the
/// full debug info of the workspace's own crates (file:line backtraces stay). A variable the
/// caller set wins.
fn lean_ci_builds(command: &mut Command) {
    for (key, value) in [
        ("CARGO_INCREMENTAL", "0"),
        ("CARGO_PROFILE_DEV_DEBUG", "line-tables-only"),
    ] {
        if std::env::var_os(key).is_none() {
            command.env(key, value);
        }
    }
}

/// Runs a prepared command, echoing it and its duration; kills it (with everything it
/// started) and fails, naming it, if it runs longer than [`STEP_TIMEOUT`].
pub fn run_command(command: &mut Command) -> Result<()> {
    run_command_within(command, STEP_TIMEOUT)
}

/// [`run_command`] with a step-specific time limit.
pub fn run_command_within(command: &mut Command, limit: Duration) -> Result<()> {
    if is_ci() {
        lean_ci_builds(command);
    }
    let line = describe(command);
    eprintln!("$ {line}");
    let started = Instant::now();
    // Without a terminal (CI), its own process group, so a hung step is killed with its
    // children (test binaries). At a terminal it stays in ours, so Ctrl-C reaches it.
    let own_group = !std::io::stdin().is_terminal();
    if own_group {
        command.process_group(0);
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start `{line}`; is it installed?"))?;
    let status = loop {
        if let Some(status) = child.try_wait().context("cannot wait for a step")? {
            break status;
        }
        if started.elapsed() > limit {
            if own_group {
                kill_group(child.id());
            } else {
                let _ = child.kill();
            }
            let _ = child.wait();
            bail!(
                "`{line}` did not finish within {} min and was killed: a hang? (its last \
                 output above names what it was doing; libtest names tests running over 60 s)",
                limit.as_secs() / 60
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!("  ({:.1}s)", started.elapsed().as_secs_f64());
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Runs a command that talks to the user's terminal (no time limit, same process group, so
/// it can read stdin).
pub fn run_interactive(command: &mut Command) -> Result<()> {
    let line = describe(command);
    eprintln!("$ {line}");
    let status = command
        .status()
        .with_context(|| format!("cannot start `{line}`; is it installed?"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// SIGKILL to the process group `pgid` (`kill -KILL -PGID`).
fn kill_group(pgid: u32) {
    let group = format!("-{pgid}");
    let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
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
