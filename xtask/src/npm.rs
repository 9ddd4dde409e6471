//! npm packages the tasks need (guest toolchains, MCP clients), each set installed at exact
//! versions into its own folder under `target/`, and reinstalled only when a version differs.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::cmd;

/// Installs `packages` (name, exact version) into `dir` (relative to `root`) unless those
/// versions are there; returns `dir/node_modules/.bin`, where their commands live.
pub fn ensure(root: &Path, dir: &str, packages: &[(&str, &str)]) -> Result<PathBuf> {
    let prefix = root.join(dir);
    let missing: Vec<String> = packages
        .iter()
        .filter(|(name, version)| installed_version(&prefix, name).as_deref() != Some(*version))
        .map(|(name, version)| format!("{name}@{version}"))
        .collect();
    if !missing.is_empty() {
        std::fs::create_dir_all(&prefix)
            .with_context(|| format!("cannot create {}", prefix.display()))?;
        let mut args = vec![
            "install",
            "--prefix",
            dir,
            "--save-exact",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ];
        args.extend(missing.iter().map(String::as_str));
        cmd::run(root, "npm", &args)
            .with_context(|| format!("cannot install {} from npm into {dir}", missing.join(" ")))?;
        for (name, version) in packages {
            if installed_version(&prefix, name).as_deref() != Some(*version) {
                bail!(
                    "{name}@{version} is still missing from {} after npm install",
                    prefix.display()
                );
            }
        }
    }
    Ok(prefix.join("node_modules/.bin"))
}

/// The version of the npm package `name` installed under `dir`, if any.
fn installed_version(dir: &Path, name: &str) -> Option<String> {
    let manifest = dir.join("node_modules").join(name).join("package.json");
    let text = std::fs::read_to_string(manifest).ok()?;
    let json: Value = serde_json::from_str(&text).ok()?;
    json.get("version")?.as_str().map(str::to_owned)
}
