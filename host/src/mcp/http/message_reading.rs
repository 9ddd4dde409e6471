//! The vendored rmcp reads a `tools/call` request straight from its JSON
//! (`vendor/rmcp/src/model/fast_call.rs`, `vendor/README.md`). These tests hold that reading
//! to the derived one's: the same message for every request it accepts, the same error
//! for every message it leaves to the derived reading, and which messages those are.

use rmcp::model::{ClientJsonRpcMessage, ClientRequest, JsonRpcMessage};

/// Reads `json` both ways and asserts the same outcome, and that the direct reading
/// took it exactly if `taken_directly` says so; returns the message, if any.
fn read_both_ways(json: &str, taken_directly: bool) -> Option<ClientJsonRpcMessage> {
    assert_eq!(
        ClientJsonRpcMessage::tools_call_from_json_slice(json.as_bytes()).is_some(),
        taken_directly,
        "read directly? {json}"
    );
    let direct = ClientJsonRpcMessage::from_json_slice(json.as_bytes());
    let derived = serde_json::from_slice::<ClientJsonRpcMessage>(json.as_bytes());
    match (direct, derived) {
        (Ok(direct), Ok(derived)) => {
            assert_eq!(
                serde_json::to_value(&direct).expect("serialize"),
                serde_json::to_value(&derived).expect("serialize"),
                "{json}"
            );
            assert_eq!(format!("{direct:?}"), format!("{derived:?}"), "{json}");
            Some(direct)
        }
        (Err(direct), Err(derived)) => {
            assert_eq!(direct.to_string(), derived.to_string(), "{json}");
            None
        }
        (direct, derived) => panic!("{json}: read directly {direct:?}, derived {derived:?}"),
    }
}

fn tool_call(message: Option<ClientJsonRpcMessage>) -> rmcp::model::CallToolRequest {
    match message {
        Some(JsonRpcMessage::Request(request)) => match request.request {
            ClientRequest::CallToolRequest(call) => call,
            other => panic!("not a tools/call: {other:?}"),
        },
        other => panic!("not a request: {other:?}"),
    }
}

#[test]
fn a_tools_call_reads_the_same_as_the_derived_reading() {
    let call = tool_call(read_both_ways(
        r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo_echo","arguments":{"message":"hi"}}}"#,
        true,
    ));
    assert_eq!(call.params.name, "echo_echo");
    let call = tool_call(read_both_ways(
        r#"{"method":"tools/call","params":{"_meta":{"progressToken":"p-1","other":{"x":[1,2]}},"name":"a","arguments":{"n":1.5,"big":18446744073709551615,"neg":-9223372036854775808,"e":1e3,"z":-0.0,"s":"caf\u00e9 \/ \"q\"","deep":[{"a":null,"b":[true,false]}]}},"id":"abc","jsonrpc":"2.0"}"#,
        true,
    ));
    assert_eq!(
        call.params.arguments.as_ref().and_then(|a| a.get("n")),
        Some(&serde_json::json!(1.5))
    );
    assert!(
        call.extensions
            .get::<rmcp::model::RequestMetaObject>()
            .is_some()
    );
    for json in [
        // No arguments; a progress token that is a number; an id at i64's end.
        r#"{"jsonrpc":"2.0","id":9223372036854775807,"method":"tools/call","params":{"name":"a","_meta":{"progressToken":3}}}"#,
        // Fields of params the host does not use, known and unknown.
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","requestState":"s","inputResponses":{},"unknown":{"x":1}}}"#,
        // The method written with an escape.
        r#"{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"a"}}"#,
    ] {
        tool_call(read_both_ways(json, true));
    }
}

#[test]
fn messages_the_direct_reading_declines_read_as_upstream_reads_them() {
    for json in [
        // Not tools/call.
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"vendor/custom","params":{"name":"a"}}"#,
        // tools/call with something wrong or extra.
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"},"result":{}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"},"error":{"code":1,"message":"m"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"},"extra":1}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":null}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":[1]}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"tools/call","params":{"name":"a"}}"#,
        r#"{"jsonrpc":"1.0","id":1,"method":"tools/call","params":{"name":"a"}}"#,
        r#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"a"}}"#,
        r#"{"jsonrpc":"2.0","id":1.5,"method":"tools/call","params":{"name":"a"}}"#,
        r#"{"jsonrpc":"2.0","id":18446744073709551615,"method":"tools/call","params":{"name":"a"}}"#,
        r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"a"}}"#,
        r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}}]"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}"#,
        "",
    ] {
        read_both_ways(json, false);
    }
}
