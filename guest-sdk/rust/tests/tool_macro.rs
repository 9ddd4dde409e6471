//! `#[tool]` and `export_plugin!` end to end on the build machine: definitions as `list-tools`
//! reports them, and calls through the same dispatch the wasm export uses. Native targets only:
//! it uses the host stand-ins of `capsule_sdk::testing`.

#![cfg(not(target_arch = "wasm32"))]

use capsule_sdk::prelude::*;
use capsule_sdk::serde_json::{Value, json};
use capsule_sdk::{CallError, ToolAnnotations, testing};

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct EchoArgs {
    /// Text to echo.
    text: String,
    /// How many times (default 1).
    #[serde(default)]
    times: Option<u32>,
}

/// Echo the text back,
/// repeated.
#[tool(read_only, idempotent)]
fn echo(args: EchoArgs) -> String {
    args.text.repeat(args.times.unwrap_or(1) as usize)
}

/// Lengths of a text.
#[derive(Serialize, JsonSchema)]
struct Lengths {
    /// Bytes.
    bytes: usize,
    /// Characters.
    chars: usize,
}

/// Measure a text.
#[tool(title = "Measure", open_world = false)]
fn measure(args: EchoArgs) -> Result<Lengths, ToolError> {
    if args.text.is_empty() {
        return Err(ToolError::invalid_arguments("text must not be empty"));
    }
    Ok(Lengths {
        bytes: args.text.len(),
        chars: args.text.chars().count(),
    })
}

/// Parse a number, failing with the parser's message.
#[tool(name = "parse-number", destructive = false)]
fn parse(args: EchoArgs) -> Result<String, ToolError> {
    let number: i64 = args.text.trim().parse()?;
    Ok((number * 2).to_string())
}

/// Say hello without arguments, reading the name from config.
#[tool]
fn hello() -> ToolOutput {
    let name = capsule_sdk::config("name").unwrap_or_else(|| "world".into());
    capsule_sdk::log::info("saying hello");
    ToolOutput::text(format!("hello {name}")).with(Content::resource_link("urn:x", "x"))
}

/// A fixed reply.
#[tool]
fn fixed() -> &'static str {
    "fixed"
}

/// Several blocks.
#[tool]
fn blocks() -> Result<Vec<Content>, ToolError> {
    Ok(vec![
        Content::text("a"),
        Content::image([1u8, 2], "image/png"),
    ])
}

mod nested {
    use capsule_sdk::prelude::*;

    /// A tool in a module.
    #[tool]
    pub fn inner() -> String {
        "inner".into()
    }
}

capsule_sdk::export_plugin!(echo, measure, parse, hello, fixed, blocks, nested::inner);

fn call(name: &str, arguments: Value) -> Result<ToolOutput, CallError> {
    CAPSULE_PLUGIN.call(name, &arguments.to_string())
}

#[test]
fn definitions_carry_names_docs_and_annotations() {
    let tools = CAPSULE_PLUGIN.definitions();
    let names: Vec<_> = tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "echo",
            "measure",
            "parse-number",
            "hello",
            "fixed",
            "blocks",
            "inner"
        ]
    );

    let echo = &tools[0];
    assert_eq!(echo.description, "Echo the text back, repeated.");
    assert_eq!(echo.title, None);
    assert_eq!(
        echo.annotations,
        Some(ToolAnnotations {
            read_only: Some(true),
            idempotent: Some(true),
            ..ToolAnnotations::default()
        })
    );
    assert_eq!(
        echo.input_schema,
        json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "text": {"type": "string", "description": "Text to echo."},
                "times": {"type": "integer", "minimum": 0, "description": "How many times (default 1)."}
            },
            "required": ["text"]
        })
    );
    assert_eq!(echo.output_schema, None);

    let measure = &tools[1];
    assert_eq!(measure.title.as_deref(), Some("Measure"));
    assert_eq!(
        measure.annotations.as_ref().unwrap().open_world,
        Some(false)
    );
    let output = measure.output_schema.as_ref().unwrap();
    assert_eq!(output["type"], "object");
    assert_eq!(output["required"], json!(["bytes", "chars"]));

    assert_eq!(
        tools[2].annotations.as_ref().unwrap().destructive,
        Some(false)
    );
    assert_eq!(
        tools[3].input_schema,
        json!({"type": "object", "properties": {}})
    );
    assert_eq!(tools[3].annotations, None);
}

#[test]
fn text_results() {
    let output = call("echo", json!({"text": "ab", "times": 2})).unwrap();
    assert_eq!(output, ToolOutput::text("abab"));
    assert_eq!(call("fixed", json!({})).unwrap(), ToolOutput::text("fixed"));
    assert_eq!(call("inner", json!({})).unwrap(), ToolOutput::text("inner"));
}

#[test]
fn structured_results_carry_json_twice() {
    let output = call("measure", json!({"text": "hé"})).unwrap();
    assert_eq!(output.structured, Some(json!({"bytes": 3, "chars": 2})));
    assert_eq!(output.text_content(), r#"{"bytes":3,"chars":2}"#);
    assert!(!output.is_error);
}

#[test]
fn rich_results_and_host_stand_ins() {
    testing::set_config("name", "Ada");
    let output = call("hello", json!({})).unwrap();
    assert_eq!(output.content[0], Content::text("hello Ada"));
    assert_eq!(output.content[1], Content::resource_link("urn:x", "x"));
    assert_eq!(
        testing::take_logs(),
        vec![(capsule_sdk::Level::Info, "saying hello".to_owned())]
    );
    let blocks = call("blocks", json!({})).unwrap();
    assert_eq!(blocks.content.len(), 2);
}

#[test]
fn errors_map_to_the_three_call_errors() {
    assert_eq!(
        call("measure", json!({"text": ""})),
        Err(CallError::InvalidArguments("text must not be empty".into()))
    );
    assert_eq!(
        call("parse-number", json!({"text": "x"})),
        Err(CallError::Failed("invalid digit found in string".into()))
    );
    assert_eq!(
        call("parse-number", json!({"text": "21"})).unwrap(),
        ToolOutput::text("42")
    );
    assert_eq!(
        call("echo", json!({"text": 1})),
        Err(CallError::InvalidArguments(
            "`text`: invalid type: integer `1`, expected a string".into()
        ))
    );
    assert_eq!(
        call("nope", json!({})),
        Err(CallError::UnknownTool("nope".into()))
    );
}

#[test]
fn the_tool_function_stays_callable() {
    assert_eq!(
        echo(EchoArgs {
            text: "x".into(),
            times: Some(3)
        }),
        "xxx"
    );
}
