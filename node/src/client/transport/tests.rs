//! URLs as the node's clients take them, how they are shown, and what a failed exchange
//! is called.

use std::io;

use super::*;

fn url(text: &str) -> Url {
    Url::parse(text).expect("a valid URL")
}

fn url_error(text: &str) -> String {
    match Url::parse(text) {
        Ok(url) => panic!("{text:?} parsed as {url:?}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn urls_with_host_and_port() {
    let parsed = url("http://127.0.0.1:9615");
    assert_eq!(parsed.scheme(), Scheme::Http);
    assert_eq!(parsed.host(), "127.0.0.1");
    assert_eq!(parsed.port(), 9615);
    assert_eq!(parsed.authority(), "127.0.0.1:9615");
    assert_eq!(parsed.target(), "/");
    assert_eq!(parsed.to_string(), "http://127.0.0.1:9615");

    assert_eq!(url("http://127.0.0.1:9615/"), parsed, "a trailing slash");
    assert_eq!(url("HTTP://Node-1.example:80").host(), "node-1.example");
    assert_eq!(url("http://localhost").port(), 80, "http defaults to 80");
    let https = url("HTTPS://localhost");
    assert_eq!((https.scheme(), https.port()), (Scheme::Https, 443));
    assert_eq!(https.to_string(), "https://localhost:443");

    let v6 = url("http://[::1]:9615");
    assert_eq!(v6.host(), "::1");
    assert_eq!(v6.authority(), "[::1]:9615");
    assert_eq!(v6.to_string(), "http://[::1]:9615");
    assert_eq!(url("https://[::1]").port(), 443);
    assert_eq!(
        v6.request_uri("/admin/audit?after=3"),
        "http://[::1]:9615/admin/audit?after=3"
    );
}

#[test]
fn a_path_query_and_user_info_are_kept_and_never_shown() {
    let parsed = url("https://us%40er:pa55@rpc.example:8443/v3/KEY-123?x=1&y=%2F");
    assert_eq!(parsed.userinfo(), Some("us%40er:pa55"));
    assert_eq!(parsed.target(), "/v3/KEY-123?x=1&y=%2F");
    assert_eq!(
        parsed.request_uri(parsed.target()),
        "https://rpc.example:8443/v3/KEY-123?x=1&y=%2F",
        "no user info in what is requested"
    );
    let shown = format!("{parsed} {parsed:?} {parsed:#?}");
    for secret in ["pa55", "us%40er", "KEY-123", "x=1"] {
        assert!(!shown.contains(secret), "{secret}: {shown}");
    }
    assert!(shown.contains("https://rpc.example:8443"), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
    assert_eq!(url("http://h:1?q=2").target(), "/?q=2");
    assert_eq!(
        format!("{:?}", url("http://h:1")),
        "Url { origin: \"http://h:1\" }"
    );
}

#[test]
fn urls_refused_with_the_reason() {
    let cases = [
        ("127.0.0.1:9615", "expected http://host:port"),
        ("ftp://node", "only http:// and https://"),
        ("http://node:9615#x", "a fragment"),
        ("http://node:9615/a b", "escape it with %XX"),
        ("http://node:9615/%zz", "escape it with %XX"),
        ("http://node:9615/%2", "escape it with %XX"),
        ("http://node:9615/\u{e9}", "escape it with %XX"),
        ("http://node:9615/a\r\nb", "escape it with %XX"),
        ("http://", "no host"),
        ("http://:9615", "no host"),
        ("http://user@", "no host"),
        ("http://node:", "the port must be"),
        ("http://node:0", "the port must be"),
        ("http://node:65536", "the port must be"),
        ("http://node:+80", "the port must be"),
        ("http://node:80:81", "too many `:`"),
        ("http://no de:80", "the host may hold only"),
        ("http://no\r\nde:80", "the host may hold only"),
        ("http://::1:9615", "too many `:`"),
        ("http://[::1:9615", "closing `]`"),
        ("http://[nope]:9615", "not an IPv6 address"),
        ("http://[::1]9615", "expected `:port`"),
    ];
    for (text, reason) in cases {
        let error = url_error(text);
        assert!(
            error.contains(reason),
            "{text:?}: {error:?} should contain {reason:?}"
        );
        assert!(
            error.contains(&format!("{text:?}")),
            "names the URL: {error}"
        );
    }
}

#[test]
fn failures_are_told_apart() {
    let io = |kind: io::ErrorKind| Failure::from(ureq::Error::Io(io::Error::from(kind)));
    assert_eq!(io(io::ErrorKind::TimedOut), Failure::Timeout);
    assert_eq!(io(io::ErrorKind::WouldBlock), Failure::Timeout);
    assert!(matches!(
        io(io::ErrorKind::ConnectionRefused),
        Failure::Unreachable(_)
    ));
    assert!(matches!(
        io(io::ErrorKind::ConnectionReset),
        Failure::Unreachable(_)
    ));
    assert_eq!(
        io(io::ErrorKind::UnexpectedEof),
        Failure::Unreachable("the connection closed before a whole answer came".into())
    );
    assert_eq!(
        Failure::from(ureq::Error::Timeout(ureq::Timeout::Global)),
        Failure::Timeout
    );
    assert!(matches!(
        Failure::from(ureq::Error::HostNotFound),
        Failure::Unreachable(_)
    ));
    assert_eq!(
        Failure::from(ureq::Error::BodyExceedsLimit(7)).to_string(),
        "malformed response: the body exceeds 7 bytes"
    );
    // A ureq error carried inside an io::Error, as a body reader returns it.
    let wrapped = io::Error::other(ureq::Error::BodyExceedsLimit(7));
    assert_eq!(
        Failure::from(ureq::Error::Io(wrapped)),
        Failure::Malformed("the body exceeds 7 bytes".into())
    );
    // A refused certificate, as rustls reports it through the handshake's io::Error.
    let untrusted = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
    let failure = Failure::from(ureq::Error::Io(io::Error::new(
        io::ErrorKind::InvalidData,
        untrusted.clone(),
    )));
    assert!(
        matches!(
            failure,
            Failure::Tls {
                certificate: true,
                ..
            }
        ),
        "{failure:?}"
    );
    assert!(
        failure.to_string().contains("certificate is not trusted"),
        "{failure}"
    );
    assert_eq!(Failure::from(ureq::Error::Rustls(untrusted)), failure);
    let failure = Failure::from(ureq::Error::Rustls(rustls::Error::HandshakeNotComplete));
    assert!(
        matches!(
            failure,
            Failure::Tls {
                certificate: false,
                ..
            }
        ),
        "{failure:?}"
    );
    // May quote the URL: never passed on.
    let failure = Failure::from(ureq::Error::BadUri("https://h/v3/KEY".into()));
    assert!(!failure.to_string().contains("KEY"), "{failure}");
}
