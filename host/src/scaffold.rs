//! `capsule new`: a new plugin project from its language's template. Templates live in
//! `guest-sdk/<lang>/template/` and are compiled into the binary (see `build.rs`), together
//! with the SDK files a project needs and `wit/capsule.wit`, so a project is self-contained.

use std::path::{Path, PathBuf};

include!(concat!(env!("OUT_DIR"), "/templates.rs"));

/// Where the Rust SDK of the checkout this binary was built from lives; the Rust template
/// depends on it by path.
const RUST_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-sdk/rust");

/// Why a project could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name cannot be a plugin name.
    #[error(
        "`{0}` cannot be a plugin name: use 1 to 40 lowercase letters, digits, `-` or `_`, starting with a letter (it becomes the file name and the prefix of every tool)"
    )]
    BadName(String),
    /// No template for that language.
    #[error("no template for language `{lang}`; choose one of: {}", known.join(", "))]
    UnknownLanguage {
        /// What was asked for.
        lang: String,
        /// What this build has.
        known: Vec<&'static str>,
    },
    /// The target folder exists and is not empty.
    #[error("{} already exists and is not empty; choose another name or remove it", .0.display())]
    Exists(PathBuf),
    /// The Rust SDK the template depends on is not where it was at build time.
    #[error(
        "the Rust template depends on the capsule-sdk crate at {0}, which does not exist (was the capsule checkout moved?); rebuild capsule from its checkout"
    )]
    MissingRustSdk(String),
    /// Writing a file failed.
    #[error("cannot write {}: {reason}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: std::io::Error,
    },
}

/// A created project.
#[derive(Debug)]
pub struct Created {
    /// Its folder.
    pub dir: PathBuf,
    /// The files written, relative to `dir`.
    pub files: Vec<String>,
    /// The command that builds `<name>.wasm` in `dir`, from the template's README.
    pub build_command: Option<String>,
    /// The command that runs the project's own tests (the README's `## Test` block).
    pub test_command: Option<String>,
}

/// The languages this build has templates for.
pub fn languages() -> Vec<&'static str> {
    TEMPLATES.iter().map(|(lang, _)| *lang).collect()
}

/// Creates the project `name` in language `lang` as `parent/name`.
pub fn create(name: &str, lang: &str, parent: &Path) -> Result<Created, ScaffoldError> {
    check_name(name)?;
    let Some((_, files)) = TEMPLATES.iter().find(|(l, _)| *l == lang) else {
        return Err(ScaffoldError::UnknownLanguage {
            lang: lang.to_string(),
            known: languages(),
        });
    };
    let rust_sdk = std::fs::canonicalize(RUST_SDK).ok();
    if lang == "rust" && rust_sdk.is_none() {
        return Err(ScaffoldError::MissingRustSdk(RUST_SDK.to_string()));
    }
    let rust_sdk = rust_sdk
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let dir = parent.join(name);
    let occupied = std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some());
    if occupied || dir.is_file() {
        return Err(ScaffoldError::Exists(dir));
    }
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{name_snake}}", &name.replace('-', "_"))
            .replace("{{rust_sdk}}", &rust_sdk)
    };
    let mut written = Vec::new();
    let mut build_command = None;
    let mut test_command = None;
    for (relative, contents) in files.iter() {
        let path = dir.join(relative);
        let contents = fill(contents);
        if *relative == "README.md" {
            build_command = first_shell_block(&contents);
            test_command = contents
                .split_once("\n## Test\n")
                .and_then(|(_, section)| first_shell_block(section));
        }
        write(&path, &contents)?;
        written.push(relative.to_string());
    }
    Ok(Created {
        dir,
        files: written,
        build_command,
        test_command,
    })
}

fn check_name(name: &str) -> Result<(), ScaffoldError> {
    let mut chars = name.chars();
    let ok = name.len() <= 40
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ScaffoldError::BadName(name.to_string()))
    }
}

fn write(path: &Path, contents: &str) -> Result<(), ScaffoldError> {
    let fail = |reason| ScaffoldError::Write {
        path: path.to_path_buf(),
        reason,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    std::fs::write(path, contents).map_err(fail)
}

/// The first line of the first ```sh block: a template README's build (or, in its `## Test`
/// section, test) command.
fn first_shell_block(readme: &str) -> Option<String> {
    let mut lines = readme.lines();
    lines.find(|l| l.trim_start().starts_with("```sh"))?;
    lines
        .next()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["a", "my-tool", "tool_2"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "2x", "My", "a b", "../x", "a.b", &"x".repeat(41)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_template_has_a_build_and_a_test_command() {
        for lang in languages() {
            let parent = tempfile::tempdir().unwrap();
            let created = create("t", lang, parent.path()).unwrap();
            assert!(created.build_command.is_some(), "{lang}: no build command");
            assert!(
                created.test_command.is_some(),
                "{lang}: no `## Test` command"
            );
        }
    }

    #[test]
    fn a_rust_project_is_complete_and_refuses_to_overwrite() {
        let parent = tempfile::tempdir().unwrap();
        let created = create("my-tool", "rust", parent.path()).unwrap();
        assert!(created.files.contains(&"wit/capsule.wit".to_string()));
        let manifest = std::fs::read_to_string(created.dir.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("name = \"my-tool\""), "{manifest}");
        assert!(!manifest.contains("{{"), "{manifest}");
        let build = created.build_command.unwrap();
        assert!(build.contains("my_tool.wasm my-tool.wasm"), "{build}");
        assert_eq!(created.test_command.as_deref(), Some("cargo test"));
        let again = create("my-tool", "rust", parent.path()).unwrap_err();
        assert!(matches!(again, ScaffoldError::Exists(_)), "{again}");
        let unknown = create("x", "cobol", parent.path()).unwrap_err();
        assert!(unknown.to_string().contains("rust"), "{unknown}");
    }
}
