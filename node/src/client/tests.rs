//! The client commands: flags and environment, the call each command makes, how answers
//! and errors are mapped, and whole exchanges with a fake node on a local socket.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use clap::{CommandFactory, Parser};
use serde_json::json;

use super::*;
use crate::cli::{Cli, Command};

const TOKEN: &str = "0123456789abcdef-token";

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Parses `node <args>` into an admin command.
fn admin(args: &[&str]) -> AdminCommand {
    let cli = Cli::try_parse_from(std::iter::once("node").chain(args.iter().copied()))
        .unwrap_or_else(|error| panic!("{args:?}: {error}"));
    match cli.command {
        Some(Command::Admin(command)) => command,
        other => panic!("{args:?} parsed as {other:?}"),
    }
}

fn usage_error(result: Result<Connection, ClientError>) -> String {
    match result {
        Err(error @ ClientError::Usage(_)) => {
            assert_eq!(error.exit_code(), 2);
            error.to_string()
        }
        other => panic!("expected a usage error, got {other:?}"),
    }
}

#[test]
fn the_command_line_is_well_formed() {
    Cli::command().debug_assert();
    assert!(
        Cli::try_parse_from(["node"])
            .expect("no subcommand")
            .command
            .is_none()
    );
    assert!(matches!(
        Cli::try_parse_from(["node", "run", "--listen", "127.0.0.1:0"])
            .expect("run")
            .command,
        Some(Command::Run(_))
    ));
}

#[test]
fn usage_errors_are_clap_errors() {
    for args in [
        &["node", "breaker"][..],
        &["node", "breaker", "force-open"],
        &["node", "breaker", "force-open", "--reason"],
        &["node", "disburse", "queue", "--amount", "1"],
        &["node", "disburse", "queue", "--destination", "0xab"],
        &["node", "disburse", "show"],
        &["node", "disburse", "show", "x"],
        &["node", "disburse", "cancel", "3"],
        &["node", "disburse", "list", "--limit", "-1"],
        &["node", "audit", "--after", "x"],
        &["node", "run", "--token", "x"],
    ] {
        let error = Cli::try_parse_from(args).expect_err("a usage error");
        assert_eq!(error.exit_code(), 2, "{args:?}");
    }
}

#[test]
fn connection_defaults_and_the_environment() {
    let args = ConnectionArgs::default();
    let connection = connection(&args, &env(&[("TB_ADMIN_TOKEN", TOKEN)])).expect("resolves");
    assert_eq!(connection.url.to_string(), DEFAULT_URL);
    assert_eq!(connection.token, TOKEN);
    assert_eq!(connection.actor, DEFAULT_ACTOR);
    assert_eq!(connection.timeout, DEFAULT_TIMEOUT);

    let from_env = connection_for(
        &args,
        &[
            ("TB_ADMIN_TOKEN", TOKEN),
            ("TB_ADMIN_URL", "http://10.0.0.7:8000"),
            ("USER", "alice"),
        ],
    );
    assert_eq!(from_env.url.to_string(), "http://10.0.0.7:8000");
    assert_eq!(from_env.actor, "alice");

    // Empty variables count as unset.
    let empty = connection_for(
        &args,
        &[
            ("TB_ADMIN_TOKEN", TOKEN),
            ("TB_ADMIN_URL", ""),
            ("USER", ""),
        ],
    );
    assert_eq!(empty.url.to_string(), DEFAULT_URL);
    assert_eq!(empty.actor, DEFAULT_ACTOR);
}

fn connection_for(args: &ConnectionArgs, pairs: &[(&str, &str)]) -> Connection {
    connection(args, &env(pairs)).expect("resolves")
}

#[test]
fn flags_override_the_environment() {
    let args = ConnectionArgs {
        url: Some("http://[::1]:1".into()),
        token: Some("from-the-flag-000".into()),
        actor: Some("bob".into()),
    };
    let connection = connection_for(
        &args,
        &[
            ("TB_ADMIN_TOKEN", TOKEN),
            ("TB_ADMIN_URL", "http://10.0.0.7:8000"),
            ("USER", "alice"),
        ],
    );
    assert_eq!(connection.url.to_string(), "http://[::1]:1");
    assert_eq!(connection.token, "from-the-flag-000");
    assert_eq!(connection.actor, "bob");
}

#[test]
fn the_connection_flags_go_before_or_after_the_subcommand() {
    for args in [
        &[
            "breaker",
            "--url",
            "http://h:1",
            "--token",
            "t",
            "--actor",
            "a",
            "status",
        ][..],
        &[
            "breaker",
            "status",
            "--url",
            "http://h:1",
            "--token",
            "t",
            "--actor",
            "a",
        ],
        &[
            "breaker",
            "--url",
            "http://h:1",
            "status",
            "--token",
            "t",
            "--actor",
            "a",
        ],
    ] {
        let command = admin(args);
        let connection = command.connection();
        assert_eq!(connection.url.as_deref(), Some("http://h:1"), "{args:?}");
        assert_eq!(connection.token.as_deref(), Some("t"), "{args:?}");
        assert_eq!(connection.actor.as_deref(), Some("a"), "{args:?}");
    }
    let audit = admin(&["audit", "--limit", "5", "--token", "t"]);
    assert_eq!(audit.connection().token.as_deref(), Some("t"));
}

#[test]
fn the_admin_url_may_be_https_but_has_no_path_or_user_info() {
    let https = ConnectionArgs {
        url: Some("https://node.example:8443/".into()),
        ..ConnectionArgs::default()
    };
    let resolved = connection_for(&https, &[("TB_ADMIN_TOKEN", TOKEN)]);
    assert_eq!(resolved.url.to_string(), "https://node.example:8443");
    for (url, why) in [
        ("http://node:9615/admin", "a path or query is not supported"),
        ("http://node:9615?x=1", "a path or query is not supported"),
        (
            "https://admin:secret@node:9615",
            "user info (user@host) is not supported",
        ),
    ] {
        let args = ConnectionArgs {
            url: Some(url.into()),
            ..ConnectionArgs::default()
        };
        let message = usage_error(connection(&args, &env(&[("TB_ADMIN_TOKEN", TOKEN)])));
        assert!(message.starts_with("--url: invalid URL"), "{message}");
        assert!(message.contains(why), "{url}: {message}");
    }
}

#[test]
fn a_missing_token_says_how_to_give_one() {
    let message = usage_error(connection(&ConnectionArgs::default(), &env(&[])));
    assert!(message.contains("no admin token"), "{message}");
    assert!(message.contains("TB_ADMIN_TOKEN"), "{message}");
    assert!(message.contains("--token"), "{message}");
}

#[test]
fn bad_values_name_where_they_came_from() {
    let flag_url = ConnectionArgs {
        url: Some("ftp://node:9615".into()),
        ..ConnectionArgs::default()
    };
    let message = usage_error(connection(&flag_url, &env(&[("TB_ADMIN_TOKEN", TOKEN)])));
    assert!(message.starts_with("--url: invalid URL"), "{message}");
    assert!(message.contains("only http:// and https://"), "{message}");

    let message = usage_error(connection(
        &ConnectionArgs::default(),
        &env(&[("TB_ADMIN_TOKEN", TOKEN), ("TB_ADMIN_URL", "node:9615")]),
    ));
    assert!(
        message.starts_with("TB_ADMIN_URL: invalid URL"),
        "{message}"
    );

    let message = usage_error(connection(
        &ConnectionArgs::default(),
        &env(&[("TB_ADMIN_TOKEN", "line\nbreak")]),
    ));
    assert!(
        message.starts_with("TB_ADMIN_TOKEN: must be printable ASCII"),
        "{message}"
    );

    let message = usage_error(connection(
        &ConnectionArgs::default(),
        &env(&[("TB_ADMIN_TOKEN", TOKEN), ("USER", "jos\u{e9}")]),
    ));
    assert!(
        message.starts_with("USER: must be printable ASCII"),
        "{message}"
    );

    let long_actor = ConnectionArgs {
        actor: Some("a".repeat(MAX_ACTOR_BYTES + 1)),
        ..ConnectionArgs::default()
    };
    let message = usage_error(connection(&long_actor, &env(&[("TB_ADMIN_TOKEN", TOKEN)])));
    assert!(
        message.starts_with("--actor: the actor name is longer"),
        "{message}"
    );

    for (flag, args) in [
        (
            "--url",
            ConnectionArgs {
                url: Some(String::new()),
                ..ConnectionArgs::default()
            },
        ),
        (
            "--token",
            ConnectionArgs {
                token: Some(String::new()),
                ..ConnectionArgs::default()
            },
        ),
        (
            "--actor",
            ConnectionArgs {
                actor: Some(String::new()),
                ..ConnectionArgs::default()
            },
        ),
    ] {
        let message = usage_error(connection(&args, &env(&[("TB_ADMIN_TOKEN", TOKEN)])));
        assert_eq!(message, format!("{flag}: must not be empty"));
    }
}

#[test]
fn each_command_makes_its_call() {
    let cases = [
        (&["breaker", "status"][..], "GET", "/admin/breaker", None),
        (
            &["breaker", "force-open", "--reason", "RPC provider incident"],
            "POST",
            "/admin/breaker/force-open",
            Some(json!({ "reason": "RPC provider incident" })),
        ),
        (
            &["breaker", "force-close", "--reason", "r"],
            "POST",
            "/admin/breaker/force-close",
            Some(json!({ "reason": "r" })),
        ),
        (
            &["breaker", "reset", "--reason", "incident over"],
            "POST",
            "/admin/breaker/reset",
            Some(json!({ "reason": "incident over" })),
        ),
        (
            &[
                "disburse",
                "queue",
                "--destination",
                "0xabc",
                "--amount",
                "123",
            ],
            "POST",
            "/admin/disbursements",
            Some(json!({ "destination": "0xabc", "amount": "123" })),
        ),
        (
            &[
                "disburse",
                "queue",
                "--destination",
                "0xabc",
                "--amount",
                "1000000000000000000000",
                "--memo",
                "grant #12",
                "--activation-epoch",
                "40",
                "--depends-on",
                "1",
                "--depends-on",
                "2,3",
                "--external-key",
                "proposal-12",
            ],
            "POST",
            "/admin/disbursements",
            Some(json!({
                "destination": "0xabc",
                "amount": "1000000000000000000000",
                "memo": "grant #12",
                "activation_epoch": 40,
                "depends_on": [1, 2, 3],
                "external_key": "proposal-12",
            })),
        ),
        (&["disburse", "list"], "GET", "/admin/disbursements", None),
        (
            &["disburse", "list", "--after", "10", "--limit", "50"],
            "GET",
            "/admin/disbursements?after=10&limit=50",
            None,
        ),
        (
            &["disburse", "list", "--limit", "5"],
            "GET",
            "/admin/disbursements?limit=5",
            None,
        ),
        (
            &["disburse", "show", "42"],
            "GET",
            "/admin/disbursements/42",
            None,
        ),
        (
            &["disburse", "cancel", "42", "--reason", "duplicate"],
            "POST",
            "/admin/disbursements/42/cancel",
            Some(json!({ "reason": "duplicate" })),
        ),
        (&["audit"], "GET", "/admin/audit", None),
        (
            &["audit", "--after", "7", "--limit", "2"],
            "GET",
            "/admin/audit?after=7&limit=2",
            None,
        ),
    ];
    for (args, method, path, body) in cases {
        let call = call_for(&admin(args));
        assert_eq!(
            call,
            Call {
                method,
                path: path.to_owned(),
                body,
            },
            "{args:?}"
        );
    }
}

fn response(status: u16, reason: &str, body: &str) -> Response {
    Response {
        status,
        reason: reason.into(),
        body: body.as_bytes().to_vec(),
    }
}

fn local() -> Url {
    Url::parse("http://127.0.0.1:9615").expect("URL")
}

#[test]
fn error_statuses_become_the_nodes_message() {
    let cases = [
        (
            response(
                401,
                "Unauthorized",
                r#"{"error": "missing or wrong admin token"}"#,
            ),
            "HTTP 401: missing or wrong admin token",
        ),
        (
            response(403, "Forbidden", r#"{"error":"the admin API is off"}"#),
            "HTTP 403: the admin API is off",
        ),
        (
            response(
                400,
                "Bad Request",
                r#"{"error": "reason:\n  must not be empty"}"#,
            ),
            "HTTP 400: reason: must not be empty",
        ),
        (
            response(404, "Not Found", r#"{"error": "disbursement 9 not found"}"#),
            "HTTP 404: disbursement 9 not found",
        ),
        (
            response(
                409,
                "Conflict",
                r#"{"error": "disbursement 1 is executed"}"#,
            ),
            "HTTP 409: disbursement 1 is executed",
        ),
        // Not the node's JSON: the body as text, else the reason phrase.
        (
            response(502, "Bad Gateway", "<html>\n<b>upstream</b>\n</html>\n"),
            "HTTP 502: <html> <b>upstream</b> </html>",
        ),
        (
            response(500, "", r#"{"detail": "x"}"#),
            r#"HTTP 500: {"detail": "x"}"#,
        ),
        (response(404, "Not Found", ""), "HTTP 404: Not Found"),
        (
            response(405, "", r#"{"error": ""}"#),
            r#"HTTP 405: {"error": ""}"#,
        ),
        (response(503, "", ""), "HTTP 503: (no message)"),
        (response(302, "Found", ""), "HTTP 302: Found"),
    ];
    for (response, expected) in cases {
        let error = interpret(&local(), response).expect_err("an error status");
        assert_eq!(error.to_string(), expected);
        assert_eq!(error.exit_code(), 1);
    }
    let long = response(500, "", &"x".repeat(1000));
    let message = interpret(&local(), long).expect_err("error").to_string();
    assert!(message.chars().count() < 320, "{message}");
    assert!(message.ends_with('…'), "{message}");
}

#[test]
fn a_success_must_carry_json() {
    let answer = interpret(&local(), response(201, "Created", r#"{"id": 0}"#)).expect("JSON");
    assert_eq!(
        (answer.status, answer.json.clone()),
        (201, json!({ "id": 0 }))
    );
    for (body, why) in [
        ("", "the body is empty"),
        ("not json", "the body is not JSON"),
        ("{\"a\": 1", "the body is not JSON"),
    ] {
        let error = interpret(&local(), response(200, "OK", body)).expect_err("not JSON");
        let message = error.to_string();
        assert!(
            message.starts_with("bad answer from http://127.0.0.1:9615: HTTP 200, but "),
            "{message}"
        );
        assert!(message.contains(why), "{message}");
        assert_eq!(error.exit_code(), 1);
    }
    let not_utf8 = Response {
        body: vec![b'"', 0xff, b'"'],
        ..response(200, "OK", "")
    };
    let message = interpret(&local(), not_utf8)
        .expect_err("bytes")
        .to_string();
    assert!(message.contains("not UTF-8"), "{message}");
}

#[test]
fn pretty_printing_keeps_the_nodes_key_order() {
    let text = r#"{"transition":"closed -> open (forced) on forced_open [generation 3]","breaker":{"state":"open","forced":true,"failures":0,"config":{},"list":[],"nested":[{"b":1,"a":[2, 3]}],"odd":"a \"{[,:]}\" \\","n":-1.5e3,"none":null}}"#;
    let expected = r#"{
  "transition": "closed -> open (forced) on forced_open [generation 3]",
  "breaker": {
    "state": "open",
    "forced": true,
    "failures": 0,
    "config": {},
    "list": [],
    "nested": [
      {
        "b": 1,
        "a": [
          2,
          3
        ]
      }
    ],
    "odd": "a \"{[,:]}\" \\",
    "n": -1.5e3,
    "none": null
  }
}"#;
    let printed = pretty(text);
    assert_eq!(printed, expected);
    let reparsed: Value = serde_json::from_str(&printed).expect("still JSON");
    let original: Value = serde_json::from_str(text).expect("JSON");
    assert_eq!(reparsed, original);

    // With keys already sorted it is exactly serde_json's pretty format.
    let sorted = json!({ "a": [1, { "b": [] }], "c": { "d": "e: f, g" }, "h": {} });
    let compact = serde_json::to_string(&sorted).expect("JSON");
    let spaced = serde_json::to_string_pretty(&sorted).expect("JSON");
    assert_eq!(pretty(&compact), spaced);
    assert_eq!(pretty(&spaced), spaced, "idempotent");
    assert_eq!(pretty("[ ]"), "[]");
    assert_eq!(pretty("\"x\""), "\"x\"");
}

// ----- whole exchanges with a fake node --------------------------------------------------

/// What the fake node received.
#[derive(Debug)]
struct Received {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A node that accepts one connection, reads one request, answers `answer` and closes.
fn fake_node(answer: Vec<u8>) -> (String, JoinHandle<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let handle = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut buffer = Vec::new();
        let mut chunk = [0_u8; 1024];
        let head_end = loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            let n = stream.read(&mut chunk).expect("read the request");
            assert!(n > 0, "the client closed before the end of its request");
            buffer.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8(buffer[..head_end].to_vec()).expect("ASCII head");
        let mut lines = head.split("\r\n");
        let request_line = lines.next().expect("a request line").to_owned();
        let headers: Vec<(String, String)> = lines
            .map(|line| {
                let (name, value) = line.split_once(": ").expect("a header");
                (name.to_owned(), value.to_owned())
            })
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.parse().expect("a length"));
        let mut body = buffer[head_end + 4..].to_vec();
        while body.len() < length {
            let n = stream.read(&mut chunk).expect("read the body");
            assert!(n > 0, "the client closed inside its body");
            body.extend_from_slice(&chunk[..n]);
        }
        stream.write_all(&answer).expect("answer");
        Received {
            request_line,
            headers,
            body,
        }
    });
    (url, handle)
}

fn json_answer(status: &str, body: &Value) -> Vec<u8> {
    let body = serde_json::to_string(body).expect("JSON");
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn disburse_queue_sends_its_request_and_prints_the_answer() {
    // As the node sends it: its own key order, not sorted.
    let text = r#"{"id":7,"destination":"0xabc","amount":"123","memo":"grant","activation_epoch":0,"depends_on":[1,2],"external_key":"k-1","status":{"status":"queued"},"queued_at_ms":1700000000000}"#;
    let disbursement: Value = serde_json::from_str(text).expect("JSON");
    let (url, node) = fake_node(
        format!(
            "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
            text.len()
        )
        .into_bytes(),
    );
    let command = admin(&[
        "disburse",
        "queue",
        "--destination",
        "0xabc",
        "--amount",
        "123",
        "--memo",
        "grant",
        "--depends-on",
        "1,2",
        "--external-key",
        "k-1",
        "--actor",
        "alice",
    ]);
    let answer = execute(
        &command,
        &env(&[("TB_ADMIN_URL", &url), ("TB_ADMIN_TOKEN", TOKEN)]),
    )
    .expect("queued");
    let received = node.join().expect("the fake node");

    assert_eq!(received.request_line, "POST /admin/disbursements HTTP/1.1");
    let authorization = format!("Bearer {TOKEN}");
    assert_eq!(
        received.header("Authorization"),
        Some(authorization.as_str())
    );
    assert_eq!(received.header("X-Actor"), Some("alice"));
    assert_eq!(received.header("Content-Type"), Some("application/json"));
    assert_eq!(received.header("Connection"), Some("close"));
    assert_eq!(
        received.header("Host"),
        url.strip_prefix("http://"),
        "Host is the node's address"
    );
    let sent: Value = serde_json::from_slice(&received.body).expect("a JSON body");
    assert_eq!(
        sent,
        json!({
            "destination": "0xabc", "amount": "123", "memo": "grant",
            "depends_on": [1, 2], "external_key": "k-1",
        })
    );

    assert_eq!(answer.status, 201);
    assert_eq!(answer.json, disbursement);
    assert!(
        answer
            .pretty()
            .starts_with("{\n  \"id\": 7,\n  \"destination\": \"0xabc\","),
        "the node's order: {}",
        answer.pretty()
    );
}

#[test]
fn a_401_becomes_the_nodes_error_message() {
    let (url, node) = fake_node(json_answer(
        "401 Unauthorized",
        &json!({ "error": "missing or wrong admin token" }),
    ));
    let command = admin(&["breaker", "force-open", "--reason", "drill"]);
    let error = execute(
        &command,
        &env(&[
            ("TB_ADMIN_URL", &url),
            ("TB_ADMIN_TOKEN", "wrong-token-0000"),
            ("USER", "carol"),
        ]),
    )
    .expect_err("refused");
    let received = node.join().expect("the fake node");
    assert_eq!(
        received.request_line,
        "POST /admin/breaker/force-open HTTP/1.1"
    );
    assert_eq!(
        received.header("Authorization"),
        Some("Bearer wrong-token-0000")
    );
    assert_eq!(
        received.header("X-Actor"),
        Some("carol"),
        "USER is the actor"
    );
    assert_eq!(received.body, br#"{"reason":"drill"}"#);

    assert!(
        matches!(error, ClientError::Http { status: 401, .. }),
        "{error:?}"
    );
    assert_eq!(error.to_string(), "HTTP 401: missing or wrong admin token");
    assert_eq!(error.exit_code(), 1);
}

#[test]
fn a_get_with_a_body_read_to_the_end() {
    // No Content-Length: the body ends when the node closes the connection.
    let (url, node) = fake_node(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{\"records\": []}".to_vec(),
    );
    let command = admin(&["audit", "--after", "3", "--limit", "10"]);
    let answer = execute(
        &command,
        &env(&[("TB_ADMIN_URL", &url), ("TB_ADMIN_TOKEN", TOKEN)]),
    )
    .expect("records");
    let received = node.join().expect("the fake node");
    assert_eq!(
        received.request_line,
        "GET /admin/audit?after=3&limit=10 HTTP/1.1"
    );
    assert_eq!(received.header("X-Actor"), Some(DEFAULT_ACTOR));
    assert_eq!(received.header("Content-Length"), None);
    assert!(received.body.is_empty());
    assert_eq!(answer.json, json!({ "records": [] }));
}

#[test]
fn a_node_that_is_not_there_cannot_be_reached() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let url = format!("http://{address}");
    let error = execute(
        &admin(&["breaker", "status"]),
        &env(&[("TB_ADMIN_URL", &url), ("TB_ADMIN_TOKEN", TOKEN)]),
    )
    .expect_err("nothing listens");
    assert!(
        matches!(error, ClientError::Unreachable { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("cannot reach {url}: ")),
        "{message}"
    );
    assert_eq!(error.exit_code(), 1);
}

#[test]
fn a_node_that_does_not_answer_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = Url::parse(&format!(
        "http://{}",
        listener.local_addr().expect("address")
    ))
    .expect("URL");
    // Accepts, reads, never answers; holds the connection until the client gives up.
    let silent = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink);
    });
    let connection = Connection {
        url: url.clone(),
        token: TOKEN.into(),
        actor: "t".into(),
        timeout: Duration::from_millis(200),
    };
    let error =
        send(&connection, &call_for(&admin(&["breaker", "status"]))).expect_err("times out");
    assert!(
        matches!(error, ClientError::Unreachable { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!("cannot reach {url}: timed out after 200ms")
    );
    silent.join().expect("the silent node");
}

#[test]
fn a_garbled_answer_is_a_bad_answer() {
    let (url, node) = fake_node(b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec());
    let error = execute(
        &admin(&["disburse", "show", "1"]),
        &env(&[("TB_ADMIN_URL", &url), ("TB_ADMIN_TOKEN", TOKEN)]),
    )
    .expect_err("not HTTP");
    node.join().expect("the fake node");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "bad answer from {url}: malformed response: http parse fail: invalid HTTP version"
        )),
        "{message}"
    );
    assert_eq!(error.exit_code(), 1);
}

/// Neither the connection nor the flags it came from print the token.
#[test]
fn the_token_never_prints() {
    let args = ConnectionArgs {
        url: None,
        token: Some("from-the-flag-000".into()),
        actor: None,
    };
    let connection = connection_for(&args, &[]);
    let shown = format!("{args:?} {connection:?}");
    assert!(!shown.contains("from-the-flag"), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
}
