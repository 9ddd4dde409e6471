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
//! Then 50 distinct small plugins, once of each of four fixtures: echo (16 tools,
//! capsule-sdk), caller (1 tool), rich (8 plain WIT functions served as WIT-derived tools)
//! and plain (one plain `echo` function, the kind of component issue #19's own numbers
//! came from), each copy with its own custom section, so each has its own digest and
//! artifact: the same times from a warm cache and from an empty one (issue #19's "50
//! plugins" rows).
//!
//! And the memory a server keeps: its resident set once a start with an empty cache has
//! compiled every example (and optimized each, `optimized code ready` in its log), and
//! after a start from the cache that wrote.
//!
//! `CAPSULE_BENCH_BASELINE=/path/to/capsule` runs an older build side by side (one that
//! compiles everything before answering shows it in its `initialize` time).
//!
//! Needs the components: run `cargo xtask plugins` first.

#[path = "driver/binary.rs"]
mod binary;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs per build of a start that compiles (seconds each).
const RUNS: usize = 3;

/// Runs per build of a start from a warm cache (milliseconds each; one varies by ±3 ms on
/// a 2-core VM, so a median of three says little).
const CACHED_RUNS: usize = 15;

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
        binary::capsule_binary().to_path_buf(),
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
    let expected = every_tool(binary::capsule_binary(), folder.path());
    let able = listing_all(&binaries, expected, |binary| {
        every_tool(binary, folder.path())
    });
    println!("| build | `initialize` | first `tools/list` (tools) | every tool listed |");
    println!("|---|---|---|---|");
    rows_interleaved(&able, "", |_| None, folder.path(), expected, RUNS);
    println!(
        "\n| build | resident after a compiling start, all optimized (median) | after a cached start |"
    );
    println!("|---|---|---|");
    for (label, binary) in &able {
        // The median of `RUNS` compiling starts (one run varies by ±15%), each into a
        // cache of its own; the cached start reads the last one's.
        let mut compiling = Vec::new();
        let mut cache = tempfile::tempdir().expect("temp dir");
        for _ in 0..RUNS {
            cache = tempfile::tempdir().expect("temp dir");
            compiling.push(resident(
                binary,
                folder.path(),
                cache.path(),
                plugins.len(),
                expected,
            ));
        }
        compiling.sort_by(f64::total_cmp);
        let compiling = compiling[RUNS / 2];
        let cached = resident(binary, folder.path(), cache.path(), 0, expected);
        println!("| {label} | {compiling:.0} MB | {cached:.0} MB |");
    }

    for stem in ["echo", "caller", "rich", "plain"] {
        let fixture = target.join(format!("fixtures/{stem}.wasm"));
        if !fixture.is_file() {
            println!(
                "\nno {stem} fixture in {}: run `cargo xtask plugins`",
                target.display()
            );
            return;
        }
        let distinct = tempfile::tempdir().expect("temp dir");
        distinct_copies(&fixture, distinct.path(), DISTINCT, stem);
        // A warm cache per build: builds that derive tools differently remember them
        // under other fingerprints in the same files, and would evict each other's.
        let scratch = tempfile::tempdir().expect("temp dir");
        let expected = every_tool_cached(binary::capsule_binary(), distinct.path(), scratch.path());
        let warm: Vec<tempfile::TempDir> = binaries
            .iter()
            .map(|_| tempfile::tempdir().expect("temp dir"))
            .collect();
        let warm_of = |binary: &Path| {
            let at = binaries.iter().position(|(_, b)| b == binary).unwrap_or(0);
            warm[at].path().to_path_buf()
        };
        // One start remembers each file's digest by its stamp, once the files are older
        // than a clock tick can hide (`SETTLED`): the cached rows are the restarts of a
        // folder served before.
        std::thread::sleep(Duration::from_millis(2100));
        let able = listing_all(&binaries, expected, |binary| {
            every_tool_cached(binary, distinct.path(), &warm_of(binary))
        });
        for (_, binary) in &able {
            run(binary, distinct.path(), expected, Some(&warm_of(binary)));
        }
        println!(
            "\n{DISTINCT} distinct plugins ({stem} fixture copies, {expected} tools), median of {CACHED_RUNS} runs cached, {RUNS} with an empty cache, the builds' runs alternating\n"
        );
        println!(
            "| build, cache | `initialize` | first `tools/list` (tools) | every tool listed |"
        );
        println!("|---|---|---|---|");
        let (folder, cached) = (distinct.path(), |b: &Path| Some(warm_of(b)));
        rows_interleaved(&able, ", cached", cached, folder, expected, CACHED_RUNS);
        rows_interleaved(&able, ", empty cache", |_| None, folder, expected, RUNS);
    }
}

/// How many distinct plugins the second part loads.
const DISTINCT: usize = 50;

/// Writes `count` copies of the component `wasm` into `folder`, `STEM01.wasm` …, each with
/// a custom section of its own appended (a component may end with custom sections), so
/// each is a distinct plugin to the host: its own digest, artifact and tools.
fn distinct_copies(wasm: &Path, folder: &Path, count: usize, stem: &str) {
    let bytes = std::fs::read(wasm).expect("read a fixture");
    for i in 1..=count {
        let name = b"capsule-bench";
        let payload = format!("copy {i}");
        let mut content = vec![name.len() as u8];
        content.extend_from_slice(name);
        content.extend_from_slice(payload.as_bytes());
        let mut copy = bytes.clone();
        // Custom section: id 0, then its size and content (sizes under 128: one LEB byte).
        copy.push(0);
        copy.push(u8::try_from(content.len()).expect("a short section"));
        copy.extend_from_slice(&content);
        std::fs::write(folder.join(format!("{stem}{i:02}.wasm")), copy).expect("write a copy");
    }
}

/// Prints a table row per build of `builds` (labelled with `suffix` after its own label):
/// the medians of `runs` starts of each on `plugins`, with the warm cache `cache` gives
/// for its executable or, for none, a fresh empty one per start; the builds' starts
/// alternate, so a change in the machine's state lands on all of them.
fn rows_interleaved(
    builds: &[(String, PathBuf)],
    suffix: &str,
    cache: impl Fn(&Path) -> Option<PathBuf>,
    plugins: &Path,
    expected: usize,
    runs: usize,
) {
    let warm: Vec<Option<PathBuf>> = builds.iter().map(|(_, binary)| cache(binary)).collect();
    let mut measured: Vec<Vec<Run>> = builds.iter().map(|_| Vec::new()).collect();
    for _ in 0..runs {
        for (((_, binary), warm), into) in builds.iter().zip(&warm).zip(&mut measured) {
            into.push(run(binary, plugins, expected, warm.as_deref()));
        }
    }
    for ((label, _), mut runs) in builds.iter().zip(measured) {
        let mid = runs.len() / 2;
        let mut median = |key: fn(&Run) -> Duration| {
            runs.sort_by_key(key);
            key(&runs[mid])
        };
        let initialize = median(|r| r.initialize);
        let all = median(|r| r.all_tools);
        let first = median(|r| r.first_list);
        let first_tools = runs[mid].first_tools;
        println!(
            "| {label}{suffix} | {:.1} ms | {:.1} ms ({first_tools} of {}) | {:.1} ms |",
            ms(initialize),
            ms(first),
            runs[0].tools,
            ms(all)
        );
    }
}

/// The builds among `binaries` that list all `expected` tools of a folder (`listed` says
/// how many one lists); each other one is named and left out of its tables: an older
/// baseline may not load plugins built against a later WIT, and would wait for their
/// tools forever.
fn listing_all(
    binaries: &[(String, PathBuf)],
    expected: usize,
    listed: impl Fn(&Path) -> usize,
) -> Vec<(String, PathBuf)> {
    let mut able = Vec::new();
    for (label, binary) in binaries {
        let count = listed(binary);
        if count == expected {
            able.push((label.clone(), binary.clone()));
        } else {
            println!(
                "({label}, {}: lists {count} of the {expected} tools here, so it is left out of the next table)\n",
                binary.display()
            );
        }
    }
    able
}

/// How many tools the folder has: `capsule list --json` (compiling into a scratch cache).
fn every_tool(binary: &Path, plugins: &Path) -> usize {
    let cache = tempfile::tempdir().expect("temp dir");
    every_tool_cached(binary, plugins, cache.path())
}

/// [`every_tool`], compiling into (and so warming) `cache`.
fn every_tool_cached(binary: &Path, plugins: &Path, cache: &Path) -> usize {
    let out = Command::new(binary)
        .args(["list", "--json", "--plugins"])
        .arg(plugins)
        .env("CAPSULE_CACHE_DIR", cache)
        .env_remove("CAPSULE_CONFIG")
        .stderr(Stdio::null())
        .output()
        .expect("run capsule list");
    // A build that cannot load a plugin may print no list at all.
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .ok()
        .and_then(|tools| tools.as_array().map(Vec::len))
        .unwrap_or(0)
}

/// One start of `binary` serving `plugins`, with a fresh empty cache or `warm`.
fn run(binary: &Path, plugins: &Path, expected: usize, warm: Option<&Path>) -> Run {
    let empty = tempfile::tempdir().expect("temp dir");
    let cache = warm.unwrap_or(empty.path());
    let started = Instant::now();
    let (mut child, mut stdin, mut stdout) =
        initialized(binary, plugins, cache, "warn", Stdio::null());
    let mut send = |line: &str| send_line(&mut stdin, line);
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

/// The resident set (MB) of `binary` serving `plugins` with `cache`, once every tool is
/// listed, `optimized` plugins said `optimized code ready` (at most 3 minutes) and 2 s
/// passed.
fn resident(binary: &Path, plugins: &Path, cache: &Path, optimized: usize, expected: usize) -> f64 {
    let log = tempfile::NamedTempFile::new().expect("temp file");
    let stderr = Stdio::from(log.reopen().expect("the log file"));
    let (mut child, mut stdin, mut stdout) = initialized(binary, plugins, cache, "info", stderr);
    let mut send = |line: &str| send_line(&mut stdin, line);
    send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    let started = Instant::now();
    let mut tools = 0;
    while tools < expected && started.elapsed() < Duration::from_secs(300) {
        send(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#);
        tools = tools_in(&wait_for(&mut stdout, r#""id":2,"#));
        std::thread::sleep(Duration::from_millis(100));
    }
    let ready = || {
        std::fs::read_to_string(log.path())
            .unwrap_or_default()
            .matches("optimized code ready")
            .count()
    };
    while ready() < optimized && started.elapsed() < Duration::from_secs(180) {
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN);
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    kib / 1024.0
}

/// `capsule serve` of `binary` on `plugins` with `cache`, logging at `level` to `stderr`,
/// once it answered `initialize`: the process, its stdin and its stdout.
fn initialized(
    binary: &Path,
    plugins: &Path,
    cache: &Path,
    level: &str,
    stderr: Stdio,
) -> (Child, ChildStdin, BufReader<ChildStdout>) {
    let mut child = Command::new(binary)
        .args(["serve", "--log-level", level, "--plugins"])
        .arg(plugins)
        .env("CAPSULE_CACHE_DIR", cache)
        .env_remove("CAPSULE_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("spawn capsule serve");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    send_line(
        &mut stdin,
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"0"}}}"#,
    );
    wait_for(&mut stdout, r#""id":1,"#);
    (child, stdin, stdout)
}

fn send_line(stdin: &mut ChildStdin, line: &str) {
    stdin
        .write_all(format!("{line}\n").as_bytes())
        .expect("write a request");
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
