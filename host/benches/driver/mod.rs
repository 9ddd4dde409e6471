//! The benchmarks' MCP stdio driver: a blocking line-based client (one `write` per request,
//! `read_line` per response) that adds microseconds, not the ~50 µs a Python driver adds,
//! and the latency report; beside it the HTTP driver, the soaks' shared
//! configuration and their charts. Each benchmark uses the part it needs.
#![allow(dead_code)]

pub mod binary;
pub mod http;
pub mod plot;
pub mod soak;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// `capsule serve` with a blocking line-based client.
pub struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
    line: String,
}

impl Server {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn start(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the server");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut server = Self {
            child,
            stdin,
            stdout,
            next_id: 0,
            line: String::new(),
        };
        server.send(r#"{"jsonrpc":"2.0","id":ID,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"0"}}}"#);
        server.receive();
        writeln!(
            server.stdin,
            r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#
        )
        .unwrap();
        server
    }

    pub fn send(&mut self, template: &str) {
        self.next_id += 1;
        // One write per message, newline included: a split write would wake the server twice.
        let mut request = template.replace("ID", &self.next_id.to_string());
        request.push('\n');
        self.stdin.write_all(request.as_bytes()).unwrap();
    }

    /// Reads the next response, skipping notifications (`tools/list_changed` when a plugin
    /// finished loading in the background).
    pub fn receive(&mut self) {
        loop {
            self.line.clear();
            self.stdout
                .read_line(&mut self.line)
                .expect("read response");
            if !self.line.starts_with(r#"{"jsonrpc":"2.0","method":"#) {
                break;
            }
        }
        assert!(
            self.line.contains("\"result\"") && !self.line.contains("\"isError\":true"),
            "unexpected response: {}",
            self.line
        );
    }

    /// Round-trip times of `count` requests sent one after another.
    pub fn sequential(&mut self, template: &str, count: usize) -> Vec<Duration> {
        let mut times = Vec::with_capacity(count);
        for _ in 0..count {
            let started = Instant::now();
            self.send(template);
            self.receive();
            times.push(started.elapsed());
        }
        times
    }

    /// Time to complete `count` requests keeping `window` in flight.
    pub fn pipelined(&mut self, template: &str, count: usize, window: usize) -> Duration {
        let started = Instant::now();
        let mut in_flight = 0;
        let mut sent = 0;
        let mut done = 0;
        while done < count {
            while in_flight < window && sent < count {
                self.send(template);
                sent += 1;
                in_flight += 1;
            }
            self.receive();
            done += 1;
            in_flight -= 1;
        }
        started.elapsed()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The folder `cargo xtask plugins` builds the fixtures into, after checking that each of
/// `names` (`echo` for `echo.wasm`) is there; a missing one stops the benchmark saying
/// how to build it.
pub fn fixtures(names: &[&str]) -> PathBuf {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fixtures");
    for name in names {
        let file = folder.join(format!("{name}.wasm"));
        assert!(
            file.is_file(),
            "{} missing: run `cargo xtask plugins`",
            file.display()
        );
    }
    folder
}

pub fn percentile(times: &[Duration], q: f64) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

pub fn report_latency(label: &str, times: &[Duration]) {
    let total: Duration = times.iter().sum();
    println!(
        "{label}: p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs; sequential {:.0} calls/s",
        micros(percentile(times, 0.50)),
        micros(percentile(times, 0.90)),
        micros(percentile(times, 0.99)),
        times.len() as f64 / total.as_secs_f64()
    );
}

pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Other capsule binaries to measure in the same rounds (`CAPSULE_BENCH_BASELINE`, a
/// `:`-separated list, e.g. the previous commit's build): a change is judged by a ratio on
/// one machine state, never by numbers from another day.
pub fn baselines() -> Vec<PathBuf> {
    std::env::var_os("CAPSULE_BENCH_BASELINE")
        .map(|list| std::env::split_paths(&list).collect())
        .unwrap_or_default()
}

/// How many interleaved rounds to run: `CAPSULE_BENCH_ROUNDS`, else `default`.
pub fn rounds(default: usize) -> usize {
    std::env::var("CAPSULE_BENCH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

/// A Python with the MCP SDK: `CAPSULE_BENCH_PYTHON`, else the one `cargo xtask test` made.
pub fn python_peer() -> Option<PathBuf> {
    let candidate = std::env::var_os("CAPSULE_BENCH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/python/bin/python")
        });
    let has_mcp = Command::new(&candidate)
        .args(["-c", "import mcp.server.mcpserver"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    has_mcp.then_some(candidate)
}

/// The CPU time (user + system) process `pid` has used so far, from `/proc/PID/stat`
/// (clock ticks of 10 ms: Linux's `USER_HZ` is 100); zero where that cannot be read.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces, so split after its `)`):
    // state is the 1st, utime the 12th, stime the 13th.
    let ticks: u64 = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|t| t.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// A compile cache that `binary check` filled with the plugins in `plugins`, for servers
/// started with `--cache-dir` on it: they run the optimized code from their first call, as
/// a server promoted with `capsule check` does. (A `--no-cache` server serves its first
/// calls with the quick tier's code while the optimizing compiler runs beside them on the
/// same cores: ~20% fewer HTTP calls/s in its first seconds, which a short round measures.)
pub fn precompiled(binary: &Path, plugins: &Path) -> tempfile::TempDir {
    let cache = tempfile::tempdir().expect("temp dir");
    let output = Command::new(binary)
        .args(["check", "--log-level", "warn", "--plugins"])
        .arg(plugins)
        .arg("--cache-dir")
        .arg(cache.path())
        .output()
        .expect("run capsule check");
    assert!(
        output.status.success(),
        "{} check on {}: {}",
        binary.display(),
        plugins.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    cache
}
