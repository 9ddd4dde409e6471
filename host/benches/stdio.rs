//! `cargo bench -p capsule --bench stdio`: the numbers in BENCHMARKS.md.
//!
//! 1. MCP over stdio against the real `capsule serve` binary, driven by a minimal
//!    blocking client (write a line, read a line) so the driver adds only microseconds:
//!    `ping` (protocol floor) and `tools/call` of a trivial tool, sequential latency
//!    p50/p90/p99 and throughput, then pipelined throughput with a window of requests
//!    in flight.
//! 2. Fresh-instance cost in process: `Runtime::call` (new store + instance per call),
//!    sequential and with one task per core.
//!
//! Needs the fixtures: run `cargo xtask plugins` first.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use capsule::app::App;
use capsule::config::{Overrides, RawConfig, Settings};
use capsule::registry::RegisteredTool;
use capsule::runtime::CallContext;

const WARMUP: usize = 2_000;
const SEQUENTIAL: usize = 20_000;
const PIPELINED: usize = 50_000;
const WINDOW: usize = 32;
const IN_PROCESS: usize = 50_000;

fn main() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fixtures");
    let echo = fixtures.join("echo.wasm");
    assert!(
        echo.is_file(),
        "{} missing: run `cargo xtask plugins`",
        echo.display()
    );
    let folder = tempfile::tempdir().expect("temp dir");
    std::fs::copy(&echo, folder.path().join("echo.wasm")).expect("copy echo.wasm");

    println!(
        "capsule benchmark ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let mut server = Server::start(folder.path());
    let ping = r#"{"jsonrpc":"2.0","id":ID,"method":"ping"}"#;
    let call = r#"{"jsonrpc":"2.0","id":ID,"method":"tools/call","params":{"name":"echo_echo","arguments":{"message":"hi"}}}"#;
    server.sequential(ping, WARMUP);
    report_latency(
        "stdio ping round trip",
        &server.sequential(ping, SEQUENTIAL),
    );
    server.sequential(call, WARMUP);
    report_latency(
        "stdio tools/call round trip (fresh instance)",
        &server.sequential(call, SEQUENTIAL),
    );
    let elapsed = server.pipelined(call, PIPELINED, WINDOW);
    println!(
        "stdio tools/call pipelined ({WINDOW} in flight): {:.0} calls/s ({PIPELINED} calls in {:.2}s)",
        PIPELINED as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    drop(server);

    in_process(folder.path());
}

/// `capsule serve` with a blocking line-based client.
struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
    line: String,
}

impl Server {
    fn start(plugins: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_capsule"))
            .args(["serve", "--no-cache", "--log-level", "warn", "--plugins"])
            .arg(plugins)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn capsule");
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

    fn send(&mut self, template: &str) {
        self.next_id += 1;
        let request = template.replace("ID", &self.next_id.to_string());
        self.stdin.write_all(request.as_bytes()).unwrap();
        self.stdin.write_all(b"\n").unwrap();
        self.stdin.flush().unwrap();
    }

    fn receive(&mut self) {
        self.line.clear();
        self.stdout
            .read_line(&mut self.line)
            .expect("read response");
        assert!(
            self.line.contains("\"result\"") && !self.line.contains("\"isError\":true"),
            "unexpected response: {}",
            self.line
        );
    }

    /// Round-trip times of `count` requests sent one after another.
    fn sequential(&mut self, template: &str, count: usize) -> Vec<Duration> {
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
    fn pipelined(&mut self, template: &str, count: usize, window: usize) -> Duration {
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

fn report_latency(label: &str, times: &[Duration]) {
    let mut sorted = times.to_vec();
    sorted.sort();
    let at = |q: f64| sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)];
    let total: Duration = times.iter().sum();
    println!(
        "{label}: p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs; sequential {:.0} calls/s",
        micros(at(0.50)),
        micros(at(0.90)),
        micros(at(0.99)),
        times.len() as f64 / total.as_secs_f64()
    );
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// One `echo_echo` call through the library: a fresh store and instance.
async fn one(app: Arc<App>, tool: Arc<RegisteredTool>) {
    app.runtime
        .call(
            &tool.plugin,
            &tool.tool_name,
            r#"{"message":"hi"}"#,
            CallContext::default(),
        )
        .await
        .expect("call succeeds");
}

/// Fresh-instance calls through the library, without any protocol.
fn in_process(plugins: &Path) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let overrides = Overrides {
            plugins_dir: Some(PathBuf::from(plugins)),
            no_cache: true,
            ..Overrides::default()
        };
        let cwd = std::env::current_dir().unwrap();
        let settings = Settings::resolve(RawConfig::default(), None, &cwd, overrides).unwrap();
        let app = Arc::new(App::start(settings).await.unwrap());
        let tool = app
            .registry
            .snapshot()
            .get("echo_echo")
            .cloned()
            .expect("echo_echo");
        for _ in 0..WARMUP {
            one(app.clone(), tool.clone()).await;
        }
        let mut times = Vec::with_capacity(IN_PROCESS);
        for _ in 0..IN_PROCESS {
            let started = Instant::now();
            one(app.clone(), tool.clone()).await;
            times.push(started.elapsed());
        }
        report_latency("in-process call, fresh store + instance per call", &times);

        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let started = Instant::now();
        let tasks: Vec<_> = (0..workers)
            .map(|_| {
                let (app, tool) = (app.clone(), tool.clone());
                tokio::spawn(async move {
                    for _ in 0..IN_PROCESS / workers {
                        one(app.clone(), tool.clone()).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let elapsed = started.elapsed();
        println!(
            "in-process fresh-instance calls, {workers} tasks: {:.0} calls/s",
            (IN_PROCESS / workers * workers) as f64 / elapsed.as_secs_f64()
        );
    });
}
