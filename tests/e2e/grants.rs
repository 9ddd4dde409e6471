//! Capability grants: files, environment, secrets and network are denied unless a
//! plugin's policy grants them, and a grant gives exactly what it says.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{
    Folder, LOOKUP_DENIED, NOT_FOUND, NOT_PERMITTED, TCP_DENIED, assert_error, text,
};

/// A folder with a file to mount, and a file outside it that must stay unreachable.
struct Data {
    dir: tempfile::TempDir,
}

impl Data {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("shared")).unwrap();
        std::fs::write(dir.path().join("shared/hello.txt"), "hello from the host").unwrap();
        std::fs::write(dir.path().join("private.txt"), "outside the mount").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(
            dir.path().join("private.txt"),
            dir.path().join("shared/link.txt"),
        )
        .unwrap();
        Self { dir }
    }

    fn shared(&self) -> String {
        self.dir.path().join("shared").display().to_string()
    }
}

fn echo_with(config: &str) -> Folder {
    Folder::new(&[("fixtures/echo.wasm", "echo.wasm")], config)
}

#[tokio::test]
async fn a_read_only_mount_gives_exactly_its_folder() {
    let data = Data::new();
    let config = format!(
        "[[plugins.echo.fs.mounts]]\nhost = \"{}\"\nguest = \"/data\"\n",
        data.shared()
    );
    let folder = echo_with(&config);
    let server = folder.serve().await;
    let read = server
        .call("echo_read_file", json!({"path": "/data/hello.txt"}))
        .await;
    assert_eq!(text(&read), "hello from the host", "{read:?}");
    for (escape, denial) in [
        // Nothing is mounted at `/`: the path does not exist for the plugin.
        ("/etc/passwd", NOT_FOUND),
        ("/data/../private.txt", NOT_PERMITTED),
        ("/data/../../etc/passwd", NOT_PERMITTED),
        ("/data/link.txt", NOT_PERMITTED),
    ] {
        let result = server.call("echo_read_file", json!({"path": escape})).await;
        assert_error(&result, &[denial]);
        assert!(
            !text(&result).contains("outside the mount"),
            "{escape} escaped: {result:?}"
        );
    }
}

#[tokio::test]
async fn environment_variables_are_only_the_listed_ones() {
    let config = "[plugins.echo.env]\npass = [\"CAPSULE_TEST_PASSED\", \"CAPSULE_TEST_UNSET\"]\nset = { MODE = \"test\" }\n";
    let folder = echo_with(config);
    let mut command = folder.command(&[
        "call",
        "echo_env",
        "--args",
        r#"{"name":"CAPSULE_TEST_PASSED"}"#,
    ]);
    command
        .env("CAPSULE_TEST_PASSED", "from the host")
        .env("CAPSULE_TEST_HIDDEN", "nope");
    let out = command.output().await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "from the host",
        "{out:?}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("CAPSULE_TEST_UNSET is not set"),
        "{out:?}"
    );

    let (code, stdout, _) = folder
        .run(&["call", "echo_env", "--args", r#"{"name":"MODE"}"#])
        .await;
    assert_eq!((code, stdout.trim()), (0, "test"));
    let mut command = folder.command(&[
        "call",
        "echo_env",
        "--args",
        r#"{"name":"CAPSULE_TEST_HIDDEN"}"#,
    ]);
    command.env("CAPSULE_TEST_HIDDEN", "nope");
    let out = command.output().await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "an unlisted variable is not visible: {out:?}"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).lines().last(),
        Some("environment variable not found"),
        "{out:?}"
    );
}

#[tokio::test]
async fn secrets_reach_only_the_plugin_that_names_them_and_are_never_logged() {
    let folder = Folder::new(
        &[
            ("fixtures/echo.wasm", "echo.wasm"),
            ("fixtures/echo.wasm", "other.wasm"),
        ],
        "[secrets]\napi-token = \"Bearer ${CAPSULE_TEST_SECRET}\"\n[plugins.echo]\nsecrets = [\"api-token\"]\n",
    );
    let secret = "sk-live-9f8e7d";
    let mut command = folder.command(&["serve", "--log-level", "trace"]);
    command.env("CAPSULE_TEST_SECRET", secret);
    let server = crate::support::Server::start(command).await;
    let granted = server
        .call("echo_config", json!({"key": "api-token"}))
        .await;
    assert_eq!(text(&granted), format!("Bearer {secret}"));
    let other = server
        .call("other_config", json!({"key": "api-token"}))
        .await;
    assert_error(&other, &["no config value for api-token"]);
    server.assert_echo_answers().await;
    assert!(
        !server.stderr().contains(secret),
        "the secret leaked into the log"
    );

    let mut list = folder.command(&["list"]);
    list.env("CAPSULE_TEST_SECRET", secret);
    let out = list.output().await.unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains("secrets: api-token") && !listing.contains(secret),
        "{listing}"
    );
}

async fn http_server(body: &'static str) -> (u16, Arc<AtomicUsize>) {
    crate::support::http_server(move |_| body.to_string()).await
}

#[tokio::test]
async fn http_goes_only_to_allowed_hosts_and_ports() {
    let (allowed, allowed_hits) = http_server("hello from 127.0.0.1").await;
    let (other, other_hits) = http_server("must not be reached").await;
    let config =
        format!("[plugins.echo.net]\nallow = [\"http://127.0.0.1:{allowed}\"]\ntimeout = \"5s\"\n");
    let folder = echo_with(&config);
    let server = folder.serve().await;
    let ok = server
        .call(
            "echo_fetch",
            json!({"url": format!("http://127.0.0.1:{allowed}/x?y=1")}),
        )
        .await;
    assert_eq!(text(&ok), "200 hello from 127.0.0.1", "{ok:?}");
    for denied in [
        format!("http://127.0.0.1:{other}/"),
        format!("http://localhost:{allowed}/"),
        format!("https://127.0.0.1:{allowed}/"),
        "http://10.0.0.1/".to_string(),
    ] {
        let result = server.call("echo_fetch", json!({"url": denied})).await;
        assert_error(&result, &["HttpRequestDenied"]);
    }
    assert_eq!(
        allowed_hits.load(Ordering::SeqCst),
        1,
        "only the allowed request connected"
    );
    assert_eq!(
        other_hits.load(Ordering::SeqCst),
        0,
        "the other port was never contacted"
    );
    server
        .wait_for_log("not in this plugin's net.allow list")
        .await;
}

#[tokio::test]
async fn responses_over_the_size_limit_are_cut_off() {
    let (port, _) = http_server("0123456789abcdefghijklmnopqrstuvwxyz").await;
    let config =
        format!("[plugins.echo.net]\nallow = [\"http://127.0.0.1:{port}\"]\nmax-response = 16\n");
    let folder = echo_with(&config);
    let server = folder.serve().await;
    let result = server
        .call(
            "echo_fetch",
            json!({"url": format!("http://127.0.0.1:{port}/")}),
        )
        .await;
    assert_error(
        &result,
        &["reading the body failed: HTTP response body size exceeds limit: 16 bytes"],
    );
    assert!(
        !text(&result).contains("qrstuvwxyz"),
        "the body went past 16 bytes: {result:?}"
    );
}

#[tokio::test]
async fn profiles_are_shared_and_grants_show_up_in_list_and_annotations() {
    let data = Data::new();
    let config = format!(
        "[profiles.shared-data]\nfs.mounts = [{{ host = \"{}\", guest = \"/data\", mode = \"read-write\" }}]\n\
         net.allow = [\"api.example.com\"]\n\
         [plugins.echo]\nprofiles = [\"shared-data\"]\n[plugins.hostile]\nprofiles = [\"shared-data\"]\n",
        data.shared()
    );
    let folder = Folder::new(
        &[
            ("fixtures/echo.wasm", "echo.wasm"),
            ("fixtures/hostile.wasm", "hostile.wasm"),
        ],
        &config,
    );
    let (code, stdout, stderr) = folder.run(&["list"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("profiles: shared-data"), "{stdout}");
    assert!(
        stdout.contains("fs: /data -> ") && stdout.contains("(read-write)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("net: https://api.example.com:443"),
        "{stdout}"
    );

    let server = folder.serve().await;
    let read = server
        .call("echo_read_file", json!({"path": "/data/hello.txt"}))
        .await;
    assert_eq!(text(&read), "hello from the host");
    let tools = server.client.list_all_tools().await.unwrap();
    let hostile = tools.iter().find(|t| t.name == "hostile_ok").unwrap();
    let hints = hostile
        .annotations
        .as_ref()
        .expect("derived from the grants");
    assert_eq!(hints.open_world_hint, Some(true));
    assert_eq!(hints.destructive_hint, Some(true));
    assert_eq!(hints.read_only_hint, Some(false));
    let echo = tools.iter().find(|t| t.name == "echo_echo").unwrap();
    assert_eq!(
        echo.annotations.as_ref().unwrap().read_only_hint,
        Some(false),
        "a plugin that can write is not read-only, whatever it states"
    );
}

#[tokio::test]
async fn policy_errors_name_the_plugin_key_and_fix() {
    let cases = [
        (
            "[plugins.echo.fs]\nmounts = [{ host = \"/no/such/folder\", guest = \"/d\" }]\n",
            "plugins.echo.fs: mounts[0].host: /no/such/folder cannot be mounted: No such file or directory (os error 2); create it or fix the path",
        ),
        (
            "[plugins.echo.net]\nallow = [\"https://api.example.com/v1\"]\n",
            "plugins.echo.net: invalid host pattern `https://api.example.com/v1`: give a host, not a URL with a path or user; write e.g. \"api.example.com\", \"*.example.com\", \"api.example.com:8443\" or \"http://127.0.0.1:8080\"",
        ),
        (
            "[plugins.echo]\nsecrets = [\"missing\"]\n",
            "plugins.echo.secrets: no secret named `missing`; define it under [secrets] (defined: none)",
        ),
        (
            "[secrets]\nk = \"${CAPSULE_TEST_NEVER_SET}\"\n[plugins.echo]\nsecrets = [\"k\"]\n",
            "plugins.echo.secrets: secrets.k: environment variable CAPSULE_TEST_NEVER_SET is not set; export it or define the secret another way",
        ),
        (
            "[ceiling]\ntimeout = \"5s\"\n[limits]\ntimeout = \"1s\"\n[plugins.echo.limits]\ntimeout = \"1m\"\n",
            "plugins.echo.limits: limits.timeout = 60s exceeds the ceiling of 5s set in [ceiling]; lower it or raise the ceiling",
        ),
        (
            "[plugins.echo]\nprofiles = [\"nope\"]\n",
            "plugins.echo.profiles: no profile named `nope`; define [profiles.nope] (defined: none)",
        ),
        (
            "[plugins.echo.limits]\nmemory = \"1GiB\"\n",
            "plugins.echo.limits: limits.memory = 1 GiB exceeds the runtime memory ceiling of 512 MiB; lower it or raise runtime.memory-ceiling",
        ),
    ];
    for (config, expected) in cases {
        // A bad policy keeps only its plugin from loading; the others still serve.
        let folder = Folder::new(
            &[
                ("fixtures/echo.wasm", "echo.wasm"),
                ("fixtures/hostile.wasm", "hostile.wasm"),
            ],
            config,
        );
        let (code, stdout, _) = folder.run(&["check"]).await;
        assert_eq!(code, 1, "{stdout}");
        let path = folder.dir.path().join("capsule.toml");
        let line = format!(
            "error  invalid configuration in {}: {expected}",
            path.display()
        );
        assert!(
            stdout.lines().any(|l| l == line),
            "expected line:\n{line}\nin:\n{stdout}"
        );
        assert!(stdout.contains("ok     hostile"), "{stdout}");
        let (code, stdout, _) = folder.run(&["call", "hostile_ok"]).await;
        assert_eq!((code, stdout.trim()), (0, "still here"));
    }
    let folder = echo_with("[plugins.echo.fs]\nmount = []\n");
    let (code, _, stderr) = folder.run(&["check"]).await;
    assert_eq!(code, 2);
    assert!(
        stderr.contains("unknown field `mount`") && stderr.contains("line 2"),
        "{stderr}"
    );
}

#[tokio::test]
async fn read_only_mounts_cannot_be_written_and_read_write_ones_can() {
    let data = Data::new();
    let writable = tempfile::tempdir().unwrap();
    let config = format!(
        "[plugins.echo.fs]\nmounts = [\n  {{ host = \"{}\", guest = \"/data\" }},\n  {{ host = \"{}\", guest = \"/out\", mode = \"read-write\" }},\n]\n",
        data.shared(),
        writable.path().display()
    );
    let folder = echo_with(&config);
    let server = folder.serve().await;
    for (path, what, denial) in [
        (
            "/data/hello.txt",
            "overwrite a read-only file",
            NOT_PERMITTED,
        ),
        (
            "/data/new.txt",
            "create in a read-only mount",
            NOT_PERMITTED,
        ),
        (
            "/out/../escaped.txt",
            "`..` out of a writable mount",
            NOT_PERMITTED,
        ),
        ("/tmp/anywhere.txt", "outside every mount", NOT_FOUND),
    ] {
        let result = server
            .call("echo_write_file", json!({"path": path, "content": "pwned"}))
            .await;
        assert_error(&result, &[denial]);
        assert!(!text(&result).contains("written"), "{what}: {result:?}");
    }
    assert_eq!(
        std::fs::read_to_string(data.dir.path().join("shared/hello.txt")).unwrap(),
        "hello from the host"
    );
    assert!(!data.dir.path().join("shared/new.txt").exists());
    assert!(
        !writable
            .path()
            .parent()
            .unwrap()
            .join("escaped.txt")
            .exists()
    );

    let ok = server
        .call(
            "echo_write_file",
            json!({"path": "/out/result.txt", "content": "fine"}),
        )
        .await;
    assert_eq!(text(&ok), "written", "{ok:?}");
    assert_eq!(
        std::fs::read_to_string(writable.path().join("result.txt")).unwrap(),
        "fine"
    );
}

/// A TCP server that answers one line with `pong` and counts connections.
async fn line_server() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(b"pong\n").await;
            });
        }
    });
    (addr, hits)
}

#[tokio::test]
async fn raw_tcp_goes_only_to_listed_addresses() {
    let (allowed, allowed_hits) = line_server().await;
    let (other, other_hits) = line_server().await;
    let denied_by_default = echo_with("");
    let server = denied_by_default.serve().await;
    assert_error(
        &server
            .call("echo_tcp_connect", json!({"addr": allowed.to_string()}))
            .await,
        &[TCP_DENIED],
    );
    drop(server);

    let folder = echo_with(&format!("[plugins.echo.net]\ntcp = [\"{allowed}\"]\n"));
    let server = folder.serve().await;
    let ok = server
        .call("echo_tcp_connect", json!({"addr": allowed.to_string()}))
        .await;
    assert_eq!(text(&ok), "pong", "{ok:?}");
    assert_error(
        &server
            .call("echo_tcp_connect", json!({"addr": other.to_string()}))
            .await,
        &[TCP_DENIED],
    );
    server
        .wait_for_log("not in this plugin's net.tcp list")
        .await;
    assert_eq!(allowed_hits.load(Ordering::SeqCst), 1);
    assert_eq!(
        other_hits.load(Ordering::SeqCst),
        0,
        "the unlisted address was never contacted"
    );
}

#[tokio::test]
async fn a_sidecar_policy_next_to_the_wasm_is_used_unless_the_config_file_has_one() {
    let data = Data::new();
    // Its mount is a grant, so it needs the operator's approval (see trust.rs).
    let folder = echo_with("trust-sidecars = true\n");
    let sidecar = folder.plugins().join("echo.toml");
    std::fs::write(
        &sidecar,
        format!("fs.mounts = [{{ host = \"{}\", guest = \"/data\" }}]\nconfig = {{ greeting = \"from the sidecar\" }}\n", data.shared()),
    )
    .unwrap();
    let (code, stdout, _) = folder
        .run(&[
            "call",
            "echo_read_file",
            "--args",
            r#"{"path":"/data/hello.txt"}"#,
        ])
        .await;
    assert_eq!((code, stdout.trim()), (0, "hello from the host"));

    std::fs::write(&sidecar, "fs.mount = []\n").unwrap();
    let (code, stdout, _) = folder.run(&["check"]).await;
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains(&format!("invalid config file {}", sidecar.display()))
            && stdout.contains("unknown field `mount`")
            && stdout.contains("line 1"),
        "{stdout}"
    );

    let both = echo_with("[plugins.echo.config]\ngreeting = \"from capsule.toml\"\n");
    std::fs::write(
        both.plugins().join("echo.toml"),
        "config = { greeting = \"from the sidecar\" }\n",
    )
    .unwrap();
    let (code, stdout, stderr) = both
        .run(&["call", "echo_config", "--args", r#"{"key":"greeting"}"#])
        .await;
    assert_eq!((code, stdout.trim()), (0, "from capsule.toml"));
    assert!(
        stderr.contains("echo.toml is ignored: [plugins.echo] in the config file wins"),
        "{stderr}"
    );
}

#[tokio::test]
async fn redirects_slow_servers_and_name_lookups_do_not_get_around_the_policy() {
    let (target, target_hits) = http_server("redirect target must not be reached").await;
    let (redirector, _) = crate::support::raw_http_server(move |_| {
        format!("HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:{target}/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
    })
    .await;
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket); // accept, never answer
        }
    });
    let config = format!(
        "[plugins.echo.net]\nallow = [\"http://127.0.0.1:{redirector}\", \"http://127.0.0.1:{silent_port}\"]\ntimeout = \"500ms\"\n"
    );
    let folder = echo_with(&config);
    let server = folder.serve().await;
    let redirected = server
        .call(
            "echo_fetch",
            json!({"url": format!("http://127.0.0.1:{redirector}/")}),
        )
        .await;
    assert!(
        text(&redirected).starts_with("302"),
        "the host does not follow redirects: {redirected:?}"
    );
    assert_eq!(target_hits.load(Ordering::SeqCst), 0);

    let started = std::time::Instant::now();
    let slow = server
        .call(
            "echo_fetch",
            json!({"url": format!("http://127.0.0.1:{silent_port}/")}),
        )
        .await;
    assert_error(&slow, &["Timeout"]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "net.timeout stopped the wait"
    );

    let lookup = server
        .call("echo_dns_lookup", json!({"host": "localhost"}))
        .await;
    assert_error(&lookup, &[LOOKUP_DENIED]);
}

#[tokio::test]
async fn secrets_can_come_from_a_secrets_file_whose_errors_never_quote_it() {
    let folder = echo_with("secrets-file = \"secrets.toml\"\n[plugins.echo]\nsecrets = [\"db\"]\n");
    let secrets = folder.dir.path().join("secrets.toml");
    std::fs::write(&secrets, "db = \"postgres://u:hunter2@db/app\"\n").unwrap();
    let (code, stdout, _) = folder
        .run(&["call", "echo_config", "--args", r#"{"key":"db"}"#])
        .await;
    assert_eq!((code, stdout.trim()), (0, "postgres://u:hunter2@db/app"));

    std::fs::write(&secrets, "db = hunter2-unquoted\n").unwrap();
    let (code, _, stderr) = folder.run(&["check"]).await;
    assert_eq!(code, 2);
    assert!(stderr.contains("secrets.toml: line 1:"), "{stderr}");
    assert!(
        !stderr.contains("hunter2"),
        "the error quoted the secrets file: {stderr}"
    );
}

#[tokio::test]
async fn symlinks_made_inside_a_writable_mount_cannot_be_followed_out_of_it() {
    let data = Data::new();
    let writable = tempfile::tempdir().unwrap();
    let config = format!(
        "[plugins.escape.fs]\nmounts = [{{ host = \"{}\", guest = \"/rw\", mode = \"read-write\" }}]\n",
        writable.path().display()
    );
    let folder = Folder::new(&[("fixtures/escape.wasm", "escape.wasm")], &config);
    let server = folder.serve().await;
    let private = data.dir.path().join("private.txt").display().to_string();
    let absolute = server
        .call(
            "escape_symlink",
            json!({"target": private, "link": "/rw/abs"}),
        )
        .await;
    assert_error(&absolute, &["Operation not permitted (os error 63)"]);
    // Relative targets that climb out are refused too, so host tools cannot follow them
    // (more in `escapes`).
    let up = server
        .call(
            "escape_symlink",
            json!({"target": "../../../../../../etc/passwd", "link": "/rw/up"}),
        )
        .await;
    assert_error(&up, &["Operation not permitted (os error 63)"]);
    for link in ["/rw/abs", "/rw/up"] {
        let read = server.call("escape_read", json!({"path": link})).await;
        assert_error(&read, &[NOT_FOUND]);
        assert!(
            !text(&read).contains("root:"),
            "{link} was followed out of the mount: {read:?}"
        );
    }
}
