//! A loopback HTTP server that answers each JSON-RPC request with the next scripted
//! response, for fuzzing the EVM ledger's client through its real network path.
//!
//! A scripted response that starts with `HTTP/` is sent as it is (status line, headers
//! and body); anything else is a body, sent in a `200 OK` with its `Content-Length`.
//! `$ID` in either is replaced by the request's JSON-RPC id, so an input can answer the
//! call it gets. With no response left, the connection is closed unanswered. One request
//! per connection: the server closes each after its answer (the client, which would keep
//! it open, then opens a new one).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

/// The most bytes of a request read (the client's requests are a few hundred).
const MAX_REQUEST_BYTES: usize = 64 * 1024;

type Script = Arc<Mutex<VecDeque<Vec<u8>>>>;

/// The server: a thread accepting on `127.0.0.1` for the life of the process.
#[derive(Debug)]
pub struct RpcServer {
    address: SocketAddr,
    script: Script,
}

impl RpcServer {
    /// Binds an ephemeral loopback port and starts answering on it.
    pub fn start() -> RpcServer {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind a loopback port");
        let address = listener.local_addr().expect("the listener's address");
        let script = Script::default();
        let answers = Arc::clone(&script);
        thread::Builder::new()
            .name("fuzz-rpc-server".into())
            .spawn(move || serve(&listener, &answers))
            .expect("spawn the server thread");
        RpcServer { address, script }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Replaces the responses still queued with `responses`, answered in order.
    pub fn script(&self, responses: impl IntoIterator<Item = Vec<u8>>) {
        let mut script = lock(&self.script);
        script.clear();
        script.extend(responses);
    }
}

fn lock(script: &Script) -> MutexGuard<'_, VecDeque<Vec<u8>>> {
    // A panicking input aborts the process: nothing is left half-written to carry on from.
    script.lock().unwrap_or_else(PoisonError::into_inner)
}

fn serve(listener: &TcpListener, script: &Script) {
    // A failed accept or exchange is the client's to report; the server takes the next one.
    for stream in listener.incoming().flatten() {
        let _ = answer(stream, script);
    }
}

fn answer(mut stream: TcpStream, script: &Script) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let body = read_request_body(&mut stream)?;
    let id = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|request| request.get("id").cloned())
        .map_or_else(|| "null".to_owned(), |id| id.to_string());
    let Some(response) = lock(script).pop_front() else {
        return stream.shutdown(Shutdown::Both);
    };
    let response = replace(&response, b"$ID", id.as_bytes());
    let bytes = if response.starts_with(b"HTTP/") {
        response
    } else {
        let mut bytes = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            response.len()
        )
        .into_bytes();
        bytes.extend_from_slice(&response);
        bytes
    };
    stream.write_all(&bytes)?;
    stream.shutdown(Shutdown::Write)
}

/// Reads a request's head and its `Content-Length` body; returns the body.
fn read_request_body(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut buffer = Vec::new();
    let mut chunk = [0_u8; 4096];
    let (head_end, length) = loop {
        if let Some(at) = find(&buffer, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..at]);
            let length = head
                .lines()
                .filter_map(|line| line.split_once(':'))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, value)| value.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (at + 4, length);
        }
        if buffer.len() > MAX_REQUEST_BYTES {
            return Err(io::ErrorKind::InvalidData.into());
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let wanted = head_end.saturating_add(length).min(MAX_REQUEST_BYTES);
    while buffer.len() < wanted {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    Ok(buffer.split_off(head_end.min(buffer.len())))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// `bytes` with every `from` replaced by `to`.
fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some(at) = find(rest, from) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(to);
        rest = &rest[at + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}
