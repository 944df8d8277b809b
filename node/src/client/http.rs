//! A tiny blocking HTTP/1.1 client on [`std::net::TcpStream`], enough for the admin API:
//! one request per connection (`Connection: close`), a body sized by `Content-Length` or
//! read to the end of the connection, bounded reads, and one deadline for the whole
//! exchange (connect, write, read).
//!
//! Deliberately not supported, each refused with a clear error rather than misread:
//! `https://` (no TLS), URLs with a path, query, fragment or user info, chunked
//! `Transfer-Encoding` (the node always sends `Content-Length`), interim `1xx` responses
//! (the client never sends `Expect`), folded header lines, redirects (a `3xx` is returned
//! like any other status).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

#[cfg(test)]
mod tests;

/// The most bytes a response's status line and headers may take.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The most bytes a response's body may take.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// The longest deadline honoured (a longer one is cut to this).
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// An `http://host[:port]` URL (port 80 when left out). Nothing else: no path (a lone
/// trailing `/` is allowed), query, fragment or user info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    host: String,
    port: u16,
}

/// A URL [`Url::parse`] refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid URL {url:?}: {reason}")]
pub struct UrlError {
    /// The text given.
    pub url: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Url {
    /// Parses `http://host[:port][/]`; the host is a name, an IPv4 address or a bracketed
    /// IPv6 address (`http://[::1]:9615`).
    pub fn parse(text: &str) -> Result<Url, UrlError> {
        let fail = |reason: &str| UrlError {
            url: text.to_owned(),
            reason: reason.to_owned(),
        };
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(fail("expected http://host:port"));
        };
        if scheme.eq_ignore_ascii_case("https") {
            return Err(fail(
                "https is not supported (no TLS in this client): use http:// on a trusted network",
            ));
        }
        if !scheme.eq_ignore_ascii_case("http") {
            return Err(fail("only http:// URLs are supported"));
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if !tail.is_empty() && tail != "/" {
            return Err(fail(
                "a path, query or fragment is not supported: give http://host:port only",
            ));
        }
        if authority.contains('@') {
            return Err(fail("user info (user@host) is not supported"));
        }
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let Some((host, after)) = bracketed.split_once(']') else {
                return Err(fail("an IPv6 address needs a closing `]`"));
            };
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(fail("not an IPv6 address inside [ ]"));
            }
            let port = match after {
                "" => None,
                _ => match after.strip_prefix(':') {
                    Some(port) => Some(port),
                    None => return Err(fail("expected `:port` after the `]`")),
                },
            };
            (host, port)
        } else if authority.matches(':').count() > 1 {
            return Err(fail(
                "too many `:` (an IPv6 address goes in brackets: http://[::1]:9615)",
            ));
        } else {
            match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(fail("no host"));
        }
        if !authority.starts_with('[')
            && !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        {
            return Err(fail(
                "the host may hold only letters, digits, `-`, `.` and `_` (bracket IPv6 addresses)",
            ));
        }
        let port = match port {
            None => 80,
            Some(text) => match text.parse::<u16>() {
                Ok(port) if port != 0 && text.bytes().all(|b| b.is_ascii_digit()) => port,
                _ => return Err(fail("the port must be a number from 1 to 65535")),
            },
        };
        Ok(Url {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// The host, without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host:port` (an IPv6 host in brackets): the `Host` header.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}", self.authority())
    }
}

/// One request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The path and query, e.g. `/admin/audit?after=3`.
    pub target: &'a str,
    /// Extra headers (`Host`, `Connection`, `Content-Length` and `Content-Type` are added).
    pub headers: &'a [(&'a str, &'a str)],
    /// A JSON body, sent with `Content-Type: application/json`.
    pub json_body: Option<&'a [u8]>,
}

/// A response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The reason phrase (may be empty).
    pub reason: String,
    /// The headers, names as sent, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header of this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The request cannot be written as given (a control character in a header, ...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The host name does not resolve.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// The host.
        host: String,
        /// Why.
        source: io::Error,
    },
    /// No connection could be made.
    #[error("{0}")]
    Connect(io::Error),
    /// The connection failed while writing or reading.
    #[error("connection failed: {0}")]
    Io(io::Error),
    /// The deadline passed.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The answer is not HTTP/1.x as this client reads it.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// The answer is larger than the limits.
    #[error("response too large: {0}")]
    TooLarge(String),
    /// The answer uses something this client does not implement.
    #[error("unsupported response: {0}")]
    Unsupported(String),
}

impl HttpError {
    /// Whether the node could not be reached or did not answer in time (as opposed to an
    /// answer that could not be read, or a request that could not be made).
    pub fn is_connection(&self) -> bool {
        matches!(
            self,
            HttpError::Resolve { .. }
                | HttpError::Connect(_)
                | HttpError::Io(_)
                | HttpError::Timeout(_)
        )
    }
}

/// The request's bytes: request line, headers, blank line, body. Refuses control
/// characters in the method, target and headers (they would split the request).
pub fn format_request(url: &Url, request: &Request<'_>) -> Result<Vec<u8>, HttpError> {
    if request.method.is_empty() || !request.method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(HttpError::InvalidRequest(format!(
            "bad method {:?}",
            request.method
        )));
    }
    if !request.target.starts_with('/') || request.target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(HttpError::InvalidRequest(format!(
            "bad target {:?}",
            request.target
        )));
    }
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        request.method,
        request.target,
        url.authority()
    );
    for (name, value) in request.headers {
        if name.is_empty() || name.bytes().any(|b| !is_token_byte(b)) {
            return Err(HttpError::InvalidRequest(format!(
                "bad header name {name:?}"
            )));
        }
        if value.chars().any(char::is_control) {
            return Err(HttpError::InvalidRequest(format!(
                "header {name} has a control character"
            )));
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = request.json_body {
        head.push_str("Content-Type: application/json\r\n");
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    } else if request.method != "GET" && request.method != "HEAD" {
        head.push_str("Content-Length: 0\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    if let Some(body) = request.json_body {
        bytes.extend_from_slice(body);
    }
    Ok(bytes)
}

/// An RFC 9110 token character (header names).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Makes one exchange with the server at `url`, all of it (resolving, connecting, writing,
/// reading) within `timeout`.
pub fn send(url: &Url, request: &Request<'_>, timeout: Duration) -> Result<Response, HttpError> {
    let timeout = timeout.min(MAX_TIMEOUT);
    let bytes = format_request(url, request)?;
    let deadline = Instant::now() + timeout;
    let timed_out = |error: HttpError| match error {
        HttpError::Io(error) | HttpError::Connect(error) if is_timeout(&error) => {
            HttpError::Timeout(timeout)
        }
        other => other,
    };
    let stream = connect(url, deadline).map_err(timed_out)?;
    let mut writer = Deadlined {
        stream: &stream,
        deadline,
    };
    writer
        .write_all(&bytes)
        .and_then(|()| writer.flush())
        .map_err(|error| timed_out(HttpError::Io(error)))?;
    read_response(&mut writer, MAX_HEAD_BYTES, MAX_BODY_BYTES).map_err(timed_out)
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

fn connect(url: &Url, deadline: Instant) -> Result<TcpStream, HttpError> {
    let addresses: Vec<SocketAddr> = (url.host(), url.port())
        .to_socket_addrs()
        .map_err(|source| HttpError::Resolve {
            host: url.host().to_owned(),
            source,
        })?
        .collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host has no address");
    for address in addresses {
        let remaining = remaining(deadline)?;
        match TcpStream::connect_timeout(&address, remaining) {
            Ok(stream) => {
                // Small request, small answer: no point in Nagle's delay.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(error) => last = error,
        }
    }
    Err(HttpError::Connect(last))
}

/// Time left before `deadline`, or a timed-out error.
fn remaining(deadline: Instant) -> Result<Duration, HttpError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(HttpError::Io(io::ErrorKind::TimedOut.into()))
    } else {
        Ok(left)
    }
}

/// A stream whose every read and write gives up at one deadline, so a server that
/// trickles bytes cannot hold the client longer than its timeout.
struct Deadlined<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
}

impl Deadlined<'_> {
    fn left(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(io::ErrorKind::TimedOut.into())
        } else {
            Ok(left)
        }
    }
}

impl Read for Deadlined<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.set_read_timeout(Some(self.left()?))?;
        let mut stream = self.stream;
        stream.read(buf)
    }
}

impl Write for Deadlined<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.set_write_timeout(Some(self.left()?))?;
        let mut stream = self.stream;
        stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut stream = self.stream;
        stream.flush()
    }
}

/// Reads one response from `reader`: the head (at most `max_head` bytes), then a body of
/// `Content-Length` bytes, or everything up to the end of the stream (at most `max_body`).
pub fn read_response(
    reader: &mut impl Read,
    max_head: usize,
    max_body: usize,
) -> Result<Response, HttpError> {
    let mut buffer = Vec::new();
    let mut chunk = [0_u8; 8 * 1024];
    let (head_len, body_start) = loop {
        if let Some(found) = find_head_end(&buffer) {
            break found;
        }
        if buffer.len() > max_head {
            return Err(HttpError::TooLarge(format!(
                "the status line and headers exceed {max_head} bytes"
            )));
        }
        let n = read_some(reader, &mut chunk)?;
        if n == 0 {
            return Err(HttpError::Malformed(if buffer.is_empty() {
                "the connection closed without an answer".into()
            } else {
                "the connection closed inside the status line or headers".into()
            }));
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    if head_len > max_head {
        return Err(HttpError::TooLarge(format!(
            "the status line and headers exceed {max_head} bytes"
        )));
    }
    let head = String::from_utf8_lossy(&buffer[..head_len]).into_owned();
    let (status, reason, headers) = parse_head(&head)?;
    let mut response = Response {
        status,
        reason,
        headers,
        body: Vec::new(),
    };
    if response.header("transfer-encoding").is_some() {
        return Err(HttpError::Unsupported(
            "Transfer-Encoding (chunked bodies) is not implemented; expected Content-Length".into(),
        ));
    }
    if (100..200).contains(&status) {
        return Err(HttpError::Unsupported(format!(
            "interim response {status} (this client never sends Expect)"
        )));
    }
    let mut body = buffer.split_off(body_start);
    if status == 204 || status == 304 {
        return Ok(response);
    }
    match content_length(&response.headers)? {
        Some(length) => {
            if length > max_body as u64 {
                return Err(HttpError::TooLarge(format!(
                    "a body of {length} bytes exceeds {max_body}"
                )));
            }
            let length = length as usize;
            while body.len() < length {
                let n = read_some(reader, &mut chunk)?;
                if n == 0 {
                    return Err(HttpError::Malformed(format!(
                        "the body ended after {} of {length} bytes",
                        body.len()
                    )));
                }
                body.extend_from_slice(&chunk[..n]);
            }
            // Anything past the declared length is not part of this answer.
            body.truncate(length);
        }
        None => loop {
            if body.len() > max_body {
                return Err(HttpError::TooLarge(format!(
                    "the body exceeds {max_body} bytes"
                )));
            }
            let n = read_some(reader, &mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        },
    }
    response.body = body;
    Ok(response)
}

/// One read, retried on `Interrupted`.
fn read_some(reader: &mut impl Read, chunk: &mut [u8]) -> Result<usize, HttpError> {
    loop {
        match reader.read(chunk) {
            Ok(n) => return Ok(n),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(HttpError::Io(error)),
        }
    }
}

/// Where the head ends: (its length without the blank line, where the body starts).
/// Accepts CRLF and, leniently, bare LF line ends.
fn find_head_end(buffer: &[u8]) -> Option<(usize, usize)> {
    (0..buffer.len()).find_map(|i| {
        let rest = &buffer[i..];
        if rest.starts_with(b"\r\n\r\n") {
            Some((i, i + 4))
        } else if rest.starts_with(b"\n\n") {
            Some((i, i + 2))
        } else if rest.starts_with(b"\n\r\n") {
            Some((i, i + 3))
        } else {
            None
        }
    })
}

type Head = (u16, String, Vec<(String, String)>);

/// Parses the status line and the headers.
fn parse_head(head: &str) -> Result<Head, HttpError> {
    let mut lines = head
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line));
    let status_line = lines.next().unwrap_or_default();
    let (status, reason) = parse_status_line(status_line)?;
    let mut headers = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            return Err(HttpError::Malformed(
                "a folded header line (obsolete line folding)".into(),
            ));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(HttpError::Malformed(format!(
                "a header line without a colon: {:?}",
                shorten(line)
            )));
        };
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(HttpError::Malformed(format!(
                "a bad header name: {:?}",
                shorten(name)
            )));
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    Ok((status, reason, headers))
}

/// `HTTP/1.1 404 Not Found` → (404, "Not Found").
fn parse_status_line(line: &str) -> Result<(u16, String), HttpError> {
    let malformed = || HttpError::Malformed(format!("a bad status line: {:?}", shorten(line)));
    let (version, rest) = line.split_once(' ').ok_or_else(malformed)?;
    if !matches!(version, "HTTP/1.1" | "HTTP/1.0") {
        return Err(malformed());
    }
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    let status: u16 = code.parse().map_err(|_| malformed())?;
    if !(100..=599).contains(&status) {
        return Err(malformed());
    }
    Ok((status, reason.trim().to_owned()))
}

/// The body's length from `Content-Length`: every value (repeated headers, or a comma
/// list) must agree.
fn content_length(headers: &[(String, String)]) -> Result<Option<u64>, HttpError> {
    let mut length = None;
    for (_, value) in headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("content-length"))
    {
        for part in value.split(',').map(str::trim) {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HttpError::Malformed(format!(
                    "a bad Content-Length: {:?}",
                    shorten(value)
                )));
            }
            let parsed: u64 = part.parse().map_err(|_| {
                HttpError::TooLarge(format!("a Content-Length of {}", shorten(part)))
            })?;
            match length {
                Some(previous) if previous != parsed => {
                    return Err(HttpError::Malformed(format!(
                        "conflicting Content-Length values {previous} and {parsed}"
                    )));
                }
                _ => length = Some(parsed),
            }
        }
    }
    Ok(length)
}

/// At most 80 characters of `text`, for error messages.
fn shorten(text: &str) -> String {
    const MAX: usize = 80;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(MAX).collect();
        short.push('…');
        short
    }
}
