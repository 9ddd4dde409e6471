//! Every probe of the escape fixture, called without a grant (the exact denial the plugin
//! sees) and, where a grant exists, with one (exactly what it grants, nothing beside it):
//! files written and listed, HTTP, raw TCP, name lookups, environment variables and config.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

use crate::support::{
    Folder, LOOKUP_DENIED, NOT_FOUND, NOT_PERMITTED, Server, TCP_DENIED, assert_error, text,
};

/// What the escape fixture's `http_get` returns for a URL outside `net.allow`.
const HTTP_DENIED: &str = "ErrorCode::HttpRequestDenied";
/// What `std::env::var` says in the plugin for a variable it was not given.
const ENV_NOT_FOUND: &str = "environment variable not found";

fn escape_with(config: &str) -> Folder {
    Folder::new(&[("fixtures/escape.wasm", "escape.wasm")], config)
}

/// `capsule serve` for `folder` with `CAPSULE_TEST_PASSED` and `CAPSULE_TEST_HIDDEN` set in
/// the host's environment, so a test can see which of them reach the plugin.
async fn serve_with_host_env(folder: &Folder) -> Server {
    let mut command = folder.command(&["serve"]);
    command
        .env("CAPSULE_TEST_PASSED", "from the host")
        .env("CAPSULE_TEST_HIDDEN", "must stay on the host");
    Server::start(command).await
}

/// A TCP listener on 127.0.0.1 that accepts connections and counts them.
async fn tcp_listener() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    (addr, hits)
}

#[tokio::test]
async fn without_grants_every_escape_tool_is_denied() {
    let (http_port, http_hits) =
        crate::support::http_server(|_| "must not be reached".into()).await;
    let (tcp_addr, tcp_hits) = tcp_listener().await;
    let folder = escape_with("");
    let server = serve_with_host_env(&folder).await;
    let cases = [
        (
            "escape_write",
            json!({"path": "/tmp/pwned.txt", "content": "pwned"}),
            NOT_FOUND,
        ),
        (
            "escape_write",
            json!({"path": "pwned.txt", "content": "pwned"}),
            NOT_FOUND,
        ),
        ("escape_list", json!({"path": "/"}), NOT_FOUND),
        ("escape_list", json!({"path": "/etc"}), NOT_FOUND),
        (
            "escape_http_get",
            json!({"url": format!("http://127.0.0.1:{http_port}/")}),
            HTTP_DENIED,
        ),
        (
            "escape_tcp_connect",
            json!({"addr": tcp_addr.to_string()}),
            TCP_DENIED,
        ),
        (
            "escape_dns_lookup",
            json!({"host": "localhost"}),
            LOOKUP_DENIED,
        ),
        (
            "escape_env",
            json!({"name": "CAPSULE_TEST_PASSED"}),
            ENV_NOT_FOUND,
        ),
        ("escape_env", json!({"name": "HOME"}), ENV_NOT_FOUND),
        (
            "escape_config",
            json!({"key": "greeting"}),
            "no config value for greeting",
        ),
    ];
    for (tool, arguments, denial) in cases {
        let result = server.call(tool, arguments.clone()).await;
        assert_error(&result, &[denial]);
        assert_eq!(text(&result), denial, "{tool} {arguments}: {result:?}");
    }
    let all = server.call("escape_env_all", json!({})).await;
    assert_eq!(all.is_error, Some(false), "{all:?}");
    assert_eq!(
        text(&all),
        "",
        "no host variable reaches the plugin: {all:?}"
    );
    server
        .wait_for_log("denied outgoing HTTP request: not in this plugin's net.allow list")
        .await;
    assert_eq!(
        http_hits.load(Ordering::SeqCst),
        0,
        "HTTP was never contacted"
    );
    assert_eq!(
        tcp_hits.load(Ordering::SeqCst),
        0,
        "TCP was never contacted"
    );
}

#[tokio::test]
async fn a_writable_mount_takes_writes_and_lists_only_inside_it() {
    let writable = tempfile::tempdir().unwrap();
    let read_only = tempfile::tempdir().unwrap();
    std::fs::write(read_only.path().join("kept.txt"), "original").unwrap();
    let config = format!(
        "[plugins.escape.fs]\nmounts = [\n  {{ host = \"{}\", guest = \"/rw\", mode = \"read-write\" }},\n  {{ host = \"{}\", guest = \"/ro\" }},\n]\n",
        writable.path().display(),
        read_only.path().display()
    );
    let folder = escape_with(&config);
    let server = folder.serve().await;

    for (path, content) in [("/rw/a.txt", "first"), ("/rw/b.txt", "second")] {
        let written = server
            .call("escape_write", json!({"path": path, "content": content}))
            .await;
        assert_eq!(text(&written), "written", "{path}: {written:?}");
    }
    assert_eq!(
        std::fs::read_to_string(writable.path().join("a.txt")).unwrap(),
        "first"
    );
    let listed = server.call("escape_list", json!({"path": "/rw"})).await;
    assert_eq!(text(&listed), "a.txt\nb.txt", "{listed:?}");
    let listed = server.call("escape_list", json!({"path": "/ro"})).await;
    assert_eq!(
        text(&listed),
        "kept.txt",
        "a read-only mount lists: {listed:?}"
    );

    let outside = writable.path().parent().unwrap();
    let escaped = format!(
        "escaped-{}.txt",
        writable.path().file_name().unwrap().to_string_lossy()
    );
    for (path, denial) in [
        ("/ro/kept.txt".to_string(), NOT_PERMITTED),
        ("/ro/new.txt".to_string(), NOT_PERMITTED),
        (format!("/rw/../{escaped}"), NOT_PERMITTED),
        ("/tmp/pwned.txt".to_string(), NOT_FOUND),
    ] {
        let result = server
            .call("escape_write", json!({"path": path, "content": "pwned"}))
            .await;
        assert_error(&result, &[denial]);
        assert_eq!(text(&result), denial, "{path}: {result:?}");
    }
    assert_eq!(
        std::fs::read_to_string(read_only.path().join("kept.txt")).unwrap(),
        "original"
    );
    assert!(!read_only.path().join("new.txt").exists());
    assert!(!outside.join(&escaped).exists());
    for (path, denial) in [("/rw/..", NOT_PERMITTED), ("/", NOT_FOUND)] {
        let result = server.call("escape_list", json!({"path": path})).await;
        assert_error(&result, &[denial]);
        assert_eq!(text(&result), denial, "{path}: {result:?}");
    }
}

#[tokio::test]
async fn http_get_reaches_an_allowed_host_and_nothing_else() {
    let (allowed, allowed_hits) = crate::support::http_server(|_| "hello escape".into()).await;
    let (other, other_hits) = crate::support::http_server(|_| "must not be reached".into()).await;
    let folder = escape_with(&format!(
        "[plugins.escape.net]\nallow = [\"http://127.0.0.1:{allowed}\"]\ntimeout = \"5s\"\n"
    ));
    let server = folder.serve().await;
    let ok = server
        .call(
            "escape_http_get",
            json!({"url": format!("http://127.0.0.1:{allowed}/path?q=1")}),
        )
        .await;
    assert_eq!(text(&ok), "200 hello escape", "{ok:?}");
    for denied in [
        format!("http://127.0.0.1:{other}/"),
        format!("https://127.0.0.1:{allowed}/"),
        format!("http://localhost:{allowed}/"),
    ] {
        let result = server
            .call("escape_http_get", json!({"url": denied.clone()}))
            .await;
        assert_error(&result, &[HTTP_DENIED]);
        assert_eq!(text(&result), HTTP_DENIED, "{denied}: {result:?}");
    }
    assert_eq!(allowed_hits.load(Ordering::SeqCst), 1);
    assert_eq!(other_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn tcp_connect_reaches_a_listed_address_and_nothing_else() {
    let (allowed, allowed_hits) = tcp_listener().await;
    let (other, other_hits) = tcp_listener().await;
    let folder = escape_with(&format!("[plugins.escape.net]\ntcp = [\"{allowed}\"]\n"));
    let server = folder.serve().await;
    let ok = server
        .call("escape_tcp_connect", json!({"addr": allowed.to_string()}))
        .await;
    assert_eq!(text(&ok), format!("connected to {allowed}"), "{ok:?}");
    let denied = server
        .call("escape_tcp_connect", json!({"addr": other.to_string()}))
        .await;
    assert_error(&denied, &[TCP_DENIED]);
    assert_eq!(text(&denied), TCP_DENIED, "{denied:?}");
    server
        .wait_for_log("denied socket operation: not in this plugin's net.tcp list")
        .await;
    assert_eq!(allowed_hits.load(Ordering::SeqCst), 1);
    assert_eq!(other_hits.load(Ordering::SeqCst), 0);
}

/// No grant allows name lookups: with every network grant given, `dns_lookup` still fails
/// (the host resolves names itself, for `net.allow` hosts only).
#[tokio::test]
async fn dns_lookup_is_denied_even_with_every_network_grant() {
    let folder = escape_with(
        "[plugins.escape.net]\nallow = [\"localhost\", \"http://127.0.0.1:8080\"]\nallow-private = [\"http://localhost:8080\"]\ntcp = [\"127.0.0.1:5432\"]\n",
    );
    let server = folder.serve().await;
    for host in ["localhost", "example.com"] {
        let result = server
            .call("escape_dns_lookup", json!({"host": host}))
            .await;
        assert_error(&result, &[LOOKUP_DENIED]);
        assert_eq!(text(&result), LOOKUP_DENIED, "{host}: {result:?}");
    }
}

#[tokio::test]
async fn env_sees_exactly_the_granted_variables() {
    let folder = escape_with(
        "[plugins.escape.env]\npass = [\"CAPSULE_TEST_PASSED\"]\nset = { MODE = \"test\" }\n",
    );
    let server = serve_with_host_env(&folder).await;
    for (name, value) in [("CAPSULE_TEST_PASSED", "from the host"), ("MODE", "test")] {
        let result = server.call("escape_env", json!({"name": name})).await;
        assert_eq!(text(&result), value, "{name}: {result:?}");
    }
    for name in ["CAPSULE_TEST_HIDDEN", "HOME", "PATH"] {
        let result = server.call("escape_env", json!({"name": name})).await;
        assert_error(&result, &[ENV_NOT_FOUND]);
        assert_eq!(text(&result), ENV_NOT_FOUND, "{name}: {result:?}");
    }
    let all = server.call("escape_env_all", json!({})).await;
    let all_text = text(&all);
    let mut lines: Vec<&str> = all_text.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        ["CAPSULE_TEST_PASSED=from the host", "MODE=test"],
        "{all:?}"
    );
}

#[tokio::test]
async fn config_sees_its_own_values_and_granted_secrets_only() {
    let folder = Folder::new(
        &[
            ("fixtures/escape.wasm", "escape.wasm"),
            ("fixtures/escape.wasm", "other.wasm"),
        ],
        "[secrets]\ntoken = \"s3cr3t\"\nunlisted = \"not for escape\"\n\
         [plugins.escape]\nsecrets = [\"token\"]\n[plugins.escape.config]\ngreeting = \"hello escape\"\n\
         [plugins.other.config]\nprivate = \"other's value\"\n",
    );
    let server = folder.serve().await;
    for (key, value) in [("greeting", "hello escape"), ("token", "s3cr3t")] {
        let result = server.call("escape_config", json!({"key": key})).await;
        assert_eq!(text(&result), value, "{key}: {result:?}");
    }
    for key in ["private", "unlisted", "missing"] {
        let result = server.call("escape_config", json!({"key": key})).await;
        let expected = format!("no config value for {key}");
        assert_error(&result, &[&expected]);
        assert_eq!(text(&result), expected, "{key}: {result:?}");
    }
    let other = server.call("other_config", json!({"key": "private"})).await;
    assert_eq!(text(&other), "other's value", "{other:?}");
    let other = server
        .call("other_config", json!({"key": "greeting"}))
        .await;
    assert_error(&other, &["no config value for greeting"]);
}
