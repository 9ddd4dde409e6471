//! `[auth]` on the HTTP transport: the real binary on 127.0.0.1, static tokens made by
//! `capsule auth add-token`, JWTs signed in the test and verified against a JWKS server
//! started in the test; the rmcp client with a bearer header, raw requests for the exact
//! statuses, `WWW-Authenticate` challenges and JSON-RPC error bodies. Every server's whole
//! stderr is checked for token material at the end of its test.

use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use ring::hmac;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair, RsaPublicKeyComponents};
use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

use crate::http::{Client, HttpServer, call_text, echo, initialize_request, post, refusal};
use crate::jws::{EcKey, jws};
use crate::support::{Folder, HANG, http_server};

/// A client that initializes with `Authorization: Bearer TOKEN`.
async fn client_with(url: &str, token: &str) -> Result<Client, String> {
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_string()).auth_header(token);
    let transport = StreamableHttpClientTransport::from_config(config);
    tokio::time::timeout(HANG, ().serve(transport))
        .await
        .expect("initialize in time")
        .map_err(|err| err.to_string())
}

/// `capsule auth add-token NAME --scopes SCOPES` in `folder`: the token it printed.
async fn add_token(folder: &Folder, name: &str, scopes: &str) -> String {
    let (code, stdout, stderr) = folder
        .run(&["auth", "add-token", name, "--scopes", scopes])
        .await;
    assert_eq!(code, 0, "{stderr}");
    let config = folder.dir.path().join("capsule.toml");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "added token `{name}` (scopes: {}) to {}; it is shown only this once: store it now (the file keeps only its salted hash)",
            scopes.replace(',', ", "),
            config.display()
        )
    );
    let token = stdout.trim_end().to_string();
    assert!(
        token.starts_with("cap_") && !token.contains('\n'),
        "{stdout}"
    );
    let written = std::fs::read_to_string(config).unwrap();
    assert!(
        written.contains(&format!("[auth.tokens.{name}]")),
        "{written}"
    );
    assert!(
        !written.contains(&token[4..]),
        "the token itself was written"
    );
    token
}

/// A raw `initialize` POST with `authorization` (if any) and `query` after the path.
async fn initialize(
    server: &HttpServer,
    authorization: Option<&str>,
    query: &str,
) -> reqwest::Response {
    let mut request = post(&format!("{}{query}", server.url), &initialize_request(1));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.expect("POST initialize")
}

/// Status, `WWW-Authenticate`, JSON-RPC error code and message of a refusal.
async fn refused(response: reqwest::Response) -> (StatusCode, String, i64, String) {
    let status = response.status();
    if !status.is_client_error() {
        panic!(
            "expected a refusal, got {status}: {}",
            response.text().await.unwrap_or_default()
        );
    }
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let (id, code, message) = refusal(response).await;
    assert_eq!(id, Value::Null);
    (status, challenge, code, message)
}

/// `resource_metadata="…"` of `server`'s challenges.
fn metadata_param(server: &HttpServer) -> String {
    format!(
        "resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
        server.base
    )
}

/// No line of `server`'s stderr holds any part of `tokens` that could be replayed (a
/// static token's random part; a JWT's payload or signature).
fn assert_no_token_material(server: &HttpServer, tokens: &[&str]) {
    let log = server.stderr();
    for token in tokens {
        let secret_parts: Vec<&str> = match token.strip_prefix("cap_") {
            Some(random) => vec![random],
            None => token.split('.').skip(1).filter(|p| p.len() >= 8).collect(),
        };
        for part in secret_parts {
            assert!(!log.contains(part), "token material in the log:\n{log}");
        }
    }
}

#[tokio::test]
async fn static_tokens_from_add_token_authenticate_and_everything_else_gets_401() {
    let folder = echo();
    let token = add_token(&folder, "ci", "mcp,tools:call").await;
    let (code, _, stderr) = folder.run(&["auth", "add-token", "ci"]).await;
    assert_eq!(code, 2);
    assert_eq!(
        stderr.lines().last().unwrap(),
        format!(
            "error: {} already has [auth.tokens.ci]; pass --force to replace it (the old token stops working), or choose another name",
            folder.dir.path().join("capsule.toml").display()
        )
    );
    let server = HttpServer::start(&folder, &[]).await;

    let client = client_with(&server.url, &token)
        .await
        .expect("initialize with the token");
    assert_eq!(
        call_text(&client, "echo_echo", json!({"message": "authenticated"})).await,
        "authenticated"
    );
    client.cancel().await.expect("close the client");

    let metadata = metadata_param(&server);
    let (status, challenge, code, message) = refused(initialize(&server, None, "").await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge, format!("Bearer {metadata}"));
    assert_eq!(code, -32000);
    assert_eq!(
        message,
        "no bearer token: send `Authorization: Bearer TOKEN`"
    );

    let wrong = format!("cap_{}", "A".repeat(43));
    let (status, challenge, _, message) =
        refused(initialize(&server, Some(&format!("Bearer {wrong}")), "").await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        message,
        "the token is not one of the configured static tokens"
    );
    assert_eq!(
        challenge,
        format!(
            "Bearer error=\"invalid_token\", error_description=\"the token is not one of the configured static tokens\", {metadata}"
        )
    );

    let (status, challenge, _, message) =
        refused(initialize(&server, Some(&format!("Basic {token}")), "").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(message, "the Authorization header is not `Bearer TOKEN`");
    assert!(
        challenge.starts_with("Bearer error=\"invalid_request\""),
        "{challenge}"
    );

    let (status, challenge, _, message) = refused(
        initialize(
            &server,
            Some(&format!("Bearer {token}")),
            &format!("?access_token={token}"),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        message,
        "a token in the URL query (access_token) is refused: URLs end up in logs and histories; send it in the Authorization header"
    );
    assert_eq!(
        challenge,
        format!("Bearer error=\"invalid_request\", error_description=\"{message}\", {metadata}")
    );

    let unauthenticated = client_with(&server.url, &wrong).await.unwrap_err();
    assert!(
        unauthenticated.contains("Auth required"),
        "the rmcp client reports: {unauthenticated}"
    );

    let health = reqwest::get(format!("{}/healthz", server.base))
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    let log = server.stderr();
    assert!(
        log.contains("refused a request: authentication failed reason=no bearer token: send `Authorization: Bearer TOKEN` client=127.0.0.1:"),
        "{log}"
    );
    assert!(
        log.contains(
            "reason=the token is not one of the configured static tokens client=127.0.0.1:"
        ),
        "{log}"
    );
    assert_no_token_material(&server, &[&token, &wrong]);
}

#[tokio::test]
async fn the_protected_resource_metadata_is_served_at_both_well_known_paths() {
    let folder = echo();
    add_token(&folder, "ci", "mcp").await;
    let config = folder.dir.path().join("capsule.toml");
    let written = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        written.replace(
            "[auth]\n",
            "[auth]\nauthorization-servers = [\"https://auth.example.com\"]\nrequired-scopes = [\"mcp\"]\n",
        ),
    )
    .unwrap();
    let server = HttpServer::start(&folder, &[]).await;
    let expected = json!({
        "resource": server.url,
        "authorization_servers": ["https://auth.example.com"],
        "scopes_supported": ["mcp"],
        "bearer_methods_supported": ["header"],
    });
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let response = reqwest::get(format!("{}{path}", server.base))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let document: Value = response.json().await.unwrap();
        assert_eq!(document, expected, "{path}");
    }
}

#[tokio::test]
async fn a_valid_token_without_a_required_scope_gets_403_insufficient_scope() {
    let folder = echo();
    let token = add_token(&folder, "reader", "mcp").await;
    let config = folder.dir.path().join("capsule.toml");
    let written = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        written.replace(
            "[auth]\n",
            "[auth]\nrequired-scopes = [\"mcp\", \"tools:call\"]\n",
        ),
    )
    .unwrap();
    let server = HttpServer::start(&folder, &[]).await;
    let (status, challenge, code, message) =
        refused(initialize(&server, Some(&format!("Bearer {token}")), "").await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        challenge,
        format!(
            "Bearer error=\"insufficient_scope\", scope=\"mcp tools:call\", {}",
            metadata_param(&server)
        )
    );
    assert_eq!(code, -32000);
    assert_eq!(
        message,
        "the token of `reader` lacks the required scope tools:call"
    );
    server
        .wait_for_log("reason=the token of `reader` lacks the required scope tools:call principal=\"reader\" client=127.0.0.1:")
        .await;
    assert_no_token_material(&server, &[&token]);
}

#[tokio::test]
async fn with_auth_a_non_loopback_address_needs_no_allow_unauthenticated() {
    let folder = echo();
    add_token(&folder, "ci", "mcp").await;
    let mut server = HttpServer::start(&folder, &["--host", "0.0.0.0"]).await;
    server
        .wait_for_log("clients authenticate with bearer tokens; protected resource metadata at http://0.0.0.0:")
        .await;
    assert!(
        !server.stderr().contains("serving without authentication"),
        "{}",
        server.stderr()
    );
    server.sigterm();
    assert_eq!(server.exit_code().await, 0);
}

/// The issuer and audience of the JWT tests.
const ISSUER: &str = "https://issuer.test";
const AUDIENCE: &str = "https://mcp.test/mcp";

/// An RSA key made by the `openssl` CLI: ring's key pair and the public key as PEM.
struct RsaKey {
    pair: RsaKeyPair,
    public_pem: String,
}

impl RsaKey {
    fn generate() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let der = dir.path().join("key.der");
        let pem = dir.path().join("public.pem");
        let openssl = |args: &[&str]| {
            let status = std::process::Command::new("openssl")
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run openssl");
            assert!(status.success(), "openssl {args:?} failed");
        };
        let (der_path, pem_path) = (der.to_str().unwrap(), pem.to_str().unwrap());
        openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-outform",
            "DER",
            "-out",
            der_path,
        ]);
        openssl(&[
            "pkey", "-inform", "DER", "-in", der_path, "-pubout", "-out", pem_path,
        ]);
        // `genpkey -outform DER` writes the PKCS #1 `RSAPrivateKey`.
        let pair = RsaKeyPair::from_der(&std::fs::read(&der).unwrap()).expect("a PKCS #1 RSA key");
        Self {
            pair,
            public_pem: std::fs::read_to_string(pem).unwrap(),
        }
    }

    fn jwk(&self, kid: &str) -> Value {
        let public = RsaPublicKeyComponents::<Vec<u8>>::from(self.pair.public());
        json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
               "n": URL_SAFE_NO_PAD.encode(&public.n), "e": URL_SAFE_NO_PAD.encode(&public.e)})
    }

    fn sign(&self, kid: &str, claims: &Value) -> String {
        self.sign_with(&json!({"alg": "RS256", "typ": "JWT", "kid": kid}), claims)
    }

    /// `claims` signed with RS256 under any `header`.
    fn sign_with(&self, header: &Value, claims: &Value) -> String {
        jws(header, claims, |message| {
            let mut signature = vec![0; self.pair.public().modulus_len()];
            self.pair
                .sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut signature,
                )
                .unwrap();
            signature
        })
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Valid claims for the test server, with `changes` merged in (`null` removes a claim).
fn claims(changes: Value) -> Value {
    let mut claims = json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "alice",
        "iat": now(), "exp": now() + 300, "scope": "mcp tools:call",
    });
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

/// A JWKS server on 127.0.0.1: serves the current document, counts fetches.
struct JwksServer {
    document: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
    url: String,
}

impl JwksServer {
    async fn start(keys: &[Value]) -> Self {
        let document = Arc::new(Mutex::new(json!({"keys": keys}).to_string()));
        let served = document.clone();
        let (port, fetches) = http_server(move |_| served.lock().unwrap().clone()).await;
        Self {
            document,
            fetches,
            url: format!("http://127.0.0.1:{port}/jwks.json"),
        }
    }

    fn publish(&self, keys: &[Value]) {
        *self.document.lock().unwrap() = json!({"keys": keys}).to_string();
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

/// An echo server whose `[auth.jwt]` takes keys from `keys` (`jwks-url = …` or `key-file = …`).
async fn jwt_server(keys: &str) -> (Folder, HttpServer) {
    let folder = Folder::new(
        &[("fixtures/echo.wasm", "echo.wasm")],
        &format!(
            "[auth.jwt]\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\nalgorithms = [\"RS256\", \"ES256\"]\n{keys}\n"
        ),
    );
    let server = HttpServer::start(&folder, &[]).await;
    (folder, server)
}

/// The `error_description` a refused JWT gets, after checking the 401 and its challenge.
async fn invalid_token(server: &HttpServer, token: &str) -> String {
    let (status, challenge, code, message) =
        refused(initialize(server, Some(&format!("Bearer {token}")), "").await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{message}");
    assert_eq!(code, -32000);
    assert_eq!(
        challenge,
        format!(
            "Bearer error=\"invalid_token\", error_description=\"{}\", {}",
            message.replace('"', "'"),
            metadata_param(server)
        )
    );
    message
}

#[tokio::test]
async fn jwts_are_verified_signature_algorithm_expiry_issuer_and_audience() {
    let rsa = RsaKey::generate();
    let ec = EcKey::generate();
    let jwks = JwksServer::start(&[rsa.jwk("rsa-1"), ec.jwk("ec-1")]).await;
    let (_folder, server) = jwt_server(&format!("jwks-url = \"{}\"", jwks.url)).await;
    let mut sent = Vec::new();

    let valid = rsa.sign("rsa-1", &claims(json!({})));
    let client = client_with(&server.url, &valid)
        .await
        .expect("a valid RS256 token initializes");
    assert_eq!(
        call_text(&client, "echo_echo", json!({"message": "signed"})).await,
        "signed"
    );
    client.cancel().await.expect("close the client");
    let ec_valid = ec.sign("ec-1", &claims(json!({"sub": "bob"})));
    assert_eq!(
        initialize(&server, Some(&format!("Bearer {ec_valid}")), "")
            .await
            .status(),
        StatusCode::OK
    );
    sent.extend([valid.clone(), ec_valid]);

    let hs256 = jws(
        &json!({"alg": "HS256", "kid": "rsa-1"}),
        &claims(json!({})),
        |message| {
            let key = hmac::Key::new(hmac::HMAC_SHA256, rsa.public_pem.as_bytes());
            hmac::sign(&key, message).as_ref().to_vec()
        },
    );
    let unsigned = jws(
        &json!({"alg": "none", "kid": "rsa-1"}),
        &claims(json!({})),
        |_| Vec::new(),
    );
    let (_, payload_of_other, _) = split3(&rsa.sign("rsa-1", &claims(json!({"sub": "mallory"}))));
    let (header, _, signature) = split3(&valid);
    let bad_signature = format!("{header}.{payload_of_other}.{signature}");
    let cases = [
        (
            rsa.sign("rsa-1", &claims(json!({"exp": now() - 120}))),
            "the token has expired (`exp`)",
        ),
        (
            rsa.sign("rsa-1", &claims(json!({"exp": null}))),
            "the token has no expiry (`exp`), which is required",
        ),
        (
            rsa.sign("rsa-1", &claims(json!({"nbf": now() + 3600}))),
            "the token is not valid yet (`nbf` is in the future)",
        ),
        (
            rsa.sign("rsa-1", &claims(json!({"iat": now() + 3600}))),
            "the token was issued in the future (`iat`)",
        ),
        (
            rsa.sign(
                "rsa-1",
                &claims(json!({"iss": "https://other-issuer.test"})),
            ),
            "the token is from another issuer (`iss`)",
        ),
        (
            rsa.sign("rsa-1", &claims(json!({"aud": "https://other.test/mcp"}))),
            "the token is for another audience (`aud`): it was not issued for this resource",
        ),
        (
            rsa.sign("rsa-1", &claims(json!({"sub": null}))),
            "the token has no subject (`sub`), which is required",
        ),
        (
            rsa.sign("rsa-1", &claims(json!({"sub": "alice\nWARN forged line"}))),
            "the token's subject (`sub`) has control characters",
        ),
        (bad_signature, "the token's signature is not valid"),
        (
            unsigned,
            "the token's algorithm `none` is not accepted (auth.jwt.algorithms: RS256, ES256)",
        ),
        (
            hs256,
            "the token's algorithm `HS256` is not accepted (auth.jwt.algorithms: RS256, ES256)",
        ),
        (
            ec.sign("rsa-1", &claims(json!({}))),
            "the token's signing key is unknown: key `rsa-1` is not a key for ES256",
        ),
    ];
    for (token, reason) in cases {
        assert_eq!(invalid_token(&server, &token).await, reason);
        server
            .wait_for_log(&format!("reason={reason} client=127.0.0.1:"))
            .await;
        sent.push(token);
    }

    // Headers that name other keys are never followed: only the configured URL is fetched.
    let (port, elsewhere) = http_server(move |_| json!({"keys": []}).to_string()).await;
    let fetches = jwks.fetches();
    let pointing = rsa.sign_with(
        &json!({"alg": "RS256", "kid": "rsa-1", "jku": format!("http://127.0.0.1:{port}/evil.json"),
                "x5u": format!("http://127.0.0.1:{port}/evil.pem"), "jwk": rsa.jwk("rsa-1")}),
        &claims(json!({})),
    );
    assert_eq!(
        initialize(&server, Some(&format!("Bearer {pointing}")), "")
            .await
            .status(),
        StatusCode::OK,
        "a token signed by a configured key is valid whatever jku/x5u/jwk say"
    );
    assert_eq!(elsewhere.load(Ordering::SeqCst), 0, "jku/x5u were fetched");
    assert_eq!(
        jwks.fetches(),
        fetches,
        "a known kid fetched the key set again"
    );
    sent.push(pointing);

    let sent: Vec<&str> = sent.iter().map(String::as_str).collect();
    assert_no_token_material(&server, &sent);
}

/// The three parts of a JWS.
fn split3(token: &str) -> (String, String, String) {
    let parts: Vec<&str> = token.split('.').collect();
    (parts[0].into(), parts[1].into(), parts[2].into())
}

#[tokio::test]
async fn a_rotated_key_is_accepted_within_a_second_and_unknown_kids_share_one_fetch() {
    let old = RsaKey::generate();
    let new = RsaKey::generate();
    let jwks = JwksServer::start(&[old.jwk("old")]).await;
    let (_folder, server) = jwt_server(&format!("jwks-url = \"{}\"", jwks.url)).await;
    assert_eq!(jwks.fetches(), 1, "the key set is fetched once at start");

    let rotated = new.sign("new", &claims(json!({})));
    assert_eq!(
        invalid_token(&server, &rotated).await,
        "the token's signing key is unknown: no key with kid `new` in the key set"
    );
    assert_eq!(
        jwks.fetches(),
        2,
        "an unknown kid fetches the key set again"
    );

    // Eight requests with another unknown kid at once: one fetch for all.
    let unknown = new.sign("unknown", &claims(json!({})));
    let header = format!("Bearer {unknown}");
    let answers =
        futures::future::join_all((0..8).map(|_| initialize(&server, Some(&header), ""))).await;
    for answer in answers {
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(jwks.fetches(), 3, "concurrent unknown kids share one fetch");

    jwks.publish(&[old.jwk("old"), new.jwk("new")]);
    let published = Instant::now();
    let answer = initialize(&server, Some(&format!("Bearer {rotated}")), "").await;
    let took = published.elapsed();
    assert_eq!(
        answer.status(),
        StatusCode::OK,
        "the rotated key is accepted"
    );
    eprintln!("the rotated key was accepted {took:?} after its publication");
    assert!(
        took <= Duration::from_millis(1100),
        "the rotated key took {took:?} to be accepted (at most 1 s after the last fetch)"
    );
    assert_eq!(jwks.fetches(), 4);
    server.wait_for_log("fetched the JWT key set url=").await;
    assert_no_token_material(&server, &[&rotated, &unknown]);
}

#[tokio::test]
async fn a_pem_key_file_verifies_and_a_missing_one_stops_the_server() {
    let rsa = RsaKey::generate();
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("public.pem");
    std::fs::write(&pem, &rsa.public_pem).unwrap();
    let (_folder, server) = jwt_server(&format!("key-file = \"{}\"", pem.display())).await;
    let token = rsa.sign("any", &claims(json!({})));
    let (_, challenge, _, message) =
        refused(initialize(&server, Some(&format!("Bearer {token}")), "").await).await;
    assert_eq!(
        message, "the token's signing key is unknown: no key with kid `any` in the key set",
        "{challenge}"
    );
    let no_kid = rsa.sign_with(&json!({"alg": "RS256"}), &claims(json!({})));
    assert_eq!(
        initialize(&server, Some(&format!("Bearer {no_kid}")), "")
            .await
            .status(),
        StatusCode::OK,
        "the one key of a PEM file verifies a token without kid"
    );
    assert_no_token_material(&server, &[&token, &no_kid]);

    let folder = Folder::new(
        &[("fixtures/echo.wasm", "echo.wasm")],
        &format!(
            "[auth.jwt]\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\nkey-file = \"missing.pem\"\n"
        ),
    );
    assert_eq!(
        http_start_error(&folder).await,
        format!(
            "error: cannot authenticate clients: cannot read auth.jwt.key-file {}: No such file or directory (os error 2)",
            folder.dir.path().join("missing.pem").display()
        )
    );
}

/// `capsule serve --transport http` on `folder` must exit 2; its last stderr line.
async fn http_start_error(folder: &Folder) -> String {
    let (code, _, stderr) = folder
        .run(&["serve", "--transport", "http", "--port", "0"])
        .await;
    assert_eq!(code, 2, "{stderr}");
    stderr.lines().last().unwrap_or_default().to_string()
}

#[tokio::test]
async fn a_shared_secret_algorithm_in_the_config_stops_the_server_naming_file_and_key() {
    let folder = Folder::new(
        &[("fixtures/echo.wasm", "echo.wasm")],
        &format!(
            "[auth.jwt]\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\njwks-url = \"https://issuer.test/jwks.json\"\nalgorithms = [\"RS256\", \"HS256\"]\n"
        ),
    );
    assert_eq!(
        http_start_error(&folder).await,
        format!(
            "error: invalid configuration in {}: auth.jwt.algorithms: `HS256` is a shared-secret algorithm: Capsule verifies JWTs only with public keys, so a public key can never be misused as an HMAC secret; use an asymmetric algorithm: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA",
            folder.dir.path().join("capsule.toml").display()
        )
    );
}

#[tokio::test]
async fn stdio_ignores_auth() {
    let folder = echo();
    add_token(&folder, "ci", "mcp").await;
    let server = folder.serve().await;
    server.assert_echo_answers().await;
}
