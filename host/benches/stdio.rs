//! `cargo bench -p capsule --bench stdio`: the numbers in BENCHMARKS.md.
//!
//! 1. MCP over stdio against the real `capsule serve` binary, driven by a minimal
//!    blocking client (write a line, read a line) so the driver adds only microseconds:
//!    `ping` (protocol floor) and `tools/call` of a trivial tool, sequential latency
//!    p50/p90/p99 and throughput, then pipelined throughput with a window of requests
//!    in flight; the same binary beside it with metrics on (`--metrics-addr`), with OTLP
//!    export on (`--otlp-endpoint`, to a sink this process runs on 127.0.0.1), with
//!    both, and with both exporting a sample of 10% of the calls, in the same interleaved
//!    rounds; each with the server's CPU time per pipelined call. Every capsule binary
//!    serves plugins it precompiled with `capsule check`, as a promoted server does.
//! 2. Fresh-instance cost in process: `Runtime::call` (new store + instance per call),
//!    sequential and with one task per core.
//! 3. Fairness: `echo_echo` latency while another plugin holds every slot it may take
//!    (`runtime.max-calls-per-plugin`) with sleeping calls and has as many queued behind.
//! 4. The machine's wake-up floor: a one-byte round trip over two pipes between two
//!    threads, the far one busy for a while before it answers. What the round trip costs
//!    beyond that busy time is what waking a thread whose CPU went idle costs here, and
//!    no server can answer a sequential client faster than its work plus that.
//!
//! Needs the fixtures: run `cargo xtask plugins` first.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use driver::{Server, cpu_time, micros, percentile, python_peer, report_latency};

use capsule::app::App;
use capsule::config::{Overrides, RawConfig, Settings};
use capsule::registry::RegisteredTool;
use capsule::runtime::CallContext;

mod driver;
// The OTLP receiver of the telemetry tests, shared as source (not library API).
#[path = "../../tests/e2e/otlp.rs"]
mod otlp;

const WARMUP: usize = 2_000;
/// Interleaved rounds per target (`CAPSULE_BENCH_ROUNDS` overrides; more narrow the noise
/// of side-by-side ratios on a busy machine).
const ROUNDS: usize = 3;
/// Requests in flight in the pipelined measurement: 16, the setting the peers' published
/// figures use (../shared/FACTS.md), so the numbers compare.
const WINDOW: usize = 16;
const IN_PROCESS: usize = 50_000;

/// One stdio MCP server to measure.
struct Target {
    name: String,
    command: Command,
    tool: &'static str,
    /// Calls per measurement (slow peers get fewer).
    calls: usize,
}

/// The numbers of one round against one target.
struct Round {
    call: Vec<Duration>,
    pipelined: f64,
    /// The server's CPU time (user + system, all threads) per pipelined call: what a
    /// feature costs, which the machine's other load moves less than the rate.
    cpu_per_call: Duration,
}

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

    let this = driver::binary::capsule_binary();
    let cache = driver::precompiled(this, folder.path());
    // The protocol floor: `ping` never reaches a plugin.
    let mut server = Server::start(capsule(this, folder.path(), cache.path()));
    server.sequential(PING, WARMUP);
    report_latency(
        "capsule stdio ping round trip",
        &server.sequential(PING, 20_000),
    );
    drop(server);

    let python = python_peer();
    if python.is_none() {
        println!(
            "(Python MCP SDK not found: set CAPSULE_BENCH_PYTHON to a python with `mcp` 2.x for the side-by-side peer)"
        );
    }
    let baselines: Vec<_> = driver::baselines()
        .into_iter()
        .map(|binary| {
            let cache = driver::precompiled(&binary, folder.path());
            (binary, cache)
        })
        .collect();
    let mut results: Vec<(String, Vec<Round>)> = Vec::new();
    // Every span exported goes here; it answers at once, like a collector that keeps up.
    let sink = OtlpSink::start();
    let endpoint = sink.endpoint();
    let mut calls_exported = 0;
    let rounds = driver::rounds(ROUNDS);
    // `CAPSULE_BENCH_QUICK=1`: only the plain server (and the baselines, the peer), no
    // observability variants and no in-process part: a side-by-side check in minutes.
    let quick = std::env::var_os("CAPSULE_BENCH_QUICK").is_some();
    for index in 0..rounds {
        // Metrics are off in stdio mode unless a listener serves them, OTLP export unless
        // an endpoint is set: the same binary with `--metrics-addr`, `--otlp-endpoint` or
        // both measures what they cost (docs/observability.md).
        let observed = |metrics: bool, otlp: bool| {
            let mut command = capsule(this, folder.path(), cache.path());
            if metrics {
                command.args(["--metrics-addr", "127.0.0.1:0"]);
            }
            if otlp {
                command.args(["--otlp-endpoint", &endpoint]);
            }
            command
        };
        let mut targets = vec![Target {
            name: "capsule (fresh instance per call)".into(),
            command: observed(false, false),
            tool: "echo_echo",
            calls: 20_000,
        }];
        if !quick {
            targets.extend([
                Target {
                    name: "capsule with metrics on".into(),
                    command: observed(true, false),
                    tool: "echo_echo",
                    calls: 20_000,
                },
                Target {
                    name: "capsule with OTLP export on".into(),
                    command: observed(false, true),
                    tool: "echo_echo",
                    calls: 20_000,
                },
                Target {
                    name: "capsule with metrics and OTLP export on".into(),
                    command: observed(true, true),
                    tool: "echo_echo",
                    calls: 20_000,
                },
                Target {
                    name: "capsule with metrics and OTLP export of 10% of calls".into(),
                    command: {
                        let mut command = observed(true, true);
                        command.env("CAPSULE_TELEMETRY_SAMPLE_RATIO", "0.1");
                        command
                    },
                    tool: "echo_echo",
                    calls: 20_000,
                },
            ]);
            // The two exporting servers' warm-up, sequential and pipelined calls, and a tenth
            // of the sampling one's.
            calls_exported += 2 * (WARMUP + 2 * 20_000) + (WARMUP + 2 * 20_000) / 10;
        }
        for (baseline, cache) in &baselines {
            targets.push(Target {
                name: format!("capsule baseline {}", baseline.display()),
                command: capsule(baseline, folder.path(), cache.path()),
                tool: "echo_echo",
                calls: 20_000,
            });
        }
        if let Some(python) = &python {
            let mut command = Command::new(python);
            command.arg(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/bench/python_echo_server.py"),
            );
            targets.push(Target {
                name: "python mcp 2.x MCPServer".into(),
                command,
                tool: "echo",
                calls: 2_000,
            });
        }
        // Each round starts one target later, so no target always runs right after the
        // same one (an order effect would otherwise read as a cost of that target).
        let start = index % targets.len();
        targets.rotate_left(start);
        for target in targets {
            let round = measure(target.command, target.tool, target.calls);
            match results.iter_mut().find(|(name, _)| *name == target.name) {
                Some((_, rounds)) => rounds.push(round),
                None => results.push((target.name.clone(), vec![round])),
            }
        }
    }
    println!("\ntools/call over stdio, {rounds} interleaved rounds (median round shown):");
    let mut p50s = Vec::new();
    let mut throughputs = Vec::new();
    let mut cpus = Vec::new();
    for (name, rounds) in &results {
        let mut by_p50: Vec<&Round> = rounds.iter().collect();
        by_p50.sort_by_key(|r| percentile(&r.call, 0.5));
        let median = by_p50[by_p50.len() / 2];
        report_latency(&format!("{name}: round trip"), &median.call);
        let mut pipelined: Vec<f64> = rounds.iter().map(|r| r.pipelined).collect();
        pipelined.sort_by(f64::total_cmp);
        println!(
            "{name}: pipelined ({WINDOW} in flight) {:.0} calls/s",
            pipelined[pipelined.len() / 2]
        );
        let mut cpu: Vec<Duration> = rounds.iter().map(|r| r.cpu_per_call).collect();
        cpu.sort();
        println!(
            "{name}: server CPU per pipelined call {:.1} µs",
            micros(cpu[cpu.len() / 2])
        );
        p50s.push((name, percentile(&median.call, 0.5)));
        throughputs.push((name, pipelined[pipelined.len() / 2]));
        cpus.push((name, cpu[cpu.len() / 2]));
    }
    if let [(_, capsule), others @ ..] = throughputs.as_slice() {
        for (peer, other) in others {
            println!(
                "pipelined throughput ratio {peer} / capsule: {:.3}",
                other / capsule
            );
        }
    }
    if let [(_, capsule), others @ ..] = cpus.as_slice() {
        for (peer, other) in others {
            println!(
                "server CPU per call ratio {peer} / capsule: {:.3}",
                micros(*other) / micros(*capsule)
            );
        }
    }
    if let [(_, capsule), others @ ..] = p50s.as_slice() {
        for (peer, other) in others {
            println!(
                "p50 ratio {peer} / capsule: {:.2}x",
                micros(*other) / micros(*capsule)
            );
        }
    }
    let (batches, spans, refused) = sink.received();
    println!(
        "OTLP sink: {spans} spans in {batches} batches ({refused} requests refused) of ~{calls_exported} calls made with export on; the rest were still batched when the server was killed, or dropped by a full queue"
    );

    if !quick {
        in_process(folder.path());
        fairness(&fixtures);
    }
    wake_floor();
}

/// Part 4: a round trip over pipes between two threads, the far thread spinning for a
/// set time before it answers; reports the round trip minus that time. With no busy time
/// the waiting thread never gets to idle its CPU; with some, a CPU that idles has to be
/// woken, and on a virtual machine whose idle CPUs halt that is the cost measured here.
fn wake_floor() {
    use std::io::{Read, Write};
    const TRIPS: usize = 3_000;
    for busy_us in [0u64, 20, 50, 100] {
        let busy = Duration::from_micros(busy_us);
        let (mut ask_read, mut ask_write) = std::io::pipe().expect("pipe");
        let (mut answer_read, mut answer_write) = std::io::pipe().expect("pipe");
        let far = std::thread::spawn(move || {
            let mut byte = [0u8];
            while ask_read.read(&mut byte).is_ok_and(|n| n == 1) {
                let until = Instant::now() + busy;
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
                answer_write.write_all(&byte).expect("answer");
            }
        });
        let mut beyond = Vec::with_capacity(TRIPS);
        let mut byte = [0u8];
        for _ in 0..TRIPS {
            let sent = Instant::now();
            ask_write.write_all(&byte).expect("ask");
            answer_read.read_exact(&mut byte).expect("read the answer");
            beyond.push(sent.elapsed().saturating_sub(busy));
        }
        drop(ask_write);
        far.join().expect("the far thread ends");
        println!(
            "wake-up floor: pipe round trip beyond {busy_us} µs of work on the far side: p50 {:.1} µs, p90 {:.1} µs",
            micros(percentile(&beyond, 0.50)),
            micros(percentile(&beyond, 0.90)),
        );
    }
}

/// An OTLP/HTTP sink on 127.0.0.1 that counts what it receives.
struct OtlpSink {
    port: u16,
    /// Trace exports, spans in them, and requests that were not trace exports.
    counts: Arc<[AtomicU64; 3]>,
}

impl OtlpSink {
    fn start() -> Self {
        let counts: Arc<[AtomicU64; 3]> = Arc::default();
        let counted = counts.clone();
        let port = otlp::receive(move |request| match request {
            Ok(export) => {
                let spans: usize = export
                    .resource_spans
                    .iter()
                    .flat_map(|r| &r.scope_spans)
                    .map(|s| s.spans.len())
                    .sum();
                counted[0].fetch_add(1, Ordering::Relaxed);
                counted[1].fetch_add(spans as u64, Ordering::Relaxed);
            }
            Err(_) => {
                counted[2].fetch_add(1, Ordering::Relaxed);
            }
        });
        Self { port, counts }
    }

    /// The URL for `--otlp-endpoint` (the exporter appends `/v1/traces`).
    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// (batches, spans, refused requests) received so far.
    fn received(&self) -> (u64, u64, u64) {
        let [batches, spans, refused] = &*self.counts;
        (
            batches.load(Ordering::Relaxed),
            spans.load(Ordering::Relaxed),
            refused.load(Ordering::Relaxed),
        )
    }
}

const PING: &str = r#"{"jsonrpc":"2.0","id":ID,"method":"ping"}"#;

/// `binary serve` over stdio with the plugins in `plugins`, compiled into `cache`
/// beforehand ([`driver::precompiled`]).
fn capsule(binary: &Path, plugins: &Path, cache: &Path) -> Command {
    let mut command = Command::new(binary);
    command
        .args(["serve", "--log-level", "warn", "--plugins"])
        .arg(plugins)
        .arg("--cache-dir")
        .arg(cache);
    command
}

fn measure(command: Command, tool: &str, calls: usize) -> Round {
    let request = format!(
        r#"{{"jsonrpc":"2.0","id":ID,"method":"tools/call","params":{{"name":"{tool}","arguments":{{"message":"hi"}}}}}}"#
    );
    let mut server = Server::start(command);
    server.sequential(&request, WARMUP.min(calls));
    let call = server.sequential(&request, calls);
    let cpu_before = cpu_time(server.pid());
    let elapsed = server.pipelined(&request, calls, WINDOW);
    let cpu = cpu_time(server.pid()).saturating_sub(cpu_before);
    Round {
        call,
        pipelined: calls as f64 / elapsed.as_secs_f64(),
        cpu_per_call: cpu / calls as u32,
    }
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

        let arguments: rmcp::model::JsonObject =
            serde_json::from_str(r#"{"message":"hi"}"#).expect("JSON object");
        let mut times = Vec::with_capacity(IN_PROCESS);
        for _ in 0..IN_PROCESS {
            let started = Instant::now();
            let result = capsule::mcp::server::execute(
                &app.runtime,
                &tool,
                arguments.clone(),
                CallContext::default(),
            )
            .await;
            times.push(started.elapsed());
            assert_ne!(result.is_error, Some(true), "{result:?}");
        }
        report_latency(
            "in-process execute (schema checks + call + conversion)",
            &times,
        );

        // What recording one call's metrics costs (counter, four histograms, instances).
        let metrics = capsule::metrics::Metrics::new(app.runtime.clone(), app.registry.clone());
        let usage = capsule::runtime::Usage {
            queue_wait: Duration::from_micros(3),
            run_time: Some(Duration::from_micros(80)),
            fuel: Some(12_345),
            memory_peak: Some(1 << 20),
            instantiated: true,
            demoted: false,
            started_here: true,
        };
        const RECORDS: u32 = 1_000_000;
        let started = Instant::now();
        for _ in 0..RECORDS {
            metrics.call(&tool, capsule::audit::Outcome::Ok, &usage);
        }
        println!(
            "recording one call's metrics: {:.0} ns",
            started.elapsed().as_nanos() as f64 / f64::from(RECORDS)
        );

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

/// Sleeping calls of the `greedy` fixture sent first: twice the default per-plugin cap
/// (half of the 64 call slots), so it runs at its cap with the rest queued behind.
const NAPS: usize = 64;
/// How long each nap lasts: the echo calls are measured while the first naps run.
const NAP_MS: u64 = 3_000;
const FAIR_CALLS: usize = 2_000;

/// Issue #14's fairness case: one plugin saturates its share of the slots with calls that
/// sleep; another plugin's calls must keep answering (target p99 < 20 ms).
fn fairness(fixtures: &Path) {
    let folder = tempfile::tempdir().expect("temp dir");
    for name in ["echo", "greedy"] {
        let file = format!("{name}.wasm");
        std::fs::copy(fixtures.join(&file), folder.path().join(&file)).expect("copy fixture");
    }
    let this = driver::binary::capsule_binary();
    let cache = driver::precompiled(this, folder.path());
    let mut server = Server::start(capsule(this, folder.path(), cache.path()));
    let echo = r#"{"jsonrpc":"2.0","id":ID,"method":"tools/call","params":{"name":"echo_echo","arguments":{"message":"hi"}}}"#;
    server.sequential(echo, WARMUP);
    let nap = format!(
        r#"{{"jsonrpc":"2.0","id":ID,"method":"tools/call","params":{{"name":"greedy_nap","arguments":{{"ms":{NAP_MS}}}}}}}"#
    );
    for _ in 0..NAPS {
        server.send(&nap);
    }
    // Let the naps be admitted (or queued) before measuring beside them.
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let beside = server.sequential(echo, FAIR_CALLS);
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(NAP_MS - 500),
        "the echo calls took {elapsed:?}, longer than the naps they were measured beside"
    );
    report_latency(
        &format!("fairness: echo_echo beside {NAPS} sleeping greedy calls (cap 32 running)"),
        &beside,
    );
    for _ in 0..NAPS {
        server.receive();
    }
}
