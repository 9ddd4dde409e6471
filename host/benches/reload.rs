//! `cargo bench -p capsule --bench reload`: hot reload over stdio (issue #17), in
//! BENCHMARKS.md ("Hot reload").
//!
//! `capsule serve` watches its plugins folder; a minimal blocking stdio client measures,
//! from the moment a file is written:
//! - `list_changed`: until `notifications/tools/list_changed` arrives;
//! - callable: until a `tools/call` of the new tool (sent right after) answers.
//!
//! Cases: a small Rust plugin (the echo fixture) compiled (`--no-cache`) and from the
//! cache; the Python example (`tables.wasm`, 19 MB) compiled and from the cache; a no-op
//! save (the same bytes rewritten: until the reloader logs that nothing changed, and the
//! server's CPU time for it); one plugin replaced among 50.
//!
//! Needs the components: run `cargo xtask plugins` first.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

const RUNS: usize = 5;

fn main() {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    let echo = target.join("fixtures/echo.wasm");
    let greedy = target.join("fixtures/greedy.wasm");
    let tables = target.join("plugins/tables.wasm");
    if !echo.is_file() || !greedy.is_file() {
        println!(
            "no fixtures in {}: run `cargo xtask plugins`",
            target.display()
        );
        return;
    }
    println!(
        "capsule hot reload over stdio, {} cores, median of the runs (min–max); times from the file written\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("| case | runs | `list_changed` | tool callable |");
    println!("|---|---|---|---|");
    let cache = tempfile::tempdir().expect("temp dir");
    added(
        "Rust echo fixture, compiled",
        &echo,
        "echo_echo",
        None,
        RUNS,
    );
    added(
        "Rust echo fixture, from the cache",
        &echo,
        "echo_echo",
        Some(cache.path()),
        RUNS,
    );
    if tables.is_file() {
        added(
            "Python `tables`, compiled",
            &tables,
            "tables_csv_to_markdown",
            None,
            1,
        );
        added(
            "Python `tables`, from the cache",
            &tables,
            "tables_csv_to_markdown",
            Some(cache.path()),
            3,
        );
    } else {
        println!("(no {}: Python cases skipped)", tables.display());
    }
    one_of_fifty(&echo, &greedy, cache.path());
    no_op(&echo, cache.path());
}

/// A running `capsule serve` on a folder, with its stderr lines as they arrive.
struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    stderr: Receiver<String>,
    next_id: u64,
    folder: tempfile::TempDir,
}

impl Server {
    /// Serves a folder holding `plugins` (`(from, file name)`), with `cache` or none.
    fn start(plugins: &[(&Path, String)], cache: Option<&Path>) -> Self {
        let folder = tempfile::tempdir().expect("temp dir");
        for (from, name) in plugins {
            std::fs::copy(from, folder.path().join(name)).expect("copy a plugin");
        }
        let mut command = Command::new(env!("CARGO_BIN_EXE_capsule"));
        command
            .args([
                "serve",
                "--watch",
                "--log-level",
                "warn,capsule::reload=debug",
            ])
            .arg("--plugins")
            .arg(folder.path())
            .env_remove("CAPSULE_CONFIG")
            // Everything in the folder at start is listed by the first `tools/list`.
            .env("CAPSULE_SERVER_BACKGROUND_COMPILE_ABOVE", "1GiB");
        match cache {
            Some(dir) => command.env("CAPSULE_CACHE_DIR", dir),
            None => command.arg("--no-cache"),
        };
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn capsule serve");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let stderr_pipe = BufReader::new(child.stderr.take().expect("stderr"));
        let (send, stderr) = channel();
        std::thread::spawn(move || {
            for line in stderr_pipe.lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        let mut server = Self {
            child,
            stdin,
            stdout,
            stderr,
            next_id: 1,
            folder,
        };
        server.request(
            "initialize",
            r#"{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"0"}}"#,
        );
        server.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        server.request("tools/list", "{}");
        server.wait_for_log("watching the plugins folder");
        server
    }

    fn path(&self, name: &str) -> PathBuf {
        self.folder.path().join(name)
    }

    fn send(&mut self, line: &str) {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .expect("write a request");
    }

    /// Sends a request and waits for its response (notifications before it are skipped).
    fn request(&mut self, method: &str, params: &str) -> String {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#
        ));
        self.wait_for(&format!(r#""id":{id},"#))
    }

    fn wait_for(&mut self, needle: &str) -> String {
        loop {
            let mut line = String::new();
            self.stdout
                .read_line(&mut line)
                .expect("read from the server");
            assert!(!line.is_empty(), "the server closed stdout before {needle}");
            if line.contains(needle) {
                return line;
            }
        }
    }

    fn wait_for_list_changed(&mut self) {
        self.wait_for("notifications/tools/list_changed");
    }

    fn wait_for_log(&self, needle: &str) {
        loop {
            let line = self
                .stderr
                .recv_timeout(Duration::from_secs(300))
                .unwrap_or_else(|_| panic!("no log line with {needle}"));
            if line.contains(needle) {
                return;
            }
        }
    }

    /// Calls `tool` (with the arguments its case needs) and checks it answered.
    fn call(&mut self, tool: &str) {
        let arguments = if tool.ends_with("_csv_to_markdown") {
            r#"{"csv":"a,b\n1,2"}"#
        } else if tool.ends_with("_echo") {
            r#"{"message":"hi"}"#
        } else {
            "{}"
        };
        let response = self.request(
            "tools/call",
            &format!(r#"{{"name":"{tool}","arguments":{arguments}}}"#),
        );
        assert!(
            response.contains(r#""result""#) && !response.contains(r#""isError":true"#),
            "{tool} did not answer: {response}"
        );
    }

    /// The server's CPU time so far (user + system, from `/proc/PID/stat`).
    fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .expect("read /proc/PID/stat");
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks: u64 =
            fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
        // CLK_TCK is 100 on Linux.
        Duration::from_millis(ticks * 10)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plugin copied into a served folder, `runs` times (deleted again between runs).
fn added(label: &str, plugin: &Path, tool: &str, cache: Option<&Path>, runs: usize) {
    if let Some(cache) = cache {
        // Warm the cache with the optimized code (a server would store it only once its
        // background optimization ends).
        let folder = tempfile::tempdir().expect("temp dir");
        std::fs::copy(plugin, folder.path().join("p.wasm")).expect("copy");
        let status = Command::new(env!("CARGO_BIN_EXE_capsule"))
            .arg("check")
            .arg("--plugins")
            .arg(folder.path())
            .arg("--cache-dir")
            .arg(cache)
            .env_remove("CAPSULE_CONFIG")
            .stdout(Stdio::null())
            .status()
            .expect("run capsule check");
        assert!(
            status.success(),
            "capsule check of {} failed",
            plugin.display()
        );
    }
    let mut server = Server::start(&[], cache);
    let name = plugin.file_name().expect("a file name").to_owned();
    let mut changed = Vec::new();
    let mut callable = Vec::new();
    for _ in 0..runs {
        let to = server.path(&name.to_string_lossy());
        let started = Instant::now();
        std::fs::copy(plugin, &to).expect("copy");
        server.wait_for_list_changed();
        changed.push(started.elapsed());
        server.call(tool);
        callable.push(started.elapsed());
        std::fs::remove_file(&to).expect("remove");
        server.wait_for_list_changed();
    }
    row(label, &mut changed, &mut callable);
}

/// One of 50 plugins (echo fixtures, from the cache) replaced by another build.
fn one_of_fifty(echo: &Path, greedy: &Path, cache: &Path) {
    let plugins: Vec<(&Path, String)> = (0..50).map(|i| (echo, format!("e{i:02}.wasm"))).collect();
    let mut server = Server::start(&plugins, Some(cache));
    let mut changed = Vec::new();
    let mut callable = Vec::new();
    for run in 0..RUNS {
        let (bytes, tool) = if run % 2 == 0 {
            (greedy, "e07_ok")
        } else {
            (echo, "e07_echo")
        };
        let started = Instant::now();
        std::fs::copy(bytes, server.path("e07.wasm")).expect("copy");
        server.wait_for_list_changed();
        changed.push(started.elapsed());
        server.call(tool);
        callable.push(started.elapsed());
    }
    row(
        "1 of 50 plugins replaced (from the cache)",
        &mut changed,
        &mut callable,
    );
}

/// The same bytes written again: no `list_changed`; the time until the reloader decided,
/// and the server's CPU time for it.
fn no_op(echo: &Path, cache: &Path) {
    let plugins: Vec<(&Path, String)> = (0..50).map(|i| (echo, format!("e{i:02}.wasm"))).collect();
    let server = Server::start(&plugins, Some(cache));
    let mut decided = Vec::new();
    let mut cpu = Vec::new();
    let bytes = std::fs::read(echo).expect("read echo");
    for _ in 0..RUNS {
        let before = server.cpu();
        let started = Instant::now();
        std::fs::write(server.path("e07.wasm"), &bytes).expect("write");
        server.wait_for_log("reload: no change to the tool set");
        decided.push(started.elapsed());
        cpu.push(server.cpu().saturating_sub(before));
    }
    let (d, c) = (stats(&mut decided), stats(&mut cpu));
    println!(
        "| no-op save among 50 plugins (same bytes): decided, no `list_changed` | {RUNS} | {d} | server CPU {c} |"
    );
}

fn row(label: &str, changed: &mut [Duration], callable: &mut [Duration]) {
    println!(
        "| {label} | {} | {} | {} |",
        changed.len(),
        stats(changed),
        stats(callable)
    );
}

/// `median (min–max)` in ms.
fn stats(times: &mut [Duration]) -> String {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    if times.len() == 1 {
        return format!("{:.0} ms", ms(times[0]));
    }
    format!(
        "{:.0} ms ({:.0}–{:.0})",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1])
    )
}
