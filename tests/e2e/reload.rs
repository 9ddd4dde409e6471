//! Hot reload (`capsule serve --watch`, on by default over stdio): plugins copied in,
//! replaced, broken and deleted while real clients are connected, over stdio and HTTP.

use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::json;

use crate::http::HttpServer;
use crate::support::{Folder, HANG, Recorder, Server, assert_error, component, text};

fn bytes(relative: &str) -> Vec<u8> {
    std::fs::read(component(relative)).expect("read component")
}

/// The names `tools/list` shows now.
async fn names(server: &Server) -> Vec<String> {
    let tools = server.client.list_all_tools().await.expect("tools/list");
    tools.into_iter().map(|t| t.name.to_string()).collect()
}

/// Starts `capsule serve` on `folder` with the reload module's debug lines in stderr.
async fn serve_watching(folder: &Folder, extra: &[&str]) -> Server {
    let mut args = vec!["serve"];
    args.extend_from_slice(extra);
    let mut command = folder.command(&args);
    command.env("CAPSULE_LOG", "info,capsule::reload=debug");
    Server::start(command).await
}

#[tokio::test]
async fn stdio_plugins_are_added_replaced_kept_when_broken_and_removed() {
    let folder = Folder::new(&[("fixtures/echo.wasm", "echo.wasm")], "");
    let server = serve_watching(&folder, &[]).await;
    server.wait_for_log("watching the plugins folder").await;
    assert!(!names(&server).await.iter().any(|n| n.starts_with("p_")));

    // Copied in: announced, listed and callable.
    std::fs::copy(
        component("fixtures/echo.wasm"),
        folder.plugins().join("p.wasm"),
    )
    .unwrap();
    server.recorder.wait_for_tools_changed(1).await;
    server.wait_for_log("reload: plugin `p` added").await;
    assert!(names(&server).await.contains(&"p_echo".to_string()));
    let result = server.call("p_echo", json!({"message": "new"})).await;
    assert_eq!(text(&result), "new");

    // Replaced by another build: the new tools serve, the old ones are gone.
    folder.write_plugin("p.wasm", &bytes("fixtures/greedy.wasm"));
    server.recorder.wait_for_tools_changed(2).await;
    server
        .wait_for_log("reload: plugin `p` replaced (sha256 ")
        .await;
    let listed = names(&server).await;
    assert!(listed.contains(&"p_nap".to_string()), "{listed:?}");
    assert!(!listed.contains(&"p_echo".to_string()), "{listed:?}");
    assert_eq!(text(&server.call("p_ok", json!({})).await), "fine");

    // A truncated file: the error is logged, the last good version keeps serving, no
    // announcement.
    let echo = bytes("fixtures/echo.wasm");
    folder.write_plugin("p.wasm", &echo[..echo.len() / 2]);
    let log = server.wait_for_log("reload of plugin `p` failed: ").await;
    for expected in [
        "p.wasm: invalid component",
        "; the last good version (sha256 ",
        ") keeps serving",
    ] {
        assert!(log.contains(expected), "log lacks {expected:?}:\n{log}");
    }
    assert_eq!(text(&server.call("p_ok", json!({})).await), "fine");
    assert_eq!(*server.recorder.tools_changed.lock().unwrap(), 2);

    // Deleted: announced, and its tools are gone.
    std::fs::remove_file(folder.plugins().join("p.wasm")).unwrap();
    server.recorder.wait_for_tools_changed(3).await;
    server.wait_for_log("reload: plugin `p` removed").await;
    let listed = names(&server).await;
    assert!(!listed.iter().any(|n| n.starts_with("p_")), "{listed:?}");
    let gone = server.try_call("p_ok", json!({})).await;
    assert!(gone.is_err(), "a removed tool still answers: {gone:?}");
    server.assert_echo_answers().await;
}

#[tokio::test]
async fn a_call_in_flight_during_a_replace_finishes_on_the_old_version() {
    let folder = Folder::new(&[("fixtures/greedy.wasm", "p.wasm")], "");
    let mut command = folder.command(&["serve"]);
    command.env("CAPSULE_LOG", "info,capsule::runtime=debug");
    let server = Server::start(command).await;
    server.wait_for_log("watching the plugins folder").await;
    let napping = server.call("p_nap", json!({"ms": 3000}));
    let replace = async {
        server.wait_for_log("call admitted").await;
        folder.write_plugin("p.wasm", &bytes("fixtures/echo.wasm"));
        server.wait_for_log("reload: plugin `p` replaced").await;
        // The new version serves while the old call still runs.
        let result = server
            .call("p_echo", json!({"message": "new version"}))
            .await;
        assert_eq!(text(&result), "new version");
    };
    let (napped, ()) = tokio::join!(napping, replace);
    assert_eq!(text(&napped), "rested", "{napped:?}");
    server.recorder.wait_for_tools_changed(1).await;
}

#[tokio::test]
async fn a_no_op_save_sends_no_list_changed() {
    let folder = Folder::new(&[("fixtures/echo.wasm", "echo.wasm")], "");
    let server = serve_watching(&folder, &[]).await;
    server.wait_for_log("watching the plugins folder").await;
    let file = folder.plugins().join("echo.wasm");
    // `touch`, then the same bytes written again.
    let status = std::process::Command::new("touch")
        .arg(&file)
        .status()
        .expect("run touch");
    assert!(status.success());
    std::fs::write(&file, bytes("fixtures/echo.wasm")).unwrap();
    server
        .wait_for_log("reload: no change to the tool set; clients are not notified")
        .await;
    // A real change afterwards is announced once: the no-op sent nothing before it.
    std::fs::copy(
        component("fixtures/greedy.wasm"),
        folder.plugins().join("greedy.wasm"),
    )
    .unwrap();
    server.recorder.wait_for_tools_changed(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(*server.recorder.tools_changed.lock().unwrap(), 1);
    server.assert_echo_answers().await;
}

#[tokio::test]
async fn names_stay_stable_when_a_colliding_plugin_appears() {
    // echo's `progress` as plugin `c_tool_with` is `c_tool_with_progress`; conformance as
    // plugin `c` has `tool_with_progress`, which wants the same name and sorts first.
    let folder = Folder::new(&[("fixtures/echo.wasm", "c_tool_with.wasm")], "");
    let server = serve_watching(&folder, &[]).await;
    server.wait_for_log("watching the plugins folder").await;
    let before = server.client.list_all_tools().await.expect("tools/list");
    let description = |tools: &[rmcp::model::Tool], name: &str| {
        tools
            .iter()
            .find(|t| t.name == name)
            .and_then(|t| t.description.clone())
            .unwrap_or_else(|| panic!("{name} not listed: {tools:?}"))
    };
    let echo_progress = description(&before, "c_tool_with_progress");

    std::fs::copy(
        component("fixtures/conformance.wasm"),
        folder.plugins().join("c.wasm"),
    )
    .unwrap();
    server.recorder.wait_for_tools_changed(1).await;
    let after = server.client.list_all_tools().await.expect("tools/list");
    assert_eq!(description(&after, "c_tool_with_progress"), echo_progress);
    assert_ne!(description(&after, "c_tool_with_progress_2"), echo_progress);
    server
        .wait_for_log(
            "tool `tool_with_progress`: it would be exposed as `c_tool_with_progress`, which is taken; serving it as `c_tool_with_progress_2`",
        )
        .await;
}

#[tokio::test]
async fn locked_reload_refuses_a_digest_not_in_the_lock() {
    let folder = Folder::new(&[("fixtures/echo.wasm", "echo.wasm")], "");
    let (code, stdout, stderr) = folder.run(&["check", "--lock"]).await;
    assert_eq!(code, 0, "check --lock failed:\n{stdout}\n{stderr}");
    let server = serve_watching(&folder, &["--locked", "--watch"]).await;
    server.wait_for_log("watching the plugins folder").await;
    let locked = format!("sha256:{}", sha256_hex(&bytes("fixtures/echo.wasm")));
    let other = format!("sha256:{}", sha256_hex(&bytes("fixtures/greedy.wasm")));

    folder.write_plugin("echo.wasm", &bytes("fixtures/greedy.wasm"));
    let log = server
        .wait_for_log("reload of plugin `echo` failed: ")
        .await;
    let expected = format!(
        "{} has {other}, but capsule.lock has {locked} for plugin `echo`; refused (serve --locked): run `capsule check --lock` to accept it; the last good version (sha256 ",
        folder.plugins().join("echo.wasm").display()
    );
    assert!(log.contains(&expected), "log lacks {expected:?}:\n{log}");
    server.assert_echo_answers().await;

    folder.write_plugin("new.wasm", &bytes("fixtures/greedy.wasm"));
    let log = server.wait_for_log("plugin `new` not loaded: ").await;
    let expected = format!(
        "{} ({other}) is not in capsule.lock; refused (serve --locked)",
        folder.plugins().join("new.wasm").display()
    );
    assert!(log.contains(&expected), "log lacks {expected:?}:\n{log}");
    let listed = names(&server).await;
    assert!(!listed.iter().any(|n| n.starts_with("new_")), "{listed:?}");
    assert_eq!(*server.recorder.tools_changed.lock().unwrap(), 0);
    let refused = server.try_call("new_ok", json!({})).await;
    assert!(refused.is_err(), "{refused:?}");
}

#[tokio::test]
async fn http_clients_hear_list_changed_and_call_the_new_plugin() {
    let folder = Folder::new(&[("fixtures/echo.wasm", "echo.wasm")], "");
    let server = HttpServer::start(&folder, &["--watch"]).await;
    server.wait_for_log("watching the plugins folder").await;
    let recorder = Recorder::default();
    let transport = StreamableHttpClientTransport::from_uri(server.url.clone());
    let client = tokio::time::timeout(HANG, recorder.clone().serve(transport))
        .await
        .expect("initialize in time")
        .expect("initialize over HTTP");
    client.list_all_tools().await.expect("tools/list");

    std::fs::copy(
        component("fixtures/greedy.wasm"),
        folder.plugins().join("greedy.wasm"),
    )
    .unwrap();
    recorder.wait_for_tools_changed(1).await;
    let listed = client.list_all_tools().await.expect("tools/list");
    assert!(listed.iter().any(|t| t.name == "greedy_ok"), "{listed:?}");
    let result = client
        .call_tool(CallToolRequestParams::new("greedy_ok"))
        .await
        .expect("tools/call");
    assert_eq!(text(&result), "fine");
}

#[tokio::test]
async fn http_does_not_watch_unless_asked() {
    let folder = Folder::new(&[("fixtures/echo.wasm", "echo.wasm")], "");
    let server = HttpServer::start(&folder, &[]).await;
    let log = server.stderr();
    assert!(!log.contains("watching the plugins folder"), "{log}");
}

#[tokio::test]
async fn a_sidecar_policy_change_reloads_the_plugin() {
    let folder = Folder::new(&[("fixtures/echo.wasm", "echo.wasm")], "");
    let server = serve_watching(&folder, &[]).await;
    server.wait_for_log("watching the plugins folder").await;
    let before = server.call("echo_config", json!({"key": "greeting"})).await;
    assert_error(&before, &["no config value for greeting"]);
    std::fs::write(
        folder.plugins().join("echo.toml"),
        "[config]\ngreeting = \"hello\"\n",
    )
    .unwrap();
    server.recorder.wait_for_tools_changed(1).await;
    server.wait_for_log("reload: plugin `echo` replaced").await;
    let after = server.call("echo_config", json!({"key": "greeting"})).await;
    assert_eq!(text(&after), "hello", "{after:?}");
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[tokio::test]
async fn a_changed_config_file_is_reported_as_restart_needed_and_not_applied() {
    let folder = Folder::new(&[("fixtures/echo.wasm", "echo.wasm")], "");
    let server = serve_watching(&folder, &[]).await;
    server.wait_for_log("watching the plugins folder").await;
    let config = folder.dir.path().join("capsule.toml");
    std::fs::write(
        &config,
        "[runtime]\nmax-concurrent-calls = 3\n\n[plugins.echo.config]\ngreeting = \"hi\"\n",
    )
    .unwrap();
    let log = server.wait_for_log("; restart needed: ").await;
    let expected = format!(
        "{} changed; restart needed: runtime.max-calls-per-plugin, runtime.max-concurrent-calls, plugins.echo (a running server applies plugin files only)",
        config.display()
    );
    assert!(log.contains(&expected), "log lacks {expected:?}:\n{log}");
    // Not applied: the running policy still has no setting.
    let result = server.call("echo_config", json!({"key": "greeting"})).await;
    assert_error(&result, &["no config value for greeting"]);
    assert_eq!(*server.recorder.tools_changed.lock().unwrap(), 0);
}
