//! Authorization and rate limits (issue #16): scopes per plugin and tool shown by the CLI,
//! per-tool rate limits over stdio (a JSON-RPC error) and over HTTP (429 with
//! `Retry-After`), the bucket refilling; with static tokens, `tools/list` filtered by
//! scopes, a forbidden tool answered byte for byte like an unknown one, `tools:<glob>`
//! scopes, and the per-principal limit.

use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use rmcp::service::ServiceError;
use serde_json::{Value, json};
use tokio::process::Child;

use crate::support::{Folder, HANG, StderrLog, text};

/// The JSON-RPC error code of a request over a rate limit.
const RATE_LIMITED: i64 = -32029;

/// How `retry in …` shows a wait of `ms` milliseconds (whole seconds as `Ns`).
fn shown_wait(ms: u64) -> String {
    if ms.is_multiple_of(1000) && ms > 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// The message of a refused call of `tool` whose `key` sets `limit` (in words: `words`),
/// telling to retry in `retry_ms`.
fn tool_limit_message(tool: &str, words: &str, key: &str, limit: &str, retry_ms: u64) -> String {
    format!(
        "rate limit exceeded: tool `{tool}` takes {words} over all callers ({key} = \"{limit}\"); retry in {}",
        shown_wait(retry_ms)
    )
}

/// The JSON-RPC error of a rate-limited stdio call: (code, message, data).
fn rate_error(err: ServiceError) -> (i64, String, Value) {
    let ServiceError::McpError(error) = err else {
        panic!("expected a JSON-RPC error, got {err:?}")
    };
    (
        i64::from(error.code.0),
        error.message.to_string(),
        error.data.expect("the error has data"),
    )
}

#[tokio::test]
async fn a_tool_rate_limit_over_stdio_answers_with_a_json_rpc_error() {
    let folder = Folder::new(
        &[("fixtures/echo.wasm", "echo.wasm")],
        "[plugins.echo.tools.echo]\nrate-limit = \"1/h\"\n",
    );
    let server = folder.serve().await;
    assert_eq!(
        text(&server.call("echo_echo", json!({"message": "one"})).await),
        "one"
    );
    let err = server
        .try_call("echo_echo", json!({"message": "two"}))
        .await
        .expect_err("the second call within the hour is refused");
    let (code, message, data) = rate_error(err);
    let retry_ms = data["retryAfterMs"].as_u64().expect("retryAfterMs");
    assert!(
        (3_590_000..=3_600_000).contains(&retry_ms),
        "retry in {retry_ms} ms"
    );
    assert_eq!(code, RATE_LIMITED);
    assert_eq!(
        message,
        tool_limit_message(
            "echo_echo",
            "1 call per hour",
            "plugins.echo.tools.echo.rate-limit",
            "1/h",
            retry_ms
        )
    );
    assert_eq!(
        data,
        json!({"retryAfterMs": retry_ms, "limit": "plugins.echo.tools.echo.rate-limit"})
    );
    // Another tool of the plugin has no limit; a rate-limited call ran no instance.
    assert_eq!(
        text(&server.call("echo_add", json!({"a": 1, "b": 2})).await),
        "{\"sum\":3.0}"
    );
}

#[tokio::test]
async fn a_tool_bucket_refills_after_its_interval() {
    // One call per 300ms: the second call right after the first is refused, and one is
    // allowed again within the interval (polled, never a fixed sleep).
    let folder = Folder::new(
        &[("fixtures/echo.wasm", "echo.wasm")],
        "[plugins.echo]\nrate-limit = \"1/300ms\"\n",
    );
    let server = folder.serve().await;
    let call = || server.try_call("echo_echo", json!({"message": "hi"}));
    // Until one is refused (the first always passes; a slow machine may let a few more).
    let (refused_at, first_wait) = loop {
        match call().await {
            Ok(result) => assert_eq!(text(&result), "hi"),
            Err(err) => {
                let (code, message, data) = rate_error(err);
                assert_eq!(code, RATE_LIMITED, "{message}");
                let retry_ms = data["retryAfterMs"].as_u64().expect("retryAfterMs");
                assert!((1..=300).contains(&retry_ms), "retry in {retry_ms} ms");
                assert_eq!(
                    message,
                    tool_limit_message(
                        "echo_echo",
                        "1 call per 300ms",
                        "plugins.echo.rate-limit",
                        "1/300ms",
                        retry_ms
                    )
                );
                break (Instant::now(), Duration::from_millis(retry_ms));
            }
        }
    };
    // Waits as long as the refusal said, then calls again (a refusal names a new wait).
    let mut wait = first_wait;
    let allowed = loop {
        tokio::time::sleep(wait).await;
        match call().await {
            Ok(result) => {
                assert_eq!(text(&result), "hi");
                break refused_at.elapsed();
            }
            Err(err) => {
                let (code, message, data) = rate_error(err);
                assert_eq!(code, RATE_LIMITED, "{message}");
                assert!(refused_at.elapsed() < HANG, "the bucket never refilled");
                wait = Duration::from_millis(data["retryAfterMs"].as_u64().expect("retryAfterMs"));
            }
        }
    };
    assert!(
        allowed >= first_wait && allowed < Duration::from_millis(300) + Duration::from_secs(5),
        "allowed again after {allowed:?}, told to wait {first_wait:?}"
    );
}

/// `capsule serve --transport http --port 0 --stateless` on `folder`, with its address.
struct HttpServe {
    _child: Child,
    url: String,
    stderr: StderrLog,
}

impl HttpServe {
    async fn start(folder: &Folder) -> Self {
        let mut child = folder
            .command(&["serve", "--transport", "http", "--port", "0", "--stateless"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn capsule serve");
        let stderr = StderrLog::capture(child.stderr.take().expect("piped stderr"));
        let log = stderr.wait_for("listening on http://", 1).await;
        let url = log
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address logged:\n{log}"))
            .to_string();
        Self {
            _child: child,
            url,
            stderr,
        }
    }

    /// A JSON-RPC POST with the headers a stateless client sends, and `token` if given.
    async fn post(&self, body: &Value, token: Option<&str>) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2025-11-25")
            .body(body.to_string());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        tokio::time::timeout(HANG, request.send())
            .await
            .expect("an answer in time")
            .unwrap_or_else(|err| panic!("POST failed: {err}; log:\n{}", self.stderr.text()))
    }
}

fn call_request(id: u64, tool: &str, arguments: Value) -> Value {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": tool, "arguments": arguments},
    })
}

/// A 429's `Retry-After` and JSON-RPC body.
async fn too_many(response: reqwest::Response) -> (String, Value) {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after = response
        .headers()
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .expect("an ASCII Retry-After")
        .to_string();
    (retry_after, response.json().await.expect("a JSON-RPC body"))
}

#[tokio::test]
async fn a_tool_rate_limit_over_http_answers_429_with_retry_after() {
    let folder = Folder::new(
        &[("fixtures/echo.wasm", "echo.wasm")],
        "[plugins.echo.tools.echo]\nrate-limit = \"1/h\"\n",
    );
    let server = HttpServe::start(&folder).await;
    let first = server
        .post(
            &call_request(1, "echo_echo", json!({"message": "one"})),
            None,
        )
        .await;
    assert_eq!(first.status(), StatusCode::OK);
    let (retry_after, body) = too_many(
        server
            .post(
                &call_request(2, "echo_echo", json!({"message": "two"})),
                None,
            )
            .await,
    )
    .await;
    let retry_ms = body["error"]["data"]["retryAfterMs"]
        .as_u64()
        .expect("retryAfterMs");
    assert!(
        (3_590_000..=3_600_000).contains(&retry_ms),
        "retry in {retry_ms} ms"
    );
    assert_eq!(retry_after, retry_ms.div_ceil(1000).to_string());
    assert_eq!(
        body,
        json!({
            "jsonrpc": "2.0",
            "id": 2,
            "error": {
                "code": RATE_LIMITED,
                "message": tool_limit_message(
                    "echo_echo",
                    "1 call per hour",
                    "plugins.echo.tools.echo.rate-limit",
                    "1/h",
                    retry_ms
                ),
                "data": {"retryAfterMs": retry_ms, "limit": "plugins.echo.tools.echo.rate-limit"},
            },
        })
    );
}

#[tokio::test]
async fn the_cli_shows_the_scopes_and_rate_limits_of_each_tool() {
    let folder = Folder::new(
        &[("fixtures/echo.wasm", "echo.wasm")],
        "[authorization]\ndefault-tool-scopes = [\"mcp\"]\n\
         [plugins.echo]\nscopes = [\"echo:use\", \"admin\"]\nrate-limit = \"10/s burst 20\"\n\
         [plugins.echo.tools.write_file]\nscopes = [\"files:write\"]\nrate-limit = \"1/m\"\n\
         [plugins.echo.tools.no_such_tool]\nscopes = [\"x\"]\n",
    );
    let (code, stdout, stderr) = folder.run(&["check"]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    for line in [
        "         scopes: echo:use or admin\n",
        "         rate-limit: 10 calls per second (burst 20) per tool, over all callers\n",
        "         tool no_such_tool: scopes x; rate-limit 10 calls per second (burst 20)\n",
        "         tool write_file: scopes files:write; rate-limit 1 call per minute\n",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
    }
    assert!(
        stdout.contains("warn   plugin `echo`: the policy sets `tools.no_such_tool`, but the plugin has no tool `no_such_tool` (its tools: add, config, counter, dns_lookup, echo, env, error_result, fail, fetch, image, log, progress, read_file, tcp_connect, wait, write_file); the setting has no effect\n"),
        "{stdout}"
    );
    let (code, stdout, stderr) = folder.run(&["inspect", "echo"]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("access   scopes files:write; rate-limit 1 call per minute\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "access   scopes echo:use or admin; rate-limit 10 calls per second (burst 20)\n"
        ),
        "{stdout}"
    );
    // Without scopes in the policy, the default.
    let plain = Folder::new(&[("fixtures/echo.wasm", "echo.wasm")], "");
    let (code, stdout, stderr) = plain.run(&["list"]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("    scopes: tools:call (default)\n"),
        "{stdout}"
    );
}

#[tokio::test]
async fn scopes_in_a_sidecar_are_ignored_with_a_warning() {
    let folder = Folder::new(&[("fixtures/echo.wasm", "echo.wasm")], "");
    let sidecar = folder.plugins().join("echo.toml");
    std::fs::write(
        &sidecar,
        "scopes = [\"anyone\"]\nrate-limit = \"5/s\"\n[tools.echo]\nscopes = [\"anyone\"]\n",
    )
    .expect("write the sidecar");
    let (code, stdout, stderr) = folder.run(&["check"]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!(
            "{}: scopes are ignored in a sidecar policy (who may call a tool is the operator's choice); to require scopes, set them under [plugins.echo] in capsule.toml",
            sidecar.display()
        )),
        "{stdout}"
    );
    // Its rate limit (which only refuses more) stays; the scopes are the default.
    assert!(
        stdout.contains("         scopes: tools:call (default)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("         rate-limit: 5 calls per second per tool, over all callers\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("         tool echo: scopes tools:call; rate-limit 5 calls per second\n"),
        "{stdout}"
    );
}

#[tokio::test]
async fn bad_scopes_and_rates_are_config_errors_naming_the_key() {
    for (config, code, expected) in [
        (
            "[plugins.echo]\nscopes = []\n",
            1,
            "plugins.echo.scopes: an empty list would let no HTTP caller call the tool; list the scopes that may, or leave the key out for the default",
        ),
        (
            "[plugins.echo.tools.echo]\nscopes = [\"a b\"]\n",
            1,
            "plugins.echo.tools.echo.scopes: scope `a b` contains ` `; a scope is printable ASCII without spaces, `\"` or `\\` (RFC 6749)",
        ),
        (
            "[rate-limits]\nper-principal = \"20 per second\"\n",
            2,
            "rate limit `20 per second`: no `/`; write COUNT/PERIOD with an optional burst, e.g. \"20/s\", \"100/m\", \"30/10s\" or \"20/s burst 40\"",
        ),
    ] {
        let folder = Folder::new(&[("fixtures/echo.wasm", "echo.wasm")], config);
        let (exit, stdout, stderr) = folder.run(&["check"]).await;
        assert_eq!(exit, code, "{config}:\n{stdout}\n{stderr}");
        assert!(
            stdout.contains(expected) || stderr.contains(expected),
            "{config}: {expected:?} missing:\n{stdout}\n{stderr}"
        );
    }
}
