//! First contact with real MCP clients: Claude Code and Gemini CLI from npm, installed into
//! `target/clients`, start the stdio entry `capsule install` wrote and must report it
//! connected (`tests/e2e/install.rs`, `real_clients_connect_to_the_installed_entry`).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::{cmd, npm};

/// The clients, at the versions the test was written against.
const PACKAGES: &[(&str, &str)] = &[
    ("@anthropic-ai/claude-code", "2.1.197"),
    ("@google/gemini-cli", "0.61.0"),
];

/// Where they are installed, relative to the workspace root (the test looks there).
const DIR: &str = "target/clients";

/// Installs the clients and runs the end-to-end test that needs them.
pub fn test(root: &Path) -> Result<()> {
    npm::ensure(root, DIR, PACKAGES).context("cannot install the MCP clients")?;
    // npm here skips install scripts; Claude Code's puts its native binary in place.
    let package = root
        .join(DIR)
        .join("node_modules/@anthropic-ai/claude-code");
    cmd::run_command(
        Command::new("node")
            .arg("install.cjs")
            .current_dir(&package),
    )
    .context("Claude Code's install.cjs could not place its native binary")?;
    cmd::cargo(
        root,
        &[
            "test",
            "-p",
            "capsule",
            "--test",
            "e2e",
            "install::real_clients",
            "--",
            "--ignored",
        ],
    )
}
