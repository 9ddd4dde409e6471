//! `cargo bench -p capsule --bench soak_http`: mixed load against the real `capsule serve
//! --transport http` for `CAPSULE_SOAK_SECS` (default 600 s; CI's short form: 60).
//!
//! 64 clients, each on its own keep-alive connection and session: 48 make good calls
//! (`echo_echo`, each with its own message) and 16 call hostile tools in a loop (a runaway
//! loop, a memory bomb, a result flood and a panic, 4 clients each). First the good clients
//! run alone for a baseline (a sixth of the time, at most 30 s), then everything together.
//! Checks, exiting non-zero when one fails: no good call lost (an error, a wrong answer, a
//! broken connection) and no call hung (unanswered after [`HUNG_AFTER`]); the good calls'
//! p99 under load within 3× the baseline's (2× in runs under 5 minutes, such as CI's: with
//! demotion they measure 1.1×); the host's RSS floor (its lowest reading in a
//! quarter of the loaded run) in the last quarter, or the RSS once the load drained if lower,
//! at most 10% (or [`FLAT_MIB`], if more: CI's 60 s form) above the second quarter's.
//! Writes `target/soak-http/latency.png` (good calls' p50 and p99 per second, ms) and
//! `target/soak-http/rss.png` (RSS, MiB) with `plotters`; the plots carry no text (no font
//! is needed), their scales are printed with the report. The circuit breaker is off: the
//! soak measures the sandbox under a steady stream of faults, which an open breaker would
//! refuse before they run. Needs the fixtures: run `cargo xtask plugins` first.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use driver::http::{HttpClient, free_port, wait_listening};
use driver::{percentile, plot};
use plotters::style::{BLUE, RED};

mod driver;

const GOOD_CLIENTS: usize = 48;
/// Each hostile tool, its arguments, and how many clients call it. `big_result` of 8 MiB
/// stays within the 32 MiB memory limit and breaks the 4 MiB result limit.
const HOSTILE: &[(&str, &str, usize)] = &[
    ("hostile_spin", "{}", 4),
    ("hostile_grow_memory", "{}", 4),
    ("hostile_big_result", r#"{"mb":8}"#, 4),
    ("hostile_panic", "{}", 4),
];
/// A call unanswered this long counts as hung (the hostile limits end calls within 300 ms).
const HUNG_AFTER: Duration = Duration::from_secs(30);
const MIB: f64 = (1 << 20) as f64;
/// Growth of the RSS floor that counts as flat when 10% of it is less (short runs).
const FLAT_MIB: f64 = 16.0;

/// Ends the server when the bench ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the clients saw, shared with the main thread.
#[derive(Default)]
struct Seen {
    /// Good calls: (seconds since start, latency).
    good: Mutex<Vec<(f64, Duration)>>,
    /// Good calls lost, with the first few reasons.
    lost: Mutex<Vec<String>>,
    /// Hostile calls answered, by the first words of their answer.
    hostile: Mutex<std::collections::BTreeMap<String, u64>>,
}

fn main() {
    let secs: u64 = std::env::var("CAPSULE_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let baseline = Duration::from_secs((secs / 6).clamp(2, 30));
    let loaded = Duration::from_secs(secs).saturating_sub(baseline);
    let fixtures = driver::fixtures(&["echo", "hostile"]);
    let folder = tempfile::tempdir().expect("temp dir");
    let plugins = folder.path().join("plugins");
    std::fs::create_dir(&plugins).expect("plugins folder");
    for file in ["echo.wasm", "hostile.wasm"] {
        std::fs::copy(fixtures.join(file), plugins.join(file)).expect("copy fixture");
    }
    let config = folder.path().join("capsule.toml");
    std::fs::write(&config, driver::soak::config("", "")).expect("write capsule.toml");
    let port = free_port();
    let address: SocketAddr = ([127, 0, 0, 1], port).into();
    let server = Running(
        Command::new(env!("CARGO_BIN_EXE_capsule"))
            .args(["serve", "--transport", "http", "--log-level", "error"])
            .args(["--port", &port.to_string(), "--config"])
            .arg(&config)
            .arg("--plugins")
            .arg(&plugins)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn capsule serve"),
    );
    wait_listening(address, Duration::from_secs(120));
    let pid = server.0.id();
    println!(
        "soak over HTTP: {GOOD_CLIENTS} good + {} hostile clients; baseline {}s, loaded {}s",
        HOSTILE.iter().map(|h| h.2).sum::<usize>(),
        baseline.as_secs(),
        loaded.as_secs()
    );

    let start = Instant::now();
    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    // Per client: when its call in flight started (ms since `start`, +1), or 0.
    let mut in_flight = Vec::new();
    let mut threads = Vec::new();
    for id in 0..GOOD_CLIENTS {
        let (seen, stop) = (seen.clone(), stop.clone());
        let started = Arc::new(AtomicU64::new(0));
        in_flight.push(started.clone());
        threads.push(std::thread::spawn(move || {
            good_client(id, address, start, &seen, &stop, &started)
        }));
    }
    let mut rss: Vec<(f64, f64)> = Vec::new();
    let hung = watch(pid, start, start + baseline, &in_flight, &mut rss);
    let loaded_from = start.elapsed().as_secs_f64();
    for &(tool, arguments, clients) in HOSTILE {
        for _ in 0..clients {
            let (seen, stop) = (seen.clone(), stop.clone());
            let started = Arc::new(AtomicU64::new(0));
            in_flight.push(started.clone());
            threads.push(std::thread::spawn(move || {
                hostile_client(tool, arguments, address, start, &seen, &stop, &started)
            }));
        }
    }
    let hung = hung + watch(pid, start, Instant::now() + loaded, &in_flight, &mut rss);
    stop.store(true, Ordering::Relaxed);
    if hung > 0 {
        println!("FAIL: {hung} calls hung (no answer after {HUNG_AFTER:?})");
        std::process::exit(1);
    }
    let broken = threads
        .into_iter()
        .map(std::thread::JoinHandle::join)
        .filter(Result::is_err)
        .count();
    // The server's RSS once every call has answered: what a burst held is given back or
    // reused, what grows with the number of calls stays.
    std::thread::sleep(Duration::from_secs(1));
    let drained = resident(pid).map_or(f64::INFINITY, |bytes| bytes / MIB);

    let good = seen.good.lock().expect("good calls").clone();
    let (before, during): (Vec<_>, Vec<_>) = good.iter().partition(|(t, _)| *t < loaded_from);
    let times = |calls: &[&(f64, Duration)]| -> Vec<Duration> {
        let mut times: Vec<Duration> = calls.iter().map(|(_, d)| *d).collect();
        times.sort();
        times
    };
    let (unloaded, under_load) = (times(&before), times(&during));
    let (p99_unloaded, p99_loaded) = (percentile(&unloaded, 0.99), percentile(&under_load, 0.99));
    let ratio = p99_loaded.as_secs_f64() / p99_unloaded.as_secs_f64().max(1e-9);
    println!(
        "good calls: {} unloaded (p50 {:?}, p99 {:?}), {} under load (p50 {:?}, p99 {:?}); p99 ratio {ratio:.2}",
        unloaded.len(),
        percentile(&unloaded, 0.5),
        p99_unloaded,
        under_load.len(),
        percentile(&under_load, 0.5),
        p99_loaded,
    );
    for (answer, count) in seen.hostile.lock().expect("hostile").iter() {
        println!("  hostile: {count} × {answer}");
    }
    let loaded_rss: Vec<(f64, f64)> = rss
        .iter()
        .copied()
        .filter(|(t, _)| *t >= loaded_from)
        .collect();
    let floor = |from: f64, to: f64| -> f64 {
        let span = loaded.as_secs_f64();
        loaded_rss
            .iter()
            .filter(|(t, _)| *t >= loaded_from + from * span && *t < loaded_from + to * span)
            .map(|(_, r)| *r)
            .fold(f64::INFINITY, f64::min)
    };
    let (second, last) = (floor(0.25, 0.5), floor(0.75, 1.01).min(drained));
    let growth = last / second - 1.0;
    // 10% of the floor, or FLAT_MIB if more: in a 60 s run the windows are 12 s apart and
    // the allocator's arenas for 64 connections still settle (+13 MiB measured once).
    let allowed = (second * 0.10).max(FLAT_MIB);
    let peak = rss.iter().map(|(_, r)| *r).fold(0.0, f64::max);
    println!(
        "RSS: start {:.0} MiB, floor of the 2nd quarter {second:.0} MiB, of the last (or drained, if lower: {drained:.0} MiB) {last:.0} MiB ({:+.1}%), peak {peak:.0} MiB",
        rss.first().map_or(0.0, |r| r.1),
        growth * 100.0
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/soak-http");
    std::fs::create_dir_all(&dir).expect("create target/soak-http");
    plot_latency(
        &dir.join("latency.png"),
        &good,
        start.elapsed().as_secs_f64(),
    );
    plot::lines(&dir.join("rss.png"), "MiB", &[(rss.clone(), BLUE)]);

    let lost = seen.lost.lock().expect("lost").clone();
    let mut failed = Vec::new();
    if !lost.is_empty() || broken > 0 {
        failed.push(format!(
            "{} good calls lost, {broken} clients broke: {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        ));
    }
    // The bound is 3× (issue #18), for the 10-minute run. A short run (CI's 60 s, debug)
    // measured 2.47–2.76× before plugins that keep hitting their limits were demoted to
    // the low-priority thread, and 1.10× after: its 2× catches the demotion breaking.
    let ratio_limit = if secs >= 300 { 3.0 } else { 2.0 };
    if ratio > ratio_limit {
        failed.push(format!(
            "good-call p99 under load is {ratio:.2}× the unloaded p99 (limit {ratio_limit}×)"
        ));
    }
    if last - second > allowed {
        failed.push(format!(
            "RSS floor grew {:.1} MiB ({:+.1}%; limit {allowed:.0} MiB: 10% or {FLAT_MIB} MiB)",
            last - second,
            growth * 100.0
        ));
    }
    if failed.is_empty() {
        println!("PASS");
    } else {
        for failure in &failed {
            println!("FAIL: {failure}");
        }
        std::process::exit(1);
    }
}

/// Makes good calls until `stop`, recording each latency or why it was lost.
fn good_client(
    id: usize,
    address: SocketAddr,
    start: Instant,
    seen: &Seen,
    stop: &AtomicBool,
    started: &AtomicU64,
) {
    let mut client = HttpClient::connect(address, "/mcp");
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let message = format!("good {id} {n}");
        let call = format!(
            r#"{{"jsonrpc":"2.0","id":ID,"method":"tools/call","params":{{"name":"echo_echo","arguments":{{"message":"{message}"}}}}}}"#
        );
        let began = Instant::now();
        started.store(since(start) + 1, Ordering::Relaxed);
        let response = client.request(&call);
        started.store(0, Ordering::Relaxed);
        let latency = began.elapsed();
        let answered = response.status == 200
            && response
                .message
                .contains(&format!("\"text\":\"{message}\""))
            && !response.message.contains("\"isError\":true");
        if answered {
            let at = began.duration_since(start).as_secs_f64();
            seen.good.lock().expect("good calls").push((at, latency));
        } else {
            seen.lost.lock().expect("lost").push(format!(
                "{} {}",
                response.status,
                response.message.chars().take(200).collect::<String>()
            ));
        }
    }
}

/// Calls `tool` until `stop`, counting how its calls ended.
fn hostile_client(
    tool: &str,
    arguments: &str,
    address: SocketAddr,
    start: Instant,
    seen: &Seen,
    stop: &AtomicBool,
    started: &AtomicU64,
) {
    let mut client = HttpClient::connect(address, "/mcp");
    let call = format!(
        r#"{{"jsonrpc":"2.0","id":ID,"method":"tools/call","params":{{"name":"{tool}","arguments":{arguments}}}}}"#
    );
    while !stop.load(Ordering::Relaxed) {
        started.store(since(start) + 1, Ordering::Relaxed);
        let response = client.request(&call);
        started.store(0, Ordering::Relaxed);
        let answer = match response
            .message
            .split_once("sandbox fault: plugin `hostile` ")
        {
            Some((_, fault)) => fault
                .split([' ', '(', ';'])
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
            None => format!("HTTP {} without a fault", response.status),
        };
        *seen
            .hostile
            .lock()
            .expect("hostile")
            .entry(format!("{tool}: {answer}"))
            .or_default() += 1;
    }
}

fn since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
}

/// Samples the server's RSS every 250 ms until `until`, and counts calls in flight longer
/// than [`HUNG_AFTER`] (each once).
fn watch(
    pid: u32,
    start: Instant,
    until: Instant,
    in_flight: &[Arc<AtomicU64>],
    rss: &mut Vec<(f64, f64)>,
) -> usize {
    let mut hung = 0;
    while Instant::now() < until {
        if let Some(bytes) = resident(pid) {
            rss.push((start.elapsed().as_secs_f64(), bytes / MIB));
        }
        let now = since(start);
        for call in in_flight {
            let began = call.load(Ordering::Relaxed);
            if began > 0 && now.saturating_sub(began - 1) > HUNG_AFTER.as_millis() as u64 {
                hung += 1;
                call.store(0, Ordering::Relaxed);
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    hung
}

/// `VmRSS` of `pid`, in bytes.
fn resident(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// Good calls' p50 (blue) and p99 (red) per second, in ms, over the whole run.
fn plot_latency(path: &Path, good: &[(f64, Duration)], total: f64) {
    let seconds = total.ceil() as usize + 1;
    let mut buckets: Vec<Vec<Duration>> = vec![Vec::new(); seconds];
    for (at, latency) in good {
        buckets[(*at as usize).min(seconds - 1)].push(*latency);
    }
    let series = |q: f64| -> Vec<(f64, f64)> {
        buckets
            .iter()
            .enumerate()
            .filter(|(_, b)| !b.is_empty())
            .map(|(second, b)| (second as f64, percentile(b, q).as_secs_f64() * 1000.0))
            .collect()
    };
    plot::lines(
        path,
        "ms (blue p50, red p99)",
        &[(series(0.5), BLUE), (series(0.99), RED)],
    );
}
