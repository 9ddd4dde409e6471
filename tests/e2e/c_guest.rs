//! End to end: the c example plugin through `capsule serve` and a real MCP client.
//!
//! `plugins/checksum` is `checksum.c` on `guest-sdk/c` (capsule_tool.h), built by clang and
//! `capsule-componentize` into `target/plugins/checksum.wasm`; these tests check the tool
//! table as a client sees it, results against known vectors, and how errors reach the client.

use serde_json::{Value, json};

use crate::support::{Folder, assert_error, text};

fn checksum() -> Folder {
    Folder::new(&[("plugins/checksum.wasm", "checksum.wasm")], "")
}

#[tokio::test]
async fn c_tools_are_listed_from_the_tool_table() {
    let folder = checksum();
    let server = folder.serve().await;
    let tools = server.client.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "checksum_adler32",
            "checksum_base64_decode",
            "checksum_base64_encode",
            "checksum_checksums",
            "checksum_crc32",
            "checksum_fnv1a",
            "checksum_hexdump",
            "checksum_sha256",
        ]
    );

    let crc = tools.iter().find(|t| t.name == "checksum_crc32").unwrap();
    assert_eq!(crc.title.as_deref(), Some("CRC-32"));
    assert!(
        crc.description
            .as_deref()
            .unwrap_or_default()
            .contains("\"123456789\" -> cbf43926"),
        "{crc:?}"
    );
    let hints = crc.annotations.as_ref().expect("annotations");
    assert_eq!(hints.read_only_hint, Some(true));
    assert_eq!(hints.idempotent_hint, Some(true));
    assert_eq!(hints.open_world_hint, Some(false));
    assert_eq!(hints.destructive_hint, None);
    let schema = Value::Object((*crc.input_schema).clone());
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["required"], json!(["text"]));
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["properties"]["text"]["type"], "string");
    assert_eq!(
        schema["properties"]["encoding"],
        json!({
            "type": "string",
            "enum": ["utf8", "hex", "base64"],
            "default": "utf8",
            "description": "How `text` gives the bytes: utf8 (the text itself, default), hex digits, or base64."
        })
    );
    assert!(crc.output_schema.is_none());

    let fnv = tools.iter().find(|t| t.name == "checksum_fnv1a").unwrap();
    let fnv_schema = Value::Object((*fnv.input_schema).clone());
    assert_eq!(
        fnv_schema["properties"]["bits"],
        json!({"type": "integer", "enum": [32, 64], "default": 32,
               "description": "Hash width: 32 or 64 bits."})
    );

    let all = tools
        .iter()
        .find(|t| t.name == "checksum_checksums")
        .unwrap();
    let output = Value::Object((**all.output_schema.as_ref().expect("output schema")).clone());
    assert_eq!(output["type"], "object");
    assert_eq!(
        output["required"],
        json!([
            "bytes", "crc32", "adler32", "fnv1a_32", "fnv1a_64", "sha256"
        ])
    );
}

#[tokio::test]
async fn c_tools_compute_known_checksums_and_encodings() {
    let folder = checksum();
    let server = folder.serve().await;
    let call = |tool: &'static str, args: Value| {
        let server = &server;
        async move {
            let result = server.call(tool, args).await;
            assert_ne!(result.is_error, Some(true), "{tool}: {result:?}");
            text(&result)
        }
    };
    assert_eq!(
        call("checksum_crc32", json!({"text": "123456789"})).await,
        "cbf43926"
    );
    assert_eq!(
        call("checksum_adler32", json!({"text": "Wikipedia"})).await,
        "11e60398"
    );
    assert_eq!(
        call("checksum_fnv1a", json!({"text": "a"})).await,
        "e40c292c"
    );
    assert_eq!(
        call("checksum_fnv1a", json!({"text": "a", "bits": 64})).await,
        "af63dc4c8601ec8c"
    );
    assert_eq!(
        call("checksum_sha256", json!({"text": "abc"})).await,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    // Multi-block SHA-256 (FIPS 180-2 example 2, 56 bytes: the padding spills over).
    assert_eq!(
        call(
            "checksum_sha256",
            json!({"text": "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"})
        )
        .await,
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
    );
    // Bytes given as hex: the CRC-32 of "123456789".
    assert_eq!(
        call(
            "checksum_crc32",
            json!({"text": "31 32 33 34 35 36 37 38 39", "encoding": "hex"})
        )
        .await,
        "cbf43926"
    );
    assert_eq!(
        call("checksum_base64_encode", json!({"text": "héllo wörld"})).await,
        "aMOpbGxvIHfDtnJsZA=="
    );
    assert_eq!(
        call(
            "checksum_base64_encode",
            json!({"text": "fbff", "encoding": "hex", "url_safe": true})
        )
        .await,
        "-_8"
    );
    assert_eq!(
        call(
            "checksum_base64_decode",
            json!({"base64": "aMOpbGxv\nIHfDtnJsZA"})
        )
        .await,
        "héllo wörld"
    );
    assert_eq!(
        call(
            "checksum_base64_decode",
            json!({"base64": "AP8=", "output": "hex"})
        )
        .await,
        "00ff"
    );
    let dump = call("checksum_hexdump", json!({"text": "tab\there"})).await;
    assert_eq!(
        dump,
        "00000000  74 61 62 09 68 65 72 65                           |tab.here|\n8 bytes"
    );

    // Structured output: the object and the same JSON as text.
    let all = server
        .call("checksum_checksums", json!({"text": "hello"}))
        .await;
    let structured = all.structured_content.as_ref().expect("structured");
    assert_eq!(
        *structured,
        json!({
            "bytes": 5,
            "crc32": "3610a686",
            "adler32": "062c0215",
            "fnv1a_32": "4f9f2cab",
            "fnv1a_64": "a430d84680aabd0b",
            "sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        })
    );
    let as_text: Value = serde_json::from_str(&text(&all)).expect("text is the JSON");
    assert_eq!(&as_text, structured);
}

#[tokio::test]
async fn c_tools_report_bad_arguments_and_failures_cleanly() {
    let folder = checksum();
    let server = folder.serve().await;

    // Rejected by the host against the input schema before the guest runs.
    let wrong_type = server.call("checksum_crc32", json!({"text": 5})).await;
    assert_error(&wrong_type, &["text", "string"]);
    let missing = server.call("checksum_sha256", json!({})).await;
    assert_error(&missing, &["text", "required"]);
    let unknown_field = server
        .call("checksum_crc32", json!({"text": "x", "txt": "y"}))
        .await;
    assert_error(&unknown_field, &["txt"]);
    let bad_enum = server
        .call("checksum_fnv1a", json!({"text": "x", "bits": 16}))
        .await;
    assert_error(&bad_enum, &["bits"]);

    // Failed in the guest (`capsule_fail`): the message reaches the model.
    let bad_base64 = server
        .call("checksum_base64_decode", json!({"base64": "aGV!bG8="}))
        .await;
    assert_error(
        &bad_base64,
        &["invalid base64: character '!' at position 3"],
    );
    let binary = server
        .call("checksum_base64_decode", json!({"base64": "/w=="}))
        .await;
    assert_error(&binary, &["binary, not UTF-8 text", "\"output\": \"hex\""]);
    let bad_hex = server
        .call("checksum_crc32", json!({"text": "12 3", "encoding": "hex"}))
        .await;
    assert_error(&bad_hex, &["`text` is not hex", "odd number of digits"]);

    // The server (and a fresh instance of the plugin) still serves.
    assert_eq!(
        text(
            &server
                .call("checksum_crc32", json!({"text": "123456789"}))
                .await
        ),
        "cbf43926"
    );
}
