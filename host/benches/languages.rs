//! `cargo bench -p capsule --bench languages`: the per-language numbers in BENCHMARKS.md.
//!
//! For the example plugin of each guest language (and the WIT-derived fixture):
//! 1. cold load: wall time of a whole `capsule list` process on a folder holding only that
//!    plugin, compiling it (`--no-cache`), and loading it from the precompiled cache;
//! 2. per-call latency of one of its tools over MCP stdio against `capsule serve`, each
//!    call in a fresh instance, driven by the same minimal blocking client as `stdio`.
//!
//! With `CAPSULE_BENCH_REUSE=1` it measures only the calls, each case served twice by this
//! build in interleaved rounds: a fresh instance per call (the default) and with
//! `isolation = "reuse"` (a sidecar beside the plugin), p50, p99 and server CPU per call.
//! `CAPSULE_BENCH_EXTRA="NAME=PATH.wasm TOOL {ARGS}"` (several separated by `;`) adds
//! components of your own to that comparison, e.g. the greet tools `capsule new` scaffolds.
//!
//! With `CAPSULE_BENCH_BASELINE=/path/to/other/capsule[:…]` it measures only the calls,
//! this build beside each baseline in `CAPSULE_BENCH_ROUNDS` (default 3) interleaved
//! rounds, reporting each one's median round (p50 and the server's CPU per call), so a
//! change to the per-call path is judged by a ratio measured in one run.
//!
//! Needs the components: run `cargo xtask plugins` first.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use driver::{Server, baselines, cpu_time, micros, percentile, rounds};
use tempfile::TempDir;

mod driver;

/// One plugin to measure.
struct Case {
    language: String,
    /// Under `target/` (or absolute).
    component: PathBuf,
    tool: String,
    arguments: String,
}

/// `(language, component under target/, tool, arguments)` of each example measured.
const EXAMPLES: &[(&str, &str, &str, &str)] = &[
    (
        "Rust (capsule-sdk)",
        "plugins/text.wasm",
        "text_word_count",
        r#"{"text":"one two three"}"#,
    ),
    (
        "Rust (WIT-derived, dynamic call)",
        "fixtures/rich.wasm",
        "rich_translate",
        r#"{"p":{"x":1,"y":2},"dx":3,"dy":4}"#,
    ),
    (
        "Python (componentize-py)",
        "plugins/tables.wasm",
        "tables_csv_to_markdown",
        r#"{"csv":"name,qty\napple,3\npear,10\n"}"#,
    ),
    (
        "JavaScript (componentize-js)",
        "plugins/dates.wasm",
        "dates_info",
        r#"{"date":"2026-12-02"}"#,
    ),
    (
        "C (clang + wit-bindgen)",
        "plugins/checksum.wasm",
        "checksum_crc32",
        r#"{"text":"123456789"}"#,
    ),
];

/// The examples, then the components of `CAPSULE_BENCH_EXTRA` (see the module docs).
fn cases() -> Vec<Case> {
    let mut cases: Vec<Case> = EXAMPLES
        .iter()
        .map(|(language, component, tool, arguments)| Case {
            language: (*language).into(),
            component: component.into(),
            tool: (*tool).into(),
            arguments: (*arguments).into(),
        })
        .collect();
    let extra = std::env::var("CAPSULE_BENCH_EXTRA").unwrap_or_default();
    for spec in extra.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let parsed = spec.split_once('=').and_then(|(language, rest)| {
            let mut parts = rest.splitn(3, ' ');
            Some(Case {
                language: language.into(),
                component: parts.next()?.into(),
                tool: parts.next()?.into(),
                arguments: parts.next()?.into(),
            })
        });
        cases.push(parsed.unwrap_or_else(|| {
            panic!("CAPSULE_BENCH_EXTRA entry `{spec}`: write NAME=PATH.wasm TOOL {{ARGS}}")
        }));
    }
    cases
}

const COMPILE_RUNS: usize = 3;
const CACHED_RUNS: usize = 7;
const WARMUP: usize = 200;
const CALLS: usize = 2_000;

fn main() {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    println!(
        "capsule per-language benchmark ({} cores)\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if std::env::var_os("CAPSULE_BENCH_REUSE").is_some() {
        compare_isolation(&target);
        return;
    }
    let baselines = baselines();
    if !baselines.is_empty() {
        compare_calls(&target, &baselines);
        return;
    }
    println!(
        "| Plugin | .wasm | cold load, compiling | cold load, precompiled cache | call p50 | p90 | p99 | calls/s |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for case in &cases() {
        let component = target.join(&case.component);
        if !component.is_file() {
            println!(
                "| {} | missing: {} (run `cargo xtask plugins`) |",
                case.language,
                component.display()
            );
            continue;
        }
        let (folder, cache) = stage(&component);
        let size = std::fs::metadata(&component).map_or(0, |m| m.len());

        let compiling = median(
            (0..COMPILE_RUNS)
                .map(|_| list(folder.path(), None))
                .collect(),
        );
        list(folder.path(), Some(cache.path())); // fills the cache
        let cached = median(
            (0..CACHED_RUNS)
                .map(|_| list(folder.path(), Some(cache.path())))
                .collect(),
        );

        let mut server = Server::start(serve(capsule(), folder.path(), cache.path()));
        server.sequential(&case.request(), WARMUP);
        let times = server.sequential(&case.request(), CALLS);
        let total: Duration = times.iter().sum();
        println!(
            "| {} | {:.1} MB | {:.0} ms | {:.0} ms | {:.0} µs | {:.0} µs | {:.0} µs | {:.0} |",
            case.language,
            size as f64 / 1e6,
            millis(compiling),
            millis(cached),
            micros(percentile(&times, 0.50)),
            micros(percentile(&times, 0.90)),
            micros(percentile(&times, 0.99)),
            times.len() as f64 / total.as_secs_f64(),
        );
    }
}

impl Case {
    /// Its `tools/call` request, `ID` standing for the id the driver fills in.
    fn request(&self) -> String {
        format!(
            r#"{{"jsonrpc":"2.0","id":ID,"method":"tools/call","params":{{"name":"{}","arguments":{}}}}}"#,
            self.tool, self.arguments
        )
    }
}

/// One binary's calls in one round: p50 and the server's CPU time per call.
struct Calls {
    p50: Duration,
    cpu: Duration,
}

/// Per-call latency of each case, this build beside each of `baselines` (one shared
/// precompiled cache, filled by every binary: builds of one wasmtime version and engine
/// configuration share their artifacts, others add their own), interleaved rounds, the
/// median round of each shown.
fn compare_calls(target: &Path, baselines: &[PathBuf]) {
    let this = driver::binary::capsule_binary().to_path_buf();
    let binaries: Vec<&Path> = std::iter::once(this.as_path())
        .chain(baselines.iter().map(PathBuf::as_path))
        .collect();
    let rounds = rounds(3);
    println!("{CALLS} sequential calls per binary and round, {rounds} interleaved rounds\n");
    println!("| Plugin | binary | call p50 | server CPU per call |");
    println!("|---|---|---|---|");
    for case in &cases() {
        let component = target.join(&case.component);
        if !component.is_file() {
            println!("| {} | missing: {} |", case.language, component.display());
            continue;
        }
        let (folder, cache) = stage(&component);
        for binary in &binaries {
            list_with(binary, folder.path(), Some(cache.path())); // fills the cache
        }
        let mut measured: Vec<Vec<Calls>> = binaries.iter().map(|_| Vec::new()).collect();
        for _ in 0..rounds {
            for (binary, results) in binaries.iter().zip(&mut measured) {
                let command = serve(Command::new(binary), folder.path(), cache.path());
                let mut server = Server::start(command);
                server.sequential(&case.request(), WARMUP);
                let before = cpu_time(server.pid());
                let times = server.sequential(&case.request(), CALLS);
                let cpu = cpu_time(server.pid()).saturating_sub(before) / CALLS as u32;
                results.push(Calls {
                    p50: percentile(&times, 0.50),
                    cpu,
                });
            }
        }
        for (binary, mut results) in binaries.iter().zip(measured) {
            results.sort_by_key(|calls| calls.p50);
            let median = &results[results.len() / 2];
            let name = if *binary == this.as_path() {
                "this build"
            } else {
                binary
                    .file_name()
                    .and_then(OsStr::to_str)
                    .unwrap_or("baseline")
            };
            println!(
                "| {} | {name} | {:.0} µs | {:.0} µs |",
                case.language,
                micros(median.p50),
                micros(median.cpu),
            );
        }
    }
}

/// Per-call latency of each case with a fresh instance per call and with
/// `isolation = "reuse"`, this build, interleaved rounds, the median round of each shown.
fn compare_isolation(target: &Path) {
    let rounds = rounds(3);
    println!("{CALLS} sequential calls per mode and round, {rounds} interleaved rounds\n");
    println!("| Plugin | isolation | call p50 | p99 | server CPU per call |");
    println!("|---|---|---|---|---|");
    for case in &cases() {
        let component = target.join(&case.component);
        if !component.is_file() {
            println!("| {} | missing: {} |", case.language, component.display());
            continue;
        }
        let (per_call, cache) = stage(&component);
        let (reuse, _) = stage(&component);
        let stem = component.file_stem().expect("file stem");
        let sidecar = reuse.path().join(stem).with_extension("toml");
        std::fs::write(&sidecar, "isolation = \"reuse\"\n").expect("write the sidecar");
        list(per_call.path(), Some(cache.path())); // fills the cache
        let modes = [("per-call", per_call.path()), ("reuse", reuse.path())];
        let mut measured: Vec<Vec<(Duration, Duration, Duration)>> = vec![Vec::new(); 2];
        for _ in 0..rounds {
            for ((_, folder), results) in modes.iter().zip(&mut measured) {
                let mut server = Server::start(serve(capsule(), folder, cache.path()));
                server.sequential(&case.request(), WARMUP);
                let before = cpu_time(server.pid());
                let times = server.sequential(&case.request(), CALLS);
                let cpu = cpu_time(server.pid()).saturating_sub(before) / CALLS as u32;
                results.push((percentile(&times, 0.50), percentile(&times, 0.99), cpu));
            }
        }
        for ((mode, _), mut results) in modes.iter().zip(measured) {
            results.sort_by_key(|(p50, _, _)| *p50);
            let (p50, p99, cpu) = results[results.len() / 2];
            println!(
                "| {} | {mode} | {:.0} µs | {:.0} µs | {:.0} µs |",
                case.language,
                micros(p50),
                micros(p99),
                micros(cpu),
            );
        }
    }
}

/// A plugins folder holding only `component`, and an empty cache folder.
fn stage(component: &Path) -> (TempDir, TempDir) {
    let folder = tempfile::tempdir().expect("temp dir");
    let file = component.file_name().expect("file name");
    std::fs::copy(component, folder.path().join(file)).expect("copy the component");
    (folder, tempfile::tempdir().expect("temp dir"))
}

fn capsule() -> Command {
    Command::new(driver::binary::capsule_binary())
}

/// Wall time of `capsule list` on `plugins`: start, load (compile or map), list, exit.
fn list(plugins: &Path, cache: Option<&Path>) -> Duration {
    list_with(driver::binary::capsule_binary(), plugins, cache)
}

/// [`list`] by `binary`.
fn list_with(binary: &Path, plugins: &Path, cache: Option<&Path>) -> Duration {
    let mut command = Command::new(binary);
    command.arg("list").arg("--plugins").arg(plugins);
    match cache {
        Some(dir) => command.arg("--cache-dir").arg(dir),
        None => command.arg("--no-cache"),
    };
    let started = Instant::now();
    let status = command
        .stdout(Stdio::null())
        .status()
        .expect("run capsule list");
    let elapsed = started.elapsed();
    assert!(
        status.success(),
        "capsule list failed on {}",
        plugins.display()
    );
    elapsed
}

fn serve(mut command: Command, plugins: &Path, cache: &Path) -> Command {
    command
        .args(["serve", "--log-level", "warn", "--plugins"])
        .arg(plugins)
        .arg("--cache-dir")
        .arg(PathBuf::from(cache));
    command
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
