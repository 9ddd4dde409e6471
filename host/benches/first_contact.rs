//! `cargo bench -p capsule --bench first_contact`: what a new user's client meets on a
//! machine with an empty cache (issue #19), in BENCHMARKS.md.
//!
//! A folder with every example plugin (Rust, Python, JavaScript, C), a fresh cache folder
//! per run, `capsule serve` over stdio driven by a minimal blocking client:
//! - `initialize`: spawn until the `initialize` response;
//! - `tools/list`: spawn until the first `tools/list` response, and how many tools it had;
//! - all tools: spawn until a `tools/list` (sent after each `tools/list_changed`) lists
//!   every tool, i.e. until the big guests finished compiling in the background.
//!
//! `CAPSULE_BENCH_BASELINE=/path/to/capsule` runs an older build side by side (one that
//! compiles everything before answering shows it in its `initialize` time).
//!
//! Needs the components: run `cargo xtask plugins` first.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 3;

/// What one run measured.
struct Run {
    initialize: Duration,
    first_list: Duration,
    first_tools: usize,
    all_tools: Duration,
    tools: usize,
}

fn main() {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    let examples = target.join("plugins");
    let plugins: Vec<PathBuf> = std::fs::read_dir(&examples)
        .map(|dir| {
            dir.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
                .collect()
        })
        .unwrap_or_default();
    if plugins.len() < 2 {
        println!(
            "no example plugins in {}: run `cargo xtask plugins`",
            examples.display()
        );
        return;
    }
    let folder = tempfile::tempdir().expect("temp dir");
    let bytes: u64 = plugins
        .iter()
        .map(|p| {
            let to = folder.path().join(p.file_name().expect("a file name"));
            std::fs::copy(p, to).expect("copy a plugin")
        })
        .sum();
    let mut binaries = vec![(
        "this build".to_string(),
        PathBuf::from(env!("CARGO_BIN_EXE_capsule")),
    )];
    if let Some(baseline) = std::env::var_os("CAPSULE_BENCH_BASELINE") {
        binaries.push(("baseline".into(), PathBuf::from(baseline)));
    }
    println!(
        "capsule first contact: {} example plugins ({:.1} MB), empty cache, {} cores, median of {RUNS} runs\n",
        plugins.len(),
        bytes as f64 / 1e6,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let expected = every_tool(Path::new(env!("CARGO_BIN_EXE_capsule")), folder.path());
    println!("| build | `initialize` | first `tools/list` (tools) | every tool listed |");
    println!("|---|---|---|---|");
    for (label, binary) in &binaries {
        let mut runs: Vec<Run> = (0..RUNS)
            .map(|_| run(binary, folder.path(), expected))
            .collect();
        let median = |runs: &mut Vec<Run>, key: fn(&Run) -> Duration| {
            runs.sort_by_key(key);
            key(&runs[RUNS / 2])
        };
        let initialize = median(&mut runs, |r| r.initialize);
        let all = median(&mut runs, |r| r.all_tools);
        let first = median(&mut runs, |r| r.first_list);
        let first_tools = runs[RUNS / 2].first_tools;
        println!(
            "| {label} | {:.1} ms | {:.1} ms ({first_tools} of {}) | {:.0} ms |",
            ms(initialize),
            ms(first),
            runs[0].tools,
            ms(all)
        );
    }
}

/// How many tools the folder has: `capsule list --json` (compiling into a scratch cache).
fn every_tool(binary: &Path, plugins: &Path) -> usize {
    let cache = tempfile::tempdir().expect("temp dir");
    let out = Command::new(binary)
        .args(["list", "--json", "--plugins"])
        .arg(plugins)
        .env("CAPSULE_CACHE_DIR", cache.path())
        .env_remove("CAPSULE_CONFIG")
        .stderr(Stdio::null())
        .output()
        .expect("run capsule list");
    let tools: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON list");
    tools.as_array().map_or(0, Vec::len)
}

fn run(binary: &Path, plugins: &Path, expected: usize) -> Run {
    let cache = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let mut child = Command::new(binary)
        .args(["serve", "--log-level", "warn", "--plugins"])
        .arg(plugins)
        .env("CAPSULE_CACHE_DIR", cache.path())
        .env_remove("CAPSULE_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn capsule serve");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut send = |line: &str| {
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .expect("write a request");
    };
    send(
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"0"}}}"#,
    );
    wait_for(&mut stdout, r#""id":1,"#);
    let initialize = started.elapsed();
    send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
    send(list);
    let first_tools = tools_in(&wait_for(&mut stdout, r#""id":2,"#));
    let first_list = started.elapsed();
    let mut tools = first_tools;
    let mut all_tools = first_list;
    // Each `list_changed` is followed by a `tools/list`, until one lists every tool.
    while tools < expected && started.elapsed() < Duration::from_secs(300) {
        let line = read(&mut stdout);
        assert!(!line.is_empty(), "the server closed stdout while loading");
        if line.contains("notifications/tools/list_changed") {
            send(list);
        } else if line.contains(r#""id":2,"#) {
            tools = tools_in(&line);
            all_tools = started.elapsed();
        }
    }
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    Run {
        initialize,
        first_list,
        first_tools,
        all_tools,
        tools,
    }
}

fn read(stdout: &mut BufReader<ChildStdout>) -> String {
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read from the server");
    line
}

fn wait_for(stdout: &mut BufReader<ChildStdout>, needle: &str) -> String {
    loop {
        let line = read(stdout);
        assert!(!line.is_empty(), "the server closed stdout before {needle}");
        if line.contains(needle) {
            return line;
        }
    }
}

fn tools_in(response: &str) -> usize {
    let value: serde_json::Value = serde_json::from_str(response).expect("a JSON response");
    value["result"]["tools"].as_array().map_or(0, Vec::len)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
