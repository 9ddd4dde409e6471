//! One HTTP GET over `wasi:http/outgoing-handler`.

use wasi::http::outgoing_handler;
use wasi::http::types::{ErrorCode, Fields, Method, OutgoingRequest, Scheme};

use crate::RawResponse;
use crate::url::Url;

/// Sends the request and reads up to `max + 1` bytes of the body.
pub fn get(url: &Url, token: Option<&str>, max: usize) -> Result<RawResponse, String> {
    let headers = Fields::new();
    if let Some(token) = token {
        headers
            .append("authorization", format!("Bearer {token}").as_bytes())
            .map_err(|_| "cannot set the authorization header")?;
    }
    let request = OutgoingRequest::new(headers);
    let scheme = if url.scheme == "http" {
        Scheme::Http
    } else {
        Scheme::Https
    };
    request
        .set_method(&Method::Get)
        .map_err(|()| "bad method")?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| "bad scheme")?;
    request
        .set_authority(Some(&url.authority))
        .map_err(|()| "bad host")?;
    request
        .set_path_with_query(Some(&url.path_and_query))
        .map_err(|()| "bad path")?;
    let pending = outgoing_handler::handle(request, None).map_err(describe)?;
    pending.subscribe().block();
    let response = pending
        .get()
        .ok_or("no response")?
        .map_err(|()| "response already taken")?
        .map_err(describe)?;
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .first()
        .map(|v| String::from_utf8_lossy(v).into_owned());
    let body = response.consume().map_err(|()| "no body")?;
    let stream = body.stream().map_err(|()| "no body stream")?;
    let mut bytes = Vec::new();
    while bytes.len() <= max {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend(chunk),
            Err(wasi::io::streams::StreamError::Closed) => break,
            Err(wasi::io::streams::StreamError::LastOperationFailed(err)) => {
                return Err(format!(
                    "reading the response failed: {}",
                    err.to_debug_string()
                ));
            }
        }
    }
    Ok(RawResponse {
        status,
        content_type,
        body: bytes,
    })
}

fn describe(err: ErrorCode) -> String {
    match err {
        ErrorCode::HttpRequestDenied => {
            "HTTP request denied by the host: this URL's host is not in the plugin's net.allow list"
                .into()
        }
        ErrorCode::HttpResponseBodySize(limit) => {
            format!("the response is larger than the plugin's net.max-response ({limit:?} bytes)")
        }
        ErrorCode::ConnectionTimeout => "connection timed out (net.timeout)".into(),
        other => format!("HTTP request failed: {other:?}"),
    }
}
