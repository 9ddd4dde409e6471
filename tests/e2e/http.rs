//! `capsule serve --transport http`: the real binary on a real socket on 127.0.0.1 (port 0,
//! read back from its log), driven by the rmcp streamable HTTP client and by raw requests
//! for the edge checks (status codes and JSON-RPC error bodies).

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::stream::BoxStream;
use reqwest::StatusCode;
use rmcp::model::{CallToolRequestParams, ClientJsonRpcMessage, ContentBlock, ProtocolVersion};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::{
    StreamableHttpClient, StreamableHttpClientTransportConfig, StreamableHttpError,
    StreamableHttpPostResponse, StreamableHttpResponseLimits,
};
use rmcp::{ClientLifecycleMode, ClientServiceExt, RoleClient, ServiceExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::support::{Folder, HANG, StderrLog, logged_url};

pub(crate) type Client = RunningService<RoleClient, ()>;

/// A running `capsule serve --transport http --port 0` (also used by `auth.rs`).
pub(crate) struct HttpServer {
    child: Child,
    /// `http://127.0.0.1:PORT/mcp`, as logged.
    pub(crate) url: String,
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
    stderr: StderrLog,
}

impl HttpServer {
    /// Starts `capsule serve --transport http --port 0 EXTRA…` on `folder` and waits until
    /// it listens and every plugin has loaded (it listens while they load).
    pub(crate) async fn start(folder: &Folder, extra: &[&str]) -> Self {
        Self::start_with_log(folder, extra, "info,capsule::runtime=debug").await
    }

    /// [`HttpServer::start`] with `CAPSULE_LOG` set to `filter`.
    pub(crate) async fn start_with_log(folder: &Folder, extra: &[&str], filter: &str) -> Self {
        let mut args = vec!["serve", "--transport", "http", "--port", "0"];
        args.extend_from_slice(extra);
        let mut command = folder.command(&args);
        command.env("CAPSULE_LOG", filter);
        let server = Self::spawn(command).await;
        server.wait_for_log("every plugin loaded").await;
        server
    }

    pub(crate) async fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn capsule serve");
        let stderr = StderrLog::capture(child.stderr.take().expect("piped stderr"));
        let mut server = Self {
            child,
            url: String::new(),
            base: String::new(),
            stderr,
        };
        let log = server.wait_for_log("listening on http://").await;
        let url = logged_url(&log, "listening on ");
        let path_start = url["http://".len()..]
            .find('/')
            .map(|i| i + "http://".len())
            .expect("a path in the logged URL");
        server.base = url[..path_start].to_string();
        server.url = url;
        server
    }

    pub(crate) fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// The names of the server's threads (Linux: `/proc/PID/task/*/comm`).
    fn thread_names(&self) -> Vec<String> {
        let pid = self.child.id().expect("the server is running");
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .expect("the server's threads")
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .map(|name| name.trim().to_owned())
            .collect()
    }

    /// Waits until stderr contains `needle`.
    pub(crate) async fn wait_for_log(&self, needle: &str) -> String {
        self.stderr.wait_for(needle, 1).await
    }

    pub(crate) fn sigterm(&self) {
        let pid = self.child.id().expect("the server is running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {pid} failed");
    }

    /// Waits for the process to exit; its exit code.
    pub(crate) async fn exit_code(&mut self) -> i32 {
        let status = tokio::time::timeout(HANG, self.child.wait())
            .await
            .expect("the server exits")
            .expect("wait for the server");
        status.code().unwrap_or(-1)
    }

    /// A client that initializes (protocol 2025-11-25: a session when the server is stateful).
    pub(crate) async fn legacy_client(&self) -> Client {
        legacy_client(&self.url).await
    }

    /// A client of protocol 2026-07-28 (`server/discover`, no sessions).
    async fn modern_client(&self) -> Client {
        modern_client(&self.url).await
    }

    /// A raw JSON-RPC POST to the endpoint with the headers a client sends.
    pub(crate) fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        post(&self.url, body)
    }
}

async fn legacy_client(url: &str) -> Client {
    let transport = StreamableHttpClientTransport::from_uri(url.to_string());
    tokio::time::timeout(HANG, ().serve(transport))
        .await
        .expect("initialize in time")
        .expect("initialize over HTTP")
}

async fn modern_client(url: &str) -> Client {
    let transport = StreamableHttpClientTransport::from_uri(url.to_string());
    discover(transport).await
}

pub(crate) async fn discover<C: StreamableHttpClient>(
    transport: StreamableHttpClientTransport<C>,
) -> Client {
    let lifecycle = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    tokio::time::timeout(HANG, ().serve_with_lifecycle(transport, lifecycle))
        .await
        .expect("discover in time")
        .expect("server/discover over HTTP")
}

pub(crate) fn post(url: &str, body: &Value) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(body.to_string())
}

pub(crate) fn initialize_request(id: u64) -> Value {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"},
        },
    })
}

pub(crate) fn call_request(id: u64, tool: &str, arguments: Value) -> Value {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": tool, "arguments": arguments},
    })
}

/// The JSON-RPC error body of an edge refusal: `{"code": …, "message": …}` and the id.
pub(crate) async fn refusal(response: reqwest::Response) -> (Value, i64, String) {
    let body: Value = response.json().await.expect("a JSON-RPC error body");
    (
        body["id"].clone(),
        body["error"]["code"].as_i64().expect("an error code"),
        body["error"]["message"]
            .as_str()
            .expect("an error message")
            .to_string(),
    )
}

pub(crate) async fn call_text(client: &Client, tool: &str, arguments: Value) -> String {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be an object")
    };
    let result = tokio::time::timeout(
        HANG,
        client.call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(arguments)),
    )
    .await
    .expect("tools/call answered in time")
    .unwrap_or_else(|err| panic!("tools/call {tool} failed: {err}"));
    assert_ne!(result.is_error, Some(true), "{tool} failed: {result:?}");
    result
        .content
        .iter()
        .filter_map(|block| match block {
            ContentBlock::Text(text) => Some(text.text.clone()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The client negotiated `version`, lists echo's tools and calls one.
async fn assert_serves(client: &Client, version: ProtocolVersion) {
    let info = client.peer_info().expect("the server's info");
    assert_eq!(info.protocol_version, version);
    let tools = client.list_all_tools().await.expect("tools/list over HTTP");
    assert!(
        tools.iter().any(|t| t.name == "echo_echo"),
        "echo_echo missing from {:?}",
        tools.iter().map(|t| &t.name).collect::<Vec<_>>()
    );
    let said = format!("over HTTP, {version}");
    assert_eq!(
        call_text(client, "echo_echo", json!({"message": said})).await,
        said
    );
}

pub(crate) fn echo() -> Folder {
    Folder::new(&[("fixtures/echo.wasm", "echo.wasm")], "")
}

#[tokio::test]
async fn stateful_mode_serves_sessions_and_both_protocol_versions() {
    let folder = echo();
    let server = HttpServer::start(&folder, &[]).await;
    assert!(
        server.url.starts_with("http://127.0.0.1:") && server.url.ends_with("/mcp"),
        "{}",
        server.url
    );
    let legacy = server.legacy_client().await;
    assert_serves(&legacy, ProtocolVersion::V_2025_11_25).await;
    let modern = server.modern_client().await;
    assert_serves(&modern, ProtocolVersion::V_2026_07_28).await;

    // A 2025-11-25 initialize opens a session: its id comes back in a header.
    let response = server.post(&initialize_request(1)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers().contains_key("mcp-session-id"),
        "no session id: {:?}",
        response.headers()
    );
}

#[tokio::test]
async fn stateless_mode_serves_both_protocol_versions_with_plain_json() {
    let folder = echo();
    let server = HttpServer::start(&folder, &["--stateless"]).await;
    let legacy = server.legacy_client().await;
    assert_serves(&legacy, ProtocolVersion::V_2025_11_25).await;
    let modern = server.modern_client().await;
    assert_serves(&modern, ProtocolVersion::V_2026_07_28).await;

    let response = server.post(&initialize_request(1)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        !response.headers().contains_key("mcp-session-id"),
        "a stateless server opened a session"
    );
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["result"]["protocolVersion"], "2025-11-25");
}

/// A stateless call whose plugin reports progress is answered with an SSE stream: each
/// progress notification in order, then the result. Without a progress token the same
/// call is answered with plain JSON.
#[tokio::test]
async fn a_stateless_call_streams_its_progress_before_the_result() {
    let folder = echo();
    let server = HttpServer::start(&folder, &["--stateless"]).await;
    let mut request = call_request(7, "echo_progress", json!({"steps": 3}));
    request["params"]["_meta"] = json!({"progressToken": "p7"});
    let response = server.post(&request).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let body = response.text().await.unwrap();
    let messages: Vec<Value> = body
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str(data.trim()).ok())
        .collect();
    assert_eq!(
        messages.len(),
        4,
        "three progress notifications and the result: {body}"
    );
    for (step, message) in (1..=3).zip(&messages) {
        assert_eq!(message["method"], "notifications/progress", "{body}");
        assert_eq!(message["params"]["progressToken"], "p7");
        assert_eq!(
            message["params"]["progress"].as_f64(),
            Some(f64::from(step))
        );
        assert_eq!(message["params"]["total"].as_f64(), Some(3.0));
        assert_eq!(message["params"]["message"], format!("step {step}"));
    }
    assert_eq!(messages[3]["id"], 7);
    assert_eq!(
        messages[3]["result"]["content"][0]["text"], "done",
        "{body}"
    );

    let plain = call_request(8, "echo_progress", json!({"steps": 3}));
    let response = server.post(&plain).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], 8);
    assert_eq!(body["result"]["content"][0]["text"], "done");
}

/// A stateless client that goes away during a call cancels it: the plugin sees
/// `cancelled` and stops, and the server keeps serving.
#[tokio::test]
async fn a_stateless_call_is_cancelled_when_its_client_disconnects() {
    let folder = Folder::new(
        &[("fixtures/echo.wasm", "echo.wasm")],
        "[plugins.echo.limits]\ntimeout = \"60s\"\n",
    );
    let server = HttpServer::start(&folder, &["--stateless"]).await;
    let call = server
        .post(&call_request(1, "echo_wait", json!({"ms": 50_000})))
        .send();
    tokio::select! {
        result = call => panic!("the call answered before its client went away: {result:?}"),
        _ = server.wait_for_log("call admitted") => {}
    }
    let log = server.wait_for_log("fault=\"cancelled\"").await;
    assert!(log.contains("echo_wait"), "{log}");
    let response = server
        .post(&call_request(
            2,
            "echo_echo",
            json!({"message": "still here"}),
        ))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["result"]["content"][0]["text"], "still here");
}

/// Connections are served on `server.io-threads` threads of their own (each connection
/// on one, round robin), and sessions opened on different ones all work, in both modes.
#[tokio::test]
async fn connections_are_served_on_the_configured_number_of_threads() {
    let folder = echo();
    for mode in [&[][..], &["--stateless"][..]] {
        let mut extra = vec!["--set", "server.io-threads=3"];
        extra.extend_from_slice(mode);
        let server = HttpServer::start(&folder, &extra).await;
        let mut clients = Vec::new();
        for _ in 0..4 {
            clients.push(server.legacy_client().await);
        }
        for (i, client) in clients.iter().enumerate() {
            let said = format!("client {i}");
            assert_eq!(
                call_text(client, "echo_echo", json!({ "message": said })).await,
                said
            );
        }
        let names = server.thread_names();
        assert_eq!(
            names.iter().filter(|name| *name == "capsule-http").count(),
            3,
            "{mode:?}: threads {names:?}"
        );
    }
}

#[tokio::test]
async fn the_endpoint_answers_with_a_trailing_slash_without_redirecting() {
    let folder = echo();
    let server = HttpServer::start(&folder, &[]).await;
    let slash = format!("{}/", server.url);
    let response = post(&slash, &initialize_request(1)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "POST {slash}");
    let client = legacy_client(&slash).await;
    assert_serves(&client, ProtocolVersion::V_2025_11_25).await;
}

#[tokio::test]
async fn a_foreign_origin_is_refused_with_403() {
    let folder = echo();
    let server = HttpServer::start(&folder, &[]).await;
    let response = server
        .post(&initialize_request(1))
        .header("origin", "http://evil.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        refusal(response).await,
        (
            Value::Null,
            -32000,
            "Origin `http://evil.example.com` may not use this server (cross-site request protection); if a browser app at that origin should, add it to server.allowed-origins".into()
        )
    );
    // A page served from the host the client asked for is not foreign.
    let response = server
        .post(&initialize_request(2))
        .header("origin", &server.base)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_host_not_served_is_refused_with_421() {
    let folder = echo();
    let server = HttpServer::start(&folder, &[]).await;
    let response = server
        .post(&initialize_request(1))
        .header("host", "evil.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::MISDIRECTED_REQUEST);
    assert_eq!(
        refusal(response).await,
        (
            Value::Null,
            -32000,
            "Host `evil.example.com` is not served here (DNS rebinding protection); if clients reach this server under that name, add it to server.allowed-hosts".into()
        )
    );
    // `localhost` with any port is served by default.
    let response = server
        .post(&initialize_request(2))
        .header("host", "localhost:1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413() {
    let folder = Folder::new(
        &[("fixtures/echo.wasm", "echo.wasm")],
        "[server]\nmax-body-size = \"1KiB\"\n",
    );
    let server = HttpServer::start(&folder, &["--stateless"]).await;
    let big = call_request(1, "echo_echo", json!({"message": "x".repeat(2000)}));
    let size = big.to_string().len();
    let response = server.post(&big).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        refusal(response).await,
        (
            Value::Null,
            -32000,
            format!("the request body ({size} bytes) is larger than server.max-body-size (1 KiB)")
        )
    );
    // Just under the limit is served.
    let small = call_request(2, "echo_echo", json!({"message": "x".repeat(800)}));
    let response = server.post(&small).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn one_session_too_many_is_refused_with_503() {
    let folder = Folder::new(
        &[("fixtures/echo.wasm", "echo.wasm")],
        "[server]\nmax-sessions = 2\n",
    );
    let server = HttpServer::start(&folder, &[]).await;
    let first = server.legacy_client().await;
    let _second = server.legacy_client().await;
    let response = server.post(&initialize_request(9)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        refusal(response).await,
        (
            json!(9),
            -32001,
            "2 sessions are open, the most server.max-sessions allows; end one (HTTP DELETE with its Mcp-Session-Id) or wait until an idle one expires (server.session-idle-timeout)".into()
        )
    );
    // Sessions that exist keep working, and ending one frees its place.
    assert_eq!(
        call_text(&first, "echo_echo", json!({"message": "still"})).await,
        "still"
    );
    first.cancel().await.expect("close the first session");
    let third = server.legacy_client().await;
    assert_serves(&third, ProtocolVersion::V_2025_11_25).await;
}

#[tokio::test]
async fn a_session_cannot_have_more_requests_in_flight_than_its_cap() {
    let folder = Folder::new(
        &[("fixtures/echo.wasm", "echo.wasm")],
        "[server]\nmax-requests-per-session = 2\n[plugins.echo.limits]\ntimeout = \"60s\"\n",
    );
    let server = HttpServer::start(&folder, &[]).await;
    let response = server.post(&initialize_request(1)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    let in_session = |body: &Value| {
        server
            .post(body)
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-11-25")
    };
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let response = in_session(&initialized).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);

    // Two slow calls: their SSE responses start at once and stay open until the calls end.
    let first = in_session(&call_request(2, "echo_wait", json!({"ms": 3000})))
        .send()
        .await
        .unwrap();
    let second = in_session(&call_request(3, "echo_wait", json!({"ms": 3000})))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    let third = in_session(&call_request(
        4,
        "echo_echo",
        json!({"message": "one more"}),
    ))
    .send()
    .await
    .unwrap();
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        refusal(third).await,
        (
            Value::Null,
            -32001,
            "this session has 2 requests in flight, the most server.max-requests-per-session allows; wait for a response before sending more".into()
        )
    );
    // Another session is not affected.
    let other = server.legacy_client().await;
    assert_eq!(
        call_text(&other, "echo_echo", json!({"message": "elsewhere"})).await,
        "elsewhere"
    );
    // A request's slot comes back when its response has been sent (here: when the call
    // ends and its SSE stream closes).
    let answer = first.text().await.unwrap();
    assert!(answer.contains("waited 3000 ms"), "{answer}");
    let again = in_session(&call_request(5, "echo_echo", json!({"message": "again"})))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    assert!(again.text().await.unwrap().contains("again"));
    drop(second);
}

#[tokio::test]
async fn health_routes_report_alive_and_ready_for_any_host() {
    let folder = echo();
    let server = HttpServer::start(&folder, &[]).await;
    let get = |path: &str| {
        reqwest::Client::new()
            .get(format!("{}{path}", server.base))
            .header("host", "10.0.0.7:8080")
    };
    let alive = get("/healthz").send().await.unwrap();
    assert_eq!(alive.status(), StatusCode::OK);
    assert_eq!(
        alive.json::<Value>().await.unwrap(),
        json!({"status": "alive"})
    );
    let ready = get("/readyz").send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let tools = server.legacy_client().await.list_all_tools().await.unwrap();
    assert_eq!(
        ready.json::<Value>().await.unwrap(),
        json!({"status": "ready", "plugins": 1, "tools": tools.len()})
    );
}

#[tokio::test]
async fn sigterm_lets_a_slow_call_finish_then_exits_0() {
    let folder = echo();
    let mut server = HttpServer::start(&folder, &[]).await;
    let client = server.legacy_client().await;
    let call = call_text(&client, "echo_wait", json!({"ms": 1500}));
    tokio::pin!(call);
    tokio::select! {
        text = &mut call => panic!("the call ended before the signal: {text}"),
        _ = server.wait_for_log("call admitted") => {}
    }
    server.sigterm();
    assert_eq!(call.await, "waited 1500 ms");
    assert_eq!(server.exit_code().await, 0, "{}", server.stderr());
    let log = server.stderr();
    assert!(
        log.contains("stopped accepting connections; letting 1 requests in flight finish (at most server.drain-timeout = 30s)"),
        "{log}"
    );
    assert!(!log.contains("cutting off"), "{log}");
    // The listener is closed: nothing new is accepted.
    let refused = reqwest::Client::new()
        .get(format!("{}/healthz", server.base))
        .send()
        .await;
    assert!(refused.unwrap_err().is_connect());
}

#[tokio::test]
async fn a_call_longer_than_the_drain_timeout_is_cut_off_and_named() {
    let folder = Folder::new(
        &[("fixtures/echo.wasm", "echo.wasm")],
        "[server]\ndrain-timeout = \"300ms\"\n[plugins.echo.limits]\ntimeout = \"60s\"\n",
    );
    let mut server = HttpServer::start(&folder, &["--stateless"]).await;
    let pending = tokio::spawn(
        server
            .post(&call_request(1, "echo_wait", json!({"ms": 60_000})))
            .header("mcp-protocol-version", "2025-11-25")
            .send(),
    );
    server.wait_for_log("call admitted").await;
    server.sigterm();
    assert_eq!(server.exit_code().await, 0, "{}", server.stderr());
    // The process has exited; its last lines may still be in the pipe.
    server
        .wait_for_log("calls still running: tools/call echo_wait")
        .await;
    let log = server.stderr();
    assert!(
        log.contains(
            "server.drain-timeout (300ms) passed; cutting off 1 requests: POST /mcp (running for"
        ),
        "{log}"
    );
    assert!(
        log.contains("calls still running: tools/call echo_wait (running for"),
        "{log}"
    );
    // The client gets an error instead of a result.
    let cut = pending.await.unwrap().expect("a response");
    assert_eq!(cut.status(), StatusCode::INTERNAL_SERVER_ERROR);
    // rmcp's answer when the server ends the request before its handler answered.
    assert_eq!(
        cut.text().await.unwrap(),
        "Encounter an error when empty response: no response message received from handler"
    );
}

#[tokio::test]
async fn a_non_loopback_address_needs_allow_unauthenticated() {
    let folder = echo();
    let (code, _, stderr) = folder
        .run(&[
            "serve",
            "--transport",
            "http",
            "--host",
            "0.0.0.0",
            "--port",
            "0",
        ])
        .await;
    assert_eq!(code, 2);
    assert_eq!(
        stderr.lines().last().unwrap_or_default(),
        "error: refusing to serve MCP over HTTP on 0.0.0.0:0 without authentication: it is not a loopback address, so anyone who can reach it could call every tool. Configure [auth] (static tokens: `capsule auth add-token NAME`, or [auth.jwt]; see docs/auth.md), listen on a loopback address (--host 127.0.0.1), or, if something in front of Capsule authenticates clients (a reverse proxy, a service mesh, a private network), pass --allow-unauthenticated (server.allow-unauthenticated = true)"
    );
    let mut server =
        HttpServer::start(&folder, &["--host", "0.0.0.0", "--allow-unauthenticated"]).await;
    server
        .wait_for_log("serving without authentication on 0.0.0.0:")
        .await;
    server.sigterm();
    assert_eq!(server.exit_code().await, 0);
}

/// An rmcp HTTP client that sends each request to the next of several URLs in turn.
#[derive(Clone)]
struct Alternating {
    inner: reqwest::Client,
    urls: Arc<Vec<Arc<str>>>,
    next: Arc<AtomicUsize>,
    sent: Arc<Vec<AtomicUsize>>,
}

impl Alternating {
    fn new(urls: &[&str]) -> Self {
        Self {
            inner: reqwest::Client::new(),
            urls: Arc::new(urls.iter().map(|u| Arc::from(*u)).collect()),
            next: Arc::default(),
            sent: Arc::new(urls.iter().map(|_| AtomicUsize::new(0)).collect()),
        }
    }

    fn pick(&self) -> Arc<str> {
        let i = self.next.fetch_add(1, Ordering::SeqCst) % self.urls.len();
        self.sent[i].fetch_add(1, Ordering::SeqCst);
        self.urls[i].clone()
    }

    fn sent(&self) -> Vec<usize> {
        self.sent.iter().map(|n| n.load(Ordering::SeqCst)).collect()
    }
}

impl StreamableHttpClient for Alternating {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        _uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        headers: HashMap<::http::HeaderName, ::http::HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<reqwest::Error>> {
        self.inner
            .post_message(self.pick(), message, session_id, auth_header, headers)
            .await
    }

    async fn post_message_with_response_limits(
        &self,
        _uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        headers: HashMap<::http::HeaderName, ::http::HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<reqwest::Error>> {
        self.inner
            .post_message_with_response_limits(
                self.pick(),
                message,
                session_id,
                auth_header,
                headers,
                limits,
            )
            .await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        headers: HashMap<::http::HeaderName, ::http::HeaderValue>,
    ) -> Result<(), StreamableHttpError<reqwest::Error>> {
        self.inner
            .delete_session(uri, session_id, auth_header, headers)
            .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        headers: HashMap<::http::HeaderName, ::http::HeaderValue>,
    ) -> Result<
        BoxStream<'static, Result<sse_stream::Sse, sse_stream::Error>>,
        StreamableHttpError<reqwest::Error>,
    > {
        self.inner
            .get_stream(uri, session_id, last_event_id, auth_header, headers)
            .await
    }
}

#[tokio::test]
async fn stateless_replicas_serve_one_client_alternately() {
    let folder = echo();
    let a = HttpServer::start(&folder, &["--stateless"]).await;
    let b = HttpServer::start(&folder, &["--stateless"]).await;
    for discover_lifecycle in [false, true] {
        let client = Alternating::new(&[&a.url, &b.url]);
        let transport = StreamableHttpClientTransport::with_client(
            client.clone(),
            StreamableHttpClientTransportConfig::with_uri(a.url.clone()),
        );
        let session = if discover_lifecycle {
            discover(transport).await
        } else {
            tokio::time::timeout(HANG, ().serve(transport))
                .await
                .expect("initialize in time")
                .expect("initialize over HTTP")
        };
        for i in 0..6 {
            let said = format!("request {i}");
            assert_eq!(
                call_text(&session, "echo_echo", json!({"message": said})).await,
                said
            );
        }
        let sent = client.sent();
        // The handshake plus six calls, alternating: each replica got three or more.
        assert!(
            sent[0] >= 3 && sent[1] >= 3,
            "both replicas must have served requests: {sent:?}"
        );
    }
    let served = |server: &HttpServer| server.stderr().matches("call admitted").count();
    assert!(
        served(&a) >= 6 && served(&b) >= 6,
        "calls per replica: {} and {}",
        served(&a),
        served(&b)
    );
}

/// How a stdio session ends in the tests below.
enum StdioEnd {
    Sigterm,
    CloseStdin,
}

/// Starts `capsule serve` on stdio, sends a call of `echo_wait` for `ms`, ends the session
/// as `end` says once the call runs, and asserts the call still answers and the exit is 0.
async fn stdio_call_survives(end: StdioEnd, ms: u64) {
    let folder = Folder::new(
        &[("fixtures/echo.wasm", "echo.wasm")],
        "[plugins.echo.limits]\ntimeout = \"60s\"\n",
    );
    let mut command = folder.command(&["serve"]);
    command.env("CAPSULE_LOG", "info,capsule::runtime=debug");
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn capsule serve");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let stderr = StderrLog::capture(child.stderr.take().unwrap());
    let mut server = HttpServer {
        child,
        url: String::new(),
        base: String::new(),
        stderr,
    };
    for message in [
        initialize_request(1),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        call_request(2, "echo_wait", json!({"ms": ms})),
    ] {
        stdin
            .write_all(format!("{message}\n").as_bytes())
            .await
            .unwrap();
    }
    stdin.flush().await.unwrap();
    server.wait_for_log("call admitted").await;
    match end {
        StdioEnd::Sigterm => server.sigterm(),
        StdioEnd::CloseStdin => drop(stdin),
    }
    let mut answers = Vec::new();
    while let Ok(Ok(Some(line))) = tokio::time::timeout(HANG, stdout.next_line()).await {
        answers.push(serde_json::from_str::<Value>(&line).unwrap());
    }
    let call = answers
        .iter()
        .find(|m| m["id"] == 2)
        .unwrap_or_else(|| panic!("no answer to the call: {answers:?}\n{}", server.stderr()));
    assert_eq!(
        call["result"]["content"][0]["text"],
        format!("waited {ms} ms")
    );
    assert_eq!(server.exit_code().await, 0, "{}", server.stderr());
}

/// Over stdio, SIGTERM stops reading requests but lets a call in flight answer first.
#[tokio::test]
async fn stdio_sigterm_lets_a_call_in_flight_answer_then_exits_0() {
    stdio_call_survives(StdioEnd::Sigterm, 1000).await;
}

/// Closing stdin ends the session only after the calls in flight answered, even ones
/// longer than rmcp's own 5 s wait for responses at the end of input.
#[tokio::test]
async fn stdio_eof_lets_a_call_longer_than_5s_answer_then_exits_0() {
    stdio_call_survives(StdioEnd::CloseStdin, 6000).await;
}

/// In stateless mode a call that arrives while another request is in flight (here: one
/// whose body is still arriving) runs on the call threads from the start, away from the
/// HTTP threads' work; a call alone starts on the thread that read it. The call span's
/// `started_here` says which.
#[tokio::test]
async fn a_stateless_call_beside_another_request_in_flight_runs_on_the_call_threads() {
    let (alone, beside, alone_again) =
        started_here_beside_a_slow_request(&["--stateless"], |beside| beside.len() == BESIDE).await;
    assert!(alone, "a call alone starts where it was read");
    assert_eq!(
        beside, [false; BESIDE],
        "every call beside a request in flight runs on the call threads"
    );
    assert!(
        alone_again,
        "once the other request ended, calls start where they are read again"
    );
}

/// In stateful mode a call is served by its session's task, not the connection's, and
/// starts there beside other requests too (BENCHMARKS.md, "Crowded stateless servers run
/// calls on the call threads").
#[tokio::test]
async fn a_stateful_call_starts_where_it_was_read_beside_other_requests() {
    let (alone, beside, _) =
        started_here_beside_a_slow_request(&[], |beside| beside.contains(&true)).await;
    assert!(alone, "a call alone starts where it was read");
    // Crowded, none would; a loaded machine may make a call slow and its plugin's next 16
    // leave for the call threads (the wait for the slow request ends at such a call), so
    // calls are made until one starts where it was read, at most 100.
    assert!(
        beside.contains(&true),
        "calls beside a request in flight start where they were read: {beside:?}"
    );
}

/// How many calls the stateless test makes beside the slow request.
const BESIDE: usize = 20;

/// Calls echo over HTTP (`extra`: more `serve` flags) alone; then beside a request whose
/// body never arrives: until a call runs on the call threads (at most 100 calls, ~1.5 s;
/// the server counts the request once it has read its head), then more until `enough`
/// says so of the calls made beside it (at most 100); then, once that request ended, until
/// a call starts where it was read (at most 100). Returns whether the first call started
/// on the thread that read it, the same for each call beside the slow request, and whether
/// the last one did.
async fn started_here_beside_a_slow_request(
    extra: &[&str],
    enough: impl Fn(&[bool]) -> bool,
) -> (bool, Vec<bool>, bool) {
    let folder = Folder::new(&[("fixtures/echo.wasm", "echo.wasm")], "");
    let server = HttpServer::start_with_log(&folder, extra, "info,capsule::call=debug").await;
    let client = server.legacy_client().await;
    let mut calls = 0;
    let mut call = async || {
        calls += 1;
        let mut params = CallToolRequestParams::new("echo_echo");
        params.arguments = json!({"message": "hi"}).as_object().cloned();
        let result = tokio::time::timeout(HANG, client.call_tool(params))
            .await
            .expect("answered in time")
            .expect("tools/call");
        assert_eq!(result.is_error, Some(false), "{result:?}");
        let log = server.stderr.wait_for("call finished", calls).await;
        let line = log
            .lines()
            .filter(|l| l.contains("call finished"))
            .nth(calls - 1)
            .expect("the call's line")
            .to_owned();
        line.contains("started_here=true")
    };
    let alone = call().await;

    let address = server.base.trim_start_matches("http://").to_string();
    let slow_body = a_body_that_never_ends(&address).await;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if !call().await {
            break;
        }
    }
    let mut beside = Vec::with_capacity(BESIDE);
    while beside.len() < 100 && !enough(&beside) {
        beside.push(call().await);
    }

    drop(slow_body);
    let mut alone_again = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        alone_again = call().await;
        if alone_again {
            break;
        }
    }
    (alone, beside, alone_again)
}

/// A connection to `address` (`HOST:PORT`) that sent a `POST /mcp` head announcing 100
/// bytes of body and then only the first 10.
async fn a_body_that_never_ends(address: &str) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(
            b"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
              accept: application/json, text/event-stream\r\ncontent-length: 100\r\n\r\n{\"jsonrpc\"",
        )
        .await
        .unwrap();
    stream
}

/// A client that sends its headers or its body too slowly is cut off: headers within
/// `server.header-read-timeout` (the connection is closed), the body within
/// `server.body-read-timeout` (408 with a JSON-RPC error).
#[tokio::test]
async fn slow_clients_are_cut_off_by_the_read_timeouts() {
    let folder = Folder::new(
        &[("fixtures/echo.wasm", "echo.wasm")],
        "[server]\nheader-read-timeout = \"300ms\"\nbody-read-timeout = \"300ms\"\n",
    );
    let server = HttpServer::start(&folder, &["--stateless"]).await;
    let address = server.base.trim_start_matches("http://").to_string();

    let mut slow_headers = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow_headers
        .write_all(b"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(HANG, slow_headers.read_to_end(&mut answer))
        .await
        .expect("the server closes a connection whose headers never end")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );

    let mut slow_body = a_body_that_never_ends(&address).await;
    let mut answer = Vec::new();
    tokio::time::timeout(HANG, slow_body.read_to_end(&mut answer))
        .await
        .expect("the server answers a body that never ends")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout"),
        "{answer}"
    );
    assert!(
        answer.ends_with(
            r#"{"error":{"code":-32000,"message":"the request body did not arrive within server.body-read-timeout (300ms)"},"id":null,"jsonrpc":"2.0"}"#
        ),
        "{answer}"
    );
}
