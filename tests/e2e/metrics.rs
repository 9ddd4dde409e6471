//! `/metrics` (docs/observability.md): scraped from the real server over HTTP and, in
//! stdio mode, from its `--metrics-addr` listener, parsed with a Prometheus text parser;
//! the counts must match the calls made, faults of the hostile plugin and rejected calls
//! included. `capsule top --once` reads the same page.

use prometheus_parse::{Sample, Scrape, Value as Sampled};
use reqwest::StatusCode;
use rmcp::model::CallToolRequestParams;
use serde_json::json;

use crate::http::{HttpServer, initialize_request, post};
use crate::support::{Folder, Server, assert_error, echo_and_hostile, logged_url, text};

/// The hostile plugin's limits: spin runs out of this fuel quickly.
const HOSTILE_LIMITS: &str = "fuel = 20_000_000\ntimeout = \"30s\"";

/// GETs `url` and parses it as the Prometheus text format.
pub async fn scrape(url: &str) -> Scrape {
    let response = reqwest::get(url).await.expect("GET /metrics");
    assert_eq!(response.status(), StatusCode::OK, "GET {url}");
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let body = response.text().await.expect("metrics body");
    Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text format")
}

/// The samples of `metric` whose labels include every `(name, value)` of `labels`.
pub fn samples<'s>(scrape: &'s Scrape, metric: &str, labels: &[(&str, &str)]) -> Vec<&'s Sample> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect()
}

/// The one value of `metric` with `labels` (a counter, gauge or untyped sample).
pub fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    let found = samples(scrape, metric, labels);
    assert_eq!(
        found.len(),
        1,
        "expected one sample of {metric} {labels:?}, found {found:?}"
    );
    match found[0].value {
        Sampled::Counter(v) | Sampled::Gauge(v) | Sampled::Untyped(v) => v,
        ref other => panic!("{metric} {labels:?} is not a single value: {other:?}"),
    }
}

/// The URL a stdio server started with `--metrics-addr` serves its metrics on, from the
/// line it logs.
pub async fn metrics_url(server: &Server) -> String {
    let url = logged_url(
        &server.wait_for_log("metrics on http://").await,
        "metrics on ",
    );
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/metrics"),
        "{url}"
    );
    url
}

/// `capsule_tool_calls_total` of `tool` (of `plugin`) that ended with `outcome`.
fn calls(scrape: &Scrape, plugin: &str, tool: &str, outcome: &str) -> f64 {
    value(
        scrape,
        "capsule_tool_calls_total",
        &[("plugin", plugin), ("tool", tool), ("outcome", outcome)],
    )
}

/// Whether `tool` has a series for `outcome` (only `ok` exists before a call ends so).
fn has_series(scrape: &Scrape, tool: &str, outcome: &str) -> bool {
    !samples(
        scrape,
        "capsule_tool_calls_total",
        &[("tool", tool), ("outcome", outcome)],
    )
    .is_empty()
}

/// Makes the calls every test counts: 3 good echo calls, 1 rejected (invalid arguments),
/// 1 unknown tool, a fuel fault and a crash of the hostile plugin.
async fn make_calls(
    call: impl AsyncFn(&str, serde_json::Value) -> rmcp::model::CallToolResult,
    unknown: impl AsyncFn(),
) {
    for i in 0..3 {
        let result = call("echo_echo", json!({"message": format!("hi {i}")})).await;
        assert_eq!(text(&result), format!("hi {i}"));
    }
    let rejected = call("echo_echo", json!({"message": 5})).await;
    assert_error(&rejected, &["invalid arguments", "/message"]);
    unknown().await;
    let spun = call("hostile_spin", json!({})).await;
    assert_error(&spun, &["ran out of fuel (limit: 20000000 units per call)"]);
    let crashed = call("hostile_panic", json!({})).await;
    assert_error(&crashed, &["crashed", "hostile plugin panicked on purpose"]);
}

/// The counts [`make_calls`] must leave.
fn assert_counts(scrape: &Scrape) {
    assert_eq!(calls(scrape, "echo", "echo_echo", "ok"), 3.0);
    assert_eq!(calls(scrape, "echo", "echo_echo", "rejected"), 1.0);
    assert!(!has_series(scrape, "echo_echo", "fuel"));
    assert_eq!(calls(scrape, "hostile", "hostile_spin", "fuel"), 1.0);
    assert_eq!(calls(scrape, "hostile", "hostile_spin", "ok"), 0.0);
    assert_eq!(calls(scrape, "hostile", "hostile_panic", "crash"), 1.0);
    // A tool never called has its series at 0 from the start.
    assert_eq!(calls(scrape, "hostile", "hostile_ok", "ok"), 0.0);
    assert_eq!(value(scrape, "capsule_unknown_tool_calls_total", &[]), 1.0);
    // The unknown name the client sent became no label anywhere.
    assert!(
        !scrape
            .samples
            .iter()
            .any(|s| s.labels.values().any(|v| v.contains("nope"))),
        "a client-chosen tool name became a label"
    );
    // The rejected call is timed apart, from the request to its answer.
    assert_eq!(
        value(
            scrape,
            "capsule_call_refused_seconds_count",
            &[("plugin", "echo"), ("outcome", "rejected")]
        ),
        1.0
    );
    // Run time, fuel and instances: the three echo calls that ran (not the rejected one).
    assert_eq!(
        value(
            scrape,
            "capsule_call_run_seconds_count",
            &[("tool", "echo_echo")]
        ),
        3.0
    );
    assert_eq!(
        value(
            scrape,
            "capsule_call_queue_wait_seconds_count",
            &[("plugin", "echo")]
        ),
        3.0
    );
    assert_eq!(
        value(
            scrape,
            "capsule_instances_created_total",
            &[("plugin", "echo")]
        ),
        3.0
    );
    assert_eq!(
        value(
            scrape,
            "capsule_instances_created_total",
            &[("plugin", "hostile")]
        ),
        2.0
    );
    // The spin consumed its whole fuel (wasmtime stops at or just past zero).
    let fuel = value(
        scrape,
        "capsule_call_fuel_consumed_sum",
        &[("tool", "hostile_spin")],
    );
    assert!(
        (20_000_000.0..20_100_000.0).contains(&fuel),
        "fuel consumed by the spin: {fuel}"
    );
    let memory = value(
        scrape,
        "capsule_call_memory_peak_bytes_sum",
        &[("plugin", "echo")],
    );
    assert!(memory >= 3.0 * 65536.0, "echo's peak memory sum: {memory}");
    assert_eq!(value(scrape, "capsule_plugins_loaded", &[]), 2.0);
    assert_eq!(
        value(
            scrape,
            "capsule_plugin_events_total",
            &[("event", "loaded")]
        ),
        2.0
    );
    assert_eq!(value(scrape, "capsule_calls_running", &[]), 0.0);
    assert_eq!(value(scrape, "capsule_calls_queued", &[]), 0.0);
}

#[tokio::test]
async fn metrics_over_http_count_every_call_by_outcome() {
    let folder = echo_and_hostile(HOSTILE_LIMITS);
    let server = HttpServer::start(&folder, &[]).await;
    let client = server.legacy_client().await;
    let call = async |tool: &str, arguments: serde_json::Value| {
        let serde_json::Value::Object(arguments) = arguments else {
            unreachable!()
        };
        client
            .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(arguments))
            .await
            .expect("tools/call over HTTP")
    };
    let unknown = async || {
        let err = client
            .call_tool(CallToolRequestParams::new("nope_nothing"))
            .await
            .expect_err("an unknown tool is a JSON-RPC error");
        assert!(
            err.to_string().contains("unknown tool `nope_nothing`"),
            "{err}"
        );
    };
    make_calls(call, unknown).await;

    let metrics = format!("{}/metrics", server.base);
    let scrape = scrape(&metrics).await;
    assert_counts(&scrape);
    assert_eq!(value(&scrape, "capsule_http_sessions", &[]), 1.0);

    // The same Host screening as MCP: a foreign Host is refused.
    let foreign = reqwest::Client::new()
        .get(&metrics)
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::MISDIRECTED_REQUEST);

    // `capsule top --once` shows the same counts per plugin.
    let (code, stdout, stderr) = folder.run(&["top", "--once", &server.base]).await;
    assert_eq!(code, 0, "{stderr}");
    let line = |plugin: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(plugin))
            .unwrap_or_else(|| panic!("no line for {plugin}:\n{stdout}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    let echo = line("echo");
    assert_eq!((echo[1], echo[2], echo[6]), ("4", "-", "1"), "{stdout}");
    let hostile = line("hostile");
    assert_eq!(
        (hostile[1], &hostile[8..]),
        ("2", &["0", "2", "fuel=1", "crash=1"][..]),
        "{stdout}"
    );
}

#[tokio::test]
async fn metrics_in_stdio_mode_are_served_on_metrics_addr() {
    let folder = echo_and_hostile(HOSTILE_LIMITS);
    let server = Server::start(folder.command(&["serve", "--metrics-addr", "0"])).await;
    let url = metrics_url(&server).await;
    let call = async |tool: &str, arguments: serde_json::Value| server.call(tool, arguments).await;
    let unknown = async || {
        let err = server
            .try_call("nope_nothing", json!({}))
            .await
            .expect_err("an unknown tool is a JSON-RPC error");
        assert!(
            err.to_string().contains("unknown tool `nope_nothing`"),
            "{err}"
        );
    };
    make_calls(call, unknown).await;
    let scrape = scrape(&url).await;
    assert_counts(&scrape);
    // No HTTP transport, so no sessions gauge value other than its initial 0.
    assert_eq!(value(&scrape, "capsule_http_sessions", &[]), 0.0);
}

/// `capsule_warm_instances` counts the instances a plugin with `isolation = "reuse"` keeps,
/// one per caller; calls that reuse one create no instance.
#[tokio::test]
async fn kept_instances_are_a_gauge_and_reused_ones_are_not_created_again() {
    let folder = Folder::new(
        &[("fixtures/echo.wasm", "echo.wasm")],
        "[plugins.echo]\nisolation = \"reuse\"\n",
    );
    let server = Server::start(folder.command(&["serve", "--metrics-addr", "0"])).await;
    let url = metrics_url(&server).await;
    let before = scrape(&url).await;
    assert_eq!(value(&before, "capsule_warm_instances", &[]), 0.0);
    for expected in ["1", "2", "3"] {
        let result = server.call("echo_counter", json!({})).await;
        assert!(text(&result).starts_with(expected), "{result:?}");
    }
    let after = scrape(&url).await;
    assert_eq!(value(&after, "capsule_warm_instances", &[]), 1.0);
    assert_eq!(
        value(
            &after,
            "capsule_instances_created_total",
            &[("plugin", "echo")]
        ),
        1.0
    );
}

#[tokio::test]
async fn metrics_need_no_token_and_count_authentication_failures_by_reason() {
    let folder = Folder::new(&[("fixtures/echo.wasm", "echo.wasm")], "");
    let (code, _, stderr) = folder
        .run(&["auth", "add-token", "ci", "--scopes", "mcp"])
        .await;
    assert_eq!(code, 0, "{stderr}");
    let server = HttpServer::start(&folder, &[]).await;
    let missing = post(&server.url, &initialize_request(1))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    for _ in 0..2 {
        let invalid = post(&server.url, &initialize_request(1))
            .header("authorization", "Bearer cap_not-a-real-token")
            .send()
            .await
            .unwrap();
        assert_eq!(invalid.status(), StatusCode::UNAUTHORIZED);
    }
    let scrape = scrape(&format!("{}/metrics", server.base)).await;
    let failures = |reason| {
        value(
            &scrape,
            "capsule_auth_failures_total",
            &[("reason", reason)],
        )
    };
    assert_eq!(failures("missing-token"), 1.0);
    assert_eq!(failures("invalid-token"), 2.0);
}

#[tokio::test]
async fn metrics_can_be_turned_off() {
    let folder = Folder::new(
        &[("fixtures/echo.wasm", "echo.wasm")],
        "[metrics]\nenabled = false\n",
    );
    let server = HttpServer::start(&folder, &[]).await;
    let response = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

/// The caller's trace context, as W3C Trace Context's example writes it.
const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

#[tokio::test]
async fn a_call_span_carries_the_callers_traceparent_and_what_the_call_used() {
    let folder = echo_and_hostile(HOSTILE_LIMITS);
    let mut command = folder.command(&["serve"]);
    command.env("CAPSULE_LOG", "info,capsule::call=debug");
    let server = Server::start(command).await;
    let mut meta = rmcp::model::RequestMetaObject::new();
    meta.set_traceparent(TRACEPARENT);
    let mut params = CallToolRequestParams::new("hostile_spin");
    params.meta = Some(meta);
    let result = server.client.call_tool(params).await.expect("tools/call");
    assert_error(&result, &["ran out of fuel"]);
    let log = server.wait_for_log("call finished").await;
    let line = log
        .lines()
        .find(|l| l.contains("call finished"))
        .expect("the call's line");
    for field in [
        "tools/call{",
        "plugin=\"hostile\"",
        "tool=\"hostile_spin\"",
        "trace_id=\"0af7651916cd43dd8448eb211c80319c\"",
        "parent_span_id=\"b7ad6b7169203331\"",
        "outcome=\"fuel\"",
        "queue_wait_us=",
        "run_us=",
        "memory=",
        // A new plugin's first call, nothing else in flight: on the thread that read it.
        "started_here=true",
    ] {
        assert!(line.contains(field), "no {field} in {line}");
    }
    let fuel: u64 = line
        .split("fuel=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no fuel= in {line}"));
    assert!((20_000_000..20_100_000).contains(&fuel), "{line}");
}

#[tokio::test]
async fn over_http_the_traceparent_header_is_taken_when_meta_has_none() {
    let folder = Folder::new(&[("fixtures/echo.wasm", "echo.wasm")], "");
    let mut command =
        folder.command(&["serve", "--transport", "http", "--port", "0", "--stateless"]);
    command.env("CAPSULE_LOG", "info,capsule::call=debug");
    let server = HttpServer::spawn(command).await;
    let call = crate::http::call_request(1, "echo_echo", json!({"message": "hi"}));
    let response = post(&server.url, &call)
        .header("mcp-protocol-version", "2025-11-25")
        .header("traceparent", TRACEPARENT)
        .send()
        .await
        .expect("POST tools/call");
    assert_eq!(response.status(), StatusCode::OK);
    let log = server.wait_for_log("call finished").await;
    let line = log
        .lines()
        .find(|l| l.contains("call finished"))
        .expect("the call's line");
    assert!(
        line.contains("trace_id=\"0af7651916cd43dd8448eb211c80319c\"")
            && line.contains("parent_span_id=\"b7ad6b7169203331\"")
            && line.contains("outcome=\"ok\""),
        "{line}"
    );
}
