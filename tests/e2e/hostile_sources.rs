//! What a plugin's sources may send, and what the host reads of it: a component over the
//! 256 MiB bound in the plugins folder, a sidecar policy or lock over the 4 MiB TOML bound, and a
//! registry or download server that sends endless manifests, layers longer than their
//! manifests say, sizes over the bound or oversized signature payloads. Each is refused by
//! name with nothing read past its bound, and the other plugins load.

use std::collections::HashMap;
use std::sync::Arc;

use capsule::distribution::Digest;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::distribution::{folder, key_pair, run};
use crate::support::{Folder, component, read_request_head};

/// What the hostile server answers for one path.
#[derive(Clone)]
enum Reply {
    /// These bytes, with their length.
    Bytes(&'static str, Vec<u8>),
    /// Zeros without end, chunked.
    Endless(&'static str),
    /// A `content-length` of this many bytes, then zeros until the client goes away.
    Claims(&'static str, u64),
}

/// A server on a loopback port answering each path in `routes` (404 otherwise); returns
/// its port.
async fn serve(routes: HashMap<String, Reply>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let routes = Arc::new(routes);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer(stream, routes.clone()));
        }
    });
    port
}

/// Answers the requests of one connection.
async fn answer(mut stream: TcpStream, routes: Arc<HashMap<String, Reply>>) {
    let zeros = vec![0u8; 64 * 1024];
    loop {
        let Some(request) = read_request_head(&mut stream).await else {
            return;
        };
        let path = request.split(' ').nth(1).unwrap_or("").to_string();
        let head = |kind: &str, length: &str| {
            format!("HTTP/1.1 200 OK\r\ncontent-type: {kind}\r\n{length}\r\n\r\n")
        };
        match routes.get(&path) {
            Some(Reply::Bytes(kind, bytes)) => {
                let head = head(kind, &format!("content-length: {}", bytes.len()));
                if stream.write_all(head.as_bytes()).await.is_err()
                    || stream.write_all(bytes).await.is_err()
                {
                    return;
                }
            }
            Some(Reply::Endless(kind)) => {
                let _ = stream
                    .write_all(head(kind, "transfer-encoding: chunked").as_bytes())
                    .await;
                let chunk = [format!("{:x}\r\n", zeros.len()).as_bytes(), &zeros, b"\r\n"].concat();
                while stream.write_all(&chunk).await.is_ok() {}
                return;
            }
            Some(Reply::Claims(kind, length)) => {
                let _ = stream
                    .write_all(head(kind, &format!("content-length: {length}")).as_bytes())
                    .await;
                while stream.write_all(&zeros).await.is_ok() {}
                return;
            }
            None => {
                let body = "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"unknown\"}]}";
                let reply = format!(
                    "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                if stream.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    }
}

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A Wasm OCI artifact manifest with one layer of `size` bytes and `digest`, and an
/// optional signature annotation on it.
fn manifest(size: u64, digest: &str, signature: Option<&str>) -> Vec<u8> {
    let mut layer = json!({"mediaType": "application/wasm", "digest": digest, "size": size});
    if let Some(signature) = signature {
        layer["mediaType"] = json!("application/vnd.dev.cosign.simplesigning.v1+json");
        layer["annotations"] = json!({"dev.cosignproject.cosign/signature": signature});
    }
    let config = Digest::of(b"{}");
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.wasm.config.v0+json", "digest": config.to_string(), "size": 2},
        "layers": [layer],
    }))
    .expect("manifest JSON")
}

#[tokio::test]
async fn a_registry_that_sends_too_much_is_cut_off_at_its_bound_and_the_other_plugins_load() {
    let echo = std::fs::read(component("fixtures/echo.wasm")).expect("read echo");
    let echo_digest = Digest::of(&echo);
    let some_digest = Digest::of(b"never sent whole").to_string();
    // `signed` is a real component whose signature manifest names a 1 MiB payload.
    let signed = manifest(echo.len() as u64, &echo_digest.to_string(), None);
    let signed_digest = Digest::of(&signed);
    let signature_tag = format!("{}.sig", signed_digest.to_string().replace(':', "-"));
    let routes = HashMap::from([
        (
            "/v2/tools/endless/manifests/1.0".to_string(),
            Reply::Endless(MANIFEST),
        ),
        (
            "/v2/tools/huge/manifests/1.0".to_string(),
            Reply::Bytes(MANIFEST, manifest(300 << 20, &some_digest, None)),
        ),
        (
            "/v2/tools/lying/manifests/1.0".to_string(),
            Reply::Bytes(MANIFEST, manifest(1000, &some_digest, None)),
        ),
        (
            format!("/v2/tools/lying/blobs/{some_digest}"),
            Reply::Endless("application/octet-stream"),
        ),
        (
            "/v2/tools/signed/manifests/1.0".to_string(),
            Reply::Bytes(MANIFEST, signed),
        ),
        (
            format!("/v2/tools/signed/blobs/{echo_digest}"),
            Reply::Bytes("application/octet-stream", echo),
        ),
        (
            format!("/v2/tools/signed/manifests/{signature_tag}"),
            Reply::Bytes(MANIFEST, manifest(1 << 20, &some_digest, Some("c2ln"))),
        ),
        (
            "/download/big.wasm".to_string(),
            Reply::Claims("application/wasm", 300 << 20),
        ),
    ]);
    let port = serve(routes).await;
    let registry = format!("127.0.0.1:{port}");
    let url = format!("http://{registry}/download/big.wasm");
    let keys = tempfile::tempdir().expect("keys dir");
    let (_, public) = key_pair(keys.path(), "operator");
    let config = format!(
        "[distribution]\npublic-key = \"{}\"\n\n\
         [plugins.endless]\nsource = \"oci://{registry}/tools/endless:1.0\"\n\n\
         [plugins.huge]\nsource = \"oci://{registry}/tools/huge:1.0\"\n\n\
         [plugins.lying]\nsource = \"oci://{registry}/tools/lying:1.0\"\n\n\
         [plugins.signed]\nsource = \"oci://{registry}/tools/signed:1.0\"\nrequire-signature = true\n\n\
         [plugins.download]\nsource = \"{url}\"\nsha256 = \"{some_digest}\"\n",
        public.display()
    );
    let folder = folder(&[("fixtures/echo.wasm", "echo.wasm")], &config);
    let (code, stdout, stderr) = run(&folder, &["check"]).await;
    assert_eq!(code, 1, "check must fail:\n{stdout}\n{stderr}");
    assert!(stdout.contains("ok     echo ("), "echo loads:\n{stdout}");
    let expected = [
        format!(
            "error  {registry}/tools/endless:1.0: pulling the manifest failed: http://{registry}/v2/tools/endless/manifests/1.0: the response is larger than 4 MiB, the most read into memory from one registry response; refusing it\n"
        ),
        format!(
            "error  {registry}/tools/huge:1.0: the wasm layer is 300 MiB by its manifest, larger than the 256 MiB it may be; refusing it\n"
        ),
        format!(
            "error  {registry}/tools/lying:1.0: the wasm layer was sent longer than the 1000 bytes its manifest gives it; refusing it\n"
        ),
        format!(
            "error  {registry}/tools/signed:{signature_tag}: a signature payload is 1 MiB by its manifest, larger than the 64 KiB it may be; refusing it\n"
        ),
        format!(
            "error  {url}: download failed: it is 300 MiB, larger than the 256 MiB a plugin component may be\n"
        ),
    ];
    for line in expected {
        assert!(stdout.contains(&line), "expected {line}in:\n{stdout}");
    }
}

#[tokio::test]
async fn a_component_or_sidecar_policy_over_its_bound_or_not_a_file_is_refused_unread() {
    let folder = folder(&[("fixtures/echo.wasm", "echo.wasm")], "");
    // Sparse files: their size costs nothing to make, and reading them whole would cost
    // the host 300 MiB and 5 MiB of memory.
    let big = folder.plugins().join("big.wasm");
    sparse(&big, 300 << 20);
    std::fs::copy(
        component("fixtures/echo.wasm"),
        folder.plugins().join("tool.wasm"),
    )
    .expect("copy echo");
    let policy = folder.plugins().join("tool.toml");
    sparse(&policy, 5 << 20);
    // A FIFO with no writer would hold a blocking open (and the load) for ever.
    let fifo = folder.plugins().join("pipe.wasm");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo failed");
    let (code, stdout, stderr) = run(&folder, &["check"]).await;
    assert_eq!(code, 1, "check must fail:\n{stdout}\n{stderr}");
    assert!(stdout.contains("ok     echo ("), "echo loads:\n{stdout}");
    for line in [
        format!(
            "error  {}: cannot read: it is 300 MiB, larger than the 256 MiB a plugin component may be\n",
            big.display()
        ),
        format!(
            "error  cannot read config file {}: it is 5 MiB, larger than the 4 MiB a TOML file may be\n",
            policy.display()
        ),
        format!(
            "error  {}: cannot read: it is a FIFO (named pipe), not a regular file\n",
            fifo.display()
        ),
    ] {
        assert!(stdout.contains(&line), "expected {line}in:\n{stdout}");
    }
    // What no pull would accept is not pushed either (refused before any connection).
    let (code, stdout, stderr) = run(
        &folder,
        &[
            "push",
            big.to_str().expect("utf-8 path"),
            "oci://127.0.0.1:9/tools/big:1.0",
        ],
    )
    .await;
    assert_eq!(code, 2, "push must refuse:\n{stdout}\n{stderr}");
    let expected = format!(
        "cannot read {}: it is 300 MiB, larger than the 256 MiB a plugin component may be",
        big.display()
    );
    assert!(
        stderr.contains(&expected),
        "expected {expected} in:\n{stderr}"
    );
    // The operator's lock is bounded the same way.
    let lock = folder.dir.path().join("capsule.lock");
    sparse(&lock, 5 << 20);
    let (code, stdout, stderr) = run(&folder, &["check", "--locked"]).await;
    assert_eq!(code, 2, "check --locked must refuse:\n{stdout}\n{stderr}");
    let expected = format!(
        "cannot read {}: it is 5 MiB, larger than the 4 MiB a TOML file may be",
        lock.display()
    );
    assert!(
        stderr.contains(&expected) || stdout.contains(&expected),
        "expected {expected} in:\n{stdout}\n{stderr}"
    );
    // And so is the config file, and the secrets file it names.
    let config = folder.dir.path().join("capsule.toml");
    sparse(&config, 5 << 20);
    check_refuses_oversized_toml(&folder, &config).await;
    std::fs::write(&config, "secrets-file = \"secrets.toml\"\n").expect("write config");
    let secrets = folder.dir.path().join("secrets.toml");
    sparse(&secrets, 5 << 20);
    check_refuses_oversized_toml(&folder, &secrets).await;
}

/// `capsule check` stops on the operator's TOML file `path`, a sparse 5 MiB file.
async fn check_refuses_oversized_toml(folder: &Folder, path: &std::path::Path) {
    let (code, stdout, stderr) = run(folder, &["check"]).await;
    assert_ne!(code, 0, "check must refuse:\n{stdout}\n{stderr}");
    let expected = format!(
        "cannot read config file {}: it is 5 MiB, larger than the 4 MiB a TOML file may be",
        path.display()
    );
    assert!(
        stderr.contains(&expected),
        "expected {expected} in:\n{stdout}\n{stderr}"
    );
}

/// Makes `path` a sparse file of `size` bytes: as large as a hostile file, costing nothing.
fn sparse(path: &std::path::Path, size: u64) {
    std::fs::File::create(path)
        .and_then(|file| file.set_len(size))
        .unwrap_or_else(|err| panic!("a sparse file at {}: {err}", path.display()));
}
