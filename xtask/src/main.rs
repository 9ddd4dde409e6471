//! `cargo xtask <task>`: the project's build, test and demo tasks, in Rust so they run
//! the same on every machine. `cargo xtask help` lists them.

mod clients;
mod cmd;
mod conformance;
mod container;
mod guests;
mod npm;
mod plugins;
mod python;
mod schemas;
mod test;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail};

const HELP: &str = "\
cargo xtask <task>

  plugins   build every plugin in plugins/ for wasm32-wasip2 into target/plugins/ and
            target/fixtures/ (installs the Rust target if missing)
  guest N   build only the non-Rust plugin plugins/N (Python, JS or C) into
            target/plugins/N.wasm, installing its toolchain if missing
  run       build the plugins and the host, check them, then serve the example plugins
            over MCP stdio (what an IDE runs)
  test      everything CI runs: plugins, fmt, clippy, unit + end-to-end tests, Python
            MCP client tests, the container image and the Kubernetes manifests
  conformance
            the official MCP conformance suite against `capsule serve --transport http`
            (target/debug/capsule; run `cargo xtask plugins` and `cargo build -p capsule`
            first)
  schemas   the MCP Inspector's --strict tool-schema check on target/plugins and
            target/fixtures (run `cargo xtask plugins` and `cargo build -p capsule` first)
  container the deployment checks alone: deploy/k8s validated, the image built (static
            musl capsule, target/plugins precompiled) and run by a Docker daemon of its own
            (needs root; run `cargo xtask plugins` first)
  help      this text
";

fn main() {
    if let Err(err) = run() {
        eprintln!("xtask: error: {err:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let task = std::env::args().nth(1).unwrap_or_else(|| "help".into());
    let root = workspace_root();
    match task.as_str() {
        "plugins" => plugins::build(&root).map(|_| ()),
        "guest" => {
            let name = std::env::args().nth(2).unwrap_or_default();
            guests::build_one(&root, &name)
        }
        "run" => run_demo(&root),
        "test" => test::all(&root),
        "conformance" => conformance::run(
            &root,
            &root.join("target/debug/capsule"),
            &root.join("target/fixtures"),
        ),
        "schemas" => schemas::check(
            &root,
            &root.join("target/debug/capsule"),
            &[&root.join("target/plugins"), &root.join("target/fixtures")],
        ),
        "container" => {
            let python = python::venv(&root, &[test::PYTHON_MCP, test::KUBERNETES_VALIDATE])?;
            container::test(&root, &python)
        }
        "help" | "--help" | "-h" => {
            print!("{HELP}");
            Ok(())
        }
        other => bail!("unknown task `{other}`\n\n{HELP}"),
    }
}

/// The repository root (the parent of this crate's folder).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Builds everything, checks the example plugins and serves them on stdio.
fn run_demo(root: &Path) -> Result<()> {
    plugins::build(root)?;
    cmd::cargo(root, &["build", "-p", "capsule"])?;
    let capsule = root.join("target/debug/capsule");
    let folder = root.join("target/plugins");
    let folder_arg = folder.display().to_string();
    cmd::run(
        root,
        capsule.to_str().unwrap_or("capsule"),
        &["check", "--plugins", &folder_arg],
    )?;
    eprintln!(
        "\nTo use these tools from an IDE, point it at:\n  command: {}\n  args:    [\"serve\", \"--plugins\", \"{}\"]\n\
         Serving MCP on stdin/stdout now (JSON-RPC; press Ctrl-D or Ctrl-C to stop).\n",
        capsule.display(),
        folder.display()
    );
    cmd::run_interactive(Command::new(&capsule).args(["serve", "--plugins", &folder_arg]))
}
