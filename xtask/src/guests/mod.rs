//! Plugins written in languages other than Rust. Every folder in `plugins/` that holds a
//! language's marker file is built by that language's toolchain (installed on first use)
//! into `target/plugins/<folder>.wasm`.

pub mod c;
pub mod js;
pub mod python;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// A guest language other than Rust.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Python,
    Js,
    C,
}

impl Lang {
    /// Every language, in the order they are built and tested.
    pub const ALL: [Lang; 3] = [Lang::Python, Lang::Js, Lang::C];

    /// The name `capsule new --lang` and `guest-sdk/<id>/` use.
    pub fn id(self) -> &'static str {
        match self {
            Lang::Python => "python",
            Lang::Js => "js",
            Lang::C => "c",
        }
    }

    /// The language whose marker file `dir` holds: `app.py`, `package.json`, or `Makefile`.
    fn of(dir: &Path) -> Option<Lang> {
        if dir.join("app.py").is_file() {
            Some(Lang::Python)
        } else if dir.join("package.json").is_file() {
            Some(Lang::Js)
        } else if dir.join("Makefile").is_file() {
            Some(Lang::C)
        } else {
            None
        }
    }
}

/// One non-Rust plugin project.
pub struct Project {
    /// The folder name, which is also the plugin's name.
    pub name: String,
    pub dir: PathBuf,
    pub lang: Lang,
}

/// Every non-Rust plugin project directly under `plugins/`.
pub fn discover(root: &Path) -> Result<Vec<Project>> {
    let plugins = root.join("plugins");
    let mut found = Vec::new();
    let entries = std::fs::read_dir(&plugins)
        .with_context(|| format!("cannot list {}", plugins.display()))?;
    for entry in entries {
        let dir = entry?.path();
        let Some(lang) = Lang::of(&dir) else { continue };
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        found.push(Project { name, dir, lang });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// Builds the one project `plugins/<name>` into `target/plugins/<name>.wasm`.
pub fn build_one(root: &Path, name: &str) -> Result<()> {
    let Some(project) = discover(root)?.into_iter().find(|p| p.name == name) else {
        bail!("plugins/{name} is not a Python (app.py), JS (package.json) or C (Makefile) project");
    };
    let toolchain = ensure_toolchain(root, project.lang)?;
    build(root, &project, &root.join("target/plugins"), &toolchain)
}

/// Installs every language's toolchain once, builds every project into `out_dir`, and
/// writes the folders each language's build command needs on `PATH` to
/// `target/guest-paths/<lang>` (one per line), for the `capsule new` tests.
pub fn build_all(root: &Path, out_dir: &Path) -> Result<()> {
    let projects = discover(root)?;
    let paths_dir = root.join("target/guest-paths");
    std::fs::create_dir_all(&paths_dir)
        .with_context(|| format!("cannot create {}", paths_dir.display()))?;
    for lang in Lang::ALL {
        let toolchain = ensure_toolchain(root, lang)?;
        for project in projects.iter().filter(|p| p.lang == lang) {
            build(root, project, out_dir, &toolchain)?;
        }
        let lines: Vec<String> = toolchain.iter().map(|p| p.display().to_string()).collect();
        let file = paths_dir.join(lang.id());
        std::fs::write(&file, lines.join("\n"))
            .with_context(|| format!("cannot write {}", file.display()))?;
    }
    Ok(())
}

/// Builds `project` into `out_dir/<name>.wasm` with the installed `toolchain`.
fn build(root: &Path, project: &Project, out_dir: &Path, toolchain: &[PathBuf]) -> Result<()> {
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let out = out_dir.join(format!("{}.wasm", project.name));
    let result = match project.lang {
        Lang::Python => python::build(root, &project.dir, &out, toolchain),
        Lang::Js => js::build(&project.dir, &out, toolchain),
        Lang::C => c::build(root, &project.dir, &out, toolchain),
    };
    result.with_context(|| format!("cannot build plugin {}", project.dir.display()))?;
    eprintln!(
        "  {} ({:?}) -> {}",
        project.name,
        project.lang,
        out.display()
    );
    Ok(())
}

/// Installs `lang`'s toolchain if missing; returns the folders to put first on `PATH` so
/// that the build command documented in its `capsule new` template works as written.
fn ensure_toolchain(root: &Path, lang: Lang) -> Result<Vec<PathBuf>> {
    match lang {
        Lang::Python => python::ensure_toolchain(root),
        Lang::Js => js::ensure_toolchain(root),
        Lang::C => c::ensure_toolchain(root),
    }
}

/// Each language's own tests (its SDK helper layer), run by `cargo xtask test`.
pub fn test_all(root: &Path) -> Result<()> {
    python::test(root)?;
    js::test(root)?;
    c::test(root)
}
