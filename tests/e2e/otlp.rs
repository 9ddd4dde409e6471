//! An OTLP/HTTP receiver on 127.0.0.1: every `POST /v1/traces` body is decoded with the
//! OpenTelemetry protocol's own messages and handed over, and answered 200 at once.
//! Blocking threads (one per connection), so it runs beside any runtime. Used by
//! `telemetry.rs` here and by `host/benches/stdio.rs` (its OTLP sink), which includes this
//! file with `#[path]`; not part of the library.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

/// What a request brought: a decoded trace export, or why it was not one.
pub type Received = Result<ExportTraceServiceRequest, String>;

/// Listens on an ephemeral port of 127.0.0.1 and hands each request to `on_request`,
/// until the process ends. Returns the port.
pub fn receive(on_request: impl Fn(Received) + Send + Sync + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the OTLP receiver");
    let port = listener
        .local_addr()
        .expect("the receiver's address")
        .port();
    let on_request = Arc::new(on_request);
    std::thread::spawn(move || {
        for socket in listener.incoming().flatten() {
            let on_request = on_request.clone();
            std::thread::spawn(move || serve(socket, &*on_request));
        }
    });
    port
}

/// Answers the requests of one keep-alive connection until it closes.
fn serve(socket: TcpStream, on_request: &dyn Fn(Received)) {
    let Ok(mut writer) = socket.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(socket);
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line == "\r\n" => break,
                Ok(_) => head.push(line.trim_end().to_string()),
            }
        }
        let header = |name: &str| {
            head.iter().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_string())
            })
        };
        let length: usize = header("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let request_line = head.first().cloned().unwrap_or_default();
        let content_type = header("content-type");
        let received = if request_line.starts_with("POST /v1/traces ")
            && content_type.as_deref() == Some("application/x-protobuf")
        {
            ExportTraceServiceRequest::decode(body.as_slice())
                .map_err(|err| format!("{request_line}: not an OTLP trace export: {err}"))
        } else {
            Err(format!("{request_line} {content_type:?}"))
        };
        let answer = match received {
            Ok(_) => {
                "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n"
            }
            Err(_) => "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n",
        };
        on_request(received);
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}
