//! End to end: the python example plugin through `capsule serve` and a real MCP client.
//!
//! `plugins/tables` is `app.py` on `guest-sdk/python` (capsule_sdk), built by componentize-py
//! into `target/plugins/tables.wasm`; these tests check what the SDK derives (schemas,
//! structured output) and how its errors reach the client.

use serde_json::json;
use tokio::sync::OnceCell;

use crate::support::{Folder, assert_error, compiled_once, text};

static COMPILED: OnceCell<()> = OnceCell::const_new();

/// The tables plugin, compiled once for all tests here.
async fn tables() -> Folder {
    compiled_once(&COMPILED, ("plugins/tables.wasm", "tables.wasm")).await
}

#[tokio::test]
async fn python_tools_are_listed_with_schemas_derived_from_annotations() {
    let folder = tables().await;
    let server = folder.serve().await;
    let tools = server.client.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "tables_csv_to_markdown",
            "tables_markdown_to_csv",
            "tables_sort_table",
            "tables_table_stats"
        ]
    );

    let convert = tools
        .iter()
        .find(|t| t.name == "tables_csv_to_markdown")
        .unwrap();
    let description = convert.description.as_deref().unwrap_or_default();
    assert!(
        description.starts_with("Convert CSV text into a padded GitHub-flavoured Markdown table."),
        "{description}"
    );
    assert!(!description.contains("Args:"), "{description}");
    assert_eq!(convert.title.as_deref(), Some("CSV to Markdown table"));
    let hints = convert.annotations.as_ref().expect("annotations");
    assert_eq!(hints.read_only_hint, Some(true));
    assert_eq!(hints.idempotent_hint, Some(true));
    assert_eq!(hints.destructive_hint, None);
    let schema = serde_json::Value::Object((*convert.input_schema).clone());
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["required"], json!(["csv"]));
    assert_eq!(schema["additionalProperties"], false);
    let props = &schema["properties"];
    assert_eq!(props["csv"]["type"], "string");
    assert!(
        props["csv"]["description"]
            .as_str()
            .unwrap()
            .starts_with("The CSV text"),
        "{props}"
    );
    assert_eq!(
        props["header"],
        json!({"type": "boolean", "default": true,
        "description": "Whether the first row holds the column names; if false they are \"Column 1\"..."})
    );
    assert_eq!(
        props["align"]["enum"],
        json!(["auto", "left", "center", "right", "none"])
    );
    assert_eq!(props["align"]["default"], "auto");
    assert!(convert.output_schema.is_none());

    let sort = tools
        .iter()
        .find(|t| t.name == "tables_sort_table")
        .unwrap();
    let sort_schema = serde_json::Value::Object((*sort.input_schema).clone());
    assert_eq!(sort_schema["required"], json!(["table", "column"]));
    // `numeric: bool | None = None` is optional and not nullable.
    assert_eq!(sort_schema["properties"]["numeric"]["type"], "boolean");

    let stats = tools
        .iter()
        .find(|t| t.name == "tables_table_stats")
        .unwrap();
    let output =
        serde_json::Value::Object((**stats.output_schema.as_ref().expect("output schema")).clone());
    assert_eq!(output["required"], json!(["rows", "columns"]));
    let column = &output["properties"]["columns"]["items"];
    assert_eq!(
        column["properties"]["mean"]["anyOf"],
        json!([{ "type": "number" }, { "type": "null" }])
    );
    assert_eq!(
        column["properties"]["values"]["description"],
        "Non-empty cells."
    );
}

#[tokio::test]
async fn python_tools_convert_and_summarise_tables() {
    let folder = tables().await;
    let server = folder.serve().await;
    let markdown = server
        .call(
            "tables_csv_to_markdown",
            json!({"csv": "fruit,qty\n\"pear, green\",10\napple,3\n"}),
        )
        .await;
    assert_ne!(markdown.is_error, Some(true), "{markdown:?}");
    assert_eq!(
        text(&markdown),
        "| fruit       | qty |\n| ----------- | --: |\n| pear, green |  10 |\n| apple       |   3 |"
    );
    assert!(markdown.structured_content.is_none());

    let csv = server
        .call(
            "tables_markdown_to_csv",
            json!({"markdown": "Prices:\n\n| item | price |\n|:--|--:|\n| a\\|b | 2.5 |\n", "delimiter": ";"}),
        )
        .await;
    assert_eq!(text(&csv), "item;price\na|b;2.5\n", "{csv:?}");

    let stats = server
        .call(
            "tables_table_stats",
            json!({"table": "name,price\na,1.5\nb,0.25\nc,n/a\n"}),
        )
        .await;
    let structured = stats.structured_content.as_ref().expect("structured");
    assert_eq!(structured["rows"], 3, "{stats:?}");
    assert_eq!(
        structured["columns"][1],
        json!({"name": "price", "values": 3, "numeric": 2, "sum": 1.75, "min": 0.25,
               "max": 1.5, "mean": 0.875, "median": 0.875})
    );
    assert_eq!(structured["columns"][0]["mean"], serde_json::Value::Null);
    let as_text: serde_json::Value = serde_json::from_str(&text(&stats)).unwrap();
    assert_eq!(&as_text, structured);

    let sorted = server
        .call(
            "tables_sort_table",
            json!({"table": "n,q\na,3\nb,10\nc,-1\n", "column": "Q", "descending": true}),
        )
        .await;
    assert_eq!(text(&sorted), "n,q\nb,10\na,3\nc,-1\n", "{sorted:?}");
}

#[tokio::test]
async fn python_schema_violations_are_rejected_by_the_host() {
    let folder = tables().await;
    let server = folder.serve().await;
    let wrong_type = server
        .call("tables_csv_to_markdown", json!({"csv": 42}))
        .await;
    assert_error(&wrong_type, &["invalid arguments", "csv"]);
    let missing = server
        .call("tables_sort_table", json!({"table": "a\n1\n"}))
        .await;
    assert_error(&missing, &["column"]);
    let not_in_enum = server
        .call(
            "tables_csv_to_markdown",
            json!({"csv": "a\n1\n", "align": "middle"}),
        )
        .await;
    assert_error(&not_in_enum, &["align"]);
    let extra = server
        .call(
            "tables_markdown_to_csv",
            json!({"markdown": "x", "sheet": 1}),
        )
        .await;
    assert_error(&extra, &["sheet"]);
}

#[tokio::test]
async fn python_runtime_errors_are_reported_and_the_server_keeps_serving() {
    let folder = tables().await;
    let server = folder.serve().await;
    let ragged = server
        .call("tables_csv_to_markdown", json!({"csv": "a,b\n1,2,3\n"}))
        .await;
    assert_error(
        &ragged,
        &["malformed CSV: row 2 has 3 cells but row 1 has 2"],
    );
    let no_table = server
        .call("tables_markdown_to_csv", json!({"markdown": "just prose"}))
        .await;
    assert_error(&no_table, &["no Markdown table found"]);
    // Raised by the tool as InvalidArguments: something the schema cannot express.
    let unknown_column = server
        .call(
            "tables_sort_table",
            json!({"table": "a,b\n1,2\n", "column": "c"}),
        )
        .await;
    assert_error(
        &unknown_column,
        &["no column 'c'; the columns are 'a', 'b'"],
    );
    let delimiter = server
        .call(
            "tables_csv_to_markdown",
            json!({"csv": "a", "delimiter": "::"}),
        )
        .await;
    assert_error(&delimiter, &["delimiter must be one character"]);

    let after = server
        .call("tables_csv_to_markdown", json!({"csv": "x\n1\n"}))
        .await;
    assert_ne!(after.is_error, Some(true), "{after:?}");
    assert_eq!(text(&after), "|   x |\n| --: |\n|   1 |");
}
