//! End to end: the js example plugin through `capsule serve` and a real MCP client.
//!
//! `plugins/dates` is JavaScript (`guest-sdk/js`), bundled by esbuild and made a component by
//! componentize-js; `cargo xtask plugins` builds it into `target/plugins/dates.wasm`.

use serde_json::json;
use tokio::sync::OnceCell;

use crate::support::{Folder, assert_error, compiled_once, text};

static COMPILED: OnceCell<()> = OnceCell::const_new();

/// The dates plugin, compiled once for all tests here.
async fn dates() -> Folder {
    compiled_once(&COMPILED, ("plugins/dates.wasm", "dates.wasm")).await
}

#[tokio::test]
async fn js_tools_are_listed_with_the_schemas_the_sdk_completed() {
    let folder = dates().await;
    let server = folder.serve().await;
    let tools = server.client.list_all_tools().await.expect("tools/list");
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "dates_add",
            "dates_diff",
            "dates_format",
            "dates_info",
            "dates_nth_weekday",
            "dates_parse",
            "dates_today",
        ]
    );

    let add = tools.iter().find(|t| t.name == "dates_add").unwrap();
    let schema = json!(*add.input_schema);
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["required"], json!(["date"]), "{schema:#}");
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(
        schema["properties"]["date"],
        json!({
            "type": "string",
            "format": "date",
            "pattern": "^\\d{4}-\\d{2}-\\d{2}$",
            "description": "Start date, YYYY-MM-DD."
        })
    );
    assert_eq!(schema["properties"]["days"]["type"], "integer");
    assert_eq!(schema["properties"]["days"]["default"], 0);
    assert_eq!(schema["properties"]["holidays"]["items"]["format"], "date");
    let output = json!(add.output_schema.as_deref().expect("output schema"));
    assert_eq!(output["required"], json!(["date", "weekday"]));
    assert_eq!(add.title.as_deref(), Some("Add to a date"));
    assert!(
        add.description
            .as_deref()
            .unwrap_or("")
            .contains("business days"),
        "{add:?}"
    );
    let hints = add.annotations.as_ref().expect("annotations");
    assert_eq!(hints.read_only_hint, Some(true));
    assert_eq!(hints.idempotent_hint, Some(true));
    assert_eq!(hints.destructive_hint, None);

    let nth = tools
        .iter()
        .find(|t| t.name == "dates_nth_weekday")
        .unwrap();
    assert_eq!(
        nth.input_schema["required"],
        json!(["year", "month", "weekday", "n"])
    );
    assert_eq!(
        nth.input_schema["properties"]["n"]["enum"],
        json!([1, 2, 3, 4, 5, -1])
    );
}

#[tokio::test]
async fn js_tools_compute_dates() {
    let folder = dates().await;
    let server = folder.serve().await;

    let added = server
        .call(
            "dates_add",
            json!({"date": "2024-01-31", "months": 1, "business_days": 1}),
        )
        .await;
    assert_ne!(added.is_error, Some(true), "{added:?}");
    assert_eq!(
        added.structured_content,
        Some(json!({"date": "2024-03-01", "weekday": "Friday"}))
    );
    assert_eq!(text(&added), r#"{"date":"2024-03-01","weekday":"Friday"}"#);

    let diff = server
        .call(
            "dates_diff",
            json!({"from": "2025-03-03", "to": "2025-03-17"}),
        )
        .await;
    let span = diff.structured_content.as_ref().expect("structured");
    assert_eq!(span["days"], 14, "{diff:?}");
    assert_eq!(span["business_days"], 10);
    assert_eq!(span["text"], "14 days");

    let formatted = server
        .call(
            "dates_format",
            json!({"date": "2025-03-01T14:30:00+01:00", "format": "%A, %-d %B %Y %H:%M %z"}),
        )
        .await;
    assert_eq!(text(&formatted), "Saturday, 1 March 2025 14:30 +0100");
    assert_eq!(formatted.structured_content, None);

    let parsed = server
        .call("dates_parse", json!({"text": "March 1st, 2025"}))
        .await;
    assert_eq!(
        parsed.structured_content.as_ref().unwrap()["date"],
        "2025-03-01"
    );

    let today = server.call("dates_today", json!({})).await;
    let date = today.structured_content.as_ref().unwrap()["date"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        date.as_str() > "2024-01-01",
        "the guest reads the clock: {today:?}"
    );
}

#[tokio::test]
async fn js_arguments_violating_the_schema_are_rejected_by_the_host() {
    let folder = dates().await;
    let server = folder.serve().await;
    let wrong_type = server
        .call("dates_add", json!({"date": "2025-03-01", "days": "three"}))
        .await;
    assert_error(&wrong_type, &["invalid arguments", "days"]);
    let missing = server
        .call("dates_diff", json!({"from": "2025-03-01"}))
        .await;
    assert_error(&missing, &["invalid arguments", "to"]);
    let unknown = server
        .call(
            "dates_info",
            json!({"date": "2025-03-01", "timezone": "CET"}),
        )
        .await;
    assert_error(&unknown, &["timezone"]);
    let pattern = server
        .call("dates_info", json!({"date": "1 March 2025"}))
        .await;
    assert_error(&pattern, &["invalid arguments", "date"]);
}

#[tokio::test]
async fn js_tool_failures_are_error_results_and_the_server_keeps_serving() {
    let folder = dates().await;
    let server = folder.serve().await;
    let impossible = server
        .call("dates_add", json!({"date": "2025-02-30", "days": 1}))
        .await;
    assert_error(
        &impossible,
        &["2025-02-30 is not a date", "February 2025 has 28 days"],
    );
    let ambiguous = server
        .call("dates_parse", json!({"text": "03/04/2025"}))
        .await;
    assert_error(&ambiguous, &["invalid arguments", "ambiguous", "order"]);
    let no_fifth = server
        .call(
            "dates_nth_weekday",
            json!({"year": 2025, "month": 2, "weekday": "Friday", "n": 5}),
        )
        .await;
    assert_error(&no_fifth, &["February 2025 has no 5th Friday"]);

    let info = server
        .call("dates_info", json!({"date": "2024-02-29"}))
        .await;
    assert_ne!(info.is_error, Some(true), "{info:?}");
    let facts = info.structured_content.as_ref().expect("structured");
    assert_eq!(facts["weekday"], "Thursday");
    assert_eq!(facts["leap_year"], true);
    assert_eq!(facts["day_of_year"], 60);
}
