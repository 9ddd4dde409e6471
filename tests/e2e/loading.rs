//! Loading a plugins folder: broken files each get a clear error while the rest serve and
//! `capsule check` fails; compiled plugins are cached; large uncompiled ones load in the
//! background while the server already answers.

use reqwest::StatusCode;
use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::{Value, json};

use crate::http::HttpServer;
use crate::support::{Folder, HANG, Recorder, Server, capsule_bin, component, text};

/// The echo fixture plus one broken file of each kind.
fn folder_with_broken_files() -> Folder {
    let folder = Folder::new(
        &[
            ("fixtures/echo.wasm", "echo.wasm"),
            ("fixtures/wrong-world.wasm", "wrong-world.wasm"),
        ],
        "",
    );
    folder.write_plugin("garbage.wasm", b"this is not webassembly");
    folder.write_plugin("core.wasm", b"\0asm\x01\0\0\0");
    let echo = std::fs::read(component("fixtures/echo.wasm")).unwrap();
    folder.write_plugin("truncated.wasm", &echo[..echo.len() / 2]);
    folder
}

#[tokio::test]
async fn check_reports_every_broken_file_and_fails() {
    let folder = folder_with_broken_files();
    let (code, stdout, _) = folder.run(&["check"]).await;
    assert_eq!(code, 1, "check must fail:\n{stdout}");
    for expected in [
        "garbage.wasm: not a WebAssembly file",
        "core.wasm: this is a core WebAssembly module, not a component",
        "truncated.wasm: invalid component",
        "wrong-world.wasm: does not export `capsule:plugin/tools@0.1.0`",
        "ok     echo",
        "1 plugins",
        "4 errors",
    ] {
        assert!(
            stdout.contains(expected),
            "check output lacks {expected:?}:\n{stdout}"
        );
    }
}

#[tokio::test]
async fn broken_files_do_not_stop_the_others_from_serving() {
    let folder = folder_with_broken_files();
    let server = folder.serve().await;
    let tools = server.client.list_all_tools().await.expect("tools/list");
    assert!(
        tools.iter().all(|t| t.name.starts_with("echo_")),
        "{tools:?}"
    );
    server.assert_echo_answers().await;
    let log = server.stderr();
    assert!(log.contains("wrong-world.wasm: does not export"), "{log}");
    assert!(
        log.contains("garbage.wasm: not a WebAssembly file"),
        "{log}"
    );
}

#[tokio::test]
async fn check_passes_on_the_example_plugins() {
    let folder = Folder::new(
        &[
            ("plugins/text.wasm", "text.wasm"),
            ("plugins/json.wasm", "json.wasm"),
            ("plugins/hash.wasm", "hash.wasm"),
        ],
        "",
    );
    let (code, stdout, stderr) = folder.run(&["check"]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("3 plugins"), "{stdout}");
    assert!(stdout.contains("0 errors"), "{stdout}");
}

#[tokio::test]
async fn compiled_plugins_are_cached_across_restarts() {
    let folder = Folder::new(&[("fixtures/echo.wasm", "echo.wasm")], "");
    let cache = tempfile::tempdir().unwrap();
    let run = |_: ()| {
        let mut command = folder.command(&["check"]);
        command.env("CAPSULE_CACHE_DIR", cache.path());
        command
    };
    let first = run(()).output().await.unwrap();
    let second = run(()).output().await.unwrap();
    let first = String::from_utf8_lossy(&first.stdout);
    let second = String::from_utf8_lossy(&second.stdout);
    assert!(
        first.contains("tools, compiled)"),
        "first start compiles: {first}"
    );
    assert!(
        second.contains("from cache"),
        "second start loads the cache: {second}"
    );
}

/// With an empty cache, a large plugin compiles in the background (issue #19): the
/// handshake is answered at once, `tools/list` lists the small plugin without waiting for
/// the compiler, and `notifications/tools/list_changed` announces the large one's tools.
/// The large one is the 19 MB componentize-py example with the default settings: the old
/// host compiled it for 7-10 s before answering `initialize`, and Gemini CLI gave up.
#[tokio::test]
async fn a_python_plugin_compiles_in_the_background_and_is_announced() {
    let folder = Folder::new(
        &[
            ("fixtures/echo.wasm", "echo.wasm"),
            ("plugins/tables.wasm", "tables.wasm"),
        ],
        "",
    );
    let cache = tempfile::tempdir().expect("temp dir");
    let mut command = folder.command(&["serve"]);
    command
        .env("CAPSULE_CACHE_DIR", cache.path())
        .env_remove("CAPSULE_SERVER_BACKGROUND_COMPILE_ABOVE");
    let started = std::time::Instant::now();
    let server = Server::start(command).await;
    let handshake = started.elapsed();
    assert!(
        handshake < std::time::Duration::from_secs(1),
        "the handshake took {handshake:?}: it waited for the compiler"
    );

    let first = server.client.list_all_tools().await.expect("tools/list");
    let listed = started.elapsed();
    assert!(
        !first.iter().any(|t| t.name.starts_with("tables_")),
        "tables was listed before it compiled"
    );
    assert!(
        server
            .stderr()
            .contains("compiling in the background (precompile with `capsule check`)"),
        "{}",
        server.stderr()
    );
    let after = listed_after_changes(&server.client, &server.recorder, &["tables_", "echo_"]).await;
    assert!(after.iter().any(|n| n == "echo_echo"), "{after:?}");
    eprintln!("initialize after {handshake:?}, first tools/list after {listed:?}");

    // Tiered compilation (the default): tables was compiled by the baseline compiler and
    // answers at once; its optimized code follows in the background, is cached, and
    // serves the next calls.
    let markdown = |result: &rmcp::model::CallToolResult| {
        assert!(text(result).contains("|   1 |   2 |"), "{result:?}");
    };
    let arguments = json!({"csv": "a,b\n1,2"});
    assert!(
        server
            .stderr()
            .contains("cache=compiled quickly, optimizing in the background"),
        "{}",
        server.stderr()
    );
    markdown(
        &server
            .call("tables_csv_to_markdown", arguments.clone())
            .await,
    );
    let optimized = server
        .wait_for_log("optimized code ready; calls use it from now on plugin=tables")
        .await;
    assert!(optimized.contains("INFO"), "{optimized}");
    markdown(&server.call("tables_csv_to_markdown", arguments).await);
    use sha2::Digest;
    let tables = std::fs::read(component("plugins/tables.wasm")).expect("read tables.wasm");
    let digest = hex::encode(sha2::Sha256::digest(&tables));
    let artifacts: Vec<String> = std::fs::read_dir(cache.path())
        .expect("read the cache folder")
        .filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
        .collect();
    assert!(
        artifacts
            .iter()
            .any(|name| name.starts_with(&digest) && name.ends_with(".cwasm")),
        "the optimized code of tables ({digest}) is cached: {artifacts:?}"
    );
}

/// `runtime.compiler = "cranelift"`: no quick tier; a plugin that must be compiled is
/// served once its optimized code is compiled, and that code is cached at once.
#[tokio::test]
async fn with_the_cranelift_compiler_a_plugin_is_served_from_optimized_code_only() {
    let folder = Folder::new(&[("fixtures/echo.wasm", "echo.wasm")], "");
    let cache = tempfile::tempdir().expect("temp dir");
    let mut command = folder.command(&["serve"]);
    command
        .env("CAPSULE_CACHE_DIR", cache.path())
        .env("CAPSULE_RUNTIME_COMPILER", "cranelift");
    let server = Server::start(command).await;
    server.assert_echo_answers().await;
    let loaded = server.wait_for_log("loaded plugin plugin=echo").await;
    assert!(loaded.contains("cache=compiled"), "{loaded}");
    let artifacts = std::fs::read_dir(cache.path())
        .expect("read the cache folder")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".cwasm"))
        })
        .count();
    assert_eq!(
        artifacts, 1,
        "the optimized code is cached when the plugin is served"
    );
    let log = server.stderr();
    assert!(!log.contains("compiled quickly"), "{log}");
    assert!(!log.contains("optimized code ready"), "{log}");
}

/// Over HTTP the same: `/readyz` answers 503 `loading` while the 12 MB componentize-js
/// example compiles in the background, a session hears `tools/list_changed`, then
/// `/readyz` is 200 with both plugins.
#[tokio::test]
async fn over_http_readyz_waits_for_the_background_and_sessions_are_told() {
    let folder = Folder::new(
        &[
            ("fixtures/echo.wasm", "echo.wasm"),
            ("plugins/dates.wasm", "dates.wasm"),
        ],
        "",
    );
    let cache = tempfile::tempdir().expect("temp dir");
    let mut command = folder.command(&["serve", "--transport", "http", "--port", "0"]);
    command
        .env("CAPSULE_CACHE_DIR", cache.path())
        .env_remove("CAPSULE_SERVER_BACKGROUND_COMPILE_ABOVE");
    let server = HttpServer::spawn(command).await;
    let readyz = || async {
        let response = reqwest::get(format!("{}/readyz", server.base))
            .await
            .expect("GET /readyz");
        let status = response.status();
        (status, response.json::<Value>().await.expect("JSON body"))
    };
    // echo may or may not have loaded yet; dates has not.
    let (status, body) = readyz().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "loading", "{body}");
    assert!(
        matches!(body["plugins_loading"].as_u64(), Some(1 | 2)),
        "{body}"
    );

    let recorder = Recorder::default();
    let transport = StreamableHttpClientTransport::from_uri(server.url.clone());
    let client = tokio::time::timeout(HANG, recorder.clone().serve(transport))
        .await
        .expect("initialize in time")
        .expect("initialize over HTTP");
    let first = client.list_all_tools().await.expect("tools/list");
    assert!(
        !first.iter().any(|t| t.name.starts_with("dates_")),
        "dates was listed before it compiled"
    );
    let after = listed_after_changes(&client, &recorder, &["dates_", "echo_"]).await;
    // The registry is swapped just before the plugin is counted as loaded: poll briefly.
    let deadline = std::time::Instant::now() + HANG;
    while readyz().await.0 != StatusCode::OK && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        readyz().await,
        (
            StatusCode::OK,
            json!({"status": "ready", "plugins": 2, "tools": after.len()})
        )
    );
}

/// The tool names listed after each `tools/list_changed`, until each of `prefixes` starts
/// one of them (each plugin that loads in the background is announced on its own).
async fn listed_after_changes(
    client: &rmcp::service::Peer<rmcp::RoleClient>,
    recorder: &Recorder,
    prefixes: &[&str],
) -> Vec<String> {
    for changes in 1.. {
        recorder.wait_for_tools_changed(changes).await;
        let names: Vec<String> = client
            .list_all_tools()
            .await
            .expect("tools/list")
            .into_iter()
            .map(|t| t.name.to_string())
            .collect();
        if prefixes
            .iter()
            .all(|prefix| names.iter().any(|n| n.starts_with(prefix)))
        {
            return names;
        }
    }
    unreachable!("the loop only ends by returning")
}

/// The one remembered tool list in `cache` (`ARTIFACT.cwasm.tools`).
fn remembered_list(cache: &std::path::Path) -> std::path::PathBuf {
    let lists: Vec<_> = std::fs::read_dir(cache)
        .expect("read the cache folder")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "tools"))
        .collect();
    assert_eq!(lists.len(), 1, "one remembered list: {lists:?}");
    lists[0].clone()
}

/// `capsule serve` on `folder` with its own cache `cache` and the loader's debug lines.
async fn serve_with_cache(folder: &Folder, cache: &std::path::Path) -> Server {
    serve_with_cache_by(folder, cache, std::path::Path::new(capsule_bin())).await
}

/// [`serve_with_cache`] by the executable at `capsule`.
async fn serve_with_cache_by(
    folder: &Folder,
    cache: &std::path::Path,
    capsule: &std::path::Path,
) -> Server {
    let mut command = folder.command_of(capsule, &["serve"]);
    command
        .env("CAPSULE_CACHE_DIR", cache)
        .env("CAPSULE_LOG", "info,capsule::loader=debug");
    Server::start(command).await
}

/// The description `tools/list` gives `tool`.
async fn description(server: &Server, tool: &str) -> String {
    let tools = server.client.list_all_tools().await.expect("tools/list");
    let listed = tools
        .iter()
        .find(|t| t.name == tool)
        .unwrap_or_else(|| panic!("{tool} is listed"));
    listed.description.as_deref().unwrap_or_default().to_owned()
}

/// Whether `server`'s start listed a plugin from its remembered tools (its log says so).
fn listed_from_memory(server: &Server) -> bool {
    server
        .stderr()
        .contains("listed plugin from its remembered tools")
}

/// A folder serving the fixture `fixture` as `file`, served once with a cache of its own
/// until its optimized code was ready (so that cache holds what a restart lists from),
/// and the description that start gave `tool`.
async fn served_once(fixture: &str, file: &str, tool: &str) -> (Folder, tempfile::TempDir, String) {
    let folder = Folder::new(&[(fixture, file)], "");
    let cache = tempfile::tempdir().unwrap();
    let first = serve_with_cache(&folder, cache.path()).await;
    let asked = description(&first, tool).await;
    // Served from the quick tier first: the artifact a restart lists from is the
    // optimized code's.
    first.wait_for_log("optimized code ready").await;
    (folder, cache, asked)
}

#[tokio::test]
async fn a_restart_lists_remembered_tools_and_loads_the_code_for_the_first_call() {
    let (folder, cache, asked) = served_once("fixtures/echo.wasm", "echo.wasm", "echo_echo").await;

    // Change what is remembered, so a list that comes from it is told from one asked for.
    let list = remembered_list(cache.path());
    let mut remembered: Value =
        serde_json::from_slice(&std::fs::read(&list).unwrap()).expect("the list is JSON");
    for tool in remembered["tools"].as_array_mut().expect("tools") {
        if tool["name"] == "echo" {
            tool["description"] = json!("as remembered");
        }
    }
    std::fs::write(&list, serde_json::to_vec(&remembered).unwrap()).unwrap();

    let second = serve_with_cache(&folder, cache.path()).await;
    assert_eq!(description(&second, "echo_echo").await, "as remembered");
    // Its code was not loaded to list it; the call waits for it (or loads it).
    second.assert_echo_answers().await;
    assert!(listed_from_memory(&second), "{}", second.stderr());
    drop(second);

    // Another policy: the plugin is asked again.
    std::fs::write(
        folder.dir.path().join("capsule.toml"),
        "[plugins.echo.limits]\ntimeout = \"7s\"\n",
    )
    .unwrap();
    let third = serve_with_cache(&folder, cache.path()).await;
    assert_eq!(description(&third, "echo_echo").await, asked);
    third.assert_echo_answers().await;
    assert!(!listed_from_memory(&third), "{}", third.stderr());
    drop(third);

    // A new build (another digest): asked again, never the list of the old one.
    let mut rebuilt = std::fs::read(component("fixtures/echo.wasm")).unwrap();
    // A custom section at the end (id 0, size, name length, name, payload).
    rebuilt.extend_from_slice(&[0, 6, 5, b'b', b'u', b'i', b'l', b'd']);
    folder.write_plugin("echo.wasm", &rebuilt);
    std::fs::write(folder.dir.path().join("capsule.toml"), "").unwrap();
    let fourth = serve_with_cache(&folder, cache.path()).await;
    assert_eq!(description(&fourth, "echo_echo").await, asked);
    fourth.assert_echo_answers().await;
}

#[tokio::test]
async fn a_restart_lists_remembered_derived_tools_until_their_sidecar_wit_changes() {
    let (folder, cache, undocumented) =
        served_once("fixtures/rich.wasm", "rich.wasm", "rich_greet").await;
    assert_eq!(
        serde_json::from_slice::<Value>(&std::fs::read(remembered_list(cache.path())).unwrap())
            .expect("the list is JSON")["tools"]
            .as_array()
            .map(Vec::len),
        Some(8),
        "the 8 derived tools are remembered"
    );

    // Listed from memory; the first call loads the code and runs the function.
    let second = serve_with_cache(&folder, cache.path()).await;
    assert_eq!(description(&second, "rich_greet").await, undocumented);
    let greeting = second.call("rich_greet", json!({"name": "Ada"})).await;
    assert_eq!(text(&greeting), "hello, Ada");
    assert!(listed_from_memory(&second), "{}", second.stderr());
    drop(second);

    // A sidecar `.wit` documents the functions: derived again, never the old list.
    std::fs::write(
        folder.plugins().join("rich.wit"),
        "package example:rich@0.1.0;\n\nworld rich {\n  /// Greets by name.\n  export greet: func(name: string) -> string;\n}\n",
    )
    .unwrap();
    let third = serve_with_cache(&folder, cache.path()).await;
    assert_eq!(description(&third, "rich_greet").await, "Greets by name.");
    assert!(!listed_from_memory(&third), "{}", third.stderr());
    drop(third);

    // Now the documented list is remembered, and a restart lists it from memory.
    let fourth = serve_with_cache(&folder, cache.path()).await;
    assert_eq!(description(&fourth, "rich_greet").await, "Greets by name.");
    assert!(listed_from_memory(&fourth), "{}", fourth.stderr());
}

#[tokio::test]
async fn a_copy_of_the_host_lists_what_the_original_remembered() {
    let (folder, cache, asked) = served_once("fixtures/rich.wasm", "rich.wasm", "rich_greet").await;

    // A copy of the executable elsewhere, with other file times, as in a container image
    // whose cache `capsule check` filled at build time: the same build, so the same lists.
    let builds = tempfile::tempdir().unwrap();
    let copy = builds.path().join("capsule");
    std::fs::copy(capsule_bin(), &copy).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&copy)
        .and_then(|file| file.set_modified(std::time::SystemTime::now() + HANG))
        .unwrap();
    let copied = serve_with_cache_by(&folder, cache.path(), &copy).await;
    assert_eq!(description(&copied, "rich_greet").await, asked);
    assert!(listed_from_memory(&copied), "{}", copied.stderr());
    let greeting = copied.call("rich_greet", json!({"name": "Ada"})).await;
    assert_eq!(text(&greeting), "hello, Ada");
}
