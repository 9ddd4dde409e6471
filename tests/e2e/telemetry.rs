//! OTLP export of the calls' spans (`[telemetry]`, docs/observability.md "Traces"): the
//! real binary sends OTLP/HTTP protobuf to a receiver this test runs on 127.0.0.1, which
//! decodes it with the OpenTelemetry protocol's own messages. The caller's `traceparent`
//! (from `_meta` over stdio, the header over HTTP) must be the exported span's parent.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as SpanStatus;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span};
use reqwest::StatusCode;
use rmcp::model::CallToolRequestParams;
use serde_json::json;

use crate::http::{HttpServer, call_request, post};
use crate::support::{Folder, HANG, assert_error, echo_and_hostile, text};

/// The caller's trace context (W3C Trace Context's example).
const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT_ID: &str = "b7ad6b7169203331";

/// What the OTLP/HTTP receiver (`otlp.rs`) got: every `POST /v1/traces` body, decoded.
struct Receiver {
    port: u16,
    received: Arc<Mutex<Vec<ResourceSpans>>>,
    /// Requests that were not protobuf trace exports (path or content type).
    refused: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    fn start() -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(Mutex::new(Vec::new()));
        let (into, wrong) = (received.clone(), refused.clone());
        let port = crate::otlp::receive(move |request| match request {
            Ok(export) => into.lock().unwrap().extend(export.resource_spans),
            Err(what) => wrong.lock().unwrap().push(what),
        });
        Self {
            port,
            received,
            refused,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every span received so far, with the resource that sent it.
    fn spans(&self) -> Vec<(ResourceSpans, Span)> {
        let received = self.received.lock().unwrap();
        received
            .iter()
            .flat_map(|resource| {
                resource.scope_spans.iter().flat_map(move |scope| {
                    scope
                        .spans
                        .iter()
                        .map(move |s| (resource.clone(), s.clone()))
                })
            })
            .collect()
    }

    /// Waits until a span whose `tool` attribute is `tool` arrived; failing after [`HANG`].
    async fn span_of(&self, tool: &str) -> (ResourceSpans, Span) {
        let started = std::time::Instant::now();
        loop {
            if let Some(found) = self
                .spans()
                .into_iter()
                .find(|(_, s)| attribute(s, "tool").as_deref() == Some(tool))
            {
                assert_eq!(*self.refused.lock().unwrap(), Vec::<String>::new());
                return found;
            }
            assert!(
                started.elapsed() < HANG,
                "no span of {tool} reached the receiver; received {:?}, refused {:?}",
                self.spans(),
                self.refused.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The value of `span`'s attribute `key`, as text.
fn attribute(span: &Span, key: &str) -> Option<String> {
    let value = span
        .attributes
        .iter()
        .find(|a| a.key == key)?
        .value
        .clone()?;
    match value.value? {
        Any::StringValue(s) => Some(s),
        Any::IntValue(i) => Some(i.to_string()),
        Any::BoolValue(b) => Some(b.to_string()),
        other => Some(format!("{other:?}")),
    }
}

fn service_name(resource: &ResourceSpans) -> Option<String> {
    let attributes = &resource.resource.as_ref()?.attributes;
    match attributes
        .iter()
        .find(|a| a.key == "service.name")?
        .value
        .clone()?
        .value?
    {
        Any::StringValue(s) => Some(s),
        _ => None,
    }
}

#[tokio::test]
async fn over_stdio_each_call_is_exported_as_a_child_of_the_callers_traceparent() {
    let receiver = Receiver::start();
    let folder = echo_and_hostile(&format!(
        "fuel = 20_000_000\ntimeout = \"30s\"\n\n[telemetry]\notlp-endpoint = \"{}\"\n\
         export-interval = \"100ms\"\nservice = \"capsule-e2e\"",
        receiver.endpoint()
    ));
    // The default log filter (`info`) leaves the call span out of the log; export still
    // gets it.
    let server = folder.serve().await;
    server
        .wait_for_log("exporting a span per tools/call over OTLP/HTTP")
        .await;
    let mut meta = rmcp::model::RequestMetaObject::new();
    meta.set_traceparent(TRACEPARENT);
    let mut params = CallToolRequestParams::new("echo_echo");
    params.arguments = json!({"message": "traced"}).as_object().cloned();
    params.meta = Some(meta);
    let result = server.client.call_tool(params).await.expect("tools/call");
    assert_eq!(text(&result), "traced");
    assert_error(
        &server.call("hostile_spin", json!({})).await,
        &["ran out of fuel"],
    );

    let (resource, span) = receiver.span_of("echo_echo").await;
    assert_eq!(service_name(&resource).as_deref(), Some("capsule-e2e"));
    assert_eq!(span.name, "tools/call");
    assert_eq!(span.kind, SpanKind::Server as i32);
    assert_eq!(hex::encode(&span.trace_id), TRACE_ID);
    assert_eq!(hex::encode(&span.parent_span_id), PARENT_ID);
    assert_eq!(attribute(&span, "plugin").as_deref(), Some("echo"));
    assert_eq!(attribute(&span, "outcome").as_deref(), Some("ok"));
    assert!(attribute(&span, "run_us").is_some(), "{span:?}");
    assert!(attribute(&span, "queue_wait_us").is_some(), "{span:?}");
    assert!(attribute(&span, "started_here").is_some(), "{span:?}");
    assert_ne!(
        span.status.as_ref().map(|s| s.code),
        Some(SpanStatus::Error as i32)
    );

    // Without a traceparent the span starts a trace of its own; a fault is an error.
    let (_, fault) = receiver.span_of("hostile_spin").await;
    assert_eq!(attribute(&fault, "outcome").as_deref(), Some("fuel"));
    assert_eq!(
        fault.status.as_ref().map(|s| s.code),
        Some(SpanStatus::Error as i32)
    );
    assert_ne!(hex::encode(&fault.trace_id), TRACE_ID);
    assert!(
        fault.parent_span_id.is_empty(),
        "{:?}",
        fault.parent_span_id
    );
    let fuel: u64 = attribute(&fault, "fuel")
        .and_then(|f| f.parse().ok())
        .expect("the fuel used");
    assert!((20_000_000..20_100_000).contains(&fuel), "{fuel}");
}

/// A stateless HTTP server of the echo fixture exporting to `receiver`, with `telemetry`
/// as the rest of its `[telemetry]` section; the folder lives as long as it is kept.
async fn exporting_over_http(receiver: &Receiver, telemetry: &str) -> (Folder, HttpServer) {
    let folder = Folder::new(
        &[("fixtures/echo.wasm", "echo.wasm")],
        &format!("[telemetry]\n{telemetry}\n"),
    );
    let endpoint = receiver.endpoint();
    let server = HttpServer::start(&folder, &["--stateless", "--otlp-endpoint", &endpoint]).await;
    (folder, server)
}

/// One `echo_echo` call over HTTP, with `traceparent` as its header if given.
async fn call_echo(server: &HttpServer, traceparent: Option<&str>) {
    let mut request = post(
        &server.url,
        &call_request(1, "echo_echo", json!({"message": "hi"})),
    )
    .header("mcp-protocol-version", "2025-11-25");
    if let Some(traceparent) = traceparent {
        request = request.header("traceparent", traceparent);
    }
    let response = request.send().await.expect("POST tools/call");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn over_http_the_header_traceparent_is_the_parent_and_the_last_batch_is_sent_at_exit() {
    let receiver = Receiver::start();
    // A batch every 5 minutes: the span can only arrive by the flush at shutdown.
    let (_folder, mut server) = exporting_over_http(&receiver, "export-interval = \"5m\"").await;
    call_echo(&server, Some(TRACEPARENT)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.spans().is_empty(), "exported before the interval");

    server.sigterm();
    assert_eq!(server.exit_code().await, 0);
    let (resource, span) = receiver.span_of("echo_echo").await;
    assert_eq!(service_name(&resource).as_deref(), Some("capsule"));
    assert_eq!(hex::encode(&span.trace_id), TRACE_ID);
    assert_eq!(hex::encode(&span.parent_span_id), PARENT_ID);
    assert_eq!(attribute(&span, "outcome").as_deref(), Some("ok"));
}

#[tokio::test]
async fn a_sample_ratio_of_zero_exports_only_what_the_caller_sampled() {
    let receiver = Receiver::start();
    // Every span can only arrive in the flush at shutdown: one batch holds all of them.
    let (_folder, mut server) =
        exporting_over_http(&receiver, "export-interval = \"5m\"\nsample-ratio = 0").await;
    // The caller sampled this one; the second has no trace context (a root: ratio 0 drops
    // it); the caller decided against the third.
    let unsampled = "00-1af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    for traceparent in [Some(TRACEPARENT), None, Some(unsampled)] {
        call_echo(&server, traceparent).await;
    }
    server.sigterm();
    assert_eq!(server.exit_code().await, 0);
    let (_, span) = receiver.span_of("echo_echo").await;
    assert_eq!(hex::encode(&span.trace_id), TRACE_ID);
    let exported: Vec<String> = receiver
        .spans()
        .iter()
        .map(|(_, s)| hex::encode(&s.trace_id))
        .collect();
    assert_eq!(exported, vec![TRACE_ID.to_string()]);
}

#[tokio::test]
async fn a_wrong_endpoint_is_refused_naming_the_key_and_the_fix() {
    let folder = Folder::new(
        &[("fixtures/echo.wasm", "echo.wasm")],
        "[telemetry]\notlp-endpoint = \"grpc://collector:4317\"\n",
    );
    let (code, _, stderr) = folder.run(&["check"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(
            "telemetry.otlp-endpoint: `grpc://collector:4317` is not an http:// or https:// URL; write the collector's OTLP/HTTP URL, e.g. \"http://otel-collector:4318\""
        ),
        "{stderr}"
    );
}

#[tokio::test]
async fn an_unreachable_collector_costs_its_batches_not_the_calls() {
    // A port nothing listens on: bound, then closed.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let folder = Folder::new(
        &[("fixtures/echo.wasm", "echo.wasm")],
        &format!(
            "[telemetry]\notlp-endpoint = \"http://127.0.0.1:{port}\"\nexport-interval = \"100ms\"\n"
        ),
    );
    let server = folder.serve().await;
    for _ in 0..3 {
        server.assert_echo_answers().await;
    }
    server
        .wait_for_log(&format!(
            "could not send spans to the OTLP collector at http://127.0.0.1:{port}/v1/traces: "
        ))
        .await;
    server.assert_echo_answers().await;
}
