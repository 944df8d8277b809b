//! JSON-RPC 2.0 over the node's blocking HTTP client ([`crate::client::http`]), and the
//! mapping of every way a call can fail to a [`LedgerError`]:
//!
//! | what happened                                        | `LedgerError`         |
//! |------------------------------------------------------|-----------------------|
//! | connection refused, reset or dropped; no such host   | `Unreachable`         |
//! | no whole answer within `request_timeout_ms`          | `Timeout`             |
//! | HTTP 5xx or 429                                      | `Http(code)`          |
//! | not HTTP, not JSON-RPC, another id, no `result`      | `Malformed`           |
//! | a JSON-RPC error object                              | by its message: [`classify_rpc_error`] |

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governance::LedgerError;
use serde_json::{Value, json};

use crate::client::http::{self, HttpError, Request, Url};

/// The most bytes of an endpoint's message kept in a [`LedgerError`].
pub(super) const MAX_MESSAGE_BYTES: usize = 512;
/// The most characters of an unreadable body quoted in a `Malformed` error.
const MAX_SNIPPET_CHARS: usize = 80;

/// A JSON-RPC endpoint: where, as whom, and how long to wait for each answer.
pub(super) struct RpcClient {
    url: Url,
    /// `Basic …` from the URL's user info; a secret, never shown.
    authorization: Option<String>,
    timeout: Duration,
    next_id: AtomicU64,
}

impl fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcClient")
            .field("url", &self.url.to_string())
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RpcClient {
    /// A client for `url` (`http://[user:password@]host[:port][/]`; user info becomes
    /// HTTP Basic authentication). The error is a reason that quotes no credentials.
    pub(super) fn new(url: &str, timeout: Duration) -> Result<RpcClient, String> {
        let (url, authorization) = parse_endpoint(url)?;
        Ok(RpcClient {
            url,
            authorization,
            timeout,
            next_id: AtomicU64::new(1),
        })
    }

    /// The endpoint without its user info: `http://host:port`.
    pub(super) fn endpoint(&self) -> String {
        self.url.to_string()
    }

    /// Calls `method` and returns its `result` (which may be `null`).
    pub(super) fn call(&self, method: &str, params: Value) -> Result<Value, LedgerError> {
        // Relaxed: the id only has to differ between calls; it orders nothing.
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let body = serde_json::to_vec(&body)
            .map_err(|error| LedgerError::Other(format!("cannot encode {method}: {error}")))?;
        let headers: Vec<(&str, &str)> = self
            .authorization
            .as_deref()
            .map(|value| ("Authorization", value))
            .into_iter()
            .collect();
        let request = Request {
            method: "POST",
            target: "/",
            headers: &headers,
            json_body: Some(&body),
        };
        let response = http::send(&self.url, &request, self.timeout).map_err(map_http_error)?;
        parse_response(response.status, &response.body, id)
    }
}

/// Splits user info off an endpoint URL: the URL the HTTP client takes, and the
/// `Authorization` header value the user info stands for.
fn parse_endpoint(text: &str) -> Result<(Url, Option<String>), String> {
    let text = text.trim();
    let (scheme, rest) = text.split_once("://").unwrap_or(("", text));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((userinfo, host)) => (Some(userinfo), host),
        None => (None, authority),
    };
    let url = Url::parse(&format!("{scheme}://{host}{tail}")).map_err(|error| error.reason)?;
    let authorization = match userinfo {
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

/// `text` with any user info in its authority replaced by `***`, for error messages.
pub(super) fn redact_url(text: &str) -> String {
    let (prefix, rest) = match text.find("://") {
        Some(at) => text.split_at(at + 3),
        None => ("", text),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{prefix}***{}", &rest[at..]),
        None => text.to_owned(),
    }
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

/// The transport's failures: no connection is `Unreachable`, no answer in time is
/// `Timeout`, an answer that is not HTTP is `Malformed`.
pub(super) fn map_http_error(error: HttpError) -> LedgerError {
    match error {
        HttpError::Timeout(_) => LedgerError::Timeout,
        HttpError::Resolve { .. } | HttpError::Connect(_) | HttpError::Io(_) => {
            LedgerError::Unreachable(bounded(&error.to_string()))
        }
        HttpError::Malformed(_) | HttpError::TooLarge(_) | HttpError::Unsupported(_) => {
            LedgerError::Malformed(bounded(&error.to_string()))
        }
        HttpError::InvalidRequest(_) => LedgerError::Other(bounded(&error.to_string())),
    }
}

/// Reads one JSON-RPC answer to the request with id `id`.
pub(super) fn parse_response(status: u16, body: &[u8], id: u64) -> Result<Value, LedgerError> {
    if status == 429 || (500..=599).contains(&status) {
        return Err(LedgerError::Http(status));
    }
    let success = (200..300).contains(&status);
    // Some servers answer an error object with a 4xx; without one, the status is the news.
    let not_json_rpc = |reason: String| {
        if success {
            LedgerError::Malformed(reason)
        } else {
            LedgerError::Http(status)
        }
    };
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Err(not_json_rpc(format!("not JSON: {}", snippet(body))));
    };
    let Some(object) = value.as_object() else {
        return Err(not_json_rpc(format!(
            "not a JSON-RPC object: {}",
            snippet(body)
        )));
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(not_json_rpc("no \"jsonrpc\": \"2.0\"".into()));
    }
    let answered = object.get("id").unwrap_or(&Value::Null);
    if let Some(error) = object.get("error").filter(|error| !error.is_null()) {
        // A server that could not read the request answers its error with a null id.
        if answered.is_null() || answered.as_u64() == Some(id) {
            return Err(rpc_error(error));
        }
    }
    if answered.as_u64() != Some(id) {
        return Err(not_json_rpc(format!(
            "the answer is to request id {}, not {id}",
            bounded_chars(&answered.to_string(), MAX_SNIPPET_CHARS)
        )));
    }
    if !success {
        return Err(LedgerError::Http(status));
    }
    object
        .get("result")
        .cloned()
        .ok_or_else(|| LedgerError::Malformed("neither \"result\" nor \"error\"".into()))
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
    if text.len() <= MAX_MESSAGE_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_MESSAGE_BYTES - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
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
