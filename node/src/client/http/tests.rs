//! The HTTP/1.1 client's pieces: URL parsing, request bytes, response parsing, limits.
//! (Chunked bodies are not implemented, by design: they are tested to be refused.)

use std::io::{self, Read};

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
    assert_eq!(parsed.host(), "127.0.0.1");
    assert_eq!(parsed.port(), 9615);
    assert_eq!(parsed.authority(), "127.0.0.1:9615");
    assert_eq!(parsed.to_string(), "http://127.0.0.1:9615");

    assert_eq!(url("http://127.0.0.1:9615/"), parsed, "a trailing slash");
    assert_eq!(url("HTTP://Node-1.example:80").host(), "node-1.example");
    assert_eq!(
        url("http://localhost").port(),
        80,
        "the port defaults to 80"
    );

    let v6 = url("http://[::1]:9615");
    assert_eq!(v6.host(), "::1");
    assert_eq!(v6.authority(), "[::1]:9615");
    assert_eq!(v6.to_string(), "http://[::1]:9615");
    assert_eq!(url("http://[::1]").port(), 80);
}

#[test]
fn urls_refused_with_the_reason() {
    let cases = [
        ("127.0.0.1:9615", "expected http://host:port"),
        ("https://node:9615", "https is not supported"),
        ("ftp://node", "only http://"),
        (
            "http://node:9615/admin",
            "a path, query or fragment is not supported",
        ),
        ("http://node:9615?x=1", "a path, query or fragment"),
        ("http://node:9615#x", "a path, query or fragment"),
        ("http://user@node:9615", "user info"),
        ("http://", "no host"),
        ("http://:9615", "no host"),
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
fn a_post_request_carries_headers_and_a_sized_json_body() {
    let body = br#"{"reason":"drill"}"#;
    let bytes = format_request(
        &url("http://127.0.0.1:9615"),
        &Request {
            method: "POST",
            target: "/admin/breaker/force-open",
            headers: &[("Authorization", "Bearer s3cret"), ("X-Actor", "alice")],
            json_body: Some(body),
        },
    )
    .expect("formats");
    let text = String::from_utf8(bytes).expect("ASCII");
    assert_eq!(
        text,
        "POST /admin/breaker/force-open HTTP/1.1\r\n\
         Host: 127.0.0.1:9615\r\n\
         Connection: close\r\n\
         Authorization: Bearer s3cret\r\n\
         X-Actor: alice\r\n\
         Content-Type: application/json\r\n\
         Content-Length: 18\r\n\
         \r\n\
         {\"reason\":\"drill\"}"
    );
}

#[test]
fn a_get_request_has_no_body_and_a_bodiless_post_says_so() {
    let get = format_request(
        &url("http://[::1]:1"),
        &Request {
            method: "GET",
            target: "/admin/audit?after=3&limit=2",
            headers: &[],
            json_body: None,
        },
    )
    .expect("formats");
    assert_eq!(
        String::from_utf8(get).expect("ASCII"),
        "GET /admin/audit?after=3&limit=2 HTTP/1.1\r\nHost: [::1]:1\r\nConnection: close\r\n\r\n"
    );
    let post = format_request(
        &url("http://h:1"),
        &Request {
            method: "POST",
            target: "/x",
            headers: &[],
            json_body: None,
        },
    )
    .expect("formats");
    assert!(
        String::from_utf8(post)
            .expect("ASCII")
            .ends_with("Content-Length: 0\r\n\r\n")
    );
}

#[test]
fn a_request_that_would_split_is_refused() {
    let base = url("http://h:1");
    let request = |method, target, headers| Request {
        method,
        target,
        headers,
        json_body: None,
    };
    let cases = [
        request("GET", "/a b", &[]),
        request("GET", "/a\r\nX: y", &[]),
        request("GET", "a", &[]),
        request("get", "/a", &[]),
        request("", "/a", &[]),
        request("GET", "/a", &[("X-Actor", "eve\r\nX-Admin: yes")]),
        request("GET", "/a", &[("X-Actor", "tab\there")]),
        request("GET", "/a", &[("Bad Name", "v")]),
        request("GET", "/a", &[("Bad:Name", "v")]),
        request("GET", "/a", &[("", "v")]),
    ];
    for case in cases {
        match format_request(&base, &case) {
            Err(HttpError::InvalidRequest(_)) => {}
            other => panic!("{case:?}: {other:?}"),
        }
    }
}

fn parse(bytes: &[u8]) -> Result<Response, HttpError> {
    read_response(&mut &bytes[..], MAX_HEAD_BYTES, MAX_BODY_BYTES)
}

#[test]
fn a_response_with_content_length() {
    let response = parse(
        b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 9\r\n\r\n{\"id\": 0}",
    )
    .expect("parses");
    assert_eq!(response.status, 201);
    assert_eq!(response.reason, "Created");
    assert_eq!(response.header("Content-Type"), Some("application/json"));
    assert_eq!(response.header("CONTENT-LENGTH"), Some("9"));
    assert_eq!(response.header("x-missing"), None);
    assert_eq!(response.body, b"{\"id\": 0}");
}

#[test]
fn bytes_past_content_length_are_not_part_of_the_body() {
    let response = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}garbage").expect("parses");
    assert_eq!(response.body, b"{}");
}

#[test]
fn a_response_without_content_length_is_read_to_the_end() {
    let response = parse(b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\n{\"a\":\r\n1}\n").expect("parses");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"{\"a\":\r\n1}\n");
    let empty = parse(b"HTTP/1.1 404 Not Found\r\n\r\n").expect("parses");
    assert_eq!((empty.status, empty.body.len()), (404, 0));
}

#[test]
fn status_lines_and_line_ends() {
    let bare_lf = parse(b"HTTP/1.1 401 Unauthorized\nContent-Length: 2\n\n{}").expect("LF only");
    assert_eq!((bare_lf.status, bare_lf.body.as_slice()), (401, &b"{}"[..]));
    let no_reason = parse(b"HTTP/1.1 204\r\n\r\n").expect("no reason phrase");
    assert_eq!((no_reason.status, no_reason.reason.as_str()), (204, ""));
    let spaced = parse(b"HTTP/1.1 409 Conflict Here\r\nA:b\r\n\r\n").expect("parses");
    assert_eq!(spaced.reason, "Conflict Here");
    assert_eq!(spaced.header("a"), Some("b"));

    for bad in [
        &b"HTTP/2 200 OK\r\n\r\n"[..],
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 099 OK\r\n\r\n",
        b"HTTP/1.1 600 OK\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"ICY 200 OK\r\n\r\n",
        b"\r\n\r\n",
        b"<html>\r\n\r\n",
    ] {
        match parse(bad) {
            Err(HttpError::Malformed(message)) => {
                assert!(message.contains("status line"), "{message}")
            }
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(bad)),
        }
    }
}

#[test]
fn malformed_headers_are_refused() {
    for (bad, why) in [
        (
            &b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n"[..],
            "without a colon",
        ),
        (b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", "bad header name"),
        (b"HTTP/1.1 200 OK\r\nA: b\r\n  folded\r\n\r\n", "folded"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n",
            "bad Content-Length",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "bad Content-Length",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
            "conflicting Content-Length",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\n{}",
            "conflicting Content-Length",
        ),
    ] {
        match parse(bad) {
            Err(HttpError::Malformed(message)) => assert!(message.contains(why), "{message}"),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(bad)),
        }
    }
    // Repeated but equal values are one length.
    let same = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2, 2\r\n\r\n{}")
        .expect("agreeing lengths");
    assert_eq!(same.body, b"{}");
}

#[test]
fn truncated_answers_are_errors() {
    for (bad, why) in [
        (&b""[..], "closed without an answer"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "closed inside"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}",
            "the body ended after 2 of 10 bytes",
        ),
    ] {
        match parse(bad) {
            Err(HttpError::Malformed(message)) => assert!(message.contains(why), "{message}"),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(bad)),
        }
    }
}

#[test]
fn chunked_and_interim_responses_are_refused_not_misread() {
    match parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n") {
        Err(HttpError::Unsupported(message)) => assert!(message.contains("chunked"), "{message}"),
        other => panic!("{other:?}"),
    }
    match parse(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n") {
        Err(HttpError::Unsupported(message)) => assert!(message.contains("100"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn limits_bound_what_is_read() {
    let mut big_head = b"HTTP/1.1 200 OK\r\n".to_vec();
    big_head.extend(std::iter::repeat_n(b'x', 200));
    big_head.extend_from_slice(b": y\r\n\r\n");
    match read_response(&mut &big_head[..], 100, 100) {
        Err(HttpError::TooLarge(message)) => assert!(message.contains("headers"), "{message}"),
        other => panic!("{other:?}"),
    }
    match read_response(
        &mut &b"HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n"[..],
        100,
        100,
    ) {
        Err(HttpError::TooLarge(message)) => assert!(message.contains("101"), "{message}"),
        other => panic!("{other:?}"),
    }
    let mut endless = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
    endless.extend(std::iter::repeat_n(b'x', 300));
    match read_response(&mut &endless[..], 100, 100) {
        Err(HttpError::TooLarge(message)) => assert!(message.contains("body"), "{message}"),
        other => panic!("{other:?}"),
    }
    match parse(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n") {
        Err(HttpError::TooLarge(_)) => {}
        other => panic!("{other:?}"),
    }
}

/// A reader that hands out one byte at a time, interrupted between bytes.
struct Trickle<'a> {
    bytes: &'a [u8],
    interrupt: bool,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.interrupt = !self.interrupt;
        if self.interrupt {
            return Err(io::ErrorKind::Interrupted.into());
        }
        match (self.bytes.split_first(), buf.first_mut()) {
            (Some((first, rest)), Some(slot)) => {
                *slot = *first;
                self.bytes = rest;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

#[test]
fn a_response_arriving_byte_by_byte_with_interruptions() {
    let mut reader = Trickle {
        bytes: b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
        interrupt: false,
    };
    let response = read_response(&mut reader, MAX_HEAD_BYTES, MAX_BODY_BYTES).expect("parses");
    assert_eq!(response.body, b"{\"a\":1}");
}

#[test]
fn a_read_error_is_a_connection_error() {
    struct Reset;
    impl Read for Reset {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::ErrorKind::ConnectionReset.into())
        }
    }
    let error = read_response(&mut Reset, 100, 100).expect_err("fails");
    assert!(matches!(error, HttpError::Io(_)), "{error:?}");
    assert!(error.is_connection());
    assert!(!HttpError::Malformed("x".into()).is_connection());
}
