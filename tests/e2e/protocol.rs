//! The stdio transport at the byte level: stdout carries JSON-RPC and nothing else, and
//! the server exits cleanly when the client goes away.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::echo_and_hostile;

fn line(value: Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(&value).unwrap();
    bytes.push(b'\n');
    bytes
}

fn call(id: u32, name: &str, arguments: Value) -> Vec<u8> {
    line(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": name, "arguments": arguments}}))
}

#[tokio::test]
async fn stdout_carries_only_protocol_messages_and_eof_exits_cleanly() {
    let folder = echo_and_hostile("log-output = \"8KiB\"");
    let mut child = folder
        .command(&["serve"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut input = line(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"}}}),
    );
    input.extend(line(
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    ));
    input.extend(line(json!({"jsonrpc": "2.0", "id": 2, "method": "ping"})));
    input.extend(call(
        3,
        "echo_log",
        json!({"message": "printed by the plugin"}),
    ));
    input.extend(call(4, "hostile_stdout_spam", json!({})));
    input.extend(call(5, "hostile_trap", json!({})));
    stdin.write_all(&input).await.unwrap();

    // Read until all five responses arrived, then close stdin.
    let mut stdout = child.stdout.take().unwrap();
    let mut text = String::new();
    let mut buf = vec![0u8; 65536];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while text.lines().filter(|l| l.contains("\"id\"")).count() < 5 {
        let n = tokio::time::timeout_at(deadline, stdout.read(&mut buf))
            .await
            .expect("responses within 60 s")
            .unwrap();
        assert!(n > 0, "server closed stdout early; got:\n{text}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits within 10 s of stdin EOF")
        .unwrap();
    assert!(status.success(), "clean exit on EOF: {status}");
    stdout.read_to_string(&mut text).await.unwrap();

    for line in text.lines() {
        let message: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line:?}"));
        assert_eq!(message["jsonrpc"], "2.0", "{line}");
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert!(
        stderr.contains("printed by the plugin"),
        "plugin stdout goes to the log: {stderr}"
    );
}

#[tokio::test]
async fn closing_stdin_before_initialize_is_a_clean_exit() {
    let folder = echo_and_hostile("");
    let child = folder
        .command(&["serve"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("exits")
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
}
