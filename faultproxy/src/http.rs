//! Just enough HTTP/1.1 for `Mode::StaleReads`: read one message at a time off a
//! connection (head, then a body framed by Content-Length, chunked coding, or the end of
//! the connection), keeping every byte as it came so that a forwarded message is the
//! message received.
//!
//! Reads poll (every [`POLL`]) whether the mode changed, like the forwarding pumps, so a
//! switch cuts a connection waiting on either side.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::{Epoch, is_timeout};

/// How often a blocked read looks at the mode.
const POLL: Duration = Duration::from_millis(100);
/// A head (or a chunk-size or trailer line) longer than this is not framed.
const MAX_HEAD: usize = 64 * 1024;
/// A body longer than this is not buffered.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Why no whole message was read.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The mode changed.
    Cut,
    /// The peer closed, or the connection failed, in the middle of a message.
    Broken,
    /// Not HTTP that this module frames, or larger than it buffers.
    Unframeable,
}

/// A head: the start line and the header fields.
#[derive(Debug)]
pub(crate) struct Head {
    /// The request or status line, without its line end.
    pub(crate) start: String,
    /// The same line as it came, line end included.
    pub(crate) raw_start: Vec<u8>,
    pub(crate) fields: Vec<Field>,
}

#[derive(Debug)]
pub(crate) struct Field {
    pub(crate) name: String,
    pub(crate) value: String,
    /// The line as it came, line end included.
    pub(crate) raw: Vec<u8>,
}

impl Head {
    /// The values of every field called `name`.
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.fields
            .iter()
            .filter(move |field| field.name.eq_ignore_ascii_case(name))
            .map(|field| field.value.as_str())
    }

    /// The comma-separated elements of every field called `name`.
    fn elements<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.values(name)
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .filter(|element| !element.is_empty())
    }

    /// Whether a `name` field lists `token` (case-insensitive).
    pub(crate) fn lists(&self, name: &str, token: &str) -> bool {
        self.elements(name)
            .any(|element| element.eq_ignore_ascii_case(token))
    }

    /// `(method, version)` of a request line.
    pub(crate) fn request_line(&self) -> Option<(&str, &str)> {
        let mut parts = self.start.split(' ');
        let (Some(method), Some(_target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        (!method.is_empty() && version.starts_with("HTTP/")).then_some((method, version))
    }

    /// The status code of a status line.
    pub(crate) fn status(&self) -> Option<u16> {
        let mut parts = self.start.splitn(3, ' ');
        let version = parts.next()?;
        let code = parts.next()?;
        if !version.starts_with("HTTP/") || code.len() != 3 {
            return None;
        }
        code.parse().ok()
    }

    /// Whether the connection stays open after this message (HTTP/1.1 unless `close`,
    /// HTTP/1.0 only with `keep-alive`).
    pub(crate) fn keeps_alive(&self) -> bool {
        if self.lists("Connection", "close") {
            return false;
        }
        // The version ends a request line and starts a status line.
        let version = if self.start.starts_with("HTTP/") {
            self.start.split(' ').next()
        } else {
            self.start.rsplit(' ').next()
        };
        version != Some("HTTP/1.0") || self.lists("Connection", "keep-alive")
    }

    /// How the body of a request is framed (RFC 9112 §6.3).
    pub(crate) fn request_framing(&self) -> Result<Framing, Failure> {
        if self.values("Transfer-Encoding").next().is_some() {
            // A request whose last coding is not chunked has no length: a server rejects it.
            return match self.elements("Transfer-Encoding").last() {
                Some(coding) if coding.eq_ignore_ascii_case("chunked") => Ok(Framing::Chunked),
                _ => Err(Failure::Unframeable),
            };
        }
        Ok(self
            .content_length()?
            .map_or(Framing::Length(0), Framing::Length))
    }

    /// How the body of a response to a `method` request is framed (RFC 9112 §6.3).
    pub(crate) fn response_framing(&self, method: &str) -> Result<Framing, Failure> {
        let status = self.status().ok_or(Failure::Unframeable)?;
        if method.eq_ignore_ascii_case("HEAD") || status < 200 || status == 204 || status == 304 {
            return Ok(Framing::Length(0));
        }
        if self.values("Transfer-Encoding").next().is_some() {
            return Ok(match self.elements("Transfer-Encoding").last() {
                Some(coding) if coding.eq_ignore_ascii_case("chunked") => Framing::Chunked,
                _ => Framing::UntilClose,
            });
        }
        Ok(self
            .content_length()?
            .map_or(Framing::UntilClose, Framing::Length))
    }

    /// Content-Length, if given: every value must be the same number (a list of equal
    /// values is allowed, differing ones are an error).
    fn content_length(&self) -> Result<Option<usize>, Failure> {
        let mut length = None;
        for element in self.elements("Content-Length") {
            if !element.bytes().all(|byte| byte.is_ascii_digit()) {
                return Err(Failure::Unframeable);
            }
            let value: usize = element.parse().map_err(|_| Failure::Unframeable)?;
            if value > MAX_BODY || length.is_some_and(|length| length != value) {
                return Err(Failure::Unframeable);
            }
            length = Some(value);
        }
        if length.is_none() && self.values("Content-Length").next().is_some() {
            return Err(Failure::Unframeable); // present but empty
        }
        Ok(length)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    Length(usize),
    Chunked,
    /// The body ends when the sender closes the connection (responses only).
    UntilClose,
}

/// One whole message.
#[derive(Debug)]
pub(crate) struct Message {
    pub(crate) head: Head,
    /// Every byte of it as it came, head and framed body.
    pub(crate) raw: Vec<u8>,
    /// The body without its framing (chunked coding undone).
    pub(crate) body: Vec<u8>,
}

/// A connection and the bytes read off it that no message has taken yet.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) stream: TcpStream,
    pub(crate) buffer: Vec<u8>,
}

impl Connection {
    pub(crate) fn new(stream: TcpStream) -> io::Result<Connection> {
        stream.set_read_timeout(Some(POLL))?;
        Ok(Connection {
            stream,
            buffer: Vec::new(),
        })
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        self.stream.write_all(bytes).map_err(|_| Failure::Broken)
    }

    /// Reads more bytes onto the buffer; `false` at the end of the stream.
    fn fill(&mut self, epoch: Epoch<'_>) -> Result<bool, Failure> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if epoch.changed() {
                return Err(Failure::Cut);
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.buffer.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(error) if is_timeout(&error) => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(Failure::Broken),
            }
        }
    }

    /// Reads until the buffer holds `length` bytes.
    fn fill_to(&mut self, length: usize, epoch: Epoch<'_>) -> Result<(), Failure> {
        while self.buffer.len() < length {
            if !self.fill(epoch)? {
                return Err(Failure::Broken);
            }
        }
        Ok(())
    }

    /// The line starting at `from`: where its text ends and where the next line starts.
    /// A bare LF ends a line too.
    fn line(&mut self, from: usize, epoch: Epoch<'_>) -> Result<(usize, usize), Failure> {
        let mut searched = from;
        loop {
            if let Some(offset) = self.buffer[searched..].iter().position(|&b| b == b'\n') {
                let newline = searched + offset;
                let end = if newline > from && self.buffer[newline - 1] == b'\r' {
                    newline - 1
                } else {
                    newline
                };
                return Ok((end, newline + 1));
            }
            searched = self.buffer.len();
            if searched - from > MAX_HEAD {
                return Err(Failure::Unframeable);
            }
            if !self.fill(epoch)? {
                return Err(Failure::Broken);
            }
        }
    }

    /// Reads a head off the front of the buffer, leaving it there; returns it and its
    /// length. `None` if the peer closed before sending a byte of it.
    pub(crate) fn head(&mut self, epoch: Epoch<'_>) -> Result<Option<(Head, usize)>, Failure> {
        while self.buffer.is_empty() {
            if !self.fill(epoch)? {
                return Ok(None);
            }
        }
        // A server ignores empty lines before a request line (RFC 9112 §2.2).
        let mut at = 0;
        let (start_end, mut next) = loop {
            let (end, next) = self.line(at, epoch)?;
            if end > at {
                break (end, next);
            }
            at = next;
            if at > MAX_HEAD {
                return Err(Failure::Unframeable);
            }
        };
        let start = String::from_utf8_lossy(&self.buffer[at..start_end]).into_owned();
        let raw_start = self.buffer[at..next].to_vec();
        let mut fields = Vec::new();
        loop {
            let (end, after) = self.line(next, epoch)?;
            if after > MAX_HEAD {
                return Err(Failure::Unframeable);
            }
            let line = &self.buffer[next..end];
            if line.is_empty() {
                return Ok(Some((
                    Head {
                        start,
                        raw_start,
                        fields,
                    },
                    after,
                )));
            }
            // No folded lines, no space before the colon (RFC 9112 §5).
            let colon = line
                .iter()
                .position(|&b| b == b':')
                .ok_or(Failure::Unframeable)?;
            let name = &line[..colon];
            if name.is_empty()
                || name
                    .iter()
                    .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
            {
                return Err(Failure::Unframeable);
            }
            fields.push(Field {
                name: String::from_utf8_lossy(name).into_owned(),
                value: String::from_utf8_lossy(line[colon + 1..].trim_ascii()).into_owned(),
                raw: self.buffer[next..after].to_vec(),
            });
            next = after;
        }
    }

    /// Reads the body that follows a head of `head_length` bytes, and takes the whole
    /// message off the buffer.
    pub(crate) fn body(
        &mut self,
        head: Head,
        head_length: usize,
        framing: Framing,
        epoch: Epoch<'_>,
    ) -> Result<Message, Failure> {
        let (end, body) = match framing {
            Framing::Length(length) => {
                let end = head_length + length;
                self.fill_to(end, epoch)?;
                (end, self.buffer[head_length..end].to_vec())
            }
            Framing::Chunked => self.chunked(head_length, epoch)?,
            Framing::UntilClose => {
                while self.fill(epoch)? {
                    if self.buffer.len() - head_length > MAX_BODY {
                        return Err(Failure::Unframeable);
                    }
                }
                let end = self.buffer.len();
                (end, self.buffer[head_length..].to_vec())
            }
        };
        let raw = self.buffer.drain(..end).collect();
        Ok(Message { head, raw, body })
    }

    /// A chunked body starting at `from`: where it ends (trailers included) and its data.
    fn chunked(&mut self, mut from: usize, epoch: Epoch<'_>) -> Result<(usize, Vec<u8>), Failure> {
        let start = from;
        let mut body = Vec::new();
        loop {
            // The data is capped below; this caps the framing around it (many tiny chunks
            // with long extensions, endless trailers).
            if from - start > MAX_BODY + MAX_HEAD {
                return Err(Failure::Unframeable);
            }
            let (end, next) = self.line(from, epoch)?;
            let line = &self.buffer[from..end];
            // chunk-size [ ; extensions ]
            let size = line
                .split(|&b| b == b';')
                .next()
                .map(<[u8]>::trim_ascii)
                .filter(|size| !size.is_empty() && size.iter().all(u8::is_ascii_hexdigit))
                .and_then(|size| std::str::from_utf8(size).ok())
                .and_then(|size| usize::from_str_radix(size, 16).ok())
                .ok_or(Failure::Unframeable)?;
            from = next;
            if size == 0 {
                // Trailer fields, up to an empty line.
                loop {
                    if from - start > MAX_BODY + MAX_HEAD {
                        return Err(Failure::Unframeable);
                    }
                    let (end, next) = self.line(from, epoch)?;
                    let empty = end == from;
                    from = next;
                    if empty {
                        return Ok((from, body));
                    }
                }
            }
            if size > MAX_BODY - body.len() {
                return Err(Failure::Unframeable);
            }
            self.fill_to(from + size, epoch)?;
            body.extend_from_slice(&self.buffer[from..from + size]);
            // The data ends with a line end and nothing else.
            let (end, next) = self.line(from + size, epoch)?;
            if end != from + size {
                return Err(Failure::Unframeable);
            }
            from = next;
        }
    }
}
