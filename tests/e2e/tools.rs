//! Listing and calling tools over MCP stdio: results, validation, errors, concurrency,
//! cancellation, progress and logs.

use rmcp::model::{ContentBlock, LoggingLevel, SetLevelRequestParams};
use serde_json::json;

use crate::support::{Folder, Server, assert_error, echo_and_hostile, text};

fn echo_only(config: &str) -> Folder {
    Folder::new(&[("fixtures/echo.wasm", "echo.wasm")], config)
}

#[tokio::test]
async fn lists_namespaced_tools_with_schemas() {
    let folder = echo_and_hostile("");
    let server = folder.serve().await;
    let tools = server.client.list_all_tools().await.expect("tools/list");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for expected in [
        "echo_echo",
        "echo_add",
        "echo_wait",
        "hostile_spin",
        "hostile_ok",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    for tool in &tools {
        assert!(
            tool.name.len() <= 64
                && tool
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "invalid tool name {}",
            tool.name
        );
        assert_eq!(
            tool.input_schema.get("type"),
            Some(&json!("object")),
            "{}",
            tool.name
        );
    }
    let echo = tools.iter().find(|t| t.name == "echo_echo").unwrap();
    assert!(
        echo.output_schema.is_some(),
        "echo_echo declares an output schema"
    );
    assert!(!echo.description.as_deref().unwrap_or("").is_empty());
}

#[tokio::test]
async fn calls_return_text_and_structured_content() {
    let folder = echo_only("");
    let server = folder.serve().await;
    let result = server
        .call("echo_echo", json!({"message": "héllo ✓"}))
        .await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert_eq!(text(&result), "héllo ✓");
    assert_eq!(
        result.structured_content,
        Some(json!({"message": "héllo ✓"}))
    );

    let sum = server.call("echo_add", json!({"a": 2.5, "b": 4})).await;
    assert_eq!(sum.structured_content, Some(json!({"sum": 6.5})), "{sum:?}");

    let image = server.call("echo_image", json!({})).await;
    assert!(
        image
            .content
            .iter()
            .any(|c| matches!(c, ContentBlock::Image(i) if i.mime_type == "image/png")),
        "expected a PNG image block: {image:?}"
    );
}

#[tokio::test]
async fn schema_violations_are_tool_errors_naming_the_problem() {
    let folder = echo_only("");
    let server = folder.serve().await;
    let wrong_type = server.call("echo_add", json!({"a": "two", "b": 1})).await;
    assert_error(&wrong_type, &["invalid arguments", "/a"]);
    let missing = server.call("echo_echo", json!({})).await;
    assert_error(&missing, &["message"]);
    let extra = server
        .call("echo_echo", json!({"message": "x", "bogus": 1}))
        .await;
    assert_error(&extra, &["bogus"]);
}

#[tokio::test]
async fn tool_failures_are_error_results() {
    let folder = echo_only("");
    let server = folder.serve().await;
    assert_error(
        &server
            .call("echo_fail", json!({"message": "disk on fire"}))
            .await,
        &["disk on fire"],
    );
    assert_error(
        &server
            .call("echo_error_result", json!({"message": "try again"}))
            .await,
        &["try again"],
    );
}

#[tokio::test]
async fn plugin_settings_reach_only_their_plugin() {
    let folder = echo_only("[plugins.echo.config]\ngreeting = \"bonjour\"\n");
    let server = folder.serve().await;
    let found = server.call("echo_config", json!({"key": "greeting"})).await;
    assert_eq!(text(&found), "bonjour");
    assert_error(
        &server.call("echo_config", json!({"key": "missing"})).await,
        &["missing"],
    );
}

#[tokio::test]
async fn every_call_gets_a_fresh_instance() {
    let folder = echo_only("");
    let server = folder.serve().await;
    for _ in 0..5 {
        let result = server.call("echo_counter", json!({})).await;
        assert_eq!(
            text(&result),
            "1 heap-fresh pages-fresh",
            "state leaked between calls"
        );
    }
}

/// `isolation = "reuse"`: an instance serves the plugin's next calls, until it faults or
/// has served `reuse-calls` calls; then a fresh one takes over.
#[tokio::test]
async fn a_plugin_that_opts_into_reuse_keeps_its_instance_until_it_faults_or_is_used_up() {
    let folder = echo_only(
        "[plugins.echo]\nisolation = \"reuse\"\nreuse-calls = 3\n[plugins.echo.limits]\ntimeout = \"500ms\"\n",
    );
    let (code, stdout, stderr) = folder.run(&["check"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(
            "isolation: reuse — an instance serves up to 3 calls of one caller, kept 60s unused\n"
        ),
        "{stdout}"
    );
    let server = folder.serve().await;
    let mut answers = Vec::new();
    for _ in 0..2 {
        answers.push(text(&server.call("echo_counter", json!({})).await));
    }
    // A fault ends the instance it happened in.
    let slow = server.call("echo_wait", json!({"ms": 5_000})).await;
    assert_error(&slow, &["time limit of 500ms"]);
    for _ in 0..4 {
        answers.push(text(&server.call("echo_counter", json!({})).await));
    }
    assert_eq!(
        answers,
        [
            "1 heap-fresh pages-fresh",
            "2 heap-leaked pages-leaked 48",
            "1 heap-fresh pages-fresh",
            "2 heap-leaked pages-leaked 48",
            "3 heap-leaked pages-leaked 48",
            // reuse-calls = 3: the fourth call gets a fresh instance.
            "1 heap-fresh pages-fresh",
        ]
    );
}

/// A plugin's author declares it stateless in its sidecar; the operator's own
/// `[plugins.NAME]` replaces the sidecar and can keep a fresh instance per call.
#[tokio::test]
async fn a_sidecar_declares_reuse_and_the_operators_entry_overrides_it() {
    for (config, expected) in [
        (
            "",
            ["1 heap-fresh pages-fresh", "2 heap-leaked pages-leaked 48"],
        ),
        (
            "[plugins.echo]\nisolation = \"per-call\"\n",
            ["1 heap-fresh pages-fresh", "1 heap-fresh pages-fresh"],
        ),
    ] {
        let folder = echo_only(config);
        std::fs::write(
            folder.plugins().join("echo.toml"),
            "isolation = \"reuse\"\n",
        )
        .unwrap();
        let server = folder.serve().await;
        for answer in expected {
            let result = server.call("echo_counter", json!({})).await;
            assert_eq!(text(&result), answer, "with capsule.toml {config:?}");
        }
    }
}

#[tokio::test]
async fn calls_run_concurrently() {
    let folder = echo_only("");
    let server = folder.serve().await;
    // A long call in flight must not hold up other calls.
    let slow = server.call("echo_wait", json!({"ms": 20_000}));
    tokio::pin!(slow);
    tokio::select! {
        _ = &mut slow => panic!("the 20 s call finished first"),
        _ = server.assert_echo_answers() => {}
    }
    // Many calls at once each get their own answer.
    let calls = (0..24).map(|i| {
        let server = &server;
        async move {
            (
                i,
                server
                    .call("echo_echo", json!({"message": format!("call {i}")}))
                    .await,
            )
        }
    });
    for (i, result) in futures::future::join_all(calls).await {
        assert_eq!(text(&result), format!("call {i}"));
    }
}

/// Starts `tool`, abandons it once the host has admitted it (rmcp then sends
/// notifications/cancelled) and checks the host stopped it and keeps serving.
async fn cancel(folder: Folder, tool: &str, arguments: serde_json::Value) {
    let server = folder.serve_traced().await;
    abandon_when_logged(&server, tool, arguments, "call admitted", 1).await;
    let log = server.wait_for_log("fault=\"cancelled\"").await;
    assert!(log.contains(tool), "{log}");
    server.assert_echo_answers().await;
}

/// Calls `tool` and drops the call once stderr holds `needle` `count` times.
async fn abandon_when_logged(
    server: &Server,
    tool: &str,
    arguments: serde_json::Value,
    needle: &str,
    count: usize,
) {
    let call = server.call(tool, arguments);
    tokio::select! {
        result = call => panic!("{tool} finished before it was cancelled: {result:?}"),
        _ = server.wait_for_logs(needle, count) => {}
    }
}

#[tokio::test]
async fn cancelling_stops_a_blocked_call() {
    let folder = echo_only("[plugins.echo.limits]\ntimeout = \"60s\"\n");
    cancel(folder, "echo_wait", json!({"ms": 50_000})).await;
}

#[tokio::test]
async fn cancelling_stops_a_spinning_call() {
    let folder = echo_and_hostile("fuel = 1_000_000_000_000\ntimeout = \"120s\"");
    cancel(folder, "hostile_spin", json!({})).await;
}

#[tokio::test]
async fn cancelling_a_queued_call_stops_it_before_it_runs() {
    let folder = echo_only(
        "[runtime]\nmax-concurrent-calls = 1\n[plugins.echo.limits]\ntimeout = \"60s\"\n",
    );
    let server = folder.serve_traced().await;
    // Boxed, so that dropping it abandons the call (and rmcp sends the cancel).
    let mut holder = Box::pin(server.call("echo_wait", json!({"ms": 50_000})));
    tokio::select! {
        result = &mut holder => panic!("the holding call finished: {result:?}"),
        _ = server.wait_for_log("call admitted") => {}
    }
    // The second call waits for the only slot; cancelling it there must stop it.
    tokio::select! {
        result = &mut holder => panic!("the holding call finished: {result:?}"),
        _ = abandon_when_logged(&server, "echo_wait", json!({"ms": 1}), "call queued", 1) => {}
    }
    let log = server.wait_for_log("fault=\"cancelled\"").await;
    assert_eq!(
        log.matches("call admitted").count(),
        1,
        "the queued call never ran: {log}"
    );
    drop(holder);
    server.wait_for_logs("fault=\"cancelled\"", 2).await;
    server.assert_echo_answers().await;
}

#[tokio::test]
async fn a_cancel_sent_right_after_the_request_still_stops_the_call() {
    use rmcp::model::{CallToolRequest, CallToolRequestParams, ClientRequest};
    use rmcp::service::PeerRequestOptions;

    let folder = echo_only("[plugins.echo.limits]\ntimeout = \"60s\"\n");
    let server = folder.serve_traced().await;
    let arguments = json!({"ms": 50_000})
        .as_object()
        .cloned()
        .unwrap_or_default();
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(
        CallToolRequestParams::new("echo_wait").with_arguments(arguments),
    ));
    let handle = server
        .client
        .send_request_with_option(request, PeerRequestOptions::no_options())
        .await
        .expect("send tools/call");
    // The cancel may reach the host before the call has taken a slot or started.
    handle
        .cancel(Some("changed my mind".into()))
        .await
        .expect("send notifications/cancelled");
    let log = server.wait_for_log("fault=\"cancelled\"").await;
    assert!(log.contains("echo_wait"), "{log}");
    server.assert_echo_answers().await;
}

#[tokio::test]
async fn progress_and_logs_reach_the_client() {
    let folder = echo_only("");
    let server = folder.serve().await;
    server
        .client
        .set_level(SetLevelRequestParams::new(LoggingLevel::Info))
        .await
        .expect("logging/setLevel");
    let done = server.call("echo_progress", json!({"steps": 3})).await;
    assert_eq!(text(&done), "done");
    let progress = server.recorder.progress.lock().unwrap().clone();
    let steps: Vec<f64> = progress.iter().map(|p| p.progress).collect();
    assert_eq!(steps, vec![1.0, 2.0, 3.0], "{progress:?}");
    assert_eq!(progress[2].total, Some(3.0));

    let logged = server
        .call("echo_log", json!({"message": "from the plugin"}))
        .await;
    assert_eq!(text(&logged), "logged");
    let logs = server.recorder.logs.lock().unwrap().clone();
    assert!(
        logs.iter()
            .any(|l| l.data.to_string().contains("from the plugin")),
        "no log notification: {logs:?}"
    );
    // The plugin's own stdout/stderr went to the host log, not to the protocol.
    server.wait_for_log("from the plugin").await;
}

#[tokio::test]
async fn default_policy_denies_files_env_and_network() {
    let folder = echo_only("");
    let server = folder.serve().await;
    assert_error(
        &server
            .call("echo_read_file", json!({"path": "/etc/passwd"}))
            .await,
        &[crate::support::NOT_FOUND],
    );
    assert_error(
        &server.call("echo_env", json!({"name": "HOME"})).await,
        &["environment variable not found"],
    );
    let fetch = server
        .call("echo_fetch", json!({"url": "http://127.0.0.1:9/"}))
        .await;
    assert_error(&fetch, &["request failed: ErrorCode::HttpRequestDenied"]);
    server.wait_for_log("denied outgoing HTTP request").await;
}
