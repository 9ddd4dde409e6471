//! `cargo bench -p capsule --bench http`: the streamable-HTTP numbers in BENCHMARKS.md.
//!
//! 1. `tools/call` of a trivial tool with 16 concurrent clients (one keep-alive connection
//!    each, blocking, so the driver adds microseconds), against `capsule serve --transport
//!    http` stateful and stateless, side by side in interleaved rounds with the official
//!    Python SDK's HTTP server serving the same tool in the same two modes: calls/s and
//!    p50/p99 per call. Every capsule binary serves plugins it precompiled with
//!    `capsule check`, as a promoted server does.
//!    The same stateless (and stateful) server with `[auth]` on, side by side: a static
//!    bearer token and an ES256 JWT verified against a local key file, so the report gives
//!    what authentication costs (issue #16's bound: ≤ 10% of the calls/s).
//! 2. Where a stateless call's server CPU goes: the same stateless server and 16 clients
//!    sending `ping`, a `tools/call` refused before any instance runs (invalid arguments),
//!    and the `tools/call` of part 1, in interleaved rounds: the server's CPU per request
//!    of each, so the HTTP and MCP layers, the call's own checks and accounting, and the
//!    wasm instance's share are read off one run.
//! 3. Protocol I/O beside CPU-bound calls: `ping` round trips over HTTP while every call
//!    slot runs a spinning plugin (issue #15's target: p99 < 10 ms).
//!
//! Needs the fixtures: run `cargo xtask plugins` first.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use driver::http::{HttpClient, free_port, wait_listening};
use driver::{cpu_time, micros, percentile, python_peer, report_latency};

mod driver;
// The ES256 key and JWS signing of the auth tests, shared as source (not library API).
#[path = "../../tests/e2e/jws.rs"]
mod jws;

/// Interleaved rounds per target (`CAPSULE_BENCH_ROUNDS` overrides).
const ROUNDS: usize = 5;
/// Concurrent clients: the issue's setting, and the peers' published figures' window.
const CLIENTS: usize = 16;
const WARMUP_PER_CLIENT: usize = 100;
/// Slots the spinning plugin fills in the I/O part (the default `max-concurrent-calls`).
const SLOTS: usize = 64;
const PINGS: usize = 2_000;

const CALL: &str = r#"{"jsonrpc":"2.0","id":ID,"method":"tools/call","params":{"name":"TOOL","arguments":{"message":"hi"}}}"#;
const PING: &str = r#"{"jsonrpc":"2.0","id":ID,"method":"ping"}"#;
/// A `tools/call` of echo that its input schema refuses: answered with a tool error before
/// any instance runs.
const REFUSED_CALL: &str = r#"{"jsonrpc":"2.0","id":ID,"method":"tools/call","params":{"name":"echo_echo","arguments":{"message":5}}}"#;
const SPIN: &str =
    r#"{"jsonrpc":"2.0","id":ID,"method":"tools/call","params":{"name":"hostile_spin"}}"#;

/// Makes the command that starts a server on (plugins folder, port).
type Start = Box<dyn Fn(&Path, u16) -> Command>;

/// One HTTP MCP server to measure.
struct Target {
    name: String,
    start: Start,
    /// The request every client sends (`ID` replaced per request).
    request: String,
    /// What every answer must be.
    answer: Answer,
    /// Calls per client per round (the slow peer gets fewer).
    calls_per_client: usize,
    /// The token every client sends, for a server with `[auth]`.
    bearer: Option<String>,
}

/// What a measured request must be answered with.
#[derive(Clone, Copy)]
enum Answer {
    /// A result that is not a tool error.
    Success,
    /// A tool error (the call was refused before an instance ran).
    ToolError,
}

/// The request that calls `tool` of echo with a message.
fn call_of(tool: &str) -> String {
    CALL.replace("TOOL", tool)
}

/// A server process, killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One round against one target: every call's round trip, the overall rate, and the
/// server's CPU time per call (user + system, all its threads): a cost that the machine's
/// other load moves less than the rate. Beside it the clients' CPU time per call, the
/// share of the two cores the server could not have.
struct Round {
    calls: Vec<Duration>,
    per_second: f64,
    cpu_per_call: Duration,
    /// The bench's own CPU time per call: its 16 clients, on the same cores as the server.
    clients_cpu_per_call: Duration,
}

fn main() {
    let fixtures = driver::fixtures(&["echo", "hostile"]);
    let folder = tempfile::tempdir().expect("temp dir");
    std::fs::copy(fixtures.join("echo.wasm"), folder.path().join("echo.wasm"))
        .expect("copy echo.wasm");
    println!(
        "capsule HTTP benchmark ({} cores, {CLIENTS} clients)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let this = driver::binary::capsule_binary();
    let cache = driver::precompiled(this, folder.path());
    let auth = AuthSetup::create(cache.path());
    let cache_path = cache.path().to_path_buf();
    let served = move |stateless: bool| -> Start {
        let cache = cache_path.clone();
        Box::new(move |plugins, port| capsule_http_of(this, plugins, &cache, port, stateless))
    };
    let mut targets = vec![
        Target {
            name: "capsule stateful (session)".into(),
            start: served(false),
            request: call_of("echo_echo"),
            answer: Answer::Success,
            calls_per_client: 2_000,
            bearer: None,
        },
        Target {
            name: "capsule stateless".into(),
            start: served(true),
            request: call_of("echo_echo"),
            answer: Answer::Success,
            calls_per_client: 2_000,
            bearer: None,
        },
        Target {
            name: "capsule stateful (session) + JWT".into(),
            start: auth.server(&auth.jwt_config, false),
            request: call_of("echo_echo"),
            answer: Answer::Success,
            calls_per_client: 2_000,
            bearer: Some(auth.jwt.clone()),
        },
        Target {
            name: "capsule stateless + JWT".into(),
            start: auth.server(&auth.jwt_config, true),
            request: call_of("echo_echo"),
            answer: Answer::Success,
            calls_per_client: 2_000,
            bearer: Some(auth.jwt.clone()),
        },
        Target {
            name: "capsule stateless + static token".into(),
            start: auth.server(&auth.static_config, true),
            request: call_of("echo_echo"),
            answer: Answer::Success,
            calls_per_client: 2_000,
            bearer: Some(auth.static_token.clone()),
        },
    ];
    // Other capsule binaries (e.g. the previous commit's; a `:`-separated list), stateless
    // and stateful, in the same rounds: a change is judged by a ratio on one machine state.
    let mut caches = vec![cache];
    for baseline in driver::baselines() {
        let cache = driver::precompiled(&baseline, folder.path());
        for stateless in [true, false] {
            let (binary, cache) = (baseline.clone(), cache.path().to_path_buf());
            targets.push(Target {
                name: format!(
                    "capsule {} (baseline {})",
                    if stateless {
                        "stateless"
                    } else {
                        "stateful (session)"
                    },
                    baseline.display()
                ),
                start: Box::new(move |plugins, port| {
                    capsule_http_of(&binary, plugins, &cache, port, stateless)
                }),
                request: call_of("echo_echo"),
                answer: Answer::Success,
                calls_per_client: 2_000,
                bearer: None,
            });
        }
        caches.push(cache);
    }
    if python_peer().is_some() {
        targets.push(Target {
            name: "python mcp 2.x stateful".into(),
            start: Box::new(|_, port| python_http(port, false)),
            request: call_of("echo"),
            answer: Answer::Success,
            calls_per_client: 150,
            bearer: None,
        });
        targets.push(Target {
            name: "python mcp 2.x stateless".into(),
            start: Box::new(|_, port| python_http(port, true)),
            request: call_of("echo"),
            answer: Answer::Success,
            calls_per_client: 150,
            bearer: None,
        });
    } else {
        println!(
            "(Python MCP SDK not found: set CAPSULE_BENCH_PYTHON to a python with `mcp` 2.x for the side-by-side peer)"
        );
    }

    let mut results: Vec<(&str, Vec<Round>)> =
        targets.iter().map(|t| (t.name.as_str(), vec![])).collect();
    let round_count = driver::rounds(ROUNDS);
    for round in 0..round_count {
        // Each round starts one target later, so no target always runs right after the
        // same one (an order effect would otherwise read as a cost of that target).
        for i in 0..targets.len() {
            let index = (i + round) % targets.len();
            results[index]
                .1
                .push(measure(&targets[index], folder.path()));
        }
    }

    println!("\ntools/call over streamable HTTP, {round_count} interleaved rounds (median round):");
    let mut rates = Vec::new();
    for (name, rounds) in &mut results {
        rounds.sort_by(|a, b| a.per_second.total_cmp(&b.per_second));
        let median = &rounds[rounds.len() / 2];
        report_latency(&format!("{name}: per call"), &median.calls);
        println!(
            "{name}: {:.0} calls/s, server CPU {:.1} µs per call, clients' CPU {:.1} µs per call",
            median.per_second,
            micros(median.cpu_per_call),
            micros(median.clients_cpu_per_call)
        );
        rates.push((
            *name,
            median.per_second,
            percentile(&median.calls, 0.99),
            median.cpu_per_call,
        ));
    }
    for (baseline, rate, _, _) in rates.iter().filter(|r| r.0.contains("(baseline ")) {
        let this = baseline.split(" (baseline ").next().unwrap_or_default();
        if let Some((_, this_rate, _, _)) = rates.iter().find(|r| r.0 == this) {
            println!(
                "baseline: {baseline} / {this}: {:.3}x the calls/s",
                rate / this_rate
            );
        }
    }
    for (with_auth, rate, _, cpu) in rates.iter().filter(|r| r.0.contains(" + ")) {
        let plain = with_auth.split(" + ").next().unwrap_or_default();
        if let Some((_, plain_rate, _, plain_cpu)) = rates.iter().find(|r| r.0 == plain) {
            println!(
                "auth overhead: {with_auth} / {plain}: {:.3}x the calls/s ({:+.1}%), {:.3}x the server CPU per call",
                rate / plain_rate,
                (rate / plain_rate - 1.0) * 100.0,
                cpu.as_secs_f64() / plain_cpu.as_secs_f64().max(f64::MIN_POSITIVE)
            );
        }
    }
    for (capsule, rate, p99, _) in rates.iter().filter(|r| {
        r.0.starts_with("capsule") && !r.0.contains(" + ") && !r.0.contains("(baseline ")
    }) {
        let mode = capsule.trim_start_matches("capsule ").split(' ').next();
        if let Some((peer, peer_rate, _, _)) = rates
            .iter()
            .find(|r| r.0.starts_with("python") && r.0.split(' ').nth(3) == mode)
        {
            println!(
                "{capsule}: {:.1}x the calls/s of {peer}; p99 {:.2} ms",
                rate / peer_rate,
                micros(*p99) / 1000.0
            );
        }
    }

    stateless_breakdown(&served, folder.path());
    io_beside_spinning(&fixtures);
}

/// Part 2: the stateless server's CPU per request for `ping`, a refused `tools/call` and
/// a `tools/call`, in interleaved rounds (median round of each).
fn stateless_breakdown(served: &dyn Fn(bool) -> Start, plugins: &Path) {
    let kinds = [
        ("ping", PING.to_string(), Answer::Success),
        (
            "tools/call refused before an instance (invalid arguments)",
            REFUSED_CALL.to_string(),
            Answer::ToolError,
        ),
        ("tools/call", call_of("echo_echo"), Answer::Success),
    ];
    let targets: Vec<Target> = kinds
        .iter()
        .map(|(name, request, answer)| Target {
            name: (*name).to_string(),
            start: served(true),
            request: request.clone(),
            answer: *answer,
            calls_per_client: 2_000,
            bearer: None,
        })
        .collect();
    let mut rounds: Vec<Vec<Round>> = targets.iter().map(|_| Vec::new()).collect();
    for round in 0..driver::rounds(ROUNDS) {
        for i in 0..targets.len() {
            let index = (i + round) % targets.len();
            rounds[index].push(measure(&targets[index], plugins));
        }
    }
    println!(
        "\nwhere a stateless request's server CPU goes (capsule stateless, {CLIENTS} clients, median round):"
    );
    let mut cpu = Vec::new();
    for (target, mut rounds) in targets.iter().zip(rounds) {
        rounds.sort_by(|a, b| a.per_second.total_cmp(&b.per_second));
        let median = &rounds[rounds.len() / 2];
        println!(
            "stateless {}: {:.0} requests/s, server CPU {:.1} µs per request, clients' CPU {:.1} µs",
            target.name,
            median.per_second,
            micros(median.cpu_per_call),
            micros(median.clients_cpu_per_call)
        );
        cpu.push(micros(median.cpu_per_call));
    }
    if let [ping, refused, call] = cpu[..] {
        println!(
            "stateless tools/call: {ping:.1} µs HTTP and MCP (ping), {:.1} µs the call's checks and accounting (refused call - ping), {:.1} µs its instance (call - refused call)",
            refused - ping,
            call - refused
        );
    }
}

/// One round: start the server, 16 clients each send their calls one after another.
fn measure(target: &Target, plugins: &Path) -> Round {
    let port = free_port();
    let address: SocketAddr = ([127, 0, 0, 1], port).into();
    let server = Running(
        (target.start)(plugins, port)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the server"),
    );
    wait_listening(address, Duration::from_secs(60));
    let (request, answer) = (target.request.clone(), target.answer);
    let calls = target.calls_per_client;
    let clients: Vec<HttpClient> = (0..CLIENTS)
        .map(|_| HttpClient::connect_as(address, "/mcp", target.bearer.clone()))
        .collect();
    let barrier = Arc::new(std::sync::Barrier::new(CLIENTS + 1));
    let workers: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            let (request, barrier) = (request.clone(), barrier.clone());
            std::thread::spawn(move || {
                let send = |client: &mut HttpClient| match answer {
                    Answer::Success => client.call(&request),
                    Answer::ToolError => client.refused_call(&request),
                };
                for _ in 0..WARMUP_PER_CLIENT.min(calls) {
                    send(&mut client);
                }
                barrier.wait();
                (0..calls).map(|_| send(&mut client)).collect::<Vec<_>>()
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    let cpu_before = cpu_time(server.0.id());
    let clients_before = cpu_time(std::process::id());
    let mut all = Vec::with_capacity(CLIENTS * calls);
    for worker in workers {
        all.extend(worker.join().expect("client thread"));
    }
    let elapsed = started.elapsed();
    let cpu = cpu_time(server.0.id()).saturating_sub(cpu_before);
    let clients_cpu = cpu_time(std::process::id()).saturating_sub(clients_before);
    let count = u32::try_from(all.len()).expect("fewer calls than u32::MAX");
    Round {
        per_second: all.len() as f64 / elapsed.as_secs_f64(),
        cpu_per_call: cpu / count,
        clients_cpu_per_call: clients_cpu / count,
        calls: all,
    }
}

/// `ping` latency over HTTP while every call slot runs `hostile_spin` (each spins until its
/// 3 s time limit and is sent again at once), so the wasm side is saturated throughout.
fn io_beside_spinning(fixtures: &Path) {
    let folder = tempfile::tempdir().expect("temp dir");
    let plugins = folder.path().join("plugins");
    std::fs::create_dir(&plugins).expect("plugins folder");
    std::fs::copy(fixtures.join("hostile.wasm"), plugins.join("hostile.wasm"))
        .expect("copy hostile.wasm");
    let config = folder.path().join("capsule.toml");
    std::fs::write(
        &config,
        format!(
            "[runtime]\nmax-concurrent-calls = {SLOTS}\nmax-calls-per-plugin = {SLOTS}\n\n\
             [plugins.hostile.limits]\nfuel = 10_000_000_000_000\ntimeout = \"3s\"\n"
        ),
    )
    .expect("write capsule.toml");
    let port = free_port();
    let address: SocketAddr = ([127, 0, 0, 1], port).into();
    let this = driver::binary::capsule_binary();
    let cache = driver::precompiled(this, &plugins);
    let mut command = capsule_http_of(this, &plugins, cache.path(), port, false);
    command.arg("--config").arg(&config);
    let _server = Running(
        command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn capsule"),
    );
    wait_listening(address, Duration::from_secs(60));

    let stop = Arc::new(AtomicBool::new(false));
    let spinners: Vec<_> = (0..SLOTS)
        .map(|_| {
            let stop = stop.clone();
            let mut client = HttpClient::connect(address, "/mcp");
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let response = client.request(SPIN);
                    assert!(
                        response.message.contains("time limit"),
                        "hostile_spin should end at its time limit: {}",
                        response.message
                    );
                }
            })
        })
        .collect();
    let mut pinger = HttpClient::connect(address, "/mcp");
    // Let every spinner be admitted before measuring beside them.
    std::thread::sleep(Duration::from_millis(500));
    let pings: Vec<Duration> = (0..PINGS).map(|_| pinger.call(PING)).collect();
    report_latency(
        &format!("HTTP ping while {SLOTS} slots run a spinning plugin"),
        &pings,
    );
    stop.store(true, Ordering::Relaxed);
    for spinner in spinners {
        spinner.join().expect("spinner thread");
    }
}

/// The two `[auth]` setups the auth rounds run with, in a temporary folder.
struct AuthSetup {
    _folder: tempfile::TempDir,
    /// The compile cache the servers start from.
    cache: PathBuf,
    /// `[auth.tokens.bench]`, written by `capsule auth add-token`.
    static_config: PathBuf,
    static_token: String,
    /// `[auth.jwt]` with a local JWKS file holding an ES256 key made here.
    jwt_config: PathBuf,
    jwt: String,
}

impl AuthSetup {
    fn create(cache: &Path) -> Self {
        let folder = tempfile::tempdir().expect("temp dir");
        let static_config = folder.path().join("static.toml");
        let output = Command::new(driver::binary::capsule_binary())
            .args([
                "auth",
                "add-token",
                "bench",
                "--scopes",
                "tools:call",
                "--config",
            ])
            .arg(&static_config)
            .output()
            .expect("run capsule auth add-token");
        assert!(
            output.status.success(),
            "capsule auth add-token: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let static_token = String::from_utf8(output.stdout)
            .expect("a token is text")
            .trim()
            .to_string();

        let key = jws::EcKey::generate();
        let jwks = json!({"keys": [key.jwk("bench")]});
        let jwks_file = folder.path().join("jwks.json");
        std::fs::write(&jwks_file, jwks.to_string()).expect("write jwks.json");
        let jwt_config = folder.path().join("jwt.toml");
        std::fs::write(
            &jwt_config,
            format!(
                "[auth.jwt]\nissuer = \"https://issuer.bench\"\naudience = \"https://capsule.bench/mcp\"\n\
                 key-file = {:?}\nalgorithms = [\"ES256\"]\n",
                jwks_file.display().to_string()
            ),
        )
        .expect("write jwt.toml");
        let expires = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs()
            + 3600;
        let claims = json!({"iss": "https://issuer.bench", "aud": "https://capsule.bench/mcp",
            "sub": "bench", "exp": expires, "scope": "tools:call"});
        let jwt = key.sign("bench", &claims);
        Self {
            _folder: folder,
            cache: cache.to_path_buf(),
            static_config,
            static_token,
            jwt_config,
            jwt,
        }
    }

    /// Starts `capsule serve --transport http` with `config`.
    fn server(&self, config: &Path, stateless: bool) -> Start {
        let (config, cache) = (config.to_path_buf(), self.cache.clone());
        Box::new(move |plugins, port| {
            let this = driver::binary::capsule_binary();
            let mut command = capsule_http_of(this, plugins, &cache, port, stateless);
            command.arg("--config").arg(&config);
            command
        })
    }
}

/// `binary serve --transport http` on `port` with the plugins in `plugins`, compiled into
/// `cache` beforehand ([`driver::precompiled`]).
fn capsule_http_of(
    binary: &Path,
    plugins: &Path,
    cache: &Path,
    port: u16,
    stateless: bool,
) -> Command {
    let mut command = Command::new(binary);
    command
        .args(["serve", "--transport", "http", "--log-level", "warn"])
        .args(["--port", &port.to_string(), "--plugins"])
        .arg(plugins)
        .arg("--cache-dir")
        .arg(cache);
    if stateless {
        command.arg("--stateless");
    }
    command
}

fn python_http(port: u16, stateless: bool) -> Command {
    let python = python_peer().expect("checked before the rounds");
    let mut command = Command::new(python);
    command
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/bench/python_echo_http_server.py"),
        )
        .arg(port.to_string());
    if stateless {
        command.arg("--stateless");
    }
    command
}
