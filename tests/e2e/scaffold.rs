//! `capsule new` for every language, then the build command the project's README gives,
//! yields a plugin that `capsule check` accepts and `capsule call` runs, and the project's
//! own test command (its README's `## Test` block) passes.
//!
//! These build real projects (Rust release + LTO, componentize-py, componentize-js, clang),
//! so `cargo test` skips them; `cargo xtask test` runs them in a step of their own, one at a
//! time: `cargo test -p capsule --test e2e scaffold -- --ignored --test-threads=1`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Map, Value};

use crate::support::capsule_bin;

fn run(command: &mut Command, what: &str) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `PATH` with the folders `cargo xtask plugins` recorded for `lang`'s toolchain first.
fn path_for(lang: &str) -> String {
    let mut dirs = Vec::new();
    if lang != "rust" {
        let file = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/guest-paths")
            .join(lang);
        let recorded = std::fs::read_to_string(&file).unwrap_or_else(|_| {
            panic!(
                "{} is missing: run `cargo xtask plugins` first",
                file.display()
            )
        });
        dirs.extend(
            recorded
                .lines()
                .filter(|l| !l.is_empty())
                .map(PathBuf::from),
        );
    }
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs)
        .expect("PATH")
        .to_string_lossy()
        .into_owned()
}

/// Arguments for a tool from its input schema: every required string is "Ada", every
/// required number 2, every required boolean true.
fn arguments_for(schema: &Value) -> Value {
    let mut args = Map::new();
    let required = schema["required"].as_array().cloned().unwrap_or_default();
    for name in required.iter().filter_map(Value::as_str) {
        let value = match schema["properties"][name]["type"].as_str() {
            Some("integer" | "number") => Value::from(2),
            Some("boolean") => Value::Bool(true),
            _ => Value::from("Ada"),
        };
        args.insert(name.to_string(), value);
    }
    Value::Object(args)
}

fn new_project_builds_checks_and_calls(lang: &str) {
    let parent = tempfile::tempdir().unwrap();
    let name = format!("hello-{lang}");
    let created = run(
        Command::new(capsule_bin())
            .args(["new", &name, "--lang", lang, "--dir"])
            .arg(parent.path()),
        "capsule new",
    );
    let printed = String::from_utf8_lossy(&created.stdout).into_owned();
    let project = parent.path().join(&name);
    // The line after `cd <project>` is the build command from the template's README, the
    // line after `test it:` its test command.
    let line_after = |marker: &str| {
        let mut lines = printed.lines().map(str::trim);
        lines.find(|l| l.starts_with(marker));
        lines
            .next()
            .unwrap_or_else(|| panic!("nothing printed after `{marker}`:\n{printed}"))
            .to_string()
    };
    let build = line_after("cd ");
    assert!(
        !build.starts_with("capsule"),
        "no build command printed:\n{printed}"
    );
    let test = line_after("test it:");

    // A command from the project's README, run in the project with its toolchain on PATH.
    let shell = |line: &str, what: &str| {
        run(
            Command::new("sh")
                .args(["-c", line])
                .current_dir(&project)
                .env("PATH", path_for(lang)),
            &format!("the {lang} {what} `{line}`"),
        )
    };
    shell(&test, "project's test command");
    shell(&build, "build command");
    assert!(
        project.join(format!("{name}.wasm")).is_file(),
        "{name}.wasm not built"
    );

    // `check` compiles the plugin into this cache; `list` and `call` load it from there.
    let cache = parent.path().join("cache");
    let capsule = |args: &[&str]| {
        let mut command = Command::new(capsule_bin());
        command
            .args(args)
            .arg("--plugins")
            .arg(&project)
            .arg("--cache-dir")
            .arg(&cache);
        command
    };
    run(&mut capsule(&["check"]), "capsule check");
    let listed = run(&mut capsule(&["list", "--json"]), "capsule list");
    let tools: Value = serde_json::from_slice(&listed.stdout).expect("list --json prints JSON");
    let tool = tools
        .as_array()
        .and_then(|t| t.first())
        .unwrap_or_else(|| panic!("no tools listed: {tools}"));
    let tool_name = tool["name"].as_str().expect("tool name");
    assert!(tool_name.starts_with(&format!("{name}_")), "{tool_name}");
    let args = arguments_for(&tool["inputSchema"]).to_string();
    let called = run(
        &mut capsule(&["call", tool_name, "--args", &args]),
        "capsule call",
    );
    let answer = String::from_utf8_lossy(&called.stdout);
    assert!(
        answer.contains("Ada"),
        "{tool_name} {args} answered {answer:?}"
    );
}

#[test]
#[ignore = "builds a real project: run by `cargo xtask test` in its own step"]
fn capsule_new_rust() {
    new_project_builds_checks_and_calls("rust");
}

#[test]
#[ignore = "builds a real project: run by `cargo xtask test` in its own step"]
fn capsule_new_python() {
    new_project_builds_checks_and_calls("python");
}

#[test]
#[ignore = "builds a real project: run by `cargo xtask test` in its own step"]
fn capsule_new_js() {
    new_project_builds_checks_and_calls("js");
}

#[test]
#[ignore = "builds a real project: run by `cargo xtask test` in its own step"]
fn capsule_new_c() {
    new_project_builds_checks_and_calls("c");
}
