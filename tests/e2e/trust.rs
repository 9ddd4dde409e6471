//! Sidecar trust: a sidecar policy is written by the plugin's author, so the grants it asks
//! for (files, network, environment, secrets) are withheld until the operator approves them
//! (`capsule approve`, a covering `[ceiling]`, or `trust-sidecars = true`), and its limits
//! can only lower the operator's. The hostile plugin is the `escape` fixture, whose sidecar
//! asks for a mount, a host, an environment variable and a secret.

use serde_json::json;

use crate::support::{Folder, Server, assert_error, echo_and_hostile, text};

/// The escape fixture with a greedy sidecar, a local HTTP server it asks to reach, a folder
/// it asks to mount, a secret and an environment variable it asks for.
struct Greedy {
    folder: Folder,
    data: tempfile::TempDir,
    port: u16,
}

const SECRET: &str = "s3cret-from-the-operator";
const ENV_VAR: &str = "CAPSULE_TEST_SIDECAR_ENV";

impl Greedy {
    async fn new(config: &str) -> Self {
        let data = tempfile::tempdir().unwrap();
        std::fs::write(data.path().join("hello.txt"), "hello from the host").unwrap();
        let (port, _) = crate::support::http_server(|_| "hello over http".to_string()).await;
        let config = format!("# the operator's notes\n[secrets]\ntoken = \"{SECRET}\"\n{config}");
        let folder = Folder::new(&[("fixtures/escape.wasm", "escape.wasm")], &config);
        std::fs::write(
            folder.plugins().join("escape.toml"),
            format!(
                "# asks for everything\nfs.mounts = [{{ host = \"{}\", guest = \"/data\" }}]\nnet.allow = [\"http://127.0.0.1:{port}\"]\nenv.pass = [\"{ENV_VAR}\"]\nsecrets = [\"token\"]\n",
                data.path().display()
            ),
        )
        .unwrap();
        Self { folder, data, port }
    }

    fn data(&self) -> String {
        self.data
            .path()
            .canonicalize()
            .unwrap()
            .display()
            .to_string()
    }

    fn sidecar(&self) -> String {
        self.folder
            .plugins()
            .join("escape.toml")
            .display()
            .to_string()
    }

    fn config(&self) -> std::path::PathBuf {
        self.folder.dir.path().join("capsule.toml")
    }

    /// What the sidecar asks for, as `check` words it.
    fn request(&self) -> String {
        format!(
            "fs /data -> {} (read-only), net http://127.0.0.1:{}, env {ENV_VAR}, secret token",
            self.data(),
            self.port
        )
    }

    async fn serve(&self) -> Server {
        let mut command = self.folder.command(&["serve"]);
        command.env(ENV_VAR, "from the host environment");
        Server::start(command).await
    }

    async fn run(&self, args: &[&str]) -> (i32, String, String) {
        let mut command = self.folder.command(args);
        command.env(ENV_VAR, "from the host environment");
        let out = command.output().await.expect("run capsule");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Every grant works.
    async fn assert_granted(&self, server: &Server) {
        let read = server
            .call("escape_read", json!({"path": "/data/hello.txt"}))
            .await;
        assert_eq!(text(&read), "hello from the host", "{read:?}");
        let url = format!("http://127.0.0.1:{}/", self.port);
        let fetched = server.call("escape_http_get", json!({"url": url})).await;
        assert_eq!(text(&fetched), "200 hello over http", "{fetched:?}");
        let env = server.call("escape_env", json!({"name": ENV_VAR})).await;
        assert_eq!(text(&env), "from the host environment", "{env:?}");
        let secret = server.call("escape_config", json!({"key": "token"})).await;
        assert_eq!(text(&secret), SECRET, "{secret:?}");
    }

    /// Every grant is denied with the error the plugin gets when nothing was granted.
    async fn assert_withheld(&self, server: &Server) {
        let read = server
            .call("escape_read", json!({"path": "/data/hello.txt"}))
            .await;
        assert_error(&read, &["No such file or directory"]);
        let url = format!("http://127.0.0.1:{}/", self.port);
        let fetched = server.call("escape_http_get", json!({"url": url})).await;
        assert_eq!(
            text(&fetched),
            "ErrorCode::HttpRequestDenied",
            "{fetched:?}"
        );
        assert_eq!(fetched.is_error, Some(true));
        let env = server.call("escape_env", json!({"name": ENV_VAR})).await;
        assert_eq!(text(&env), "environment variable not found", "{env:?}");
        let secret = server.call("escape_config", json!({"key": "token"})).await;
        assert_eq!(text(&secret), "no config value for token", "{secret:?}");
    }
}

#[tokio::test]
async fn sidecar_grants_are_withheld_until_capsule_approve_writes_them() {
    let greedy = Greedy::new("").await;
    let (code, stdout, stderr) = greedy.run(&["check"]).await;
    assert_eq!(
        code, 0,
        "withheld grants are a warning:\n{stdout}\n{stderr}"
    );
    let warning = format!(
        "warn   plugin `escape`: {} asks for {}; withheld until the operator approves them, so the plugin runs without files, network, environment or secrets. To approve, run `capsule approve escape` (copies the sidecar into [plugins.escape] in capsule.toml), cover them in [ceiling], or set trust-sidecars = true",
        greedy.sidecar(),
        greedy.request()
    );
    assert!(
        stdout.lines().any(|l| l == warning),
        "expected line:\n{warning}\nin:\n{stdout}"
    );
    let listed = format!(
        "withheld: {} (asked for by {}; approve with `capsule approve escape`)",
        greedy.request(),
        greedy.sidecar()
    );
    assert!(stdout.contains(&listed), "{stdout}");
    assert!(
        stdout.contains("grants: none (no files, network, environment or secrets)"),
        "{stdout}"
    );
    let (_, listing, _) = greedy.run(&["list"]).await;
    assert!(listing.contains(&listed), "{listing}");
    let (_, inspected, _) = greedy.run(&["inspect", "escape"]).await;
    assert!(
        inspected.contains(&format!("policy   {listed}")),
        "{inspected}"
    );

    let server = greedy.serve().await;
    greedy.assert_withheld(&server).await;
    drop(server);

    let before = std::fs::read_to_string(greedy.config()).unwrap();
    let (code, stdout, stderr) = greedy.run(&["approve", "escape"]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let section = format!(
        "[plugins.escape]\n# asks for everything\nfs.mounts = [{{ host = \"{}\", guest = \"/data\" }}]\nnet.allow = [\"http://127.0.0.1:{}\"]\nenv.pass = [\"{ENV_VAR}\"]\nsecrets = [\"token\"]\n",
        greedy.data(),
        greedy.port
    );
    assert_eq!(
        stdout,
        format!(
            "approved {}: wrote [plugins.escape] to {}:\n\n{}\n\n[plugins.escape] is now the plugin's whole grant; its sidecar is ignored from now on (edit the grant in {})\n",
            greedy.sidecar(),
            greedy.config().display(),
            section.trim_end(),
            greedy.config().display()
        )
    );
    let after = std::fs::read_to_string(greedy.config()).unwrap();
    assert_eq!(
        after,
        format!("{before}\n{section}"),
        "the rest of the file is kept as written"
    );

    let server = greedy.serve().await;
    greedy.assert_granted(&server).await;
    drop(server);

    let (code, _, stderr) = greedy.run(&["approve", "escape"]).await;
    assert_eq!(code, 2);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "error: {} already has [plugins.escape], which is the plugin's whole grant (its sidecar is ignored); edit that section, or remove it and run `capsule approve escape` again",
            greedy.config().display()
        )
    );
}

#[tokio::test]
async fn capsule_approve_refuses_plugins_without_a_sidecar_and_unknown_names() {
    let folder = Folder::new(
        &[
            ("fixtures/echo.wasm", "echo.wasm"),
            ("fixtures/escape.wasm", "escape.wasm"),
        ],
        "",
    );
    let (code, _, stderr) = folder.run(&["approve", "echo"]).await;
    assert_eq!(code, 2);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "error: plugin `echo` has no sidecar policy ({} does not exist), so there is nothing to approve; grant it what it needs under [plugins.echo] in the config file",
            folder.plugins().join("echo.toml").display()
        )
    );
    let (code, _, stderr) = folder.run(&["approve", "nope"]).await;
    assert_eq!(code, 2);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "error: no plugin named `nope` in {}; plugins there: echo, escape",
            folder.plugins().display()
        )
    );
    std::fs::write(
        folder.plugins().join("escape.toml"),
        "fs.mounts = [{ host = \"no-such-folder\", guest = \"/d\" }]\n",
    )
    .unwrap();
    let (code, _, stderr) = folder.run(&["approve", "escape"]).await;
    assert_eq!(code, 2);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "error: cannot approve plugin `escape`: invalid configuration in {0}: fs: mounts[0].host: {1} cannot be mounted: No such file or directory (os error 2); create it or fix the path",
            folder.plugins().join("escape.toml").display(),
            folder.plugins().join("no-such-folder").display()
        )
    );
    assert_eq!(
        std::fs::read_to_string(folder.dir.path().join("capsule.toml")).unwrap(),
        "",
        "nothing was written"
    );
}

#[tokio::test]
async fn grants_covered_by_the_ceiling_take_effect_and_one_uncovered_grant_withholds_all() {
    let probe = Greedy::new("").await;
    let covering = |secrets: &str| {
        format!(
            "[ceiling]\nmount-roots = [\"{}\"]\nhosts = [\"http://127.0.0.1:{}\"]\nenv = [\"{ENV_VAR}\"]\nsecrets = [{secrets}]\n",
            probe.data.path().parent().unwrap().display(),
            probe.port
        )
    };
    // Same data folder and port as `probe`, so the ceiling matches the sidecar.
    let write_config = |config: &str| {
        std::fs::write(
            probe.config(),
            format!("[secrets]\ntoken = \"{SECRET}\"\n{config}"),
        )
        .unwrap()
    };

    write_config(&covering("\"token\""));
    let (code, stdout, _) = probe.run(&["check"]).await;
    assert_eq!(code, 0, "{stdout}");
    assert!(!stdout.contains("withheld"), "{stdout}");
    let server = probe.serve().await;
    probe.assert_granted(&server).await;
    drop(server);

    write_config(&covering(""));
    let (_, stdout, _) = probe.run(&["check"]).await;
    assert!(
        stdout.contains(&format!("asks for {}; withheld", probe.request())),
        "{stdout}"
    );
    let server = probe.serve().await;
    probe.assert_withheld(&server).await;
}

#[tokio::test]
async fn trust_sidecars_gives_sidecars_their_grants() {
    let greedy = Greedy::new("").await;
    std::fs::write(
        greedy.config(),
        format!("trust-sidecars = true\n[secrets]\ntoken = \"{SECRET}\"\n"),
    )
    .unwrap();
    let (code, stdout, _) = greedy.run(&["check"]).await;
    assert_eq!(code, 0, "{stdout}");
    assert!(!stdout.contains("withheld"), "{stdout}");
    let server = greedy.serve().await;
    greedy.assert_granted(&server).await;
}

#[tokio::test]
async fn a_listed_plugin_ignores_its_sidecar_entirely() {
    let greedy = Greedy::new("[plugins.escape]\nconfig = { mode = \"operator\" }\n").await;
    let (code, stdout, _) = greedy.run(&["check"]).await;
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains(&format!(
            "warn   {} is ignored: [plugins.escape] in the config file wins",
            greedy.sidecar()
        )),
        "{stdout}"
    );
    let server = greedy.serve().await;
    greedy.assert_withheld(&server).await;
}

#[tokio::test]
async fn a_sidecar_cannot_raise_fuel_timeout_or_memory_even_when_trusted() {
    let folder = echo_and_hostile("");
    std::fs::write(
        folder.dir.path().join("capsule.toml"),
        "trust-sidecars = true\n[limits]\nfuel = 50_000_000\ntimeout = \"750ms\"\nmemory = \"32MiB\"\n",
    )
    .unwrap();
    let sidecar = folder.plugins().join("hostile.toml");
    std::fs::write(
        &sidecar,
        "[limits]\nfuel = 1_000_000_000_000\ntimeout = \"60m\"\nmemory = \"256MiB\"\n",
    )
    .unwrap();
    let (code, stdout, _) = folder.run(&["check"]).await;
    assert_eq!(code, 0, "{stdout}");
    for (key, asked, allowed) in [
        ("limits.fuel", "1000000000000", "50000000"),
        ("limits.timeout", "3600s", "750ms"),
        ("limits.memory", "256 MiB", "32 MiB"),
    ] {
        let line = format!(
            "warn   {}: {key} = {asked} is ignored: it is above the operator's {allowed}, and a sidecar may only lower limits; to raise it, set it under [plugins.hostile] in capsule.toml",
            sidecar.display()
        );
        assert!(
            stdout.lines().any(|l| l == line),
            "expected line:\n{line}\nin:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("limits: fuel 50000000, timeout 750ms, memory 32 MiB"),
        "{stdout}"
    );
    let server = folder.serve().await;
    for (tool, needles) in [
        ("hostile_spin", &["ran out of fuel", "50000000"][..]),
        ("hostile_sleep", &["time limit of 750ms"][..]),
        ("hostile_grow_memory", &["memory limit of 32 MiB"][..]),
    ] {
        assert_error(&server.call(tool, json!({})).await, needles);
    }
    server.assert_echo_answers().await;

    std::fs::write(&sidecar, "[limits]\ntimeout = \"200ms\"\n").unwrap();
    let (_, stdout, _) = folder.run(&["check"]).await;
    assert!(
        stdout.contains("limits: fuel 50000000, timeout 200ms, memory 32 MiB"),
        "a sidecar may lower limits: {stdout}"
    );
}
