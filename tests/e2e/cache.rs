//! The compile cache holds native code the host runs: a folder others can write is refused,
//! a tampered artifact is discarded and recompiled (also for a plugin listed from its
//! remembered tools), and loads in parallel (in one host and across hosts) never clobber
//! each other's files.

use std::path::{Path, PathBuf};

use crate::support::Folder;

/// `capsule ARGS` on `folder` with its own cache folder `cache`.
async fn run(folder: &Folder, cache: &Path, args: &[&str]) -> (i32, String, String) {
    let mut command = folder.command(args);
    command.env("CAPSULE_CACHE_DIR", cache);
    let out = command.output().await.expect("run capsule");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The hex sha256 of a file, computed by `sha256sum`.
fn sha256_hex(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The files in `dir`, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[cfg(unix)]
#[tokio::test]
async fn a_cache_folder_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let folder = Folder::new(&[("fixtures/echo.wasm", "echo.wasm")], "");
    let parent = tempfile::tempdir().unwrap();
    let cache = parent.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o775)).unwrap();
    let (code, stdout, stderr) = run(&folder, &cache, &["check"]).await;
    assert_eq!(code, 2, "{stdout}");
    let cache = cache.canonicalize().unwrap();
    assert_eq!(
        stderr.trim_end(),
        format!(
            "error: cache folder {0} is writable by group (mode 775): precompiled plugins are native code the host runs, so only its owner may write there; run `chmod 700 {0}` or choose another folder with cache-dir / --cache-dir / CAPSULE_CACHE_DIR (or run with --no-cache)",
            cache.display()
        )
    );
    assert!(files(&cache).is_empty(), "nothing was written there");

    let fresh = parent.path().join("fresh/cache");
    let (code, stdout, _) = run(&folder, &fresh, &["check"]).await;
    assert_eq!(code, 0, "{stdout}");
    let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "a new cache folder is private");
}

#[tokio::test]
async fn a_tampered_artifact_is_discarded_and_recompiled() {
    let folder = Folder::new(&[("fixtures/echo.wasm", "echo.wasm")], "");
    let cache = tempfile::tempdir().unwrap();
    let (code, stdout, _) = run(&folder, cache.path(), &["check"]).await;
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains(", compiled)"), "{stdout}");
    let artifacts = files(cache.path());
    assert_eq!(
        artifacts.len(),
        3,
        "the artifact, its record and its remembered tools: {artifacts:?}"
    );
    assert_eq!(artifacts[2].extension().unwrap(), "tools");
    let artifact = &artifacts[0];
    assert_eq!(artifact.extension().unwrap(), "cwasm");
    let wasm = sha256_hex(&crate::support::component("fixtures/echo.wasm"));
    assert_eq!(
        std::fs::read_to_string(&artifacts[1])
            .unwrap()
            .lines()
            .nth(1),
        Some(format!("wasm {wasm}").as_str()),
        "the record names the .wasm it came from"
    );
    let mut bytes = std::fs::read(artifact).unwrap();
    let middle = bytes.len() / 2;
    for byte in &mut bytes[middle..middle + 16] {
        *byte ^= 0xff;
    }
    std::fs::write(artifact, &bytes).unwrap();

    let (code, stdout, stderr) = run(
        &folder,
        cache.path(),
        &[
            "call",
            "echo_echo",
            "--args",
            r#"{"message":"still correct"}"#,
        ],
    )
    .await;
    assert_eq!((code, stdout.trim()), (0, "still correct"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "WARN discarding precompiled artifact: the digest of its bytes does not match the recorded one (corrupt or tampered with); recompiling artifact={}\n",
            artifact.canonicalize().unwrap().display()
        )),
        "{stderr}"
    );
    let (_, stdout, _) = run(&folder, cache.path(), &["check"]).await;
    assert!(
        stdout.contains("precompiled, from cache"),
        "the recompiled artifact was stored again: {stdout}"
    );
    assert_ne!(std::fs::read(artifact).unwrap(), bytes);
}

#[tokio::test]
async fn parallel_loads_do_not_clobber_each_other() {
    // Three copies of one component: one host compiles and stores the same artifact three
    // times at once, and two hosts do that at the same time.
    let folder = Folder::new(
        &[
            ("fixtures/echo.wasm", "a.wasm"),
            ("fixtures/echo.wasm", "b.wasm"),
            ("fixtures/echo.wasm", "c.wasm"),
        ],
        "",
    );
    let cache = tempfile::tempdir().unwrap();
    let (first, second) = tokio::join!(
        run(&folder, cache.path(), &["check"]),
        run(&folder, cache.path(), &["check"])
    );
    for (code, stdout, stderr) in [&first, &second] {
        assert_eq!(*code, 0, "{stdout}\n{stderr}");
        assert!(!stderr.contains("WARN"), "{stderr}");
    }
    let artifacts = files(cache.path());
    assert_eq!(
        artifacts.len(),
        3,
        "one artifact, its record and its remembered tools, no temporary files left: {artifacts:?}"
    );
    let (code, stdout, stderr) = run(&folder, cache.path(), &["check"]).await;
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(
        stdout.matches("precompiled, from cache").count(),
        3,
        "{stdout}\n{stderr}"
    );
    assert!(!stderr.contains("discarding"), "{stderr}");
}

#[tokio::test]
async fn a_listed_plugin_whose_artifact_was_tampered_with_is_recompiled_for_its_call() {
    let folder = Folder::new(&[("fixtures/echo.wasm", "echo.wasm")], "");
    let cache = tempfile::tempdir().unwrap();
    let serve = || {
        let mut command = folder.command(&["serve"]);
        command
            .env("CAPSULE_CACHE_DIR", cache.path())
            .env("CAPSULE_LOG", "info,capsule::loader=debug");
        crate::support::Server::start(command)
    };
    // The first start asks the plugin and remembers its tools and its file's digest; its
    // optimized code (compiled after the quick tier's) is the artifact.
    let first = serve().await;
    first.assert_echo_answers().await;
    first.wait_for_log("optimized code ready").await;
    drop(first);
    let artifact = files(cache.path())
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .expect("an artifact");
    let mut bytes = std::fs::read(&artifact).unwrap();
    let middle = bytes.len() / 2;
    for byte in &mut bytes[middle..middle + 16] {
        *byte ^= 0xff;
    }
    std::fs::write(&artifact, &bytes).unwrap();

    // The second lists it from memory; its code is checked when it loads, and recompiled.
    let server = serve().await;
    server.assert_echo_answers().await;
    let log = server.stderr();
    assert!(
        log.contains("listed plugin from its remembered tools"),
        "{log}"
    );
    assert!(
        log.contains("WARN discarding precompiled artifact: the digest of its bytes does not match the recorded one (corrupt or tampered with); recompiling"),
        "{log}"
    );
    // Recompiled by the quick tier for the call, then optimized and stored again.
    server.wait_for_log("optimized code ready").await;
    assert_ne!(std::fs::read(&artifact).unwrap(), bytes, "stored again");
}

#[tokio::test]
async fn a_remembered_digest_is_listed_by_cache_ls_and_collected_once_its_file_is_gone() {
    let folder = Folder::new(&[("fixtures/echo.wasm", "echo.wasm")], "");
    let cache = tempfile::tempdir().unwrap();
    // A digest is remembered only for a file older than a clock tick can hide (2 s).
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let mut command = folder.command(&["serve"]);
    command.env("CAPSULE_CACHE_DIR", cache.path());
    crate::support::Server::start(command)
        .await
        .assert_echo_answers()
        .await;
    let plugin = folder.plugins().join("echo.wasm");
    let digest = sha256_hex(&plugin);
    let (code, listed, stderr) = run(&folder, cache.path(), &["cache", "ls"]).await;
    assert_eq!(code, 0, "{stderr}");
    let line = listed
        .lines()
        .find(|l| l.starts_with("stamp"))
        .unwrap_or_else(|| panic!("a stamp entry:\n{listed}"));
    assert!(line.contains(&digest[..12]), "{line}");
    assert!(line.ends_with(&plugin.display().to_string()), "{line}");

    std::fs::remove_file(&plugin).unwrap();
    let (code, removed, stderr) =
        run(&folder, cache.path(), &["cache", "gc", "--grace", "0"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        removed.contains(&format!("removed stamp     sha256:{}", &digest[..12])),
        "{removed}"
    );
    assert!(
        files(&cache.path().join("stamps")).is_empty(),
        "the record is gone"
    );
}
