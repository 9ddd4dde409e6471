//! Plugin distribution (docs/distribution.md): `oci://` and `https://` sources, sha256
//! pins, push/pull against a real OCI registry started on 127.0.0.1 (Debian's
//! `docker-registry`), tampered blobs, cosign signatures with keys generated here, the
//! lock's record of remote plugins and the cache's garbage collection.
//!
//! Without the `docker-registry` binary the registry tests say so and pass, except with
//! `CI=true`, where they fail (`cargo xtask test` installs it).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use capsule::distribution::Digest;
use capsule::distribution::cosign::SigningKey;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

use crate::support::{Folder, HANG, component, read_request_head, text};

/// A `docker-registry serve` of our own on a free loopback port, storing into a temp dir.
struct Registry {
    /// `127.0.0.1:PORT`.
    addr: String,
    storage: tempfile::TempDir,
    _child: Child,
}

impl Registry {
    /// Starts one, or `None` (outside CI only) when `docker-registry` is not installed.
    async fn start(test: &str) -> Option<Registry> {
        let Some(binary) = ["/usr/bin/docker-registry", "/usr/local/bin/docker-registry"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
        else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{test}: docker-registry is not installed; CI must install it (`cargo xtask test` does: apt-get install docker-registry)"
            );
            eprintln!(
                "SKIPPED {test}: docker-registry is not installed (apt-get install docker-registry); with CI=true this fails"
            );
            return None;
        };
        let storage = tempfile::tempdir().expect("registry storage");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = storage.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                storage.path().join("data").display()
            ),
        )
        .expect("registry config");
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start docker-registry");
        let registry = Registry {
            addr,
            storage,
            _child: child,
        };
        registry.wait_ready().await;
        Some(registry)
    }

    /// Waits until `GET /v2/` answers 200 (the registry is listening).
    async fn wait_ready(&self) {
        let url = format!("http://{}/v2/", self.addr);
        let ready = async {
            loop {
                if let Ok(response) = reqwest::get(&url).await
                    && response.status() == 200
                {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(HANG, ready)
            .await
            .expect("docker-registry never answered GET /v2/");
    }

    /// The blob file of `digest` in the registry's storage.
    fn blob(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.storage
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

fn digest_of(path: &Path) -> Digest {
    Digest::of(&std::fs::read(path).expect("read component"))
}

/// A folder with `files` in its plugins folder, `config`, and a cache of its own.
pub(crate) fn folder(files: &[(&str, &str)], config: &str) -> Folder {
    let folder = Folder::new(files, config);
    std::fs::create_dir(folder.dir.path().join("cache")).expect("cache dir");
    folder
}

/// `capsule ARGS --cache-dir FOLDER/cache`.
pub(crate) async fn run(folder: &Folder, args: &[&str]) -> (i32, String, String) {
    let cache = folder.dir.path().join("cache");
    let mut all: Vec<&str> = args.to_vec();
    let cache = cache.to_str().expect("utf-8 path");
    all.extend(["--cache-dir", cache]);
    folder.run(&all).await
}

/// `capsule push FILE oci://ADDR/REPO` (optionally signed), which must succeed.
async fn push(folder: &Folder, file: &Path, reference: &str, key: Option<&Path>) -> String {
    let file = file.to_str().expect("utf-8 path");
    let mut args = vec!["push", file, reference];
    if let Some(key) = key {
        args.extend(["--key", key.to_str().expect("utf-8 path")]);
    }
    let (code, stdout, stderr) = run(folder, &args).await;
    assert_eq!(code, 0, "push failed:\n{stdout}\n{stderr}");
    stdout
}

/// The value after `label` in push/pull output (`manifest sha256:…`).
fn field(output: &str, label: &str) -> String {
    output
        .lines()
        .find_map(|l| l.strip_prefix(label).map(str::trim))
        .unwrap_or_else(|| panic!("no `{label}` line in:\n{output}"))
        .to_string()
}

#[tokio::test]
async fn oci_push_then_pull_round_trips_and_a_source_serves_from_the_cache_offline() {
    let Some(registry) = Registry::start("oci round trip").await else {
        return;
    };
    let echo = component("fixtures/echo.wasm");
    let digest = digest_of(&echo);
    let reference = format!("oci://{}/tools/echo:1.0", registry.addr);
    let config = format!("[plugins.remote]\nsource = \"{reference}\"\nsha256 = \"{digest}\"\n");
    let folder = folder(&[], &config);

    let pushed = push(&folder, &echo, &reference, None).await;
    assert_eq!(field(&pushed, "sha256"), digest.to_string());
    let manifest = field(&pushed, "manifest");
    let (code, pulled, stderr) = run(&folder, &["pull", &reference]).await;
    assert_eq!(code, 0, "pull failed:\n{pulled}\n{stderr}");
    assert_eq!(field(&pulled, "sha256"), digest.to_string());
    assert_eq!(field(&pulled, "manifest"), manifest);
    assert!(
        pulled.contains(&format!(
            "source = \"oci://{}/tools/echo@{manifest}\"\nsha256 = \"{digest}\"",
            registry.addr
        )),
        "pull prints the pinned entry:\n{pulled}"
    );

    // Served through a real MCP client, with the registry gone: the pinned plugin comes
    // from the cache.
    drop(registry);
    let cache = folder.dir.path().join("cache");
    let mut serve = folder.command(&["serve"]);
    serve.arg("--cache-dir").arg(&cache);
    let server = crate::support::Server::start(serve).await;
    let result = server
        .call("remote_echo", json!({"message": "from a registry"}))
        .await;
    assert_eq!(text(&result), "from a registry");
}

/// A plugin named by a tag alone is pulled at every start. When the registry is gone, or
/// sends too slowly to finish within `[distribution] fetch-timeout`, the tag's last
/// recorded pull serves, with a warning that says why.
#[tokio::test]
async fn a_tag_is_served_from_its_last_pull_when_the_registry_is_gone_or_too_slow() {
    let Some(registry) = Registry::start("tag fallback").await else {
        return;
    };
    let addr = registry.addr.clone();
    let reference = format!("oci://{addr}/tools/echo:1.0");
    let config = format!(
        "[plugins.remote]\nsource = \"{reference}\"\n\n[distribution]\nfetch-timeout = \"1s\"\n"
    );
    let folder = folder(&[], &config);
    push(&folder, &component("fixtures/echo.wasm"), &reference, None).await;
    let (code, stdout, stderr) = run(&folder, &["check"]).await;
    assert_eq!(code, 0, "the first check pulls:\n{stdout}\n{stderr}");
    assert!(!stderr.contains("serving the last pull"), "{stderr}");
    let fell_back = |stderr: &str, why: &str| {
        stderr.contains(&format!(
            "{addr}/tools/echo:1.0: {why}; serving the last pull of {reference} from the cache"
        ))
    };

    drop(registry);
    let (code, stdout, stderr) = run(&folder, &["check"]).await;
    assert_eq!(code, 0, "the registry is gone:\n{stdout}\n{stderr}");
    assert!(
        fell_back(
            &stderr,
            &format!(
                "pulling the manifest failed: error sending request for url (http://{addr}/v2/tools/echo/manifests/1.0)"
            )
        ),
        "{stderr}"
    );

    // Where the registry was, a server that sends a byte every 50 ms.
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .expect("the registry's port");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                if read_request_head(&mut stream).await.is_none() {
                    return;
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/vnd.oci.image.manifest.v1+json\r\ncontent-length: 100000\r\n\r\n")
                    .await;
                while stream.write_all(b" ").await.is_ok() {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            });
        }
    });
    let started = std::time::Instant::now();
    let (code, stdout, stderr) = run(&folder, &["check"]).await;
    assert_eq!(code, 0, "the registry is too slow:\n{stdout}\n{stderr}");
    assert!(
        fell_back(
            &stderr,
            "the registry did not finish sending the plugin within 1s (distribution.fetch-timeout); refusing it (a registry this slow is unreachable or hostile)"
        ),
        "{stderr}"
    );
    assert!(started.elapsed() < HANG, "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_pinned_digest_that_does_not_match_is_refused_naming_both_and_the_others_serve() {
    let Some(registry) = Registry::start("pin mismatch").await else {
        return;
    };
    let echo = component("fixtures/echo.wasm");
    let actual = digest_of(&echo);
    let wrong = Digest::of(b"another build");
    let reference = format!("oci://{}/tools/echo:1.0", registry.addr);
    let config = format!(
        "[plugins.echo]\nsha256 = \"{wrong}\"\n\n[plugins.remote]\nsource = \"{reference}\"\nsha256 = \"{wrong}\"\n"
    );
    let folder = folder(
        &[
            ("fixtures/echo.wasm", "echo.wasm"),
            ("plugins/hash.wasm", "hash.wasm"),
        ],
        &config,
    );
    push(&folder, &echo, &reference, None).await;

    let (code, stdout, stderr) = run(&folder, &["check"]).await;
    assert_eq!(code, 1, "check must fail:\n{stdout}\n{stderr}");
    let file = folder.plugins().join("echo.wasm");
    assert!(
        stdout.contains(&format!(
            "error  {}: sha256 mismatch: expected {wrong} (sha256 in [plugins.echo]), got {actual}; refusing to load it (update `sha256` only if you trust the new version)\n",
            file.display()
        )),
        "file pin:\n{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "error  {reference}: sha256 mismatch: expected {wrong} (sha256 in [plugins.remote]), got {actual}; refusing to load it (update `sha256` only if you trust the new version)\n"
        )),
        "oci pin:\n{stdout}"
    );
    assert!(
        stdout.contains("ok     hash ("),
        "hash still loads:\n{stdout}"
    );
}

#[tokio::test]
async fn a_tampered_blob_in_the_registry_is_refused() {
    let Some(registry) = Registry::start("tampered blob").await else {
        return;
    };
    let echo = component("fixtures/echo.wasm");
    let digest = digest_of(&echo);
    let reference = format!("oci://{}/tools/echo:1.0", registry.addr);
    let folder = folder(&[], "");
    push(&folder, &echo, &reference, None).await;

    let blob = registry.blob(&digest);
    let mut bytes = std::fs::read(&blob).expect("the registry stores the layer by digest");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&blob, &bytes).expect("tamper with the blob");
    let tampered = Digest::of(&bytes);

    let (code, stdout, stderr) = run(&folder, &["pull", &reference]).await;
    assert_eq!(code, 2, "pull must fail:\n{stdout}\n{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "error: {}/tools/echo:1.0: the wasm layer is corrupt or tampered with: expected {digest} (named by the manifest), got {tampered}; refusing it",
            registry.addr
        )
    );
}

/// Writes a new key pair into `dir` as `NAME.pem` and `NAME.pub`.
pub(crate) fn key_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (key, private) = SigningKey::generate().expect("generate a key");
    let (pem, public) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.pub")),
    );
    std::fs::write(&pem, private).expect("write private key");
    std::fs::write(&public, key.public_pem()).expect("write public key");
    (pem, public)
}

#[tokio::test]
async fn require_signature_refuses_unsigned_and_wrongly_signed_plugins_and_serves_a_signed_one() {
    let Some(registry) = Registry::start("signatures").await else {
        return;
    };
    let echo = component("fixtures/echo.wasm");
    let keys = tempfile::tempdir().expect("keys dir");
    let (trusted, trusted_pub) = key_pair(keys.path(), "trusted");
    let (stranger, _) = key_pair(keys.path(), "stranger");
    let trusted_fingerprint = {
        let text = std::fs::read_to_string(&trusted_pub).expect("public key");
        capsule::distribution::cosign::PublicKey::from_pem(&text)
            .expect("valid key")
            .fingerprint
    };
    let at = |repo: &str| format!("oci://{}/tools/{repo}:1.0", registry.addr);
    let config = format!(
        "[distribution]\nrequire-signature = true\npublic-key = \"{}\"\n\n[plugins.signed]\nsource = \"{}\"\n\n[plugins.unsigned]\nsource = \"{}\"\n\n[plugins.forged]\nsource = \"{}\"\n",
        trusted_pub.display(),
        at("signed"),
        at("unsigned"),
        at("forged")
    );
    let folder = folder(&[], &config);
    push(&folder, &echo, &at("signed"), Some(&trusted)).await;
    let unsigned = field(
        &push(&folder, &echo, &at("unsigned"), None).await,
        "manifest",
    );
    let forged = field(&push(&folder, &echo, &at("forged"), None).await, "manifest");
    let (code, stdout, stderr) = run(
        &folder,
        &[
            "sign",
            &at("forged"),
            "--key",
            stranger.to_str().expect("utf-8"),
        ],
    )
    .await;
    assert_eq!(code, 0, "sign failed:\n{stdout}\n{stderr}");

    let (code, stdout, stderr) = run(&folder, &["check"]).await;
    assert_eq!(code, 1, "check must fail:\n{stdout}\n{stderr}");
    let unsigned_hex = unsigned.trim_start_matches("sha256:");
    assert!(
        stdout.contains(&format!(
            "error  {}: refused by require-signature: not signed: the registry has no cosign signature for manifest {unsigned} (tag sha256-{unsigned_hex}.sig); sign it with `capsule sign` or `cosign sign --key`, or set require-signature = false\n",
            at("unsigned")
        )),
        "unsigned:\n{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "error  {}: refused by require-signature: signature does not verify: none of the 1 cosign signature(s) of manifest {forged} verifies with public key {trusted_fingerprint} (made with another key or over other bytes); sign it with the matching private key\n",
            at("forged")
        )),
        "forged:\n{stdout}"
    );
    assert!(
        stdout.contains("ok     signed ("),
        "signed loads:\n{stdout}"
    );

    let cache = folder.dir.path().join("cache");
    let mut serve = folder.command(&["serve"]);
    serve.arg("--cache-dir").arg(&cache);
    let server = crate::support::Server::start(serve).await;
    let result = server
        .call("signed_echo", json!({"message": "signed"}))
        .await;
    assert_eq!(text(&result), "signed");
    let tools = server.client.list_all_tools().await.expect("tools/list");
    assert!(
        tools
            .iter()
            .all(|t| !t.name.starts_with("unsigned_") && !t.name.starts_with("forged_")),
        "refused plugins serve no tools: {:?}",
        tools.iter().map(|t| &t.name).collect::<Vec<_>>()
    );
}

/// Serves `body` to every request on a loopback port; returns the port.
async fn file_server(body: Vec<u8>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                if read_request_head(&mut stream).await.is_none() {
                    return;
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/wasm\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&body).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn an_https_source_is_checked_against_its_sha256() {
    let echo = component("fixtures/echo.wasm");
    let actual = digest_of(&echo);
    let wrong = Digest::of(b"another build");
    let port = file_server(std::fs::read(&echo).expect("read echo")).await;
    // Plain http:// is accepted from loopback addresses only (local mirrors, this test);
    // the download, pin and cache path is the one https:// sources take.
    let url = format!("http://127.0.0.1:{port}/echo.wasm");
    let config = format!(
        "[plugins.web]\nsource = \"{url}\"\nsha256 = \"{actual}\"\n\n[plugins.tampered]\nsource = \"{url}?v=2\"\nsha256 = \"{wrong}\"\n"
    );
    let folder = folder(&[], &config);
    let (code, stdout, stderr) = run(&folder, &["check"]).await;
    assert_eq!(code, 1, "check must fail:\n{stdout}\n{stderr}");
    assert!(stdout.contains("ok     web ("), "web loads:\n{stdout}");
    assert!(
        stdout.contains(&format!(
            "error  {url}?v=2: sha256 mismatch: expected {wrong} (sha256 in [plugins.tampered]), got {actual}; refusing it (fix `sha256` only if you trust the new file)\n"
        )),
        "https pin:\n{stdout}"
    );
}

#[tokio::test]
async fn the_lock_records_remote_plugins_and_locked_refuses_a_moved_tag() {
    let Some(registry) = Registry::start("lock").await else {
        return;
    };
    let reference = format!("oci://{}/tools/moving:1.0", registry.addr);
    let config = format!("[plugins.remote]\nsource = \"{reference}\"\n");
    let folder = folder(&[], &config);
    let echo = component("fixtures/echo.wasm");
    push(&folder, &echo, &reference, None).await;
    let (code, stdout, stderr) = run(&folder, &["check", "--lock"]).await;
    assert_eq!(code, 0, "check --lock failed:\n{stdout}\n{stderr}");
    let lock = std::fs::read_to_string(folder.dir.path().join("capsule.lock")).expect("lock");
    let was = digest_of(&echo);
    assert!(
        lock.contains(&format!(
            "[plugins.remote]\nfile = \"{reference}\"\nsha256 = \"{was}\"\nsource = \"{reference}\"\n"
        )),
        "lock:\n{lock}"
    );

    let hash = component("plugins/hash.wasm");
    push(&folder, &hash, &reference, None).await;
    let (code, stdout, stderr) = run(&folder, &["check", "--locked"]).await;
    assert_eq!(code, 2, "check --locked must refuse:\n{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "\n  plugin `remote`: digest changed: was {was} now {}\n",
            digest_of(&hash)
        )),
        "{stderr}"
    );
}

#[tokio::test]
async fn cache_gc_removes_unreferenced_pulls_and_artifacts_and_keeps_referenced_ones() {
    // Also: an artifact of the earlier cache format (`-v1.cwasm` with a `.sha256` record)
    // is never loaded again, so it is unreferenced even while its `.wasm` is in use.
    let echo = component("fixtures/echo.wasm");
    let digest = digest_of(&echo);
    let port = file_server(std::fs::read(&echo).expect("read echo")).await;
    let url = format!("http://127.0.0.1:{port}/echo.wasm");
    let config = format!("[plugins.web]\nsource = \"{url}\"\nsha256 = \"{digest}\"\n");
    let folder = folder(&[("plugins/hash.wasm", "hash.wasm")], &config);
    let (code, stdout, stderr) = run(&folder, &["check"]).await;
    assert_eq!(code, 0, "check failed:\n{stdout}\n{stderr}");
    let short = &digest.hex()[..12];

    let (_, listed, _) = run(&folder, &["cache", "ls"]).await;
    for kind in ["source", "pulled", "artifact"] {
        let line = listed
            .lines()
            .find(|l| l.starts_with(kind) && l.contains(short))
            .unwrap_or_else(|| panic!("no {kind} entry of {short}:\n{listed}"));
        assert!(
            line.ends_with(" web"),
            "{kind} is referenced by web: {line}"
        );
    }
    let (_, kept, _) = run(&folder, &["cache", "gc", "--grace", "0"]).await;
    assert!(
        kept.starts_with("removed 0 entries (0 bytes) unreferenced and unused for 0ms"),
        "nothing unreferenced yet:\n{kept}"
    );

    let hash = digest_of(&component("plugins/hash.wasm"));
    let old = folder
        .dir
        .path()
        .join(format!("cache/{}-0123456789abcdef-v1.cwasm", hash.hex()));
    std::fs::write(&old, b"old native code").expect("plant an old artifact");
    let old_record = old.with_extension("cwasm.sha256");
    std::fs::write(&old_record, "artifact 00\nwasm 00\n").expect("and its record");
    std::fs::write(folder.dir.path().join("capsule.toml"), "").expect("drop the source");
    let (code, removed, stderr) = run(&folder, &["cache", "gc", "--grace", "0"]).await;
    assert_eq!(code, 0, "gc failed:\n{removed}\n{stderr}");
    assert!(
        removed.contains(&format!("removed artifact  sha256:{}", &hash.hex()[..12])),
        "the old-format artifact of hash is removed:\n{removed}"
    );
    assert!(
        !old.exists() && !old_record.exists(),
        "with its record:\n{removed}"
    );
    for kind in ["source", "pulled", "artifact"] {
        assert!(
            removed.contains(&format!("removed {kind:<9} sha256:{short}")),
            "{kind} removed:\n{removed}"
        );
    }
    let (_, listed, _) = run(&folder, &["cache", "ls"]).await;
    assert!(!listed.contains(short), "gone:\n{listed}");
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("artifact") && l.ends_with(" hash")),
        "hash's artifact is kept:\n{listed}"
    );
}
