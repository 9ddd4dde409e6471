//! The example plugins that use grants for real: `files` in a mounted folder and `fetch`
//! against a local HTTP server (nothing leaves the machine).

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{Folder, assert_error, text};

#[tokio::test]
async fn files_lists_reads_and_searches_a_read_only_project() {
    let project = tempfile::tempdir().unwrap();
    std::fs::create_dir(project.path().join("src")).unwrap();
    std::fs::write(
        project.path().join("src/lib.rs"),
        "// TODO: tests\npub fn f() {}\n",
    )
    .unwrap();
    let config = format!(
        "[plugins.files]\nfs.mounts = [{{ host = \"{}\", guest = \"/project\" }}]\n",
        project.path().display()
    );
    let folder = Folder::new(&[("plugins/files.wasm", "files.wasm")], &config);
    let server = folder.serve().await;
    let listing = server
        .call("files_list", json!({"path": "/project", "recursive": true}))
        .await;
    let entries = &listing.structured_content.as_ref().expect("structured")["entries"];
    assert_eq!(entries[1]["path"], "/project/src/lib.rs", "{listing:?}");
    let read = server
        .call("files_read", json!({"path": "/project/src/lib.rs"}))
        .await;
    assert!(text(&read).starts_with("// TODO: tests"), "{read:?}");
    let found = server
        .call(
            "files_search",
            json!({"path": "/project", "pattern": "todo", "case_insensitive": true}),
        )
        .await;
    assert_eq!(
        found.structured_content.as_ref().unwrap()["matches"][0]["line"],
        1,
        "{found:?}"
    );
    let write = server
        .call(
            "files_write",
            json!({"path": "/project/x.txt", "content": "no"}),
        )
        .await;
    assert_error(&write, &["cannot write /project/x.txt"]);
    assert!(!project.path().join("x.txt").exists());
    let outside = server
        .call("files_read", json!({"path": "/etc/passwd"}))
        .await;
    assert_error(&outside, &["cannot read /etc/passwd", "mounted"]);
    let tools = server.client.list_all_tools().await.unwrap();
    let write_tool = tools.iter().find(|t| t.name == "files_write").unwrap();
    assert_eq!(
        write_tool.annotations.as_ref().unwrap().destructive_hint,
        Some(true)
    );
}

/// Answers every request with the `authorization` header it got (or `none`).
async fn auth_echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let request = String::from_utf8_lossy(&request).to_lowercase();
                let auth = request
                    .lines()
                    .find_map(|l| l.strip_prefix("authorization: "))
                    .map(|v| {
                        if v.starts_with("bearer ") {
                            "bearer token received"
                        } else {
                            "other"
                        }
                    })
                    .unwrap_or("none");
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{auth}",
                    auth.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn fetch_gets_allowed_urls_with_its_secret_token() {
    let port = auth_echo_server().await;
    let config = format!(
        "[secrets]\ntoken = \"${{CAPSULE_TEST_FETCH_TOKEN}}\"\n[plugins.fetch]\nnet.allow = [\"http://127.0.0.1:{port}\"]\nsecrets = [\"token\"]\n"
    );
    let folder = Folder::new(&[("plugins/fetch.wasm", "fetch.wasm")], &config);
    let mut command = folder.command(&["serve"]);
    command.env("CAPSULE_TEST_FETCH_TOKEN", "tok-123");
    let server = crate::support::Server::start(command).await;
    let ok = server
        .call(
            "fetch_get",
            json!({"url": format!("http://127.0.0.1:{port}/status")}),
        )
        .await;
    let response = ok.structured_content.as_ref().expect("structured");
    assert_eq!(response["status"], 200, "{ok:?}");
    assert_eq!(response["body"], "bearer token received");
    assert_eq!(response["content_type"], "text/plain");
    assert!(!text(&ok).contains("tok-123"));
    let denied = server
        .call("fetch_get", json!({"url": "https://example.com/"}))
        .await;
    assert_error(&denied, &["HTTP request denied by the host"]);
}
