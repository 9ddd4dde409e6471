//! The one-shot commands: `list`, `call`, exit codes and configuration precedence.

use serde_json::Value;

use crate::support::Folder;

fn echo_folder(config: &str) -> Folder {
    Folder::new(&[("fixtures/echo.wasm", "echo.wasm")], config)
}

#[tokio::test]
async fn list_prints_names_and_json_descriptors() {
    let folder = echo_folder("");
    let (code, stdout, _) = folder.run(&["list"]).await;
    assert_eq!(code, 0);
    assert!(
        stdout
            .lines()
            .any(|l| l.trim_start().starts_with("echo_echo ")),
        "{stdout}"
    );
    let (code, stdout, _) = folder.run(&["list", "--json"]).await;
    assert_eq!(code, 0);
    let tools: Vec<Value> = serde_json::from_str(&stdout).expect("list --json prints JSON");
    let echo = tools
        .iter()
        .find(|t| t["name"] == "echo_echo")
        .expect("echo_echo listed");
    assert_eq!(echo["inputSchema"]["type"], "object");
    assert!(echo["outputSchema"].is_object());
}

#[tokio::test]
async fn call_prints_the_result_and_sets_the_exit_code() {
    let folder = echo_folder("");
    let (code, stdout, _) = folder
        .run(&["call", "echo_echo", "--args", r#"{"message":"hi"}"#])
        .await;
    assert_eq!((code, stdout.trim()), (0, "hi"));

    let (code, stdout, _) = folder
        .run(&["call", "echo_add", "--args", r#"{"a":1,"b":2}"#, "--json"])
        .await;
    assert_eq!(code, 0);
    let result: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(result["structuredContent"]["sum"], 3.0);

    let (code, _, stderr) = folder
        .run(&["call", "echo_fail", "--args", r#"{"message":"nope"}"#])
        .await;
    assert_eq!(code, 1, "a tool error exits 1");
    assert!(stderr.contains("nope"), "{stderr}");

    let (code, _, stderr) = folder.run(&["call", "echo_missing"]).await;
    assert_eq!(code, 2, "an unknown tool exits 2");
    assert!(
        stderr.contains("unknown tool `echo_missing`") && stderr.contains("echo_echo"),
        "{stderr}"
    );

    let (code, _, stderr) = folder.run(&["call", "echo_echo", "--args", "[1,2"]).await;
    assert_eq!(code, 2);
    assert!(stderr.contains("--args must be a JSON object"), "{stderr}");
}

#[tokio::test]
async fn config_errors_name_the_file_line_and_key() {
    let folder = echo_folder("[limits]\nfuel = 10\nmemroy = \"1MiB\"\n");
    let (code, _, stderr) = folder.run(&["list"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("capsule.toml"), "{stderr}");
    assert!(stderr.contains("memroy"), "{stderr}");
    assert!(stderr.contains("line 3"), "{stderr}");
}

#[tokio::test]
async fn command_line_beats_environment_beats_file() {
    // The file points at a folder without plugins; the environment at the real one.
    let folder = echo_folder("plugins-dir = \"nowhere\"\n");
    let mut command = tokio::process::Command::new(crate::support::capsule_bin());
    command
        .args(["list", "--config"])
        .arg(folder.dir.path().join("capsule.toml"))
        .env("CAPSULE_PLUGINS", folder.plugins())
        .env("CAPSULE_NO_CACHE", "true");
    let out = command.output().await.unwrap();
    assert_eq!(out.status.code(), Some(0), "env beats file: {out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("echo_echo"),
        "env beats file: {out:?}"
    );

    let empty = folder.dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    command.arg("--plugins").arg(&empty);
    let out = command.output().await.unwrap();
    // An empty folder is not an error; a folder that failed to load would exit 2.
    assert_eq!(out.status.code(), Some(0), "CLI beats env: {out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "",
        "CLI beats env: no tools listed: {out:?}"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "no tools: {} has no loadable .wasm plugins\n",
            empty.display()
        ),
        "CLI beats env: {out:?}"
    );
}

#[tokio::test]
async fn inspect_shows_one_plugin_with_its_grants_and_schemas() {
    let folder = echo_folder("[plugins.echo.env]\nset = { MODE = \"x\" }\n");
    let (code, stdout, _) = folder.run(&["inspect", "echo"]).await;
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("plugin   echo"), "{stdout}");
    assert!(stdout.contains("policy   env: MODE"), "{stdout}");
    assert!(stdout.contains("\"inputSchema\""), "{stdout}");
    let (code, _, stderr) = folder.run(&["inspect", "nope"]).await;
    assert_eq!(code, 2);
    assert!(
        stderr.contains("no plugin named `nope`; loaded: echo"),
        "{stderr}"
    );
}
