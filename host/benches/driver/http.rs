//! The benchmarks' MCP streamable-HTTP driver: a blocking HTTP/1.1 client on one
//! keep-alive connection (one `write` per request, a buffered read of the response), so
//! the driver adds microseconds on the cores it shares with the server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The protocol version the benchmark speaks: the one both servers support with sessions.
pub const PROTOCOL: &str = "2025-11-25";

/// One HTTP response, reduced to what the benchmark checks.
pub struct Response {
    pub status: u16,
    pub session: Option<String>,
    /// The JSON-RPC message: the body, or the `data:` of the SSE event that carries it.
    pub message: String,
}

/// One MCP client on one keep-alive connection.
pub struct HttpClient {
    address: SocketAddr,
    path: String,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    session: Option<String>,
    /// Sent as `Authorization: Bearer …` with every request, if set.
    bearer: Option<String>,
    next_id: u64,
}

impl HttpClient {
    /// Connects and initializes (stateful servers hand out a session id here).
    pub fn connect(address: SocketAddr, path: &str) -> Self {
        Self::connect_as(address, path, None)
    }

    /// Like [`HttpClient::connect`], sending `bearer` as the token of every request.
    pub fn connect_as(address: SocketAddr, path: &str, bearer: Option<String>) -> Self {
        let stream = TcpStream::connect(address).expect("connect to the HTTP server");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let mut client = Self {
            address,
            path: path.to_string(),
            reader: BufReader::new(stream.try_clone().expect("clone the socket")),
            writer: stream,
            session: None,
            bearer,
            next_id: 0,
        };
        let response = client.request(&format!(
            r#"{{"jsonrpc":"2.0","id":ID,"method":"initialize","params":{{"protocolVersion":"{PROTOCOL}","capabilities":{{}},"clientInfo":{{"name":"bench","version":"0"}}}}}}"#
        ));
        assert_eq!(response.status, 200, "initialize: {}", response.message);
        client.session = response.session;
        let notified = client.post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        assert!(
            notified.status == 202 || notified.status == 200,
            "notifications/initialized answered {}",
            notified.status
        );
        client
    }

    /// Sends `template` with `ID` replaced by a fresh id; returns the response.
    pub fn request(&mut self, template: &str) -> Response {
        self.next_id += 1;
        let body = template.replace("ID", &self.next_id.to_string());
        self.post(&body)
    }

    /// A request whose result must not be an error; returns its round-trip time.
    pub fn call(&mut self, template: &str) -> Duration {
        let started = Instant::now();
        let response = self.request(template);
        let elapsed = started.elapsed();
        assert!(
            response.status == 200
                && response.message.contains("\"result\"")
                && !response.message.contains("\"isError\":true"),
            "unexpected response {}: {}",
            response.status,
            response.message
        );
        elapsed
    }

    /// A `tools/call` that must be answered with a tool error (`isError`); returns its
    /// round-trip time.
    pub fn refused_call(&mut self, template: &str) -> Duration {
        let started = Instant::now();
        let response = self.request(template);
        let elapsed = started.elapsed();
        assert!(
            response.status == 200 && response.message.contains("\"isError\":true"),
            "expected a tool error, got {}: {}",
            response.status,
            response.message
        );
        elapsed
    }

    fn post(&mut self, body: &str) -> Response {
        let mut request = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMCP-Protocol-Version: {PROTOCOL}\r\nContent-Length: {}\r\n",
            self.path,
            self.address,
            body.len()
        );
        if let Some(session) = &self.session {
            request.push_str(&format!("Mcp-Session-Id: {session}\r\n"));
        }
        if let Some(token) = &self.bearer {
            request.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        self.writer
            .write_all(request.as_bytes())
            .expect("send the request");
        self.read_response()
    }

    fn read_response(&mut self) -> Response {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("status line");
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {line:?}"));
        let (mut length, mut chunked, mut session) = (None, false, None);
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("header line");
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse().ok(),
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                "mcp-session-id" => session = Some(value.to_string()),
                _ => {}
            }
        }
        let body = if chunked {
            self.read_chunked()
        } else {
            let mut body = vec![0; length.unwrap_or(0)];
            self.reader.read_exact(&mut body).expect("body");
            body
        };
        let body = String::from_utf8(body).expect("UTF-8 body");
        Response {
            status,
            session,
            message: sse_message(&body).unwrap_or(body),
        }
    }

    /// A chunked body, to its last chunk (both servers end a POST's SSE stream after the
    /// response).
    fn read_chunked(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("chunk size");
            let size = usize::from_str_radix(line.trim(), 16)
                .unwrap_or_else(|_| panic!("bad chunk size {line:?}"));
            if size == 0 {
                line.clear();
                self.reader.read_line(&mut line).expect("last CRLF");
                return body;
            }
            let start = body.len();
            body.resize(start + size + 2, 0);
            self.reader.read_exact(&mut body[start..]).expect("chunk");
            body.truncate(start + size);
        }
    }
}

/// The `data:` of the SSE event carrying a JSON-RPC response, if the body is a stream.
fn sse_message(body: &str) -> Option<String> {
    body.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim)
        .find(|data| data.contains("\"id\""))
        .map(str::to_string)
}

/// Waits until `address` accepts connections (the server is listening).
pub fn wait_listening(address: SocketAddr, within: Duration) {
    let deadline = Instant::now() + within;
    while TcpStream::connect(address).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on {address} after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A free TCP port on 127.0.0.1 (bound, then released for the server to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}
