//! Caller identity (`host.caller`, `caller-identity` in a plugin's policy): a plugin learns
//! the authenticated HTTP principal's name and scopes only when the operator granted it,
//! never over stdio or without `[auth]`, and never the token; an instance reused across
//! calls (`isolation = "reuse"`) serves one principal only.

use serde_json::{Value, json};

use crate::http::HttpServer;
use crate::support::Folder;

const GRANTED: &str = "[plugins.caller]\ncaller-identity = true\n";

fn caller_folder(config: &str) -> Folder {
    Folder::new(&[("fixtures/caller.wasm", "caller.wasm")], config)
}

/// What `caller_whoami` reported (its structured content).
fn whoami(result: &rmcp::model::CallToolResult) -> Value {
    assert_eq!(result.is_error, Some(false), "{result:?}");
    result
        .structured_content
        .clone()
        .unwrap_or_else(|| panic!("caller_whoami returned no structured content: {result:?}"))
}

#[tokio::test]
async fn over_stdio_a_granted_plugin_is_told_no_caller() {
    let folder = caller_folder(GRANTED);
    let server = folder.serve().await;
    let result = server.call("caller_whoami", json!({})).await;
    assert_eq!(whoami(&result), json!({"caller": null}));
}

#[tokio::test]
async fn over_http_without_auth_a_granted_plugin_is_told_no_caller() {
    let folder = caller_folder(GRANTED);
    let mut server = HttpServer::start(&folder, &[]).await;
    let client = server.legacy_client().await;
    let result = client
        .call_tool(rmcp::model::CallToolRequestParams::new("caller_whoami"))
        .await
        .expect("tools/call caller_whoami");
    assert_eq!(whoami(&result), json!({"caller": null}));
    drop(client);
    server.sigterm();
    assert_eq!(server.exit_code().await, 0);
}

#[tokio::test]
async fn the_grant_is_shown_and_locked_and_a_sidecar_cannot_take_it() {
    let folder = caller_folder(GRANTED);
    let (code, stdout, stderr) = folder.run(&["check", "--lock"]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("         caller identity: the HTTP caller's name and scopes\n"),
        "{stdout}"
    );
    let lock = std::fs::read_to_string(folder.dir.path().join("capsule.lock")).unwrap();
    assert!(lock.contains("grants = [\"caller-identity\"]"), "{lock}");

    // The plugin's author asks for it in a sidecar: withheld until the operator approves.
    let folder = caller_folder("");
    std::fs::write(
        folder.plugins().join("caller.toml"),
        "caller-identity = true\n",
    )
    .unwrap();
    let (code, stdout, stderr) = folder.run(&["check"]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let sidecar = folder.plugins().join("caller.toml");
    assert!(
        stdout.contains(&format!(
            "withheld: caller-identity (asked for by {}; approve with `capsule approve caller`)",
            sidecar.display()
        )),
        "{stdout}"
    );
    assert!(!stdout.contains("caller identity: the HTTP"), "{stdout}");
}

/// The client's `Authorization` header never reaches an upstream host: a plugin's outgoing
/// request carries only what the plugin wrote, and nothing of the inbound request but the
/// principal is part of a call.
#[tokio::test]
async fn the_inbound_authorization_header_is_never_forwarded_upstream() {
    use rmcp::ServiceExt;
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    use std::sync::{Arc, Mutex};

    const TOKEN: &str = "inbound-token-7f3a9c";
    let heads = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = heads.clone();
    let (port, _) = crate::support::http_server(move |head| {
        seen.lock().unwrap().push(head.to_string());
        "upstream answered".into()
    })
    .await;
    let folder = Folder::new(
        &[("fixtures/echo.wasm", "echo.wasm")],
        &format!("[plugins.echo]\nnet.allow = [\"http://127.0.0.1:{port}\"]\n"),
    );
    let mut server = HttpServer::start(&folder, &[]).await;
    let config =
        StreamableHttpClientTransportConfig::with_uri(server.url.clone()).auth_header(TOKEN);
    let client =
        ().serve(StreamableHttpClientTransport::from_config(config))
            .await
            .expect("initialize over HTTP with a bearer token");
    let result = client
        .call_tool(
            rmcp::model::CallToolRequestParams::new("echo_fetch").with_arguments(
                json!({"url": format!("http://127.0.0.1:{port}/upstream")})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
        )
        .await
        .expect("tools/call echo_fetch");
    assert_eq!(crate::support::text(&result), "200 upstream answered");
    let heads = heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 1, "{heads:?}");
    assert!(
        heads[0].starts_with("GET /upstream HTTP/1.1\r\n"),
        "{heads:?}"
    );
    assert!(
        !heads[0].contains(TOKEN) && !heads[0].to_lowercase().contains("authorization"),
        "the upstream request carried the caller's credentials: {heads:?}"
    );
    drop(client);
    server.sigterm();
    assert_eq!(server.exit_code().await, 0);
}

/// `capsule auth add-token NAME --scopes SCOPES` in `folder`: the token it printed once.
pub(crate) async fn add_token(folder: &Folder, name: &str, scopes: &str) -> String {
    let (code, stdout, stderr) = folder
        .run(&["auth", "add-token", name, "--scopes", scopes])
        .await;
    assert_eq!(code, 0, "capsule auth add-token failed: {stderr}");
    stdout.trim_end().to_string()
}

/// A client that initializes with `Authorization: Bearer TOKEN`.
pub(crate) async fn client_with_token(url: &str, token: &str) -> crate::http::Client {
    use rmcp::ServiceExt;
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_string()).auth_header(token);
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("initialize over HTTP with a bearer token")
}

/// Over HTTP with `[auth]`, the plugin granted `caller-identity` learns the principal's name
/// and scopes; the same component without the grant learns nothing.
#[tokio::test]
async fn over_http_with_auth_only_the_granted_plugin_learns_the_principal() {
    let folder = Folder::new(
        &[
            ("fixtures/caller.wasm", "granted.wasm"),
            ("fixtures/caller.wasm", "plain.wasm"),
        ],
        "[plugins.granted]\ncaller-identity = true\n",
    );
    let token = add_token(&folder, "alice", "tools:call,reports:read").await;
    let mut server = HttpServer::start(&folder, &[]).await;
    let client = client_with_token(&server.url, &token).await;
    let call = |tool: &'static str| client.call_tool(rmcp::model::CallToolRequestParams::new(tool));
    let granted = call("granted_whoami")
        .await
        .expect("tools/call granted_whoami");
    assert_eq!(
        whoami(&granted),
        json!({"caller": {"name": "alice", "scopes": ["tools:call", "reports:read"]}})
    );
    let plain = call("plain_whoami").await.expect("tools/call plain_whoami");
    assert_eq!(whoami(&plain), json!({"caller": null}));
    drop(client);
    server.sigterm();
    assert_eq!(server.exit_code().await, 0);
}

/// `isolation = "reuse"` over HTTP with `[auth]`: an instance only serves the principal
/// whose call created it, so what one principal's calls leave in memory never reaches
/// another's.
#[tokio::test]
async fn a_reused_instance_serves_only_the_principal_that_created_it() {
    let folder = Folder::new(
        &[("fixtures/echo.wasm", "echo.wasm")],
        "[plugins.echo]\nisolation = \"reuse\"\n",
    );
    let ann = add_token(&folder, "ann", "tools:call").await;
    let bob = add_token(&folder, "bob", "tools:call").await;
    let mut server = HttpServer::start(&folder, &[]).await;
    let ann = client_with_token(&server.url, &ann).await;
    let bob = client_with_token(&server.url, &bob).await;
    let counter = async |client: &crate::http::Client| {
        let result = client
            .call_tool(rmcp::model::CallToolRequestParams::new("echo_counter"))
            .await
            .expect("tools/call echo_counter");
        crate::support::text(&result)
    };
    assert_eq!(counter(&ann).await, "1 heap-fresh pages-fresh");
    assert_eq!(counter(&ann).await, "2 heap-leaked pages-leaked 48");
    assert_eq!(counter(&bob).await, "1 heap-fresh pages-fresh");
    assert_eq!(counter(&ann).await, "3 heap-leaked pages-leaked 48");
    assert_eq!(counter(&bob).await, "2 heap-leaked pages-leaked 48");
    drop((ann, bob));
    server.sigterm();
    assert_eq!(server.exit_code().await, 0);
}
