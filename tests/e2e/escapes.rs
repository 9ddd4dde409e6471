//! Escapes a hostile plugin tries with the grants it was given: swapping a mounted folder
//! for a symlink, leaving symlinks that point out of its mount, reaching private addresses
//! through a listed host name, and claiming to be read-only while it can write.

use std::sync::atomic::Ordering;

use serde_json::json;

use crate::support::{Folder, NOT_PERMITTED, assert_error, text};

/// `parent/inner/hello.txt` (what a nested mount shows) and `secret/secret.txt` beside
/// `parent` (what no mount may show).
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("parent/inner")).unwrap();
        std::fs::write(dir.path().join("parent/inner/hello.txt"), "inside").unwrap();
        std::fs::create_dir(dir.path().join("secret")).unwrap();
        std::fs::write(dir.path().join("secret/secret.txt"), "outside").unwrap();
        Self { dir }
    }

    /// The canonical host path of `relative` (what error messages show).
    fn path(&self, relative: &str) -> String {
        self.dir
            .path()
            .canonicalize()
            .unwrap()
            .join(relative)
            .display()
            .to_string()
    }
}

#[tokio::test]
async fn a_mount_inside_a_read_write_mount_of_the_same_plugin_is_rejected_at_load() {
    let tree = Tree::new();
    let (parent, inner) = (tree.path("parent"), tree.path("parent/inner"));
    let config = format!(
        "[plugins.escape.fs]\nmounts = [\n  {{ host = \"{parent}\", guest = \"/rw\", mode = \"read-write\" }},\n  {{ host = \"{inner}\", guest = \"/inner\" }},\n]\n"
    );
    let folder = Folder::new(&[("fixtures/escape.wasm", "escape.wasm")], &config);
    let (code, stdout, _) = folder.run(&["check"]).await;
    assert_eq!(code, 1, "{stdout}");
    let line = format!(
        "error  invalid configuration in {}: plugins.escape.fs: mounts[0] (/rw -> {parent} (read-write)) and mounts[1] (/inner -> {inner} (read-only)) overlap: {inner} is inside {parent}, and a plugin that can write one could change what the other shows; mount only {parent} (its guest path reaches the inner folder too), or make both read-only",
        folder.dir.path().join("capsule.toml").display()
    );
    assert!(
        stdout.lines().any(|l| l == line),
        "expected line:\n{line}\nin:\n{stdout}"
    );
}

#[tokio::test]
async fn a_mounted_folder_swapped_for_a_symlink_after_load_is_not_followed() {
    // The attack: `escape` may write `parent`; `victim` mounts `parent/inner`. Moving
    // `inner` away and putting a symlink to `../secret` in its place used to make the
    // victim's next call open `secret` (each call reopened the mount by path).
    let tree = Tree::new();
    let config = format!(
        "[plugins.escape.fs]\nmounts = [{{ host = \"{}\", guest = \"/rw\", mode = \"read-write\" }}]\n\
         [plugins.victim.fs]\nmounts = [{{ host = \"{}\", guest = \"/inner\" }}]\n",
        tree.path("parent"),
        tree.path("parent/inner"),
    );
    let folder = Folder::new(
        &[
            ("fixtures/escape.wasm", "escape.wasm"),
            ("fixtures/escape.wasm", "victim.wasm"),
        ],
        &config,
    );
    let server = folder.serve().await;
    let before = server.call("victim_list", json!({"path": "/inner"})).await;
    assert_eq!(text(&before), "hello.txt", "{before:?}");
    let moved = server
        .call(
            "escape_rename",
            json!({"from": "/rw/inner", "to": "/rw/old"}),
        )
        .await;
    assert_eq!(text(&moved), "renamed", "{moved:?}");
    let linked = server
        .call(
            "escape_symlink",
            json!({"target": "../secret", "link": "/rw/inner"}),
        )
        .await;
    assert_error(&linked, &[NOT_PERMITTED]);
    // Whoever else can write `parent` on the host can still plant the symlink.
    std::os::unix::fs::symlink("../secret", tree.dir.path().join("parent/inner")).unwrap();
    let after = server.call("victim_list", json!({"path": "/inner"})).await;
    assert_eq!(
        text(&after),
        "hello.txt",
        "the mount must stay the folder opened at load: {after:?}"
    );
    let read = server
        .call("victim_read", json!({"path": "/inner/hello.txt"}))
        .await;
    assert_eq!(text(&read), "inside", "{read:?}");
}

#[tokio::test]
async fn symlinks_pointing_out_of_a_mount_are_refused_and_links_below_them_work() {
    let tree = Tree::new();
    let rw = tree.dir.path().join("parent");
    std::fs::create_dir(rw.join("sub")).unwrap();
    std::fs::write(rw.join("sub/data.txt"), "data").unwrap();
    let config = format!(
        "[plugins.escape.fs]\nmounts = [{{ host = \"{}\", guest = \"/rw\", mode = \"read-write\" }}]\n",
        rw.display()
    );
    let folder = Folder::new(&[("fixtures/escape.wasm", "escape.wasm")], &config);
    let server = folder.serve().await;
    for (target, link) in [
        ("/etc/passwd", "/rw/abs"),
        ("../secret/secret.txt", "/rw/up"),
        ("../../../../../../etc/passwd", "/rw/sub/far"),
        ("sub/../../secret", "/rw/down-and-up"),
        ("..", "/rw/sub/parent"),
    ] {
        let result = server
            .call("escape_symlink", json!({"target": target, "link": link}))
            .await;
        assert_error(&result, &[NOT_PERMITTED]);
        let on_host = rw.join(link.trim_start_matches("/rw/"));
        assert!(
            std::fs::symlink_metadata(&on_host).is_err(),
            "{link} -> {target} was created on the host"
        );
    }
    server
        .wait_for_log("denied symlink: it contains `..`; a plugin may only create links that point below the link's own folder")
        .await;
    server
        .wait_for_log("denied symlink: it is an absolute path")
        .await;

    for (target, link, expected) in [
        ("sub/data.txt", "/rw/link", "data"),
        ("data.txt", "/rw/sub/same-folder", "data"),
        ("./inner/hello.txt", "/rw/dot", "inside"),
    ] {
        let made = server
            .call("escape_symlink", json!({"target": target, "link": link}))
            .await;
        assert_eq!(
            text(&made),
            format!("linked {link} -> {target}"),
            "{made:?}"
        );
        let read = server.call("escape_read", json!({"path": link})).await;
        assert_eq!(text(&read), expected, "{read:?}");
    }
    assert_eq!(
        std::fs::read_link(rw.join("link")).unwrap(),
        std::path::Path::new("sub/data.txt")
    );
}

#[tokio::test]
async fn listed_names_that_resolve_to_private_addresses_are_refused() {
    let (port, hits) = crate::support::http_server(|_| "internal answer".to_string()).await;
    // Answers every connection with plain HTTP at once: a TLS client fails its handshake.
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls_port = plain.local_addr().unwrap().port();
    let tls_hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = tls_hits.clone();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut socket, _)) = plain.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    // `net.hosts` stands in for DNS: no real lookups in tests.
    let config = format!(
        "[plugins.escape.net]\n\
         allow = [\"http://evil.test:{port}\", \"http://metadata.test\", \"http://127.0.0.1:{port}\", \"https://127.0.0.1:{tls_port}\"]\n\
         allow-private = [\"http://internal.test:{port}\"]\n\
         hosts = {{ \"evil.test\" = \"127.0.0.1\", \"metadata.test\" = \"169.254.169.254\", \"internal.test\" = \"127.0.0.1\" }}\n\
         timeout = \"5s\"\n"
    );
    let folder = Folder::new(&[("fixtures/escape.wasm", "escape.wasm")], &config);
    let server = folder.serve().await;
    for (url, address, range) in [
        (
            format!("http://evil.test:{port}/"),
            "127.0.0.1",
            "loopback (127.0.0.0/8)",
        ),
        (
            "http://metadata.test/latest/meta-data/".to_string(),
            "169.254.169.254",
            "link-local (169.254.0.0/16, cloud metadata)",
        ),
    ] {
        let refused = server.call("escape_http_get", json!({"url": url})).await;
        assert_error(&refused, &["DestinationIpProhibited"]);
        let host = url.split('/').nth(2).unwrap().split(':').next().unwrap();
        server
            .wait_for_log(&format!(
                "denied outgoing HTTP request: {host} resolves to {address}, a {range} address; list the host in net.allow-private to allow it"
            ))
            .await;
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing was contacted");

    let internal = server
        .call(
            "escape_http_get",
            json!({"url": format!("http://internal.test:{port}/")}),
        )
        .await;
    assert_eq!(text(&internal), "200 internal answer", "{internal:?}");
    let literal = server
        .call(
            "escape_http_get",
            json!({"url": format!("http://127.0.0.1:{port}/")}),
        )
        .await;
    assert_eq!(text(&literal), "200 internal answer", "{literal:?}");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    // https is spoken over the checked connection: a server without TLS fails the handshake.
    let tls = server
        .call(
            "escape_http_get",
            json!({"url": format!("https://127.0.0.1:{tls_port}/")}),
        )
        .await;
    assert_error(&tls, &["TlsProtocolError"]);
    assert_eq!(tls_hits.load(Ordering::SeqCst), 1);

    let (code, stdout, _) = folder.run(&["list"]).await;
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains(&format!(
            "http://internal.test:{port} (private addresses allowed)"
        )) && stdout.contains("evil.test = 127.0.0.1"),
        "{stdout}"
    );
}

#[tokio::test]
async fn grants_override_a_plugin_claiming_to_be_read_only_or_closed_world() {
    let tree = Tree::new();
    let hints = |folder: Folder| async move {
        let server = folder.serve().await;
        let tools = server.client.list_all_tools().await.unwrap();
        let read = tools.iter().find(|t| t.name == "escape_read").unwrap();
        let a = read.annotations.clone().unwrap();
        (a.read_only_hint, a.destructive_hint, a.open_world_hint)
    };
    let ungranted = Folder::new(&[("fixtures/escape.wasm", "escape.wasm")], "");
    assert_eq!(
        hints(ungranted).await,
        (Some(true), None, None),
        "without grants the plugin's own hints stand"
    );
    let config = format!(
        "[plugins.escape]\nfs.mounts = [{{ host = \"{}\", guest = \"/rw\", mode = \"read-write\" }}]\nnet.allow = [\"api.example.com\"]\n",
        tree.path("parent")
    );
    let granted = Folder::new(&[("fixtures/escape.wasm", "escape.wasm")], &config);
    assert_eq!(
        hints(granted).await,
        (Some(false), Some(true), Some(true)),
        "`read` says read_only = true, but the plugin can write files and reach the network"
    );
    let tcp_only = Folder::new(
        &[("fixtures/escape.wasm", "escape.wasm")],
        "[plugins.escape.net]\ntcp = [\"127.0.0.1:5432\"]\n",
    );
    assert_eq!(hints(tcp_only).await, (Some(true), None, Some(true)));
}
