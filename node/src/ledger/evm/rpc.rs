//! JSON-RPC 2.0 over HTTP(S), on one [`ureq`] agent per endpoint (set up by
//! [`crate::client::transport`]: keep-alive, one deadline per call, no redirects, no
//! proxy), and the mapping of every way a call can fail to a [`LedgerError`]:
//!
//! | what happened                                        | `LedgerError`         |
//! |------------------------------------------------------|-----------------------|
//! | connection refused, reset or dropped; no such host   | `Unreachable`         |
//! | TLS handshake failed (certificate not trusted, …)    | `Unreachable`, saying so |
//! | no whole answer within `request_timeout_ms`          | `Timeout`             |
//! | HTTP 5xx or 429                                      | `Http(code)`          |
//! | not HTTP, not JSON-RPC, another id, no `result`      | `Malformed`           |
//! | a JSON-RPC error object                              | by its message: [`classify_rpc_error`] |
//!
//! The endpoint is `http(s)://[user:password@]host[:port][/path][?query]`: user info
//! becomes HTTP Basic authentication, and the path and query (where providers put an API
//! key) are sent as they are. Neither is ever shown: [`RpcClient::endpoint`], `Debug` and
//! every error give `scheme://host:port` at most.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governance::LedgerError;
use serde_json::{Value, json};
use ureq::http;

use crate::client::transport::{self, AgentOptions, Failure, MAX_BODY_BYTES, Trust, Url};

/// The most bytes of an endpoint's message kept in a [`LedgerError`].
pub(super) const MAX_MESSAGE_BYTES: usize = 512;
/// The most characters of an unreadable body quoted in a `Malformed` error.
const MAX_SNIPPET_CHARS: usize = 80;

/// A JSON-RPC endpoint: where, as whom, and how long to wait for each answer.
pub(super) struct RpcClient {
    agent: ureq::Agent,
    /// The URL as given; its user info and path are secrets.
    url: Url,
    /// Where requests go: the URL without its user info (the path and query kept).
    uri: http::Uri,
    /// `Basic …` from the URL's user info; a secret, never shown.
    authorization: Option<String>,
    /// Whether certificates are checked against `evm.ca_file` rather than the system's.
    ca_file: bool,
    timeout: Duration,
    next_id: AtomicU64,
}

impl fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcClient")
            .field("url", &self.url)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .field("ca_file", &self.ca_file)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Why an [`RpcClient`] could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RpcSetupError {
    /// The URL: what is wrong with it (quoting none of it).
    Url(String),
    /// `ca_file`: what is wrong with it.
    CaFile(String),
}

impl RpcClient {
    /// A client for `url` (`http(s)://[user:password@]host[:port][/path]`; user info
    /// becomes HTTP Basic authentication) that trusts, for `https://`, the CA certificates
    /// of the PEM file `ca_file` if given, else the system's. No network I/O.
    pub(super) fn new(
        url: &str,
        timeout: Duration,
        ca_file: Option<&Path>,
    ) -> Result<RpcClient, RpcSetupError> {
        let (url, authorization) = parse_endpoint(url).map_err(RpcSetupError::Url)?;
        let uri = http::Uri::try_from(url.request_uri(url.target()))
            .map_err(|_| RpcSetupError::Url("not a URL the HTTP client can use".into()))?;
        let trust = match ca_file {
            Some(path) => {
                Trust::Only(transport::read_ca_file(path).map_err(RpcSetupError::CaFile)?)
            }
            None => Trust::System,
        };
        let agent = transport::agent(AgentOptions {
            timeout,
            trust,
            user_agent: concat!("treasury-node/", env!("CARGO_PKG_VERSION")),
        });
        Ok(RpcClient {
            agent,
            url,
            uri,
            authorization,
            ca_file: ca_file.is_some(),
            timeout,
            next_id: AtomicU64::new(1),
        })
    }

    /// The endpoint without its user info, path or query: `scheme://host:port`.
    pub(super) fn endpoint(&self) -> String {
        self.url.to_string()
    }

    /// Calls `method` and returns its `result` (which may be `null`).
    pub(super) fn call(&self, method: &str, params: Value) -> Result<Value, LedgerError> {
        let id = self.id();
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let body = serde_json::to_vec(&body)
            .map_err(|error| LedgerError::Other(format!("cannot encode {method}: {error}")))?;
        let (status, body) = self.post(&body)?;
        parse_response(status, &body, id)
    }

    /// Calls each `(method, params)` in one JSON-RPC batch (one HTTP exchange) and returns
    /// their answers in the order of `calls`, matched by id whatever the order the
    /// endpoint answered in. The outer error is the exchange's (or an answer that is no
    /// batch answer at all); an entry's error is that call's: a JSON-RPC error object, or
    /// `Malformed` for a call the endpoint did not answer. An endpoint that answers the
    /// whole batch with one error object (some refuse batches so) gives every call that
    /// error.
    pub(super) fn batch(
        &self,
        calls: &[(&str, Value)],
    ) -> Result<Vec<Result<Value, LedgerError>>, LedgerError> {
        if calls.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<u64> = calls.iter().map(|_| self.id()).collect();
        let requests: Vec<Value> = calls
            .iter()
            .zip(&ids)
            .map(|((method, params), id)| {
                json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
            })
            .collect();
        let body = serde_json::to_vec(&requests)
            .map_err(|error| LedgerError::Other(format!("cannot encode a batch: {error}")))?;
        let (status, body) = self.post(&body)?;
        parse_batch_response(status, &body, &ids)
    }

    /// A fresh request id.
    fn id(&self) -> u64 {
        // Relaxed: the id only has to differ between calls; it orders nothing.
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// POSTs `body` (JSON) and reads the whole answer: its status and body, all within
    /// the timeout.
    ///
    /// The connection is kept open between calls. An endpoint may close it while it idles
    /// (a server's or load balancer's idle timeout) just as a call reuses it: that call's
    /// connection then ends before any answer. Such a call is made once more, on a new
    /// connection, within what is left of the deadline. (Only such a call: as with any
    /// `Unreachable` the executor retries, the endpoint may have had the first request;
    /// every call the ledger makes is safe to repeat, a submission included: the same
    /// signed bytes.)
    fn post(&self, body: &[u8]) -> Result<(u16, Vec<u8>), LedgerError> {
        let started = Instant::now();
        let sent = match self.send(body, self.timeout) {
            Err(error) if closed_before_an_answer(&error) => {
                match self.timeout.checked_sub(started.elapsed()) {
                    Some(left) if !left.is_zero() => self.send(body, left),
                    _ => return Err(LedgerError::Timeout),
                }
            }
            sent => sent,
        };
        let mut response = sent.map_err(|error| self.failed(error))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .read_to_vec()
            .map_err(|error| self.failed(error))?;
        Ok((status, body))
    }

    /// Sends `body` and reads the answer's status line and headers, within `timeout`.
    fn send(
        &self,
        body: &[u8],
        timeout: Duration,
    ) -> Result<http::Response<ureq::Body>, ureq::Error> {
        let mut request = self
            .agent
            .post(self.uri.clone())
            .header("Content-Type", "application/json")
            .header("Accept", "application/json");
        if let Some(authorization) = &self.authorization {
            request = request.header("Authorization", authorization);
        }
        request
            .config()
            .timeout_global(Some(timeout))
            .build()
            .send(body)
    }

    /// A failed exchange as a [`LedgerError`], quoting nothing the URL hides.
    fn failed(&self, error: ureq::Error) -> LedgerError {
        let failure = Failure::from(error);
        let mut message = format!("{}: {failure}", self.endpoint());
        if let Failure::Tls {
            certificate: true, ..
        } = failure
        {
            message.push_str(if self.ca_file {
                "; evm.ca_file is set: it must hold the CA certificate that signed the server's"
            } else {
                "; checked against the system's trusted CAs: if a private CA signed it, set \
                 evm.ca_file to that CA's certificate (PEM)"
            });
        }
        let message = bounded(&self.scrub(message));
        match failure {
            Failure::Timeout => LedgerError::Timeout,
            Failure::Unreachable(_) | Failure::Tls { .. } => LedgerError::Unreachable(message),
            Failure::Malformed(_) => LedgerError::Malformed(message),
            Failure::Request(_) => LedgerError::Other(message),
        }
    }

    /// `text` with the URL's secrets (user info, path and query) cut out, should a
    /// message ever quote them.
    fn scrub(&self, text: String) -> String {
        let mut text = text;
        let target = self.url.target();
        let secrets = [
            self.url.userinfo(),
            (target != "/").then_some(target),
            target.split('?').next().filter(|path| path.len() > 1),
        ];
        for secret in secrets.into_iter().flatten() {
            if !secret.is_empty() && text.contains(secret) {
                text = text.replace(secret, "***");
            }
        }
        text
    }
}

/// Whether the connection ended (closed or reset) before the answer began: what a
/// kept-alive connection the endpoint closed meanwhile does.
fn closed_before_an_answer(error: &ureq::Error) -> bool {
    matches!(
        error,
        ureq::Error::Io(error) if matches!(
            error.kind(),
            std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
        )
    )
}

/// Splits user info off an endpoint URL: the URL, and the `Authorization` header value
/// the user info stands for.
fn parse_endpoint(text: &str) -> Result<(Url, Option<String>), String> {
    let url = Url::parse(text.trim()).map_err(|error| error.reason)?;
    let authorization = match url.userinfo() {
        None => None,
        Some(userinfo) => {
            let decoded = percent_decode(userinfo)
                .ok_or("the user info has a bad %-escape or is not UTF-8")?;
            if decoded.chars().any(char::is_control) {
                return Err("the user info holds a control character".into());
            }
            Some(format!("Basic {}", base64(decoded.as_bytes())))
        }
    };
    Ok((url, authorization))
}

/// `text` with any user info in its authority replaced by `***`, and any path, query or
/// fragment by `/***`, for error messages.
pub(super) fn redact_url(text: &str) -> String {
    let (prefix, rest) = match text.find("://") {
        Some(at) => text.split_at(at + 3),
        None => ("", text),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rfind('@') {
        Some(at) => format!("***{}", &authority[at..]),
        None => authority.to_owned(),
    };
    let tail = if tail.is_empty() || tail == "/" {
        tail
    } else {
        "/***"
    };
    format!("{prefix}{authority}{tail}")
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let pair = bytes.get(i + 1..i + 3)?;
            // `from_str_radix` would also take a sign.
            if !pair.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let pair = std::str::from_utf8(pair).ok()?;
            out.push(u8::from_str_radix(pair, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Standard base64 with padding (RFC 4648 §4), for HTTP Basic authentication.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (k, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if k <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 0x3f) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Reads one JSON-RPC answer to the request with id `id`.
pub(super) fn parse_response(status: u16, body: &[u8], id: u64) -> Result<Value, LedgerError> {
    if status == 429 || (500..=599).contains(&status) {
        return Err(LedgerError::Http(status));
    }
    let success = (200..300).contains(&status);
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Err(not_json_rpc(status, format!("not JSON: {}", snippet(body))));
    };
    let Some(object) = value.as_object() else {
        return Err(not_json_rpc(
            status,
            format!("not a JSON-RPC object: {}", snippet(body)),
        ));
    };
    match answer(object, id) {
        // Some servers answer an error object with a 4xx; without one, the status is the
        // news.
        Err(Unanswered::Error(error)) => Err(error),
        _ if !success => Err(LedgerError::Http(status)),
        answer => answer.map_err(LedgerError::from),
    }
}

/// Why [`answer`] found no `result`.
enum Unanswered {
    /// The endpoint's JSON-RPC error object, classified.
    Error(LedgerError),
    /// No answer to this id that can be read.
    Malformed(String),
}

impl From<Unanswered> for LedgerError {
    fn from(unanswered: Unanswered) -> LedgerError {
        match unanswered {
            Unanswered::Error(error) => error,
            Unanswered::Malformed(reason) => LedgerError::Malformed(reason),
        }
    }
}

/// A failure to read an answer: `Malformed` for a 2xx, else the status.
fn not_json_rpc(status: u16, reason: String) -> LedgerError {
    if (200..300).contains(&status) {
        LedgerError::Malformed(reason)
    } else {
        LedgerError::Http(status)
    }
}

/// The `result` of one JSON-RPC response object, as the answer to request `id`.
fn answer(object: &serde_json::Map<String, Value>, id: u64) -> Result<Value, Unanswered> {
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(Unanswered::Malformed("no \"jsonrpc\": \"2.0\"".into()));
    }
    let answered = object.get("id").unwrap_or(&Value::Null);
    if let Some(error) = object.get("error").filter(|error| !error.is_null()) {
        // A server that could not read the request answers its error with a null id.
        if answered.is_null() || answered.as_u64() == Some(id) {
            return Err(Unanswered::Error(rpc_error(error)));
        }
    }
    if answered.as_u64() != Some(id) {
        return Err(Unanswered::Malformed(format!(
            "the answer is to request id {}, not {id}",
            bounded_chars(&answered.to_string(), MAX_SNIPPET_CHARS)
        )));
    }
    object
        .get("result")
        .cloned()
        .ok_or_else(|| Unanswered::Malformed("neither \"result\" nor \"error\"".into()))
}

/// Reads the answer to a JSON-RPC batch of requests with ids `ids`: each request's
/// answer, in the order of `ids`. See [`RpcClient::batch`].
pub(super) fn parse_batch_response(
    status: u16,
    body: &[u8],
    ids: &[u64],
) -> Result<Vec<Result<Value, LedgerError>>, LedgerError> {
    if status == 429 || (500..=599).contains(&status) {
        return Err(LedgerError::Http(status));
    }
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Err(not_json_rpc(status, format!("not JSON: {}", snippet(body))));
    };
    let answers = match value {
        Value::Array(answers) => answers,
        // One answer for the whole batch: an error object stands for every call.
        Value::Object(object) => {
            let error = object
                .get("error")
                .filter(|error| !error.is_null())
                .filter(|_| object.get("jsonrpc").and_then(Value::as_str) == Some("2.0"));
            return match error {
                Some(error) => {
                    let error = rpc_error(error);
                    Ok(ids.iter().map(|_| Err(error.clone())).collect())
                }
                None => Err(not_json_rpc(
                    status,
                    format!(
                        "one answer to a batch of {}, and not an error: {}",
                        ids.len(),
                        snippet(body)
                    ),
                )),
            };
        }
        _ => {
            return Err(not_json_rpc(
                status,
                format!("not a JSON-RPC batch answer: {}", snippet(body)),
            ));
        }
    };
    if !(200..300).contains(&status) {
        return Err(LedgerError::Http(status));
    }
    // Each id's answer object (the first one, should the endpoint repeat an id).
    let mut by_id: Vec<Option<&serde_json::Map<String, Value>>> = vec![None; ids.len()];
    for object in answers.iter().filter_map(Value::as_object) {
        let Some(answered) = object.get("id").and_then(Value::as_u64) else {
            continue;
        };
        if let Some(slot) = ids.iter().position(|&id| id == answered) {
            by_id[slot].get_or_insert(object);
        }
    }
    Ok(ids
        .iter()
        .zip(by_id)
        .map(|(&id, object)| match object {
            Some(object) => answer(object, id).map_err(LedgerError::from),
            None => Err(LedgerError::Malformed(format!(
                "the batch's answer has no answer to request id {id}"
            ))),
        })
        .collect())
}

/// A JSON-RPC error object, classified by its message.
fn rpc_error(error: &Value) -> LedgerError {
    let code = error.get("code").and_then(Value::as_i64);
    match error.get("message").and_then(Value::as_str) {
        Some(message) => classify_rpc_error(code, message),
        None => LedgerError::Malformed(format!(
            "an error object without a message: {}",
            bounded_chars(&error.to_string(), MAX_SNIPPET_CHARS)
        )),
    }
}

/// Classifies a JSON-RPC error by its message, case-insensitively. Quoted: what anvil
/// 1.7.1 answers `eth_sendRawTransaction` (seen by triggering each one against it; geth
/// and reth use the same phrases for the cases matched).
pub(super) fn classify_rpc_error(code: Option<i64>, message: &str) -> LedgerError {
    let lower = message.to_ascii_lowercase();
    let has = |needle: &str| lower.contains(needle);
    let with_code = || match code {
        Some(code) => bounded(&format!("{message} (code {code})")),
        None => bounded(message),
    };
    // The fee market, not the transfer and not the endpoint: bumped, never cancelled,
    // never counted against the breaker. Checked first, as a node may wrap them in
    // "invalid transaction". anvil (-32003): "max fee per gas less than block base fee";
    // "replacement transaction underpriced" (another transaction already holds the nonce
    // in the pool); geth: "transaction underpriced" (a tip below the pool's minimum).
    if has("less than block base fee") || has("underpriced") || has("fee cap less than") {
        return LedgerError::Underpriced(with_code());
    }
    // anvil (-32003): "Insufficient funds for gas * price + value".
    if has("insufficient funds") {
        return LedgerError::InsufficientBalance;
    }
    // anvil (-32003), the same bytes again while pending: "transaction already imported";
    // geth: "already known".
    if has("already known") || has("known transaction") || has("already imported") {
        return LedgerError::AlreadyKnown;
    }
    // anvil (-32003): "nonce too low", also for the same bytes once they are included.
    if has("nonce too low") {
        return LedgerError::NonceTooLow;
    }
    // anvil (-32003): "invalid chain id for signer": the endpoint is on another chain
    // than the one signed for (repointed since the chain id was read). No payment's
    // fault: the executor halts, as for a configured chain id that does not match.
    if has("invalid chain id") {
        return LedgerError::Signing(bounded(&format!(
            "the endpoint refuses the chain id the transaction was signed for ({}): it is \
             on another chain",
            with_code()
        )));
    }
    // What no resubmission of these bytes can cure. anvil: "intrinsic gas too low"
    // (-32000), "intrinsic gas too high -- tx.gas_limit > env.block.gas_limit" (-32000),
    // "max priority fee per gas higher than max fee per gas" (-32003), "Failed to decode
    // transaction" (-32602); geth: "exceeds block gas limit", "transaction type not
    // supported". (A corrupt signature recovers another, unfunded sender: anvil answers
    // "Insufficient funds".)
    if has("invalid transaction")
        || has("intrinsic gas")
        || has("invalid sender")
        || has("invalid signature")
        || has("higher than max fee")
        || has("exceeds block gas limit")
        || has("type not supported")
        || has("failed to decode")
    {
        return LedgerError::Rejected(with_code());
    }
    LedgerError::Other(with_code())
}

/// A `0x` quantity that fits in 128 bits.
pub(super) fn quantity(value: &Value, what: &str) -> Result<u128, LedgerError> {
    let bad = || {
        LedgerError::Malformed(format!(
            "{what} is not a hex quantity: {}",
            bounded_chars(&value.to_string(), MAX_SNIPPET_CHARS)
        ))
    };
    let text = value.as_str().ok_or_else(bad)?;
    let digits = text.strip_prefix("0x").ok_or_else(bad)?;
    if digits.is_empty() || digits.len() > 32 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    u128::from_str_radix(digits, 16).map_err(|_| bad())
}

/// A `0x` quantity that fits in 64 bits.
pub(super) fn quantity_u64(value: &Value, what: &str) -> Result<u64, LedgerError> {
    u64::try_from(quantity(value, what)?)
        .map_err(|_| LedgerError::Malformed(format!("{what} does not fit in 64 bits")))
}

/// `text` cut to at most [`MAX_MESSAGE_BYTES`] bytes (on a character boundary, `…` marking
/// the cut).
pub(super) fn bounded(text: &str) -> String {
    governance::text::bounded(text, MAX_MESSAGE_BYTES)
}

fn bounded_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(max).collect();
        short.push('…');
        short
    }
}

/// The start of an unreadable body, as text.
fn snippet(body: &[u8]) -> String {
    if body.is_empty() {
        return "an empty body".into();
    }
    format!(
        "{:?}",
        bounded_chars(&String::from_utf8_lossy(body), MAX_SNIPPET_CHARS)
    )
}
