//! Outgoing HTTP (`wasi:http`). Linked for every plugin so components that import it
//! still instantiate, but every request is refused until a network policy grants hosts.

use wasmtime_wasi_http::WasiHttpHooks;

/// Hooks that refuse every outgoing request with `HTTP-request-denied`, and log it.
pub struct DenyAllHttp {
    /// The plugin whose requests these are, for the log line.
    pub plugin: std::sync::Arc<str>,
}

impl WasiHttpHooks for DenyAllHttp {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<wasmtime_wasi_http::WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        tracing::warn!(
            plugin = %self.plugin,
            uri = %request.uri(),
            "denied outgoing HTTP request: this plugin has no network grant"
        );
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}
