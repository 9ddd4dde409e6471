//! The docs stay true to the binary: every example tool a doc names exists in `capsule
//! list` of the example plugins, and every `capsule` command in a doc's code blocks parses
//! (run with `--help` appended, so clap checks the subcommand and every flag).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{Folder, capsule_bin};

/// The example plugins `cargo xtask plugins` builds into `target/plugins/`.
const EXAMPLES: &[&str] = &[
    "checksum", "dates", "fetch", "files", "hash", "json", "tables", "text",
];

/// The documents a user reads: README, the top-level guides and `docs/`.
fn documents() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut docs: Vec<PathBuf> = [
        "README.md",
        "ARCHITECTURE.md",
        "BENCHMARKS.md",
        "SECURITY.md",
    ]
    .iter()
    .map(|name| root.join(name))
    .collect();
    let folder = root.join("docs");
    let entries = std::fs::read_dir(&folder).expect("docs/ is readable");
    docs.extend(
        entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "md")),
    );
    docs.sort();
    docs
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Words inside backticks or fenced code that look like an example plugin's tool
/// (`text_slugify`): `<example>_<lowercase, digits, _>`.
fn example_tool_names(doc: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let words = doc.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '*'));
    for word in words {
        let Some((plugin, tool)) = word.split_once('_') else {
            continue;
        };
        let plain = !tool.is_empty()
            && tool
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if EXAMPLES.contains(&plugin) && plain {
            names.insert(word.to_string());
        }
    }
    names
}

/// The lines of every fenced `sh` block.
fn shell_lines(doc: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut inside = false;
    for line in doc.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            inside = !inside && trimmed.trim_start_matches('`').starts_with("sh");
            continue;
        }
        if inside {
            lines.push(trimmed.to_string());
        }
    }
    lines
}

/// The arguments after `capsule` in a shell line: the line runs `capsule …` (after any
/// `VAR=value` words) or names the binary by path (`claude mcp add capsule --
/// /path/to/capsule serve …`). Comments are dropped.
fn capsule_arguments(line: &str) -> Option<Vec<String>> {
    let words = shlex::split(line.split(" # ").next().unwrap_or(line))?;
    let first = words.iter().position(|w| !w.contains('='))?;
    let at = if words[first] == "capsule" {
        first
    } else {
        words
            .iter()
            .position(|w| w.ends_with("/capsule") && !w.contains('='))?
    };
    Some(words[at + 1..].to_vec())
}

/// The `args` of every JSON code block that configures an MCP client.
fn json_client_arguments(doc: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for block in doc.split("```json").skip(1) {
        let Some((body, _)) = block.split_once("```") else {
            continue;
        };
        let Ok(config) = serde_json::from_str::<Value>(body) else {
            continue;
        };
        for servers in ["mcpServers", "servers"] {
            let Some(entries) = config[servers].as_object() else {
                continue;
            };
            for entry in entries.values() {
                let args = entry["args"].as_array().into_iter().flatten();
                found.push(args.filter_map(Value::as_str).map(String::from).collect());
            }
        }
    }
    found
}

#[tokio::test]
async fn every_example_tool_named_in_the_docs_exists() {
    let components: Vec<(String, String)> = EXAMPLES
        .iter()
        .map(|name| (format!("plugins/{name}.wasm"), format!("{name}.wasm")))
        .collect();
    let components: Vec<(&str, &str)> = components
        .iter()
        .map(|(from, to)| (from.as_str(), to.as_str()))
        .collect();
    let folder = Folder::new(&components, "");
    let (code, stdout, stderr) = folder.run(&["list", "--json"]).await;
    assert_eq!(code, 0, "capsule list --json failed:\n{stderr}");
    let listed: Value = serde_json::from_str(&stdout).expect("list --json prints JSON");
    let listed: BTreeSet<&str> = listed
        .as_array()
        .expect("a JSON array of tools")
        .iter()
        .filter_map(|tool| tool["name"].as_str())
        .collect();
    assert!(listed.contains("text_slugify"), "{listed:?}");

    let mut missing = Vec::new();
    for doc in documents() {
        for name in example_tool_names(&read(&doc)) {
            if !listed.contains(name.as_str()) {
                missing.push(format!("{}: `{name}`", doc.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "tools named in the docs that no example plugin has:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_capsule_command_in_the_docs_parses() {
    let mut commands = Vec::new();
    for doc in documents() {
        let text = read(&doc);
        for line in shell_lines(&text) {
            if let Some(args) = capsule_arguments(&line) {
                commands.push((doc.clone(), line.clone(), args));
            }
        }
        for args in json_client_arguments(&text) {
            commands.push((doc.clone(), format!("args {args:?}"), args));
        }
    }
    assert!(
        commands.len() >= 10,
        "expected README's commands at least, found {commands:?}"
    );
    let mut broken = Vec::new();
    for (doc, line, mut args) in commands {
        args.push("--help".into());
        let out = std::process::Command::new(capsule_bin())
            .args(&args)
            .output()
            .expect("run capsule");
        if !out.status.success() {
            broken.push(format!(
                "{}: `{line}`: {}",
                doc.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    assert!(
        broken.is_empty(),
        "commands in the docs that capsule rejects:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_checks_catch_a_wrong_name_and_a_wrong_flag() {
    let names = example_tool_names("call `hash_sha256` or `text_slugify`; `files_*` is a glob");
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["hash_sha256", "text_slugify"]
    );
    let args = capsule_arguments("capsule list --plugins target/plugins   # a comment").unwrap();
    assert_eq!(args, ["list", "--plugins", "target/plugins"]);
    let env_path = "CAPSULE_SOAK_BIN=path/to/capsule cargo test -p capsule --bench soak";
    assert_eq!(capsule_arguments(env_path), None);
    let claude = "claude mcp add capsule -- /path/to/capsule serve --plugins /p";
    assert_eq!(
        capsule_arguments(claude).unwrap(),
        ["serve", "--plugins", "/p"]
    );
    let out = std::process::Command::new(capsule_bin())
        .args(["list", "--no-such-flag", "--help"])
        .output()
        .expect("run capsule");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unexpected argument '--no-such-flag'"),
        "{stderr}"
    );
}
