//! A plugins folder with broken files: each gets a clear error, the rest still serve,
//! and `capsule check` fails.

use crate::support::{Folder, Server, component};

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
/// "Large" is lowered to 512 KiB so that the 1.2 MB `text` example stands in for the 19 MB
/// Python one (the same path, a fraction of the compile time on a busy CI machine).
#[tokio::test]
async fn a_large_plugin_compiles_in_the_background_and_is_announced() {
    let folder = Folder::new(
        &[
            ("fixtures/echo.wasm", "echo.wasm"),
            ("plugins/text.wasm", "text.wasm"),
        ],
        "[server]\nbackground-compile-above = \"512KiB\"\n",
    );
    let cache = tempfile::tempdir().expect("temp dir");
    let mut command = folder.command(&["serve"]);
    command.env("CAPSULE_CACHE_DIR", cache.path());
    let started = std::time::Instant::now();
    let server = Server::start(command).await;
    let handshake = started.elapsed();
    // Compiling the 19 MB Python example takes 7-10 s on an idle 2-core machine, and the
    // old host answered only after that; the bound is generous for a loaded CI machine.
    assert!(
        handshake < std::time::Duration::from_secs(3),
        "the handshake took {handshake:?}: it waited for the compiler"
    );

    let names = |tools: Vec<rmcp::model::Tool>| -> Vec<String> {
        tools.into_iter().map(|t| t.name.to_string()).collect()
    };
    let first = names(server.client.list_all_tools().await.expect("tools/list"));
    assert!(first.contains(&"echo_echo".to_string()), "{first:?}");
    assert!(
        !first.iter().any(|n| n.starts_with("text_")),
        "text was listed before it compiled: {first:?}"
    );
    assert!(
        server
            .stderr()
            .contains("compiling in the background (precompile with `capsule check`)"),
        "{}",
        server.stderr()
    );

    server.recorder.wait_for_tools_changed(1).await;
    let after = names(server.client.list_all_tools().await.expect("tools/list"));
    assert!(after.contains(&"text_slugify".to_string()), "{after:?}");
    assert!(after.contains(&"echo_echo".to_string()), "{after:?}");
}
