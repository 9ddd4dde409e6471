//! The audit log of a real run (`[audit]`, docs/audit.md): the events in order, compared
//! with a golden file after the values that differ between runs (timestamps, durations,
//! digests, the temporary folder) are checked and replaced by placeholders.

use std::path::Path;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use rmcp::model::CallToolRequestParams;

use crate::caller::{add_token, client_with_token};
use crate::http::{HttpServer, initialize_request, post};
use crate::support::{Folder, assert_error};

/// The golden file. Set `CAPSULE_BLESS=1` to rewrite it after an intended change, then
/// review the diff.
const GOLDEN_STDIO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/e2e/golden/audit-stdio.jsonl"
);

/// The golden file of the HTTP run (with `[auth]`).
const GOLDEN_HTTP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/e2e/golden/audit-http.jsonl"
);

const CONFIG: &str = r#"[audit]
enabled = true
path = "audit.jsonl"
tool-calls = true
arguments = true
max-argument-bytes = 64

[plugins.hostile.limits]
fuel = 50_000_000
timeout = "60s"
"#;

/// Compares `golden` with the file `path` (rewritten first with `CAPSULE_BLESS=1`).
fn compare(golden: &str, path: &str) {
    if std::env::var_os("CAPSULE_BLESS").is_some() {
        std::fs::write(path, golden).unwrap();
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    assert_eq!(golden, expected, "the audit log differs from {path}");
}

/// The audit file's lines, each checked (one object, `ts` then `event` first, `ts` in
/// RFC 3339 UTC) and normalised: `ts` and `duration_ms` replaced, digests named by what
/// they are the digest of, the folder written `$DIR`. Plugins load while the server starts
/// (docs/audit.md), so `server.start` and the `plugin.*` events come in no fixed order:
/// they are moved right after `config.loaded`, `server.start` first, then by plugin.
fn normalised(folder: &Folder, config_digest: &str) -> String {
    let text = std::fs::read_to_string(folder.dir.path().join("audit.jsonl"))
        .expect("the audit log was written");
    let dir = folder.dir.path().display().to_string();
    let mut startup: Vec<(bool, String, String)> = Vec::new();
    let mut rest: Vec<String> = Vec::new();
    for line in text.lines() {
        assert!(
            line.starts_with(r#"{"ts":""#) && line[32..].starts_with(r#","event":""#),
            "not `ts` then `event` first: {line}"
        );
        let mut event: Value = serde_json::from_str(line).expect("each line is one JSON object");
        let ts = event["ts"].as_str().expect("ts is a string");
        assert!(
            is_rfc3339_utc_millis(ts),
            "ts {ts:?} is not RFC 3339 UTC (YYYY-MM-DDTHH:MM:SS.mmmZ)"
        );
        event["ts"] = json!("<ts>");
        if let Some(ms) = event.get("duration_ms") {
            assert!(ms.is_u64(), "duration_ms is not a whole number: {line}");
            event["duration_ms"] = json!("<ms>");
        }
        if event["event"] == "server.start" {
            assert_eq!(event["version"], env!("CARGO_PKG_VERSION"));
            event["version"] = json!("<version>");
        }
        if event["event"] == "config.loaded" {
            assert_eq!(
                event["digest"], config_digest,
                "config.loaded's digest is not capsule.lock's"
            );
            event["digest"] = json!("<digest of the effective configuration>");
        }
        if event["event"] == "plugin.loaded" {
            let name = event["plugin"].as_str().unwrap().to_string();
            let file = folder.plugins().join(format!("{name}.wasm"));
            assert_eq!(event["sha256"], sha256_hex(&file), "sha256 of {name}.wasm");
            event["sha256"] = json!(format!("<sha256 of {name}.wasm>"));
        }
        let kind = event["event"].as_str().unwrap_or_default().to_string();
        let plugin = event["plugin"].as_str().unwrap_or_default().to_string();
        let line = serde_json::to_string(&event).unwrap().replace(&dir, "$DIR");
        if kind == "server.start" || kind.starts_with("plugin.") {
            startup.push((kind != "server.start", plugin, line));
        } else {
            rest.push(line);
        }
    }
    startup.sort();
    let after_config = usize::from(
        rest.first()
            .is_some_and(|l| l.contains(r#""event":"config.loaded""#)),
    );
    let startup = startup.into_iter().map(|(_, _, line)| line);
    let lines: Vec<String> = rest[..after_config]
        .iter()
        .cloned()
        .chain(startup)
        .chain(rest[after_config..].iter().cloned())
        .collect();
    lines.iter().map(|l| format!("{l}\n")).collect()
}

fn is_rfc3339_utc_millis(ts: &str) -> bool {
    let shape = "dddd-dd-ddTdd:dd:dd.dddZ";
    ts.len() == shape.len()
        && ts.chars().zip(shape.chars()).all(|(c, s)| match s {
            'd' => c.is_ascii_digit(),
            other => c == other,
        })
}

fn sha256_hex(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// A run over stdio: a broken plugin beside two good ones, calls that end each way
/// (ok, tool error, sandbox fault, rejected arguments, arguments over the size limit,
/// unknown tool), then the client closes stdin.
#[tokio::test]
async fn the_audit_log_of_a_stdio_run_has_every_event_in_order() {
    let folder = Folder::new(
        &[
            ("fixtures/echo.wasm", "echo.wasm"),
            ("fixtures/hostile.wasm", "hostile.wasm"),
        ],
        CONFIG,
    );
    // The lock's digest of the same configuration, to compare config.loaded's with.
    let (code, stdout, stderr) = folder.run(&["check", "--lock"]).await;
    assert_eq!(code, 0, "capsule check --lock failed:\n{stdout}\n{stderr}");
    let lock: toml::Table =
        toml::from_str(&std::fs::read_to_string(folder.dir.path().join("capsule.lock")).unwrap())
            .unwrap();
    let config_digest = lock["config"]["digest"].as_str().unwrap().to_string();
    folder.write_plugin("broken.wasm", b"not a component");

    let server = folder.serve().await;
    let ok = server.call("echo_echo", json!({"message": "hello"})).await;
    assert_eq!(ok.is_error, Some(false), "{ok:?}");
    let failed = server.call("echo_fail", json!({"message": "no"})).await;
    assert_error(&failed, &["no"]);
    let fault = server.call("hostile_spin", json!({})).await;
    assert_error(&fault, &["ran out of fuel"]);
    let rejected = server.call("echo_echo", json!({"message": 7})).await;
    assert_error(&rejected, &["invalid arguments"]);
    let long = "x".repeat(100);
    let big = server.call("echo_echo", json!({"message": long})).await;
    assert_eq!(big.is_error, Some(false), "{big:?}");
    let unknown = server.try_call("nope_nope", json!({})).await;
    assert!(
        unknown
            .as_ref()
            .is_err_and(|e| e.to_string().contains("unknown tool `nope_nope`")),
        "{unknown:?}"
    );
    // Closing the client closes stdin; the process exits once the log is written.
    server.client.cancel().await.expect("close the session");

    compare(&normalised(&folder, &config_digest), GOLDEN_STDIO);
}

/// A run over HTTP with `[auth]`: refused requests (no token, an unknown token) are
/// `auth.failure` with the client's address and never the token, calls name the principal,
/// and SIGTERM stops it.
#[tokio::test]
async fn the_audit_log_of_an_http_run_names_principals_and_refusals() {
    let folder = Folder::new(
        &[
            ("fixtures/echo.wasm", "echo.wasm"),
            ("fixtures/caller.wasm", "caller.wasm"),
        ],
        "[audit]\nenabled = true\npath = \"audit.jsonl\"\ntool-calls = true\n\n[plugins.caller]\ncaller-identity = true\n",
    );
    let token = add_token(&folder, "alice", "tools:call").await;
    // The lock's digest of what `serve --transport http --port 0` runs with.
    let (code, stdout, stderr) = folder
        .run(&[
            "check",
            "--lock",
            "--set",
            "server.transport=http",
            "--set",
            "server.port=0",
        ])
        .await;
    assert_eq!(code, 0, "capsule check --lock failed:\n{stdout}\n{stderr}");
    let lock: toml::Table =
        toml::from_str(&std::fs::read_to_string(folder.dir.path().join("capsule.lock")).unwrap())
            .unwrap();
    let config_digest = lock["config"]["digest"].as_str().unwrap().to_string();

    let mut server = HttpServer::start(&folder, &[]).await;
    let missing = post(&server.url, &initialize_request(1))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), reqwest::StatusCode::UNAUTHORIZED);
    let wrong = post(&server.url, &initialize_request(2))
        .header("authorization", "Bearer cap_not-a-real-token-4711")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), reqwest::StatusCode::UNAUTHORIZED);
    let client = client_with_token(&server.url, &token).await;
    let result = client
        .call_tool(CallToolRequestParams::new("caller_whoami"))
        .await
        .expect("tools/call caller_whoami");
    assert_eq!(result.is_error, Some(false), "{result:?}");
    drop(client);
    server.sigterm();
    assert_eq!(server.exit_code().await, 0);

    let text = std::fs::read_to_string(folder.dir.path().join("audit.jsonl")).unwrap();
    for secret in [&token[4..], "not-a-real-token-4711"] {
        assert!(
            !text.contains(secret),
            "token material in the audit log:\n{text}"
        );
    }
    let port = server.url["http://127.0.0.1:".len()..]
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let golden = normalised(&folder, &config_digest)
        .replace(&format!("127.0.0.1:{port}"), "127.0.0.1:$PORT");
    compare(&client_ports(&golden), GOLDEN_HTTP);
}

/// `golden` with each client address `127.0.0.1:N` written `127.0.0.1:$CLIENT_PORT`.
fn client_ports(golden: &str) -> String {
    const CLIENT: &str = "\"client\":\"127.0.0.1:";
    let mut out = String::new();
    let mut rest = golden;
    while let Some(at) = rest.find(CLIENT) {
        let start = at + CLIENT.len();
        out.push_str(&rest[..start]);
        let digits = rest[start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .count();
        assert!(digits > 0, "no port after a client address: {golden}");
        out.push_str("$CLIENT_PORT");
        rest = &rest[start + digits..];
    }
    out.push_str(rest);
    out
}

/// The audit log is created readable by its owner only.
#[cfg(unix)]
#[tokio::test]
async fn the_audit_file_is_created_with_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let folder = Folder::new(
        &[("fixtures/echo.wasm", "echo.wasm")],
        "[audit]\nenabled = true\npath = \"audit.jsonl\"\n",
    );
    let server = folder.serve().await;
    server.client.cancel().await.expect("close the session");
    let meta = std::fs::metadata(folder.dir.path().join("audit.jsonl")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}
