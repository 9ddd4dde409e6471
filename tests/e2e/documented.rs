//! Behaviour the docs promise that no other test reached: structured output checked against
//! the output schema, the "busy" answer of a full wait queue, the table and instance limits,
//! the per-request `_meta` log level, and the JSON-RPC error of an unknown tool.

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ErrorCode, LoggingLevel, RequestMetaObject,
    SetLevelRequestParams,
};
use rmcp::service::ServiceError;
use serde_json::{Value, json};

use crate::support::{Folder, Server, text};

/// Asserts `result` is an error result whose text is exactly `message`.
fn assert_error_text(result: &CallToolResult, message: &str) {
    assert_eq!(
        result.is_error,
        Some(true),
        "expected isError, got {result:?}"
    );
    assert_eq!(text(result), message, "{result:?}");
}

fn structured() -> Folder {
    Folder::new(&[("fixtures/structured.wasm", "structured.wasm")], "")
}

#[tokio::test]
async fn structured_content_that_is_not_json_is_an_error() {
    let folder = structured();
    let server = folder.serve().await;
    let result = server.call("structured_bad_json", json!({})).await;
    assert_error_text(
        &result,
        "plugin `structured` returned structured content that is not valid JSON: EOF while parsing an object at line 1 column 11",
    );
    assert_eq!(result.structured_content, None, "{result:?}");
}

#[tokio::test]
async fn structured_content_off_its_output_schema_is_an_error() {
    let folder = structured();
    let server = folder.serve().await;
    let result = server.call("structured_off_schema", json!({})).await;
    assert_error_text(
        &result,
        "plugin `structured` returned structured content that does not match the output schema of `structured_off_schema`: at `/count`: \"three\" is not of type \"integer\"",
    );
    assert_eq!(result.structured_content, None, "{result:?}");
}

#[tokio::test]
async fn a_tool_with_an_output_schema_must_return_structured_content() {
    let folder = structured();
    let server = folder.serve().await;
    let result = server.call("structured_missing", json!({})).await;
    assert_error_text(
        &result,
        "plugin `structured` declares an output schema for `structured_missing` but returned no structured content",
    );
}

#[tokio::test]
async fn structured_content_within_its_schema_and_error_results_pass() {
    let folder = structured();
    let server = folder.serve().await;
    let fine = server.call("structured_fine", json!({})).await;
    assert_eq!(fine.is_error, Some(false), "{fine:?}");
    assert_eq!(fine.structured_content, Some(json!({"count": 3})));
    assert_eq!(text(&fine), "3");
    // An error result is the plugin's own message; the output schema does not apply to it.
    let failed = server.call("structured_failed", json!({})).await;
    assert_error_text(&failed, "could not count");
}

#[tokio::test]
async fn a_full_wait_queue_answers_busy_at_once() {
    // One call runs, one may wait: the third is turned away without waiting.
    let folder = Folder::new(
        &[("fixtures/echo.wasm", "echo.wasm")],
        "[runtime]\nmax-concurrent-calls = 1\nmax-queued-calls = 1\n\
         [plugins.echo.limits]\ntimeout = \"60s\"\n",
    );
    let server = folder.serve_traced().await;
    let running = server.call("echo_wait", json!({"ms": 60_000}));
    let queued = server.call("echo_wait", json!({"ms": 60_000}));
    tokio::pin!(running, queued);
    tokio::select! {
        result = &mut running => panic!("the running call finished: {result:?}"),
        _ = server.wait_for_log("call admitted") => {}
    }
    tokio::select! {
        result = &mut running => panic!("the running call finished: {result:?}"),
        result = &mut queued => panic!("the queued call finished: {result:?}"),
        _ = server.wait_for_log("call queued") => {}
    }
    let turned_away = tokio::select! {
        result = &mut running => panic!("the running call finished: {result:?}"),
        result = &mut queued => panic!("the queued call finished: {result:?}"),
        result = server.call("echo_echo", json!({"message": "let me in"})) => result,
    };
    assert_error_text(
        &turned_away,
        "the server is busy: 1 calls running and 1 waiting (runtime.max-concurrent-calls / max-queued-calls); retry shortly",
    );
    let log = server.wait_for_log("rejected: the server is busy").await;
    assert_eq!(log.matches("call admitted").count(), 1, "{log}");
    assert_eq!(log.matches("call queued").count(), 1, "{log}");
}

#[tokio::test]
async fn a_table_cannot_grow_past_the_table_limit() {
    let folder = Folder::new(
        &[("fixtures/elements.wasm", "elements.wasm")],
        "[plugins.elements.limits]\ntable-elements = 1000\n",
    );
    let server = folder.serve().await;
    let within = server.call("elements_grow", json!({"n": 999})).await;
    assert_eq!(
        within.structured_content,
        Some(json!({"result": 1000})),
        "{within:?}"
    );
    let over = server.call("elements_grow", json!({"n": 1000})).await;
    assert_error_text(
        &over,
        "sandbox fault: plugin `elements` exceeded its table limit of 1000 elements; raise limits.table-elements for this plugin if the work is legitimate",
    );
    server.wait_for_log("fault=\"table\"").await;
}

#[tokio::test]
async fn a_component_cannot_create_more_core_instances_than_its_limit() {
    let instances = |limit: u32| {
        Folder::new(
            &[("fixtures/instances.wasm", "instances.wasm")],
            &format!("[plugins.instances.limits]\ninstances = {limit}\n"),
        )
    };
    // The component makes four core instances.
    let enough = instances(4);
    let server = enough.serve().await;
    let counted = server.call("instances_count", json!({})).await;
    assert_eq!(
        counted.structured_content,
        Some(json!({"result": 4})),
        "{counted:?}"
    );
    drop(server);

    let too_few = instances(3);
    let server = too_few.serve().await;
    let refused = server.call("instances_count", json!({})).await;
    assert_error_text(
        &refused,
        "sandbox fault: plugin `instances` exceeded its instance limit of 3 (instance count too high at 4); raise limits.instances for this plugin (up to 32) if the component needs them",
    );
    server.wait_for_log("fault=\"instances\"").await;
}

/// Calls `echo_log` (it logs `message` at info and `warning: message` at warning) with
/// `level` as the request's `_meta` log level, and returns the log notifications the client
/// received for it, as `{"level", "data"}`.
async fn logs_of_call(server: &Server, level: Option<LoggingLevel>, message: &str) -> Vec<Value> {
    log_call(server, level, message).await;
    // The client handles each notification on a task of its own, so one may be recorded
    // after the result. A second call whose logs are on: once its notification is here,
    // those of the call before it (sent before that call's result) are here too.
    let marker = format!("after {message}");
    log_call(server, Some(LoggingLevel::Info), &marker).await;
    let what = format!("the log of the marker call {marker:?}");
    server
        .recorder
        .wait_for_logs(&what, |logs| {
            let of = |text: &str| {
                let warning = json!(format!("warning: {text}"));
                logs.iter()
                    .filter(|log| log.data == json!(text) || log.data == warning)
                    .map(|log| json!({"level": log.level, "data": log.data}))
                    .collect::<Vec<_>>()
            };
            (!of(&marker).is_empty()).then(|| of(message))
        })
        .await
}

async fn log_call(server: &Server, level: Option<LoggingLevel>, message: &str) {
    let mut request = CallToolRequestParams::new("echo_log").with_arguments(
        json!({"message": message})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    if let Some(level) = level {
        let mut meta = RequestMetaObject::new();
        meta.set_log_level(level);
        request.meta = Some(meta);
    }
    let result = server.client.call_tool(request).await.expect("tools/call");
    assert_eq!(text(&result), "logged", "{result:?}");
}

#[tokio::test]
async fn the_meta_log_level_of_a_request_chooses_its_log_notifications() {
    let folder = Folder::new(&[("fixtures/echo.wasm", "echo.wasm")], "");
    let server = folder.serve().await;
    // No level asked for: no log notifications.
    assert_eq!(
        logs_of_call(&server, None, "quiet").await,
        Vec::<Value>::new()
    );
    // A request's level turns them on for that request, from that level up.
    assert_eq!(
        logs_of_call(&server, Some(LoggingLevel::Info), "both").await,
        vec![
            json!({"level": "info", "data": "both"}),
            json!({"level": "warning", "data": "warning: both"}),
        ]
    );
    assert_eq!(
        logs_of_call(&server, Some(LoggingLevel::Warning), "warned").await,
        vec![json!({"level": "warning", "data": "warning: warned"})]
    );
    // And it wins over the session's level, in both directions.
    server
        .client
        .set_level(SetLevelRequestParams::new(LoggingLevel::Warning))
        .await
        .expect("logging/setLevel");
    assert_eq!(
        logs_of_call(&server, Some(LoggingLevel::Debug), "louder").await,
        vec![
            json!({"level": "info", "data": "louder"}),
            json!({"level": "warning", "data": "warning: louder"}),
        ]
    );
    assert_eq!(
        logs_of_call(&server, Some(LoggingLevel::Error), "quieter").await,
        Vec::<Value>::new()
    );
    // Without one, the session's level applies.
    assert_eq!(
        logs_of_call(&server, None, "session").await,
        vec![json!({"level": "warning", "data": "warning: session"})]
    );
}

#[tokio::test]
async fn an_unknown_tool_is_a_json_rpc_invalid_params_error() {
    let folder = Folder::new(&[("fixtures/echo.wasm", "echo.wasm")], "");
    let server = folder.serve().await;
    let err = server
        .try_call("echo_nope", json!({}))
        .await
        .expect_err("an unknown tool is a JSON-RPC error");
    let ServiceError::McpError(error) = err else {
        panic!("expected a JSON-RPC error response, got {err:?}");
    };
    assert_eq!(error.code, ErrorCode::INVALID_PARAMS, "{error:?}");
    assert_eq!(error.code.0, -32602);
    assert_eq!(
        error.message,
        "unknown tool `echo_nope`; call tools/list to see the available tools"
    );
    server.assert_echo_answers().await;
}
