//! Authorization and rate limits (issue #16): scopes per plugin and tool shown by the CLI,
//! per-tool rate limits over stdio (a JSON-RPC error) and over HTTP (429 with
//! `Retry-After`), the bucket refilling; with static tokens, `tools/list` filtered by
//! scopes, a forbidden tool answered byte for byte like an unknown one, `tools:<glob>`
//! scopes, and the per-principal limit.

use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::service::ServiceError;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

use crate::http::{Client, HttpServer, call_request};
use crate::support::{Folder, HANG, text};

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

/// A stateless JSON-RPC POST to `server`, with `token` as bearer if given.
async fn post(server: &HttpServer, body: &Value, token: Option<&str>) -> reqwest::Response {
    let mut request = server
        .post(body)
        .header("mcp-protocol-version", "2025-11-25");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    tokio::time::timeout(HANG, request.send())
        .await
        .expect("an answer in time")
        .unwrap_or_else(|err| panic!("POST failed: {err}; log:\n{}", server.stderr()))
}

/// A 429's `Retry-After` and JSON-RPC body.
/// A 429's wait (`data.retryAfterMs`, checked to lie in `expected` and to round up to the
/// `Retry-After` header) and its JSON-RPC body.
async fn too_many(response: reqwest::Response, expected: RangeInclusive<u64>) -> (u64, Value) {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after = response
        .headers()
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .expect("an ASCII Retry-After")
        .to_string();
    let body: Value = response.json().await.expect("a JSON-RPC body");
    let retry_ms = body["error"]["data"]["retryAfterMs"]
        .as_u64()
        .expect("retryAfterMs");
    assert!(expected.contains(&retry_ms), "retry in {retry_ms} ms");
    assert_eq!(retry_after, retry_ms.div_ceil(1000).to_string());
    (retry_ms, body)
}

#[tokio::test]
async fn a_tool_rate_limit_over_http_answers_429_with_retry_after() {
    let folder = Folder::new(
        &[("fixtures/echo.wasm", "echo.wasm")],
        "[plugins.echo.tools.echo]\nrate-limit = \"2/h\"\n",
    );
    let server = HttpServer::start(&folder, &["--stateless"]).await;
    // Two calls pass: the edge takes the tool's token, the handler does not take another.
    for id in 1..=2 {
        let call = call_request(id, "echo_echo", json!({"message": "hi"}));
        assert_eq!(post(&server, &call, None).await.status(), StatusCode::OK);
    }
    let call = call_request(3, "echo_echo", json!({"message": "three"}));
    let (retry_ms, body) = too_many(post(&server, &call, None).await, 1_790_000..=1_800_000).await;
    assert_eq!(
        body,
        json!({
            "jsonrpc": "2.0",
            "id": 3,
            "error": {
                "code": RATE_LIMITED,
                "message": tool_limit_message(
                    "echo_echo",
                    "2 calls per hour",
                    "plugins.echo.tools.echo.rate-limit",
                    "2/h",
                    retry_ms
                ),
                "data": {"retryAfterMs": retry_ms, "limit": "plugins.echo.tools.echo.rate-limit"},
            },
        })
    );
}

/// `capsule auth add-token NAME --scopes SCOPES` in `folder`: the token it printed.
async fn add_token(folder: &Folder, name: &str, scopes: &str) -> String {
    let (code, stdout, stderr) = folder
        .run(&["auth", "add-token", name, "--scopes", scopes])
        .await;
    assert_eq!(code, 0, "{stderr}");
    stdout.trim_end().to_string()
}

/// A client that initializes over HTTP with `Authorization: Bearer TOKEN`.
async fn client_with(server: &HttpServer, token: &str) -> Client {
    let config =
        StreamableHttpClientTransportConfig::with_uri(server.url.clone()).auth_header(token);
    let transport = StreamableHttpClientTransport::from_config(config);
    tokio::time::timeout(HANG, ().serve(transport))
        .await
        .expect("initialize in time")
        .expect("initialize with a token")
}

/// The names `tools/list` shows `client`, sorted.
async fn listed(client: &Client) -> Vec<String> {
    let tools = tokio::time::timeout(HANG, client.list_all_tools())
        .await
        .expect("tools/list in time")
        .expect("tools/list");
    let mut names: Vec<String> = tools.into_iter().map(|t| t.name.to_string()).collect();
    names.sort();
    names
}

/// echo (scopes `echo:use`, but `write_file` needs `files:write` and is rate limited)
/// and text (the default scopes), with a token `reader` (`echo:use`), `writer`
/// (`files:write` and the glob `tools:text_*`) and `caller` (`tools:call`).
async fn scoped_folder(extra: &str) -> (Folder, [String; 3]) {
    let folder = Folder::new(
        &[
            ("fixtures/echo.wasm", "echo.wasm"),
            ("plugins/text.wasm", "text.wasm"),
        ],
        &format!(
            "[plugins.echo]\nscopes = [\"echo:use\"]\n\
             [plugins.echo.tools.write_file]\nscopes = [\"files:write\"]\nrate-limit = \"1/h\"\n{extra}"
        ),
    );
    let reader = add_token(&folder, "reader", "echo:use").await;
    let writer = add_token(&folder, "writer", "files:write,tools:text_*").await;
    let caller = add_token(&folder, "caller", "tools:call").await;
    (folder, [reader, writer, caller])
}

const ECHO_TOOLS: [&str; 16] = [
    "echo_add",
    "echo_config",
    "echo_counter",
    "echo_dns_lookup",
    "echo_echo",
    "echo_env",
    "echo_error_result",
    "echo_fail",
    "echo_fetch",
    "echo_image",
    "echo_log",
    "echo_progress",
    "echo_read_file",
    "echo_tcp_connect",
    "echo_wait",
    "echo_write_file",
];

const TEXT_TOOLS: [&str; 5] = [
    "text_change_case",
    "text_regex_extract",
    "text_slugify",
    "text_truncate",
    "text_word_count",
];

#[tokio::test]
async fn tools_list_shows_each_token_only_the_tools_it_may_call() {
    let (folder, [reader, writer, caller]) = scoped_folder("").await;
    let server = HttpServer::start(&folder, &[]).await;

    let reader = client_with(&server, &reader).await;
    let expected: Vec<&str> = ECHO_TOOLS
        .iter()
        .copied()
        .filter(|t| *t != "echo_write_file")
        .collect();
    assert_eq!(listed(&reader).await, expected);

    // `files:write` grants the one echo tool that needs it; `tools:text_*` every text tool.
    let writer = client_with(&server, &writer).await;
    let mut expected = vec!["echo_write_file"];
    expected.extend(TEXT_TOOLS);
    assert_eq!(listed(&writer).await, expected);
    let slug = writer
        .call_tool(
            CallToolRequestParams::new("text_slugify")
                .with_arguments(json!({"text": "Hello World"}).as_object().unwrap().clone()),
        )
        .await
        .expect("a tool granted by a tools: glob can be called");
    assert_ne!(slug.is_error, Some(true), "{slug:?}");

    // The default scope `tools:call` opens only the plugins that name no scopes.
    let caller = client_with(&server, &caller).await;
    assert_eq!(listed(&caller).await, TEXT_TOOLS);
}

#[tokio::test]
async fn a_forbidden_tool_is_answered_exactly_like_an_unknown_one() {
    let (folder, [reader, _, _]) = scoped_folder("").await;
    let server = HttpServer::start(&folder, &["--stateless"]).await;
    let answer = |tool: &'static str| {
        let call = call_request(7, tool, json!({"path": "x", "content": "y"}));
        let server = &server;
        let reader = reader.clone();
        async move {
            let response = post(server, &call, Some(&reader)).await;
            let status = response.status();
            let headers: Vec<(String, String)> = response
                .headers()
                .iter()
                .filter(|(name, _)| *name != "date")
                .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_string()))
                .collect();
            let body = response.text().await.expect("a body");
            (status, headers, body.replace(tool, "NAME"))
        }
    };
    // Twice each: `write_file`'s rate limit (1/h) never shows for a caller who may not call it.
    let forbidden = answer("echo_write_file").await;
    assert_eq!(answer("echo_write_file").await, forbidden);
    // A name of the same length, so even `content-length` is the same.
    let unknown = answer("echo_wrote_file").await;
    assert_eq!(forbidden, unknown);
    assert_eq!(forbidden.0, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<Value>(&forbidden.2).expect("a JSON-RPC body"),
        json!({
            "jsonrpc": "2.0",
            "id": 7,
            "error": {
                "code": -32602,
                "message": "unknown tool `NAME`; call tools/list to see the available tools",
            },
        })
    );
}

#[tokio::test]
async fn a_principal_over_its_limit_gets_429_and_others_are_served() {
    let (folder, [reader, _, caller]) =
        scoped_folder("[rate-limits]\nper-principal = \"2/m\"\n").await;
    let server = HttpServer::start(&folder, &["--stateless"]).await;
    let call = |id| call_request(id, "echo_echo", json!({"message": "hi"}));
    for id in 1..=2 {
        let response = post(&server, &call(id), Some(&reader)).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let (retry_ms, body) = too_many(
        post(&server, &call(3), Some(&reader)).await,
        29_000..=30_000,
    )
    .await;
    assert_eq!(
        body,
        json!({
            "jsonrpc": "2.0",
            "id": 3,
            "error": {
                "code": RATE_LIMITED,
                "message": format!(
                    "rate limit exceeded: principal `reader` may send 2 MCP requests per minute (rate-limits.per-principal = \"2/m\"); retry in {}",
                    shown_wait(retry_ms)
                ),
                "data": {"retryAfterMs": retry_ms, "limit": "rate-limits.per-principal"},
            },
        })
    );
    // Another principal has a bucket of its own.
    let response = post(&server, &call(4), Some(&caller)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let log = server.stderr();
    assert!(
        log.contains("rate limited: rate limit exceeded: principal `reader` may send 2 MCP requests per minute"),
        "{log}"
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
