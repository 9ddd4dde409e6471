//! WIT-derived tools: the `rich` fixture exports plain functions with every kind of WIT
//! type and no `capsule:plugin/tools`; the host serves one tool per function.

use serde_json::{Value, json};

use crate::support::{Folder, assert_error, text};

fn rich() -> Folder {
    Folder::new(&[("fixtures/rich.wasm", "rich.wasm")], "")
}

/// The fixture's own WIT, as the sidecar `rich.wit` that documents its functions.
fn with_wit_docs(folder: &Folder) {
    let wit = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../plugins/fixtures/rich/wit/rich.wit"
    );
    std::fs::copy(wit, folder.plugins().join("rich.wit")).unwrap();
}

/// The golden file: every tool's description and schemas, exactly. Set `CAPSULE_BLESS=1`
/// to rewrite it after an intended change, then review the diff.
const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/e2e/golden/rich-tools.json"
);

#[tokio::test]
async fn every_exported_function_is_a_tool_with_the_exact_schema() {
    let folder = rich();
    with_wit_docs(&folder);
    let server = folder.serve().await;
    let mut tools = server.client.list_all_tools().await.unwrap();
    tools.sort_by(|a, b| a.name.cmp(&b.name));
    let listed: Vec<Value> = tools
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "description": t.description,
                "inputSchema": t.input_schema.as_ref(),
                "outputSchema": t.output_schema.as_deref(),
            })
        })
        .collect();
    let listed = serde_json::to_string_pretty(&listed).unwrap() + "\n";
    if std::env::var_os("CAPSULE_BLESS").is_some() {
        std::fs::write(GOLDEN, &listed).unwrap();
    }
    let golden = std::fs::read_to_string(GOLDEN).unwrap();
    assert_eq!(listed, golden, "schemas differ from {GOLDEN}");
}

#[tokio::test]
async fn without_a_sidecar_wit_descriptions_name_the_function() {
    let folder = rich();
    let server = folder.serve().await;
    let tools = server.client.list_all_tools().await.unwrap();
    let area = tools.iter().find(|t| t.name == "rich_area").unwrap();
    assert_eq!(
        area.description.as_deref(),
        Some(
            "Calls the WebAssembly function `example:rich/shapes@0.1.0#area(shape)`. Arguments and result follow its WIT types."
        )
    );
}

#[tokio::test]
async fn a_broken_sidecar_wit_fails_only_its_plugin_with_the_reason() {
    let folder = Folder::new(
        &[
            ("fixtures/rich.wasm", "rich.wasm"),
            ("fixtures/echo.wasm", "echo.wasm"),
        ],
        "",
    );
    std::fs::write(
        folder.plugins().join("rich.wit"),
        "package a:b;\ninterface i { oops }\n",
    )
    .unwrap();
    let (code, stdout, stderr) = folder.run(&["check"]).await;
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let all = format!("{stdout}{stderr}");
    assert!(
        all.contains("rich.wit: cannot read its doc comments"),
        "{all}"
    );
    assert!(all.contains("ok     echo"), "{all}");
}

#[tokio::test]
async fn check_says_the_tools_are_derived() {
    let folder = rich();
    let (code, stdout, stderr) = folder.run(&["check"]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("ok     rich (8 tools derived from its WIT exports"),
        "{stdout}"
    );
}

#[tokio::test]
async fn values_of_every_type_round_trip() {
    let folder = rich();
    let server = folder.serve().await;
    let item = json!({
        "name": "pin",
        "tags": ["a", "ü"],
        "at": {"x": 255, "y": -9_223_372_036_854_775_808_i64},
        "style": ["bold", "underline"],
        "unit": "inch",
    });
    let args = json!({
        "it": item,
        "s": {"rect": [2.5, 4.0]},
        "note": "n",
        "data": [0, 7, 255],
        "letter": "é",
        "flag": true,
        "big": u64::MAX,
        "small": -128,
    });
    let echoed = server.call("rich_echo", args.clone()).await;
    let expected = json!({"result": [
        item, {"rect": [2.5, 4.0]}, "n", [0, 7, 255], "é", true, u64::MAX, -128
    ]});
    assert_eq!(echoed.structured_content, Some(expected), "{echoed:?}");

    // Options left out are `none`, and come back as null; a case without payload is its name.
    let bare = json!({"name": "x", "tags": [], "style": [], "unit": "mm"});
    let echoed = server
        .call(
            "rich_echo",
            json!({"it": bare, "s": "dot", "data": [], "letter": "z", "flag": false, "big": 0, "small": 0}),
        )
        .await;
    let result = &echoed.structured_content.as_ref().expect("structured")["result"];
    assert_eq!(result[0]["at"], Value::Null, "{echoed:?}");
    assert_eq!(result[1], "dot");
    assert_eq!(result[2], Value::Null);

    let area = server
        .call("rich_area", json!({"shape": {"circle": 1.0}}))
        .await;
    let area = area.structured_content.expect("structured")["result"]
        .as_f64()
        .unwrap();
    assert!((area - std::f64::consts::PI).abs() < 1e-6, "{area}");

    let described = server
        .call("rich_describe", json!({"items": [bare, {"name": "y", "tags": ["t"], "at": {"x": 1, "y": 2}, "style": ["italic"], "unit": "cm"}], "limit": 5}))
        .await;
    assert_eq!(text(&described), "x [] mm\ny [t] cm at (1, 2) italic");
    assert_eq!(described.structured_content, None, "strings are plain text");

    let greeting = server.call("rich_greet", json!({"name": "Ada"})).await;
    assert_eq!(text(&greeting), "hello, Ada");
    let done = server.call("rich_noop", json!({})).await;
    assert_eq!(text(&done), "ok");
    assert_eq!(done.is_error, Some(false));
}

#[tokio::test]
async fn results_carry_errors_and_records_are_structured() {
    let folder = rich();
    let server = folder.serve().await;
    let moved = server
        .call(
            "rich_translate",
            json!({"p": {"x": 10, "y": 5}, "dx": -3, "dy": 1}),
        )
        .await;
    assert_eq!(moved.structured_content, Some(json!({"x": 7, "y": 6})));
    let off = server
        .call(
            "rich_translate",
            json!({"p": {"x": 10, "y": 5}, "dx": 300, "dy": 0}),
        )
        .await;
    assert_error(&off, &["x = 310 is off the grid"]);
    let zero = server
        .call("rich_divide", json!({"a": 1.0, "b": 0.0}))
        .await;
    assert_error(&zero, &["division-by-zero"]);
    let half = server
        .call("rich_divide", json!({"a": 1.0, "b": 4.0}))
        .await;
    assert_eq!(half.structured_content, Some(json!({"result": 0.25})));
}

#[tokio::test]
async fn values_outside_the_wit_types_are_rejected_before_the_call() {
    let folder = rich();
    let server = folder.serve().await;
    let too_big = server
        .call(
            "rich_translate",
            json!({"p": {"x": 256, "y": 0}, "dx": 0, "dy": 0}),
        )
        .await;
    assert_error(&too_big, &["invalid arguments", "/p/x"]);
    let two_letters = server
        .call("rich_echo", json!({"it": {}, "s": "dot", "data": [], "letter": "ab", "flag": true, "big": 0, "small": 0}))
        .await;
    assert_error(&two_letters, &["invalid arguments"]);
    let bad_case = server.call("rich_area", json!({"shape": "square"})).await;
    assert_error(&bad_case, &["invalid arguments", "/shape"]);
    let bad_flag = server
        .call(
            "rich_describe",
            json!({"items": [{"name": "x", "tags": [], "style": ["loud"], "unit": "mm"}]}),
        )
        .await;
    assert_error(&bad_flag, &["invalid arguments", "loud"]);
    // The server keeps serving after rejected calls.
    let greeting = server.call("rich_greet", json!({"name": "again"})).await;
    assert_eq!(text(&greeting), "hello, again");
}

#[tokio::test]
async fn limits_stop_a_runaway_function_and_the_plugin_keeps_serving() {
    let folder = Folder::new(
        &[("fixtures/rich.wasm", "rich.wasm")],
        "[plugins.rich.limits]\nfuel = 5_000_000\ntimeout = \"60s\"\n",
    );
    let server = folder.serve().await;
    let counted = server.call("rich_spin", json!({"n": 1000})).await;
    assert_eq!(counted.structured_content, Some(json!({"result": 1000})));
    let runaway = server.call("rich_spin", json!({"n": u64::MAX})).await;
    assert_error(&runaway, &["ran out of fuel", "5000000", "rich"]);
    let greeting = server.call("rich_greet", json!({"name": "after"})).await;
    assert_eq!(text(&greeting), "hello, after");
}
