//! Building the plugins workspace (`plugins/`) for `wasm32-wasip2` and collecting the
//! components: examples into `target/plugins/`, test fixtures into `target/fixtures/`.
//! Plugins in other languages (`guests`) are built beside them into `target/plugins/`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::{cmd, guests};

/// The Rust target every plugin is built for; a `cdylib` built for it is a component.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// Where the built components end up.
pub struct Built {
    /// The example plugins (`target/plugins`).
    pub examples: PathBuf,
    /// The test fixtures (`target/fixtures`).
    pub fixtures: PathBuf,
}

/// Installs the target if needed, builds every plugin and copies the components.
pub fn build(root: &Path) -> Result<Built> {
    ensure_target(root)?;
    let manifest = root.join("plugins/Cargo.toml");
    let manifest_arg = manifest.display().to_string();
    let target_dir = root.join("target");
    let target_dir_arg = target_dir.display().to_string();
    cmd::cargo(
        root,
        &[
            "build",
            "--manifest-path",
            &manifest_arg,
            "--target",
            WASM_TARGET,
            "--release",
            "--target-dir",
            &target_dir_arg,
            "--workspace",
        ],
    )?;
    let out_dir = target_dir.join(WASM_TARGET).join("release");
    let built = Built {
        examples: target_dir.join("plugins"),
        fixtures: target_dir.join("fixtures"),
    };
    for dir in [&built.examples, &built.fixtures] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let fixtures_src = root.join("plugins/fixtures");
    for component in components(root, &manifest_arg)? {
        let from = out_dir.join(&component.artifact);
        let dest_dir = if component.manifest.starts_with(&fixtures_src) {
            &built.fixtures
        } else {
            &built.examples
        };
        let to = dest_dir.join(format!("{}.wasm", component.package));
        std::fs::copy(&from, &to)
            .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
        eprintln!("  {} -> {}", component.package, to.display());
    }
    build_wat_fixtures(&root.join(WAT_FIXTURES), &built.fixtures)?;
    guests::build_all(root, &built.examples)?;
    Ok(built)
}

/// Hand-written components (`*.wat`): fixtures whose hostility no compiler would emit,
/// such as results whose strings all alias one buffer, or many memories in one component.
const WAT_FIXTURES: &str = "plugins/fixtures/wat";

/// Assembles every `.wat` in `from` into `<name>.wasm` in `to`.
fn build_wat_fixtures(from: &Path, to: &Path) -> Result<()> {
    let entries =
        std::fs::read_dir(from).with_context(|| format!("cannot list {}", from.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_none_or(|ext| ext != "wat") {
            continue;
        }
        let bytes = wat::parse_file(&path)
            .with_context(|| format!("cannot assemble {}", path.display()))?;
        let stem = path.file_stem().unwrap_or_default().to_string_lossy();
        let dest = to.join(format!("{stem}.wasm"));
        std::fs::write(&dest, bytes).with_context(|| format!("cannot write {}", dest.display()))?;
        eprintln!("  {stem} (wat) -> {}", dest.display());
    }
    Ok(())
}

/// Adds the wasm target with rustup unless it is installed already.
fn ensure_target(root: &Path) -> Result<()> {
    let installed = cmd::output(root, "rustup", &["target", "list", "--installed"])
        .context("rustup is needed to install the wasm32-wasip2 target")?;
    if installed.lines().any(|l| l.trim() == WASM_TARGET) {
        return Ok(());
    }
    cmd::run(root, "rustup", &["target", "add", WASM_TARGET])
}

/// One component the plugins workspace produces.
struct Component {
    package: String,
    manifest: PathBuf,
    artifact: String,
}

/// Every `cdylib` (a plugin) and `bin` (a command component, used as a fixture) in the
/// plugins workspace, with the file name cargo gives its `.wasm`.
fn components(root: &Path, manifest: &str) -> Result<Vec<Component>> {
    let json = cmd::output(
        root,
        &cmd::cargo_program(),
        &[
            "metadata",
            "--manifest-path",
            manifest,
            "--no-deps",
            "--format-version",
            "1",
        ],
    )?;
    let metadata: Value =
        serde_json::from_str(&json).context("cargo metadata printed invalid JSON")?;
    let mut found = Vec::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let name = package["name"].as_str().unwrap_or_default().to_string();
        let manifest = PathBuf::from(package["manifest_path"].as_str().unwrap_or_default());
        for target in package["targets"].as_array().into_iter().flatten() {
            let kinds: Vec<&str> = target["kind"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let target_name = target["name"].as_str().unwrap_or_default();
            let artifact = if kinds.contains(&"cdylib") {
                format!("{}.wasm", target_name.replace('-', "_"))
            } else if kinds.contains(&"bin") {
                format!("{target_name}.wasm")
            } else {
                continue;
            };
            found.push(Component {
                package: name.clone(),
                manifest: manifest.clone(),
                artifact,
            });
        }
    }
    if found.is_empty() {
        bail!("no plugin crates found in {manifest}");
    }
    Ok(found)
}
