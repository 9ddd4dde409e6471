//! Starting `capsule` on a folder of chosen plugins and talking MCP to it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ContentBlock, LoggingMessageNotificationParam,
    ProgressNotificationParam,
};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

/// The `capsule` binary under test.
pub fn capsule_bin() -> &'static str {
    env!("CARGO_BIN_EXE_capsule")
}

/// The repository's `target/` folder, where `cargo xtask plugins` puts components.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target")
}

/// A component built by `cargo xtask plugins`: `fixtures/echo.wasm`, `plugins/text.wasm`, ….
pub fn component(relative: &str) -> PathBuf {
    let path = target_dir().join(relative);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask plugins` first (`cargo xtask test` does)",
        path.display()
    );
    path
}

/// A folder holding one large component (`("plugins/tables.wasm", "tables.wasm")`; Python
/// and JS components are 12–19 MB). The first caller compiles it into the shared cache with
/// `capsule check`; the other tests using `once` wait for that instead of all compiling it at
/// the same time on two cores.
pub async fn compiled_once(
    once: &'static tokio::sync::OnceCell<()>,
    component: (&str, &str),
) -> Folder {
    let folder = Folder::new(&[component], "");
    once.get_or_init(|| async {
        let (code, stdout, stderr) = folder.run(&["check"]).await;
        assert_eq!(code, 0, "capsule check failed:\n{stdout}\n{stderr}");
    })
    .await;
    folder
}

/// A temporary plugins folder holding copies of `components` (`("fixtures/echo.wasm", "echo.wasm")`),
/// plus a `capsule.toml` with `config`.
pub struct Folder {
    pub dir: TempDir,
}

impl Folder {
    pub fn new(components: &[(&str, &str)], config: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("plugins")).expect("plugins dir");
        for (from, to) in components {
            std::fs::copy(component(from), dir.path().join("plugins").join(to))
                .expect("copy component");
        }
        std::fs::write(dir.path().join("capsule.toml"), config).expect("write config");
        Self { dir }
    }

    pub fn plugins(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }

    pub fn write_plugin(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.plugins().join(name), bytes).expect("write plugin file");
    }

    /// `capsule ARGS` for this folder: its config, its plugins, a shared compile cache.
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_of(Path::new(capsule_bin()), args)
    }

    /// [`Folder::command`] running the executable at `capsule` (e.g. a copy of it).
    pub fn command_of(&self, capsule: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(capsule);
        command
            .args(args)
            .arg("--config")
            .arg(self.dir.path().join("capsule.toml"))
            .arg("--plugins")
            .arg(self.plugins())
            .env("CAPSULE_CACHE_DIR", target_dir().join("e2e-cache"))
            // Tests expect their plugins listed by the first `tools/list`, also while the
            // shared cache is still cold: compile in the foreground (`loading.rs` tests the
            // background and removes this).
            .env("CAPSULE_SERVER_BACKGROUND_COMPILE_ABOVE", "1GiB")
            .env_remove("CAPSULE_LOG")
            .kill_on_drop(true);
        command
    }

    /// Runs a one-shot command to completion: (exit code, stdout, stderr).
    pub async fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.command(args).output().await.expect("run capsule");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Starts `capsule serve` and connects an MCP client to it.
    pub async fn serve(&self) -> Server {
        Server::start(self.command(&["serve"])).await
    }

    /// Like [`Folder::serve`], with the runtime's debug lines (`call admitted`, `call
    /// queued`) in stderr, so a test can wait for a call to reach a state.
    pub async fn serve_traced(&self) -> Server {
        let mut command = self.command(&["serve"]);
        command.env("CAPSULE_LOG", "info,capsule::runtime=debug");
        Server::start(command).await
    }
}

/// Notifications the client received.
#[derive(Clone, Default)]
pub struct Recorder {
    pub progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
    pub logs: Arc<Mutex<Vec<LoggingMessageNotificationParam>>>,
    /// `notifications/tools/list_changed` received.
    pub tools_changed: Arc<Mutex<usize>>,
    /// Woken on every notification, so a test can wait for one instead of polling.
    arrived: Arc<tokio::sync::Notify>,
}

impl Recorder {
    /// Waits until `done(logs)` holds for the log notifications received so far (checked
    /// again on each arrival), failing after [`HANG`] with `what` and the logs.
    pub async fn wait_for_logs<T>(
        &self,
        what: &str,
        mut done: impl FnMut(&[LoggingMessageNotificationParam]) -> Option<T>,
    ) -> T {
        let logs = self.logs.clone();
        self.wait_for(
            what,
            || done(&logs.lock().unwrap()),
            || format!("{:?}", self.logs.lock().unwrap()),
        )
        .await
    }

    /// Waits until `count` `tools/list_changed` notifications arrived, failing after
    /// [`HANG`].
    pub async fn wait_for_tools_changed(&self, count: usize) {
        let changed = self.tools_changed.clone();
        self.wait_for(
            "notifications/tools/list_changed",
            || (*changed.lock().unwrap() >= count).then_some(()),
            || format!("{} received", changed.lock().unwrap()),
        )
        .await
    }

    async fn wait_for<T>(
        &self,
        what: &str,
        mut done: impl FnMut() -> Option<T>,
        seen: impl Fn() -> String,
    ) -> T {
        let found = async {
            loop {
                let arrival = self.arrived.notified();
                tokio::pin!(arrival);
                arrival.as_mut().enable();
                if let Some(found) = done() {
                    return found;
                }
                arrival.await;
            }
        };
        match tokio::time::timeout(HANG, found).await {
            Ok(found) => found,
            Err(_) => panic!("{what} never arrived: {}", seen()),
        }
    }
}

impl ClientHandler for Recorder {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params);
        self.arrived.notify_waiters();
    }

    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        *self.tools_changed.lock().unwrap() += 1;
        self.arrived.notify_waiters();
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.logs.lock().unwrap().push(params);
        self.arrived.notify_waiters();
    }
}

/// A running `capsule serve` with a connected client.
pub struct Server {
    pub client: RunningService<RoleClient, Recorder>,
    pub recorder: Recorder,
    stderr: StderrLog,
    pid: u32,
}

/// How long a test waits for anything before calling the server hung: far above any call's
/// own limits (10 s by default, plus queueing), so it only ends a hang, with its name.
pub const HANG: Duration = Duration::from_secs(120);

impl Server {
    /// Starts `command` (a `capsule serve …`) and connects an MCP client to it.
    pub async fn start(command: Command) -> Server {
        let (transport, stderr) = TokioChildProcess::builder(command)
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn capsule serve");
        let pid = transport.id().expect("capsule serve has a process id");
        let stderr = StderrLog::capture(stderr.expect("piped stderr"));
        let recorder = Recorder::default();
        let client = recorder
            .clone()
            .serve(transport)
            .await
            .expect("MCP handshake with capsule");
        Server {
            client,
            recorder,
            stderr,
            pid,
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The server process's resident memory now and at its peak, in bytes
    /// (`VmRSS` and `VmHWM` of `/proc/PID/status`).
    pub fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .expect("read /proc/PID/status of capsule serve");
        let field = |name: &str| -> u64 {
            let line = status
                .lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("{name} missing from /proc status:\n{status}"));
            let kib: u64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("cannot parse {line:?}"));
            kib * 1024
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Sends the server process a signal with `kill SIGNAL PID` (`-USR1`).
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &self.pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {} failed", self.pid);
    }

    /// Calls `tool` with `arguments`, failing the test on a protocol error.
    pub async fn call(&self, tool: &str, arguments: Value) -> CallToolResult {
        self.try_call(tool, arguments).await.unwrap_or_else(|err| {
            panic!(
                "tools/call {tool} failed at the protocol level: {err}\nserver log:\n{}",
                self.stderr()
            )
        })
    }

    pub async fn try_call(
        &self,
        tool: &str,
        arguments: Value,
    ) -> Result<CallToolResult, rmcp::service::ServiceError> {
        let Value::Object(arguments) = arguments else {
            panic!("arguments must be an object")
        };
        let call = self
            .client
            .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(arguments));
        tokio::time::timeout(HANG, call).await.unwrap_or_else(|_| {
            panic!(
                "tools/call {tool} got no answer in {HANG:?}: the server hangs; stderr:\n{}",
                self.stderr()
            )
        })
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// Waits until stderr contains `needle` (logs are written asynchronously).
    pub async fn wait_for_log(&self, needle: &str) -> String {
        self.stderr.wait_for(needle, 1).await
    }

    /// Waits until stderr contains `needle` at least `count` times.
    pub async fn wait_for_logs(&self, needle: &str, count: usize) -> String {
        self.stderr.wait_for(needle, count).await
    }

    /// Asserts the good plugin still answers.
    pub async fn assert_echo_answers(&self) {
        let result = self
            .call("echo_echo", json!({"message": "still alive"}))
            .await;
        assert_eq!(
            text(&result),
            "still alive",
            "echo stopped answering: {result:?}"
        );
    }
}

/// The word after `marker` in `log`: the URL a server logged it listens on.
pub fn logged_url(log: &str, marker: &str) -> String {
    log.split(marker)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no URL after `{marker}` in the log:\n{log}"))
        .to_string()
}

/// All text blocks of a result, joined by newlines.
pub fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|block| match block {
            ContentBlock::Text(text) => Some(text.text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts `result` is an error result whose text contains every one of `needles`. At
/// least one non-empty fragment is required, so no test can accept any error.
pub fn assert_error(result: &CallToolResult, needles: &[&str]) {
    assert!(
        !needles.is_empty() && needles.iter().all(|n| !n.is_empty()),
        "assert_error needs at least one expected fragment (the exact error text or fault \
         kind), none empty; got {needles:?}, which would accept any error"
    );
    assert_eq!(
        result.is_error,
        Some(true),
        "expected isError, got {result:?}"
    );
    let message = text(result);
    for needle in needles {
        assert!(
            message.contains(needle),
            "error {message:?} does not mention {needle:?}"
        );
    }
}

/// The standard test folder: the echo and hostile fixtures, hostile with tight limits.
pub fn echo_and_hostile(hostile_limits: &str) -> Folder {
    Folder::new(
        &[
            ("fixtures/echo.wasm", "echo.wasm"),
            ("fixtures/hostile.wasm", "hostile.wasm"),
        ],
        &format!("[plugins.hostile.limits]\n{hostile_limits}\n"),
    )
}

/// A local HTTP/1.1 server on 127.0.0.1 that answers every request `200 text/plain` with
/// `respond(request head)`, and counts the connections it accepted.
pub async fn http_server(
    respond: impl Fn(&str) -> String + Send + Sync + 'static,
) -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
    raw_http_server(move |head| {
        let body = respond(head);
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    })
    .await
}

/// Like [`http_server`], but `respond` writes the whole response (status line, headers, body).
pub async fn raw_http_server(
    respond: impl Fn(&str) -> String + Send + Sync + 'static,
) -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let respond = Arc::new(respond);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let respond = respond.clone();
            tokio::spawn(async move {
                let Some(request) = read_request_head(&mut socket).await else {
                    return;
                };
                let response = respond(&request);
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    (port, hits)
}

/// Reads an HTTP request from `stream` up to the end of its head (the blank line); `None`
/// when the connection ends or fails first. What a test's hand-written server needs.
pub async fn read_request_head(stream: &mut tokio::net::TcpStream) -> Option<String> {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    Some(String::from_utf8_lossy(&request).into_owned())
}

/// What `std::io::Error` shows inside a plugin when the sandbox refuses an operation
/// (WASI errno `perm`): a path out of a mount, a write to a read-only one, a symlink out.
pub const NOT_PERMITTED: &str = "Operation not permitted (os error 63)";
/// WASI errno `noent`: a path outside every mount does not exist for the plugin.
pub const NOT_FOUND: &str = "No such file or directory (os error 44)";
/// WASI errno `acces`: a TCP connection to an address not in `net.tcp`.
pub const TCP_DENIED: &str = "Permission denied (os error 2)";
/// A name lookup, which the host never allows (`permanent-resolver-failure`).
pub const LOOKUP_DENIED: &str = "failed to lookup address information: Non-recoverable error";

/// A child process's stderr, read into a string as it arrives.
pub struct StderrLog {
    text: Arc<Mutex<String>>,
    /// Bumped each time stderr grows, so waiting for a log line is waiting for an event.
    grew: tokio::sync::watch::Receiver<usize>,
}

impl StderrLog {
    /// Starts reading `stderr` in the background.
    pub fn capture(mut stderr: tokio::process::ChildStderr) -> Self {
        let text = Arc::new(Mutex::new(String::new()));
        let (grew_tx, grew) = tokio::sync::watch::channel(0);
        let sink = text.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
                grew_tx.send_modify(|reads| *reads += 1);
            }
        });
        Self { text, grew }
    }

    /// Everything read so far.
    pub fn text(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle` at least `count` times: woken by each read,
    /// given up only after [`HANG`].
    pub async fn wait_for(&self, needle: &str, count: usize) -> String {
        let mut grew = self.grew.clone();
        let seen = async {
            loop {
                grew.borrow_and_update();
                let log = self.text();
                if log.matches(needle).count() >= count {
                    return log;
                }
                if grew.changed().await.is_err() {
                    // The process closed stderr: nothing more will come.
                    return self.text();
                }
            }
        };
        match tokio::time::timeout(HANG, seen).await {
            Ok(log) if log.matches(needle).count() >= count => log,
            _ => panic!(
                "stderr never contained {needle:?} {count} times; it was:\n{}",
                self.text()
            ),
        }
    }
}
