//! What the node's two HTTP clients share (the admin CLI, [`crate::client`], and the EVM
//! ledger's JSON-RPC, `ledger::evm::rpc`): the URLs they take, a [`ureq`] agent set up
//! alike for both, the trust anchors of `https://`, and what a failed exchange means.
//!
//! The agent never follows redirects (a `3xx` is an answer like any other), never turns
//! an error status into an error (the caller reads it), uses no proxy (none from the
//! environment either: the endpoint is reached directly, as configured), and gives up
//! at one deadline for the whole exchange: resolving, connecting, the TLS handshake,
//! sending, and reading the whole answer.

use std::fmt;
use std::io;
use std::path::Path;
use std::time::Duration;

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

#[cfg(test)]
mod tests;

/// The most bytes a response's status line and headers may take.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The most bytes a response's body may take.
pub const MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;
/// The most bytes read from a CA file.
const MAX_CA_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// `http://` or `https://`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP (default port 80).
    Http,
    /// HTTP over TLS (default port 443).
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// An `http(s)://[userinfo@]host[:port][/path][?query]` URL. The host is a name, an IPv4
/// address or a bracketed IPv6 address; the port defaults to the scheme's.
///
/// Shown ([`Display`](fmt::Display) and [`Debug`]) as `scheme://host:port` only: the user
/// info and the path and query (where a provider puts an API key) are never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct Url {
    scheme: Scheme,
    host: String,
    port: u16,
    /// The path and query as given (`/` when there is none).
    target: String,
    /// The user info as given (still %-encoded).
    userinfo: Option<String>,
}

/// A URL [`Url::parse`] refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid URL {url:?}: {reason}")]
pub struct UrlError {
    /// The text given.
    pub url: String,
    /// What is wrong with it (never quoting the URL).
    pub reason: String,
}

impl Url {
    /// Parses `http(s)://[userinfo@]host[:port][/path][?query]`. A fragment is refused (it
    /// would never be sent).
    pub fn parse(text: &str) -> Result<Url, UrlError> {
        let fail = |reason: &str| UrlError {
            url: text.to_owned(),
            reason: reason.to_owned(),
        };
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(fail("expected http://host:port or https://host:port"));
        };
        let scheme = if scheme.eq_ignore_ascii_case("http") {
            Scheme::Http
        } else if scheme.eq_ignore_ascii_case("https") {
            Scheme::Https
        } else {
            return Err(fail("only http:// and https:// URLs are supported"));
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if tail.contains('#') {
            return Err(fail("a fragment (#…) is not supported"));
        }
        if !is_uri_text(tail) {
            return Err(fail(
                "the path or query holds a character a URL cannot (escape it with %XX)",
            ));
        }
        let target = match tail {
            "" => "/".to_owned(),
            query if query.starts_with('?') => format!("/{query}"),
            path => path.to_owned(),
        };
        let (userinfo, authority) = match authority.rsplit_once('@') {
            Some((userinfo, host)) => (Some(userinfo.to_owned()), host),
            None => (None, authority),
        };
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
            None => scheme.default_port(),
            Some(text) => match text.parse::<u16>() {
                Ok(port) if port != 0 && text.bytes().all(|b| b.is_ascii_digit()) => port,
                _ => return Err(fail("the port must be a number from 1 to 65535")),
            },
        };
        Ok(Url {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            target,
            userinfo,
        })
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host, without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host:port` (an IPv6 host in brackets).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The path and query (`/` when none was given). May hold a secret: never show it.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The user info, still %-encoded. A secret: never show it.
    pub fn userinfo(&self) -> Option<&str> {
        self.userinfo.as_deref()
    }

    /// The URL a request for `target` (a path and query, `/…`) goes to: this URL's scheme
    /// and authority, no user info. A secret if `target` is one.
    pub fn request_uri(&self, target: &str) -> String {
        format!("{}://{}{target}", self.scheme.as_str(), self.authority())
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme.as_str(), self.authority())
    }
}

impl fmt::Debug for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Url");
        debug.field("origin", &self.to_string());
        if self.target != "/" {
            debug.field("target", &"<redacted>");
        }
        if self.userinfo.is_some() {
            debug.field("userinfo", &"<redacted>");
        }
        debug.finish()
    }
}

/// Whether `text` is a path and query as a URL may carry them: RFC 3986's unreserved and
/// sub-delimiter characters, `:@/?`, and well-formed `%XX` escapes.
fn is_uri_text(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            match bytes.get(i + 1..i + 3) {
                Some(pair) if pair.iter().all(u8::is_ascii_hexdigit) => i += 3,
                _ => return false,
            }
            continue;
        }
        if !(b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?".contains(&b)) {
            return false;
        }
        i += 1;
    }
    true
}

/// Which certificates an `https://` endpoint's must chain to.
#[derive(Clone)]
pub enum Trust {
    /// The system's trust store (on Linux, `/etc/ssl/certs`, or `SSL_CERT_FILE` /
    /// `SSL_CERT_DIR`).
    System,
    /// These CA certificates only.
    Only(Vec<Certificate<'static>>),
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trust::System => f.write_str("System"),
            Trust::Only(certificates) => write!(f, "Only({} certificates)", certificates.len()),
        }
    }
}

/// The CA certificates of a PEM file (`-----BEGIN CERTIFICATE-----` blocks; anything else
/// in it, such as a key, is ignored). A file that cannot be read, holds no certificate,
/// or holds one that is not a usable X.509 CA certificate is refused, with the reason.
pub fn read_ca_file(path: &Path) -> Result<Vec<Certificate<'static>>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|error| format!("cannot read it: {error}"))?;
    let mut text = Vec::new();
    file.take(MAX_CA_FILE_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(|error| format!("cannot read it: {error}"))?;
    if text.len() as u64 > MAX_CA_FILE_BYTES {
        return Err(format!(
            "it is larger than {MAX_CA_FILE_BYTES} bytes: not a PEM file of CA certificates"
        ));
    }
    let mut certificates = Vec::new();
    for item in ureq::tls::parse_pem(&text) {
        match item {
            Ok(PemItem::Certificate(certificate)) => certificates.push(certificate),
            Ok(_) => {}
            Err(error) => return Err(format!("it is not valid PEM: {error}")),
        }
    }
    if certificates.is_empty() {
        return Err("it holds no certificate (expected PEM: -----BEGIN CERTIFICATE-----)".into());
    }
    let mut store = rustls::RootCertStore::empty();
    for (i, certificate) in certificates.iter().enumerate() {
        let der = rustls::pki_types::CertificateDer::from(certificate.der());
        store.add(der).map_err(|error| {
            format!(
                "certificate {} of {} is not a usable CA certificate: {error}",
                i + 1,
                certificates.len()
            )
        })?;
    }
    Ok(certificates)
}

/// What an agent is for.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// The deadline of each exchange, from resolving the host to the last byte of the
    /// answer.
    pub timeout: Duration,
    /// Whom `https://` endpoints must be vouched for by.
    pub trust: Trust,
    /// The `User-Agent` header.
    pub user_agent: &'static str,
}

/// An agent as described in the module's documentation. It keeps idle connections open
/// for reuse (keep-alive), so one agent per endpoint is the way to use it.
pub fn agent(options: AgentOptions) -> ureq::Agent {
    let roots = match options.trust {
        Trust::System => RootCerts::PlatformVerifier,
        Trust::Only(certificates) => RootCerts::new_with_certs(&certificates),
    };
    ureq::Agent::config_builder()
        .timeout_global(Some(options.timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .user_agent(options.user_agent)
        .max_response_header_size(MAX_HEAD_BYTES)
        .tls_config(TlsConfig::builder().root_certs(roots).build())
        .build()
        .new_agent()
}

/// Why an exchange failed, as the node's clients tell it apart. Messages never quote the
/// URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The deadline passed.
    Timeout,
    /// No connection: refused, reset or dropped, no such host.
    Unreachable(String),
    /// The TLS handshake failed.
    Tls {
        /// The server's certificate was refused (not trusted, expired, for another name).
        certificate: bool,
        /// What rustls said.
        detail: String,
    },
    /// The answer is not HTTP as the client reads it, or is larger than its limits.
    Malformed(String),
    /// The request could not be made as given.
    Request(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Timeout => f.write_str("timed out"),
            Failure::Unreachable(reason) => f.write_str(reason),
            Failure::Tls {
                certificate: true,
                detail,
            } => write!(
                f,
                "TLS handshake failed: the server's certificate is not trusted ({detail})"
            ),
            Failure::Tls {
                certificate: false,
                detail,
            } => write!(f, "TLS handshake failed: {detail}"),
            Failure::Malformed(reason) => write!(f, "malformed response: {reason}"),
            Failure::Request(reason) => write!(f, "invalid request: {reason}"),
        }
    }
}

impl From<ureq::Error> for Failure {
    fn from(error: ureq::Error) -> Failure {
        use ureq::Error;
        match error {
            Error::Timeout(_) => Failure::Timeout,
            Error::Io(error) => from_io(error),
            Error::Rustls(error) => tls(&error),
            Error::Tls(reason) => Failure::Tls {
                certificate: false,
                detail: reason.to_owned(),
            },
            Error::Pem(_) | Error::TlsRequired => Failure::Tls {
                certificate: false,
                detail: error.to_string(),
            },
            Error::HostNotFound => Failure::Unreachable("the host name does not resolve".into()),
            Error::ConnectionFailed => Failure::Unreachable("no connection could be made".into()),
            Error::Protocol(error) => Failure::Malformed(error.to_string()),
            Error::LargeResponseHeader(_, limit) => {
                Failure::Malformed(format!("the status line and headers exceed {limit} bytes"))
            }
            Error::BodyExceedsLimit(limit) => {
                Failure::Malformed(format!("the body exceeds {limit} bytes"))
            }
            Error::BodyStalled => Failure::Malformed("the body stopped short".into()),
            // Both may quote the URL (with what it hides).
            Error::BadUri(_) => Failure::Request("the URL is not one the client can use".into()),
            Error::RequireHttpsOnly(_) | Error::ConnectProxyFailed(_) => {
                Failure::Request("refused by the client's settings".into())
            }
            Error::Http(error) => Failure::Request(error.to_string()),
            other => Failure::Request(other.to_string()),
        }
    }
}

fn from_io(error: io::Error) -> Failure {
    if matches!(
        error.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    ) {
        return Failure::Timeout;
    }
    if let Some(inner) = error.get_ref() {
        if let Some(rustls) = inner.downcast_ref::<rustls::Error>() {
            return tls(rustls);
        }
        if let Some(ureq) = inner.downcast_ref::<ureq::Error>() {
            // A ureq error carried through an io::Error (a body reader's): not the IO's.
            return match ureq {
                ureq::Error::BodyExceedsLimit(limit) => {
                    Failure::Malformed(format!("the body exceeds {limit} bytes"))
                }
                ureq::Error::Timeout(_) => Failure::Timeout,
                other => Failure::Malformed(other.to_string()),
            };
        }
    }
    let reason = match error.kind() {
        io::ErrorKind::UnexpectedEof => {
            "the connection closed before a whole answer came".to_owned()
        }
        _ => error.to_string(),
    };
    Failure::Unreachable(reason)
}

fn tls(error: &rustls::Error) -> Failure {
    Failure::Tls {
        certificate: matches!(
            error,
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
        ),
        detail: error.to_string(),
    }
}
