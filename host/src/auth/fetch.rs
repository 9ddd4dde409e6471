//! One `GET` of a JWKS document over HTTPS (rustls, the webpki roots, as plugins' `wasi:http`
//! uses) or plain HTTP to a loopback address, bounded in time and size.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::capability::net::tls_connector;

/// The whole fetch (connect, TLS, request, body) must end within this.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest JWKS document read.
const MAX_BODY: usize = 1 << 20;

/// The body of `GET uri` (status 200 only). The error says what failed.
pub async fn get(uri: &http::Uri) -> Result<Bytes, String> {
    tokio::time::timeout(FETCH_TIMEOUT, fetch(uri))
        .await
        .map_err(|_| format!("no answer within {}s", FETCH_TIMEOUT.as_secs()))?
}

async fn fetch(uri: &http::Uri) -> Result<Bytes, String> {
    let host = uri.host().ok_or("the URL has no host")?;
    let tls = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let tcp = TcpStream::connect((bare, port))
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    tcp.set_nodelay(true).ok();
    if tls {
        let name = rustls::pki_types::ServerName::try_from(bare.to_string())
            .map_err(|e| format!("`{host}` is not a TLS server name: {e}"))?;
        let stream = tls_connector()
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        request(stream, uri).await
    } else {
        request(tcp, uri).await
    }
}

async fn request<S>(stream: S, uri: &http::Uri) -> Result<Bytes, String>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    let connection = tokio::spawn(connection);
    let authority = uri.authority().map_or("", |a| a.as_str());
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let request = http::Request::get(path)
        .header(http::header::HOST, authority)
        .header(http::header::ACCEPT, "application/json")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("HTTP: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    let status = response.status();
    if status != http::StatusCode::OK {
        connection.abort();
        return Err(format!("the server answered {status}"));
    }
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("reading the body (at most {MAX_BODY} bytes): {e}"))?
        .to_bytes();
    connection.abort();
    Ok(body)
}
