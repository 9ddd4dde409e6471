//! Promotion: `capsule check --lock` writes `capsule.lock`; `--locked` (serve, check,
//! `CAPSULE_LOCKED`) refuses to run when anything differs from it, naming each difference.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::support::Folder;

const CONFIG: &str = "[secrets]\nTOKEN = \"s3cr3t-value\"\n\n[plugins.echo]\nnet.allow = [\"api.example.com\"]\nsecrets = [\"TOKEN\"]\nconfig = { mode = \"fast\" }\n";

/// echo (with a network grant, a secret and a setting) and hash (no grants), locked.
async fn locked_folder() -> Folder {
    let folder = Folder::new(
        &[
            ("fixtures/echo.wasm", "echo.wasm"),
            ("plugins/hash.wasm", "hash.wasm"),
        ],
        CONFIG,
    );
    let (code, stdout, stderr) = folder.run(&["check", "--lock"]).await;
    assert_eq!(code, 0, "check --lock failed:\n{stdout}\n{stderr}");
    folder
}

fn lock_text(folder: &Folder) -> String {
    std::fs::read_to_string(folder.dir.path().join("capsule.lock")).expect("capsule.lock written")
}

fn sha256_of(path: &Path) -> String {
    let bytes = std::fs::read(path).expect("read component");
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Runs `check --locked`, expects exit 2, and returns the difference lines (indented by two
/// spaces in the message) after checking the message's first and last lines.
async fn differences(folder: &Folder) -> Vec<String> {
    let (code, stdout, stderr) = folder.run(&["check", "--locked"]).await;
    assert_eq!(code, 2, "check --locked should refuse:\n{stdout}\n{stderr}");
    let lock = folder.dir.path().join("capsule.lock");
    let lines: Vec<&str> = stderr.lines().collect();
    let first = lines
        .iter()
        .position(|l| l.starts_with("error: refusing to run"))
        .unwrap_or_else(|| panic!("no refusal in:\n{stderr}"));
    let found: Vec<String> = lines[first + 1..]
        .iter()
        .take_while(|l| l.starts_with("  "))
        .map(|l| l[2..].to_string())
        .collect();
    let n = found.len();
    assert_eq!(
        lines[first],
        format!(
            "error: refusing to run: the plugins or the configuration differ from {} ({n} {}):",
            lock.display(),
            if n == 1 { "difference" } else { "differences" }
        )
    );
    assert_eq!(
        lines[first + 1 + n],
        "review the change, then run `capsule check --lock` to accept it"
    );
    found
}

#[tokio::test]
async fn the_lock_records_digests_grants_limits_and_tools_and_is_deterministic() {
    let folder = locked_folder().await;
    let first = lock_text(&folder);
    let echo_digest = sha256_of(&folder.plugins().join("echo.wasm"));
    for expected in [
        "version = 1\n",
        &format!("capsule = \"{}\"\n", env!("CARGO_PKG_VERSION")),
        "[plugins.echo]\nfile = \"echo.wasm\"\n",
        &format!("sha256 = \"{echo_digest}\"\n"),
        "grants = [\n    \"net https://api.example.com:443\",\n    \"secret TOKEN\",\n]\n",
        "fuel = \"2000000000\"\n",
        "memory = \"128 MiB\"\n",
        "\"net.timeout\" = \"10s\"\n",
        "[plugins.echo.settings]\nmode = \"fast\"\n",
        "[plugins.hash]\nfile = \"hash.wasm\"\n",
        "\"runtime.max-concurrent-calls\" = \"64\"\n",
        "secrets = \"TOKEN\"\n",
    ] {
        assert!(
            first.contains(expected),
            "{expected:?} missing from:\n{first}"
        );
    }
    assert!(
        first.contains("echo_echo = \"sha256:"),
        "tool digests missing:\n{first}"
    );
    assert!(
        !first.contains("s3cr3t-value"),
        "a secret's value leaked into the lock:\n{first}"
    );
    let (code, stdout, _) = folder.run(&["check", "--lock"]).await;
    assert_eq!(code, 0);
    assert!(
        stdout.contains(&format!(
            "wrote {} (2 plugins, ",
            folder.dir.path().join("capsule.lock").display()
        )),
        "{stdout}"
    );
    assert_eq!(
        lock_text(&folder),
        first,
        "a second check --lock changed the file"
    );
}

#[tokio::test]
async fn an_unchanged_setup_passes_check_and_serve_locked() {
    let folder = locked_folder().await;
    let (code, stdout, stderr) = folder.run(&["check", "--locked"]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let server = crate::support::Server::start(folder.command(&["serve", "--locked"])).await;
    let tools = server.client.list_all_tools().await.expect("tools/list");
    assert!(tools.iter().any(|t| t.name == "hash_hash"), "{tools:?}");
    let mut by_env = folder.command(&["serve"]);
    by_env.env("CAPSULE_LOCKED", "true");
    let server = crate::support::Server::start(by_env).await;
    assert!(!server.client.list_all_tools().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_replaced_wasm_is_named_with_both_digests_and_its_tools() {
    let folder = locked_folder().await;
    let was = sha256_of(&folder.plugins().join("hash.wasm"));
    std::fs::copy(
        crate::support::component("plugins/text.wasm"),
        folder.plugins().join("hash.wasm"),
    )
    .unwrap();
    let now = sha256_of(&folder.plugins().join("hash.wasm"));
    let found = differences(&folder).await;
    assert_eq!(
        found[0],
        format!("plugin `hash`: digest changed: was {was} now {now}")
    );
    assert!(
        found.contains(&"plugin `hash`: tool `hash_hash` removed".to_string()),
        "{found:#?}"
    );
    assert!(
        found.contains(&"plugin `hash`: tool `hash_slugify` added".to_string()),
        "{found:#?}"
    );
}

#[tokio::test]
async fn changed_grants_limits_settings_and_config_are_each_named() {
    let folder = locked_folder().await;
    let before = lock_text(&folder);
    let digest = |text: &str| {
        let at = text.find("[config]\ndigest = \"").unwrap() + 19;
        text[at..at + 71].to_string()
    };
    std::fs::write(
        folder.dir.path().join("capsule.toml"),
        "[runtime]\nmax-concurrent-calls = 8\n\n[secrets]\nTOKEN = \"s3cr3t-value\"\n\n[plugins.echo]\nnet.allow = [\"api.other.example\"]\nlimits.fuel = 5000000\nconfig = { mode = \"slow\" }\nisolation = \"reuse\"\nreuse-calls = 3\n",
    )
    .unwrap();
    let found = differences(&folder).await;
    let (code, _, _) = folder.run(&["check", "--lock"]).await;
    assert_eq!(code, 0);
    let after = lock_text(&folder);
    assert_eq!(
        found,
        [
            format!(
                "config digest changed: was {} now {}",
                digest(&before),
                digest(&after)
            ),
            "config: setting runtime.max-calls-per-plugin changed: 32 → 4".to_string(),
            "config: setting runtime.max-concurrent-calls changed: 64 → 8".to_string(),
            "plugin `echo`: grant removed: net https://api.example.com:443".to_string(),
            "plugin `echo`: grant removed: secret TOKEN".to_string(),
            "plugin `echo`: grant added: net https://api.other.example:443".to_string(),
            "plugin `echo`: limit fuel changed: 2000000000 → 5000000".to_string(),
            // isolation = "reuse" is recorded by its bounds.
            "plugin `echo`: limit reuse-calls added: 3".to_string(),
            "plugin `echo`: limit reuse-idle added: 60s".to_string(),
            "plugin `echo`: setting mode changed: fast → slow".to_string(),
        ]
    );
}

#[tokio::test]
async fn added_removed_and_unloadable_plugins_are_named() {
    let folder = locked_folder().await;
    std::fs::remove_file(folder.plugins().join("hash.wasm")).unwrap();
    std::fs::copy(
        crate::support::component("plugins/json.wasm"),
        folder.plugins().join("json.wasm"),
    )
    .unwrap();
    let json_digest = sha256_of(&folder.plugins().join("json.wasm"));
    std::fs::write(folder.plugins().join("echo.wasm"), b"not a component").unwrap();
    let plugins = folder.plugins();
    let found = differences(&folder).await;
    assert_eq!(found.len(), 4, "{found:#?}");
    assert_eq!(
        found[0],
        format!(
            "plugin `echo` did not load (echo.wasm is in {}; its load error is listed below)",
            plugins.display()
        )
    );
    assert_eq!(
        found[1],
        format!(
            "plugin `hash` removed: hash.wasm is not in {}",
            plugins.display()
        )
    );
    assert_eq!(
        found[2],
        format!("plugin `json` added: json.wasm ({json_digest})")
    );
    assert!(
        found[3].starts_with(&format!(
            "load error: {}: ",
            plugins.join("echo.wasm").display()
        )),
        "{found:#?}"
    );
}

#[tokio::test]
async fn a_missing_lock_is_refused_with_how_to_write_it() {
    let folder = Folder::new(&[("fixtures/echo.wasm", "echo.wasm")], "");
    let (code, stdout, stderr) = folder.run(&["serve", "--locked"]).await;
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(
        stderr.ends_with(&format!(
            "error: no lock file at {}: run `capsule check --lock` to write it\n",
            folder.dir.path().join("capsule.lock").display()
        )),
        "{stderr}"
    );
}

#[tokio::test]
async fn check_lock_writes_nothing_when_a_plugin_fails() {
    let folder = Folder::new(&[("fixtures/echo.wasm", "echo.wasm")], "");
    folder.write_plugin("broken.wasm", b"not a component");
    let (code, stdout, _) = folder.run(&["check", "--lock"]).await;
    assert_eq!(code, 1, "{stdout}");
    let lock = folder.dir.path().join("capsule.lock");
    assert!(
        stdout.ends_with(&format!(
            "not writing {}: fix the errors above first\n",
            lock.display()
        )),
        "{stdout}"
    );
    assert!(!lock.exists());
}
