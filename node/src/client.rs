//! The admin API's client: `node breaker …`, `node disburse …`, `node intents …`,
//! `node executor …` and `node audit` each make one HTTP call to a running node (with
//! [`ureq`], set up by [`transport`]) and print its JSON answer on stdout, pretty-printed
//! in the node's own key order. The node may be behind `https://` (a TLS-terminating
//! proxy): its certificate is checked against the system's trusted CAs.
//!
//! Where and as whom: a flag, else an environment variable (read through [`Env`], as the
//! node's configuration is), else a default: `--url` / `TB_ADMIN_URL` /
//! `http://127.0.0.1:9615`; `--token` / `TB_ADMIN_TOKEN` (required); `--actor` / `USER` /
//! `cli` (sent as `X-Actor`, the "who" of the audit record).
//!
//! Exit status: 0 done; 1 the node answered with an error status (`error: HTTP <code>:
//! <message>`), could not be reached (`error: cannot reach <url>: …`) or answered something
//! unreadable; 2 a usage error (clap's own, a bad URL, no token).

pub mod transport;

#[cfg(test)]
mod tests;

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Map, Value, json};

use ureq::http;

use self::transport::{AgentOptions, Failure, MAX_BODY_BYTES, Trust, Url};
use crate::cli::{
    AdminCommand, BreakerAction, ConnectionArgs, DisburseAction, ExecutorAction, IntentsAction,
    Outcome,
};
use crate::config::Env;

/// The node's address when neither `--url` nor `TB_ADMIN_URL` is given (the node's
/// default `listen`).
pub const DEFAULT_URL: &str = "http://127.0.0.1:9615";
/// The actor when neither `--actor` nor `USER` is given.
pub const DEFAULT_ACTOR: &str = "cli";
/// How long one call may take, from connecting to the last byte of the answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest actor name sent (the node records a longer one as `admin`).
pub const MAX_ACTOR_BYTES: usize = 128;

/// Where the admin API is and who calls it. Its `Debug` leaves the token out.
#[derive(Clone, PartialEq, Eq)]
pub struct Connection {
    /// The node.
    pub url: Url,
    /// The bearer token.
    pub token: String,
    /// Who is calling (`X-Actor`).
    pub actor: String,
    /// How long one call may take.
    pub timeout: Duration,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("url", &self.url)
            .field("token", &"<redacted>")
            .field("actor", &self.actor)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why a client command failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The command cannot be sent as given (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The node answered with an error status.
    #[error("HTTP {status}: {message}")]
    Http {
        /// The status code.
        status: u16,
        /// The node's `{"error": …}` message (or, failing that, its body or reason phrase).
        message: String,
    },
    /// The node could not be reached (no connection, a failed TLS handshake), or did not
    /// answer in time.
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// The node.
        url: Url,
        /// What failed.
        reason: String,
    },
    /// The node's answer cannot be read.
    #[error("bad answer from {url}: {reason}")]
    BadAnswer {
        /// The node.
        url: Url,
        /// What is wrong with it.
        reason: String,
    },
}

impl ClientError {
    /// The process's exit status for this error: 2 for usage, else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Usage(_) => 2,
            _ => 1,
        }
    }
}

/// Resolves `--url`, `--token` and `--actor` against the environment and the defaults.
pub fn connection(args: &ConnectionArgs, env: &dyn Env) -> Result<Connection, ClientError> {
    let (url_text, url_key) = pick(args.url.as_deref(), "--url", env, "TB_ADMIN_URL")?
        .unwrap_or_else(|| (DEFAULT_URL.to_owned(), "the default URL"));
    let url =
        admin_url(&url_text).map_err(|error| ClientError::Usage(format!("{url_key}: {error}")))?;

    let Some((token, token_key)) = pick(args.token.as_deref(), "--token", env, "TB_ADMIN_TOKEN")?
    else {
        return Err(ClientError::Usage(
            "no admin token: set TB_ADMIN_TOKEN (or pass --token) to the token the node runs with"
                .into(),
        ));
    };
    check_header_value(token_key, &token)?;

    let (actor, actor_key) = pick(args.actor.as_deref(), "--actor", env, "USER")?
        .unwrap_or_else(|| (DEFAULT_ACTOR.to_owned(), "the default actor"));
    check_header_value(actor_key, &actor)?;
    if actor.len() > MAX_ACTOR_BYTES {
        return Err(ClientError::Usage(format!(
            "{actor_key}: the actor name is longer than {MAX_ACTOR_BYTES} bytes"
        )));
    }

    Ok(Connection {
        url,
        token,
        actor,
        timeout: DEFAULT_TIMEOUT,
    })
}

/// `http(s)://host[:port][/]`: the admin API's routes start at the root, and the token
/// goes in its own header, not in the URL.
fn admin_url(text: &str) -> Result<Url, transport::UrlError> {
    let url = Url::parse(text)?;
    let fail = |reason: &str| transport::UrlError {
        url: text.to_owned(),
        reason: reason.to_owned(),
    };
    if url.userinfo().is_some() {
        return Err(fail(
            "user info (user@host) is not supported: the token goes in --token or TB_ADMIN_TOKEN",
        ));
    }
    if url.target() != "/" {
        return Err(fail(
            "a path or query is not supported: give http://host:port or https://host:port only",
        ));
    }
    Ok(url)
}

/// The flag's value, else the variable's, with the name it came from. An empty flag is
/// an error (an empty variable counts as unset, as everywhere in the node).
fn pick(
    flag: Option<&str>,
    flag_name: &'static str,
    env: &dyn Env,
    variable: &'static str,
) -> Result<Option<(String, &'static str)>, ClientError> {
    match flag {
        Some("") => Err(ClientError::Usage(format!(
            "{flag_name}: must not be empty"
        ))),
        Some(value) => Ok(Some((value.to_owned(), flag_name))),
        None => Ok(env.var(variable).map(|value| (value, variable))),
    }
}

/// A header value must be printable ASCII: anything else could not be sent faithfully
/// (and a line break would split the request).
fn check_header_value(key: &str, value: &str) -> Result<(), ClientError> {
    if value.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        Ok(())
    } else {
        Err(ClientError::Usage(format!(
            "{key}: must be printable ASCII (no control characters, no line breaks)"
        )))
    }
}

/// One call of the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The path and query.
    pub path: String,
    /// The JSON body (for `POST`).
    pub body: Option<Value>,
}

impl Call {
    fn get(path: impl Into<String>) -> Call {
        Call {
            method: "GET",
            path: path.into(),
            body: None,
        }
    }

    fn post(path: impl Into<String>, body: Value) -> Call {
        Call {
            method: "POST",
            path: path.into(),
            body: Some(body),
        }
    }
}

/// The call a command makes.
pub fn call_for(command: &AdminCommand) -> Call {
    match command {
        AdminCommand::Breaker(args) => match &args.action {
            BreakerAction::Status => Call::get("/admin/breaker"),
            BreakerAction::ForceOpen(why) => {
                Call::post("/admin/breaker/force-open", json!({ "reason": why.reason }))
            }
            BreakerAction::ForceClose(why) => Call::post(
                "/admin/breaker/force-close",
                json!({ "reason": why.reason }),
            ),
            BreakerAction::Reset(why) => {
                Call::post("/admin/breaker/reset", json!({ "reason": why.reason }))
            }
        },
        AdminCommand::Disburse(args) => match &args.action {
            DisburseAction::Queue(queue) => {
                // Optional fields are left out rather than sent as null: the node's defaults
                // apply.
                let mut body = Map::new();
                body.insert("destination".into(), json!(queue.destination));
                body.insert("amount".into(), json!(queue.amount));
                if let Some(memo) = &queue.memo {
                    body.insert("memo".into(), json!(memo));
                }
                if let Some(epoch) = queue.activation_epoch {
                    body.insert("activation_epoch".into(), json!(epoch));
                }
                if !queue.depends_on.is_empty() {
                    body.insert("depends_on".into(), json!(queue.depends_on));
                }
                if let Some(key) = &queue.external_key {
                    body.insert("external_key".into(), json!(key));
                }
                if let Some(asset) = &queue.asset {
                    body.insert("asset".into(), json!(asset));
                }
                Call::post("/admin/disbursements", Value::Object(body))
            }
            DisburseAction::List(page) => Call::get(with_query(
                "/admin/disbursements",
                &[("after", page.after), ("limit", page.limit)],
            )),
            DisburseAction::Show(show) => Call::get(format!("/admin/disbursements/{}", show.id)),
            DisburseAction::Cancel(cancel) => Call::post(
                format!("/admin/disbursements/{}/cancel", cancel.id),
                json!({ "reason": cancel.reason }),
            ),
            DisburseAction::Approve(approve) => match approve.ids.as_slice() {
                [id] => Call::post(
                    format!("/admin/disbursements/{id}/approve"),
                    json!({ "reason": approve.reason }),
                ),
                ids => Call::post(
                    "/admin/disbursements/approve",
                    json!({ "ids": ids, "reason": approve.reason }),
                ),
            },
            DisburseAction::MarkPaid(paid) => Call::post(
                format!("/admin/disbursements/{}/mark-paid", paid.id),
                json!({ "tx_hash": paid.tx_hash, "reason": paid.reason }),
            ),
        },
        AdminCommand::Intents(args) => match &args.action {
            IntentsAction::List => Call::get("/admin/intents"),
            IntentsAction::Resolve(resolve) => {
                let mut body = Map::new();
                let outcome = match resolve.outcome {
                    Outcome::Paid => "paid",
                    Outcome::NotPaid => "not_paid",
                };
                body.insert("outcome".into(), json!(outcome));
                body.insert("reason".into(), json!(resolve.reason));
                if let Some(hash) = &resolve.tx_hash {
                    body.insert("tx_hash".into(), json!(hash));
                }
                Call::post(
                    format!("/admin/intents/{}/resolve", resolve.nonce),
                    Value::Object(body),
                )
            }
        },
        AdminCommand::Executor(args) => match &args.action {
            ExecutorAction::AdoptNonce(adopt) => {
                let mut body = Map::new();
                body.insert("reason".into(), json!(adopt.reason));
                if let Some(nonce) = adopt.nonce {
                    body.insert("nonce".into(), json!(nonce));
                }
                Call::post("/admin/executor/adopt-nonce", Value::Object(body))
            }
        },
        AdminCommand::Audit(args) => Call::get(with_query(
            "/admin/audit",
            &[("after", args.after), ("limit", args.limit)],
        )),
    }
}

/// `path?name=value&…` with the parameters that are set (numbers need no escaping).
fn with_query(path: &str, parameters: &[(&str, Option<u64>)]) -> String {
    let query: Vec<String> = parameters
        .iter()
        .filter_map(|(name, value)| value.map(|value| format!("{name}={value}")))
        .collect();
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

/// A successful (2xx) answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The status code (e.g. 201 for a new disbursement, 200 for a repeated external key).
    pub status: u16,
    /// The body, parsed.
    pub json: Value,
    /// The body as sent.
    text: String,
}

impl Answer {
    /// The body pretty-printed (two-space indent) in the node's key order.
    pub fn pretty(&self) -> String {
        pretty(&self.text)
    }
}

/// An answer of the node, whatever its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The status code's reason phrase (`Not Found`), empty for a code without one.
    pub reason: String,
    /// The body.
    pub body: Vec<u8>,
}

/// Sends `call` and reads the answer: a 2xx with a JSON body is an [`Answer`], anything
/// else an error.
pub fn send(connection: &Connection, call: &Call) -> Result<Answer, ClientError> {
    let body = match &call.body {
        Some(body) => Some(serde_json::to_vec(body).map_err(|error| {
            ClientError::Usage(format!("cannot encode the request body: {error}"))
        })?),
        None => None,
    };
    let agent = transport::agent(AgentOptions {
        timeout: connection.timeout,
        trust: Trust::System,
        user_agent: concat!("node-cli/", env!("CARGO_PKG_VERSION")),
    });
    let request = http::Request::builder()
        .method(call.method)
        .uri(connection.url.request_uri(&call.path))
        .header("Authorization", format!("Bearer {}", connection.token))
        .header("X-Actor", connection.actor.as_str())
        .header("Accept", "application/json")
        // One call per process: nothing to keep the connection open for.
        .header("Connection", "close");
    let invalid = |error: http::Error| ClientError::Usage(format!("invalid request: {error}"));
    let sent = match body {
        Some(body) => request
            .header("Content-Type", "application/json")
            .body(body)
            .map_err(invalid)
            .map(|request| agent.run(request))?,
        None => request
            .body(())
            .map_err(invalid)
            .map(|request| agent.run(request))?,
    };
    let failed = |error: ureq::Error| match Failure::from(error) {
        Failure::Timeout => ClientError::Unreachable {
            url: connection.url.clone(),
            reason: format!("timed out after {:?}", connection.timeout),
        },
        failure @ (Failure::Unreachable(_) | Failure::Tls { .. }) => ClientError::Unreachable {
            url: connection.url.clone(),
            reason: failure.to_string(),
        },
        failure @ Failure::Malformed(_) => ClientError::BadAnswer {
            url: connection.url.clone(),
            reason: failure.to_string(),
        },
        Failure::Request(reason) => ClientError::Usage(format!("invalid request: {reason}")),
    };
    let mut response = sent.map_err(failed)?;
    let status = response.status();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_BODY_BYTES)
        .read_to_vec()
        .map_err(failed)?;
    let response = Response {
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or_default().to_owned(),
        body,
    };
    interpret(&connection.url, response)
}

/// A response as the command's outcome: 2xx with a JSON body → [`Answer`]; another status
/// → [`ClientError::Http`] with the node's error message; a 2xx whose body is not JSON →
/// [`ClientError::BadAnswer`].
pub fn interpret(url: &Url, response: Response) -> Result<Answer, ClientError> {
    if !(200..300).contains(&response.status) {
        return Err(ClientError::Http {
            status: response.status,
            message: error_message(&response),
        });
    }
    let bad = |reason: String| ClientError::BadAnswer {
        url: url.clone(),
        reason: format!("HTTP {}, but {reason}", response.status),
    };
    let text = String::from_utf8(response.body.clone())
        .map_err(|_| bad("the body is not UTF-8".into()))?;
    if text.trim().is_empty() {
        return Err(bad("the body is empty (expected JSON)".into()));
    }
    let json = serde_json::from_str(&text)
        .map_err(|error| bad(format!("the body is not JSON: {error}")))?;
    Ok(Answer {
        status: response.status,
        json,
        text,
    })
}

/// What an error response says: its JSON `error` string, else its body as text, else
/// its reason phrase. One line, at most 300 characters.
pub fn error_message(response: &Response) -> String {
    if let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(&response.body)
        && let Some(Value::String(message)) = object.get("error")
        && !message.trim().is_empty()
    {
        return one_line(message);
    }
    let text = one_line(&String::from_utf8_lossy(&response.body));
    if !text.is_empty() {
        return text;
    }
    if !response.reason.is_empty() {
        return response.reason.clone();
    }
    "(no message)".into()
}

/// Whitespace runs (line breaks included) as one space; at most 300 characters.
fn one_line(text: &str) -> String {
    const MAX: usize = 300;
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() <= MAX {
        joined
    } else {
        let mut short: String = joined.chars().take(MAX).collect();
        short.push('…');
        short
    }
}

/// Re-indents JSON text (two spaces, `"key": value`, empty containers kept as `{}` and
/// `[]`) without reordering its keys, as `serde_json::to_string_pretty` would if it kept
/// the order. `text` must be valid JSON; numbers and strings are copied as they are.
pub fn pretty(text: &str) -> String {
    fn newline(out: &mut String, depth: usize) {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    }
    let mut out = String::with_capacity(text.len() * 2);
    let mut depth = 0_usize;
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    let mut escaped = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                out.push(c);
                while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                    chars.next();
                }
                if chars.peek() == Some(&close) {
                    chars.next();
                    out.push(close);
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_ascii_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// Resolves the connection and makes the command's call.
pub fn execute(command: &AdminCommand, env: &dyn Env) -> Result<Answer, ClientError> {
    let connection = connection(command.connection(), env)?;
    send(&connection, &call_for(command))
}

/// Runs a client command as `main` does: the answer on stdout, an error on stderr, and
/// the exit status.
pub fn main(command: &AdminCommand, env: &dyn Env) -> ExitCode {
    let answer = match execute(command, env) {
        Ok(answer) => answer,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(error.exit_code());
        }
    };
    if answer.status == 200
        && let AdminCommand::Disburse(args) = command
        && let DisburseAction::Queue(_) = args.action
    {
        eprintln!(
            "note: this external key was already queued: nothing new was queued; \
             the existing disbursement follows"
        );
    }
    if answer.status == 202
        && let AdminCommand::Disburse(args) = command
        && let DisburseAction::Cancel(_) = args.action
    {
        eprintln!(
            "note: a transaction for it may already be out there: a cancellation replaces it \
             at its nonce, and it is cancelled only if that lands (watch its status)"
        );
    }
    let mut stdout = io::stdout().lock();
    match writeln!(stdout, "{}", answer.pretty()).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`| head`): the call itself was made.
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: cannot write the answer: {error}");
            ExitCode::FAILURE
        }
    }
}
