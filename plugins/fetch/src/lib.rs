//! `fetch`: HTTP(S) GET of a URL, returning its text. The host sends only requests to the
//! hosts in this plugin's `net.allow` list; everything else is refused before it leaves
//! the machine. An optional token granted as a secret (`host.config("token")`) is sent as
//! `Authorization: Bearer …` and never appears in results.

use capsule_sdk::prelude::*;

mod url;
#[cfg(target_arch = "wasm32")]
mod wasi_http;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct GetArgs {
    /// Absolute http:// or https:// URL, e.g. "https://api.github.com/repos/rust-lang/rust".
    url: String,
    /// Return at most this many bytes of the body (default 256 KiB).
    #[serde(default)]
    max_bytes: Option<usize>,
}

/// The response.
#[derive(Debug, Serialize, JsonSchema)]
struct Response {
    /// HTTP status code.
    status: u16,
    /// The `content-type` header, if any.
    content_type: Option<String>,
    /// The body as text (invalid UTF-8 replaced), cut at `max_bytes`.
    body: String,
    /// Whether the body was cut.
    truncated: bool,
}

/// Fetch a URL with HTTP GET and return its status, content type and body text. Only hosts
/// this plugin's policy allows can be reached; others fail with "HTTP request denied".
#[tool(title = "HTTP GET", read_only, open_world)]
fn get(args: GetArgs) -> Result<Response, ToolError> {
    let url = url::Url::parse(&args.url).map_err(ToolError::invalid_arguments)?;
    let token = capsule_sdk::config("token");
    let max = args.max_bytes.unwrap_or(256 << 10);
    let raw = send(&url, token.as_deref(), max)?;
    let truncated = raw.body.len() > max;
    let body = String::from_utf8_lossy(&raw.body[..raw.body.len().min(max)]).into_owned();
    Ok(Response {
        status: raw.status,
        content_type: raw.content_type,
        body,
        truncated,
    })
}

/// What came back, before it is cut and decoded.
pub(crate) struct RawResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

#[cfg(target_arch = "wasm32")]
fn send(url: &url::Url, token: Option<&str>, max: usize) -> Result<RawResponse, ToolError> {
    wasi_http::get(url, token, max).map_err(ToolError::new)
}

/// Outside WebAssembly there is no `wasi:http`; native builds exist only for unit tests.
#[cfg(not(target_arch = "wasm32"))]
fn send(_: &url::Url, _: Option<&str>, _: usize) -> Result<RawResponse, ToolError> {
    Err(ToolError::new(
        "HTTP needs the wasi:http import of the Capsule host",
    ))
}

export_plugin!(get);

#[cfg(test)]
mod tests {
    use super::*;
    use capsule_sdk::serde_json::json;

    #[test]
    fn bad_urls_are_argument_errors() {
        let err = CAPSULE_PLUGIN
            .call("get", &json!({"url": "ftp://x"}).to_string())
            .unwrap_err();
        assert!(
            format!("{err:?}").contains("http:// or https://"),
            "{err:?}"
        );
        let tools = CAPSULE_PLUGIN.definitions();
        assert_eq!(tools[0].name, "get");
    }
}
