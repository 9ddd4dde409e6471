//! The example plugins that use grants for real: `files` in a mounted folder and `fetch`
//! against a local HTTP server (nothing leaves the machine).

use serde_json::json;

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

/// Answers every request with whether it carried a bearer token.
async fn auth_echo_server() -> u16 {
    let (port, _) = crate::support::http_server(|head| {
        let head = head.to_lowercase();
        let auth = head.lines().find_map(|l| l.strip_prefix("authorization: "));
        match auth {
            Some(v) if v.starts_with("bearer ") => "bearer token received",
            Some(_) => "other",
            None => "none",
        }
        .to_string()
    })
    .await;
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
