//! `[auth]` on the HTTP transport: the real binary on 127.0.0.1, static tokens made by
//! `capsule auth add-token`, JWTs signed in the test and verified against a JWKS server
//! started in the test; the rmcp client with a bearer header, raw requests for the exact
//! statuses, `WWW-Authenticate` challenges and JSON-RPC error bodies. Every server's whole
//! stderr is checked for token material at the end of its test.

use reqwest::StatusCode;
use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

use crate::http::{Client, HttpServer, call_text, echo, initialize_request, post, refusal};
use crate::support::{Folder, HANG};

/// A client that initializes with `Authorization: Bearer TOKEN`.
async fn client_with(url: &str, token: &str) -> Result<Client, String> {
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_string()).auth_header(token);
    let transport = StreamableHttpClientTransport::from_config(config);
    tokio::time::timeout(HANG, ().serve(transport))
        .await
        .expect("initialize in time")
        .map_err(|err| err.to_string())
}

/// `capsule auth add-token NAME --scopes SCOPES` in `folder`: the token it printed.
async fn add_token(folder: &Folder, name: &str, scopes: &str) -> String {
    let (code, stdout, stderr) = folder
        .run(&["auth", "add-token", name, "--scopes", scopes])
        .await;
    assert_eq!(code, 0, "{stderr}");
    let config = folder.dir.path().join("capsule.toml");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "added token `{name}` (scopes: {}) to {}; it is shown only this once: store it now (the file keeps only its salted hash)",
            scopes.replace(',', ", "),
            config.display()
        )
    );
    let token = stdout.trim_end().to_string();
    assert!(
        token.starts_with("cap_") && !token.contains('\n'),
        "{stdout}"
    );
    let written = std::fs::read_to_string(config).unwrap();
    assert!(
        written.contains(&format!("[auth.tokens.{name}]")),
        "{written}"
    );
    assert!(
        !written.contains(&token[4..]),
        "the token itself was written"
    );
    token
}

/// A raw `initialize` POST with `authorization` (if any) and `query` after the path.
async fn initialize(
    server: &HttpServer,
    authorization: Option<&str>,
    query: &str,
) -> reqwest::Response {
    let mut request = post(&format!("{}{query}", server.url), &initialize_request(1));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.expect("POST initialize")
}

/// Status, `WWW-Authenticate`, JSON-RPC error code and message of a refusal.
async fn refused(response: reqwest::Response) -> (StatusCode, String, i64, String) {
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let (id, code, message) = refusal(response).await;
    assert_eq!(id, Value::Null);
    (status, challenge, code, message)
}

/// `resource_metadata="…"` of `server`'s challenges.
fn metadata_param(server: &HttpServer) -> String {
    format!(
        "resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
        server.base
    )
}

/// No line of `server`'s stderr holds any part of `tokens` that could be replayed (a
/// static token's random part; a JWT's payload or signature).
fn assert_no_token_material(server: &HttpServer, tokens: &[&str]) {
    let log = server.stderr();
    for token in tokens {
        let secret_parts: Vec<&str> = match token.strip_prefix("cap_") {
            Some(random) => vec![random],
            None => token.split('.').skip(1).filter(|p| p.len() >= 8).collect(),
        };
        for part in secret_parts {
            assert!(!log.contains(part), "token material in the log:\n{log}");
        }
    }
}

#[tokio::test]
async fn static_tokens_from_add_token_authenticate_and_everything_else_gets_401() {
    let folder = echo();
    let token = add_token(&folder, "ci", "mcp,tools:call").await;
    let (code, _, stderr) = folder.run(&["auth", "add-token", "ci"]).await;
    assert_eq!(code, 2);
    assert_eq!(
        stderr.lines().last().unwrap(),
        format!(
            "error: {} already has [auth.tokens.ci]; pass --force to replace it (the old token stops working), or choose another name",
            folder.dir.path().join("capsule.toml").display()
        )
    );
    let server = HttpServer::start(&folder, &[]).await;

    let client = client_with(&server.url, &token)
        .await
        .expect("initialize with the token");
    assert_eq!(
        call_text(&client, "echo_echo", json!({"message": "authenticated"})).await,
        "authenticated"
    );
    client.cancel().await.expect("close the client");

    let metadata = metadata_param(&server);
    let (status, challenge, code, message) = refused(initialize(&server, None, "").await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge, format!("Bearer {metadata}"));
    assert_eq!(code, -32000);
    assert_eq!(
        message,
        "no bearer token: send `Authorization: Bearer TOKEN`"
    );

    let wrong = format!("cap_{}", "A".repeat(43));
    let (status, challenge, _, message) =
        refused(initialize(&server, Some(&format!("Bearer {wrong}")), "").await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        message,
        "the token is not one of the configured static tokens"
    );
    assert_eq!(
        challenge,
        format!(
            "Bearer error=\"invalid_token\", error_description=\"the token is not one of the configured static tokens\", {metadata}"
        )
    );

    let (status, challenge, _, message) =
        refused(initialize(&server, Some(&format!("Basic {token}")), "").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(message, "the Authorization header is not `Bearer TOKEN`");
    assert!(
        challenge.starts_with("Bearer error=\"invalid_request\""),
        "{challenge}"
    );

    let (status, challenge, _, message) = refused(
        initialize(
            &server,
            Some(&format!("Bearer {token}")),
            &format!("?access_token={token}"),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        message,
        "a token in the URL query (access_token) is refused: URLs end up in logs and histories; send it in the Authorization header"
    );
    assert_eq!(
        challenge,
        format!("Bearer error=\"invalid_request\", error_description=\"{message}\", {metadata}")
    );

    let unauthenticated = client_with(&server.url, &wrong).await.unwrap_err();
    assert!(
        unauthenticated.contains("Auth required"),
        "the rmcp client reports: {unauthenticated}"
    );

    let health = reqwest::get(format!("{}/healthz", server.base))
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    let log = server.stderr();
    assert!(
        log.contains("refused a request: authentication failed reason=no bearer token: send `Authorization: Bearer TOKEN` client=127.0.0.1:"),
        "{log}"
    );
    assert!(
        log.contains(
            "reason=the token is not one of the configured static tokens client=127.0.0.1:"
        ),
        "{log}"
    );
    assert_no_token_material(&server, &[&token, &wrong]);
}

#[tokio::test]
async fn the_protected_resource_metadata_is_served_at_both_well_known_paths() {
    let folder = echo();
    add_token(&folder, "ci", "mcp").await;
    let config = folder.dir.path().join("capsule.toml");
    let written = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        written.replace(
            "[auth]\n",
            "[auth]\nauthorization-servers = [\"https://auth.example.com\"]\nrequired-scopes = [\"mcp\"]\n",
        ),
    )
    .unwrap();
    let server = HttpServer::start(&folder, &[]).await;
    let expected = json!({
        "resource": server.url,
        "authorization_servers": ["https://auth.example.com"],
        "scopes_supported": ["mcp"],
        "bearer_methods_supported": ["header"],
    });
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let response = reqwest::get(format!("{}{path}", server.base))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let document: Value = response.json().await.unwrap();
        assert_eq!(document, expected, "{path}");
    }
}

#[tokio::test]
async fn a_valid_token_without_a_required_scope_gets_403_insufficient_scope() {
    let folder = echo();
    let token = add_token(&folder, "reader", "mcp").await;
    let config = folder.dir.path().join("capsule.toml");
    let written = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        written.replace(
            "[auth]\n",
            "[auth]\nrequired-scopes = [\"mcp\", \"tools:call\"]\n",
        ),
    )
    .unwrap();
    let server = HttpServer::start(&folder, &[]).await;
    let (status, challenge, code, message) =
        refused(initialize(&server, Some(&format!("Bearer {token}")), "").await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        challenge,
        format!(
            "Bearer error=\"insufficient_scope\", scope=\"mcp tools:call\", {}",
            metadata_param(&server)
        )
    );
    assert_eq!(code, -32000);
    assert_eq!(
        message,
        "the token of `reader` lacks the required scope tools:call"
    );
    server
        .wait_for_log("reason=the token of `reader` lacks the required scope tools:call principal=\"reader\" client=127.0.0.1:")
        .await;
    assert_no_token_material(&server, &[&token]);
}

#[tokio::test]
async fn with_auth_a_non_loopback_address_needs_no_allow_unauthenticated() {
    let folder = echo();
    add_token(&folder, "ci", "mcp").await;
    let mut command = folder.command(&[
        "serve",
        "--transport",
        "http",
        "--host",
        "0.0.0.0",
        "--port",
        "0",
    ]);
    command.env("CAPSULE_LOG", "info");
    let mut server = HttpServer::spawn(command).await;
    server
        .wait_for_log("clients authenticate with bearer tokens; protected resource metadata at http://0.0.0.0:")
        .await;
    assert!(
        !server.stderr().contains("serving without authentication"),
        "{}",
        server.stderr()
    );
    server.sigterm();
    assert_eq!(server.exit_code().await, 0);
}
