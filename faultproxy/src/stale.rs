//! `Mode::StaleReads`: a JSON-RPC provider whose read backend lags. The proxy reads each
//! HTTP request off the client's connection (keep-alive and pipelined requests are
//! answered one by one, in order) and
//!
//! - answers a transaction lookup ([`jsonrpc::LOOKUPS`]) itself: `200 OK`,
//!   `{"jsonrpc":"2.0","id":<its id>,"result":null}`;
//! - answers a batch holding lookups by sending the other calls upstream as a smaller
//!   batch and putting the two sets of answers together in the batch's order;
//! - forwards everything else byte for byte, on a fresh upstream connection per request,
//!   and relays the upstream's answer as it came.
//!
//! What it cannot frame as HTTP (or that is larger than it buffers) it stops reading
//! and tunnels, like `Pass`, for the rest of the connection.
//!
//! `Mode::CountSends` reads requests the same way but answers nothing itself: every
//! request is forwarded. In both modes the `eth_sendRawTransaction` calls of each request
//! are counted before it goes upstream.

use std::net::{Shutdown, TcpStream};
use std::sync::atomic::Ordering;

use crate::http::{Connection, Failure, Framing, Message};
use crate::jsonrpc::{self, Body, Call};
use crate::{Epoch, Shared, splice};

/// One request read off the client.
struct Request {
    message: Message,
    method: String,
    /// The proxy already told the client `100 Continue`: the upstream's is not relayed.
    continued: bool,
}

/// An upstream's answer to one forwarded request.
struct Exchange {
    /// Interim (1xx) responses before it, as they came, to relay first.
    interim: Vec<u8>,
    response: Message,
    framing: Framing,
    upstream: Connection,
}

/// Serves one client connection; `stale`: lookups are answered `null` (`StaleReads`),
/// else everything is forwarded (`CountSends`).
pub(crate) fn serve(shared: &Shared, client: TcpStream, epoch: Epoch<'_>, stale: bool) {
    let Ok(mut client) = Connection::new(client) else {
        return;
    };
    loop {
        let request = match read_request(&mut client, epoch) {
            Ok(Some(request)) => request,
            Ok(None) | Err(Failure::Cut | Failure::Broken) => break,
            // What was read goes first, then everything after it untouched, as in `Pass`.
            Err(Failure::Unframeable) => {
                return crate::forward(shared, client.stream, &client.buffer, epoch, None);
            }
        };
        if epoch.changed() {
            break; // arrived after the switch: not answered
        }
        let keep_alive = request.message.head.keeps_alive();
        let body = jsonrpc::parse(&request.message.body);
        // Sends are never answered here: each one counted goes upstream.
        let sends = match &body {
            Some(Body::Single(call)) => usize::from(call.is_raw_transaction()),
            Some(Body::Batch(calls)) => calls.iter().filter(|c| c.is_raw_transaction()).count(),
            None => 0,
        };
        shared
            .raw_transactions
            .fetch_add(sends as u64, Ordering::SeqCst);
        let outcome = match body {
            Some(Body::Single(call)) if stale => match call.stale_id() {
                Some(id) => {
                    let answer = jsonrpc::null_answer(id);
                    answer_stale(shared, &mut client, &answer, 1, keep_alive)
                }
                None => forward(shared, &mut client, &request, epoch),
            },
            Some(Body::Batch(calls)) if stale && calls.iter().any(Call::is_stale) => {
                batch(shared, &mut client, &request, &calls, keep_alive, epoch)
            }
            _ => forward(shared, &mut client, &request, epoch),
        };
        if !matches!(outcome, Ok(true)) || !keep_alive {
            break;
        }
    }
    let _ = client.stream.shutdown(Shutdown::Both);
}

/// The next request; `None` if the client closed between requests.
fn read_request(client: &mut Connection, epoch: Epoch<'_>) -> Result<Option<Request>, Failure> {
    let Some((head, head_length)) = client.head(epoch)? else {
        return Ok(None);
    };
    let (method, version) = head.request_line().ok_or(Failure::Unframeable)?;
    if method == "CONNECT" {
        return Err(Failure::Unframeable); // a tunnel from the start
    }
    let method = method.to_owned();
    let framing = head.request_framing()?;
    // A client that sent `Expect: 100-continue` may hold the body back until told to go
    // on; the body is needed before the request can be judged.
    let continued = version == "HTTP/1.1"
        && head.lists("Expect", "100-continue")
        && framing != Framing::Length(0)
        && client.buffer.len() == head_length;
    if continued {
        client.write(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let message = client.body(head, head_length, framing, epoch)?;
    Ok(Some(Request {
        message,
        method,
        continued,
    }))
}

/// Forwards the request as it came and relays the answer.
fn forward(
    shared: &Shared,
    client: &mut Connection,
    request: &Request,
    epoch: Epoch<'_>,
) -> Result<bool, Failure> {
    let exchange = exchange(shared, &request.message.raw, request, epoch)?;
    relay(client, exchange, epoch)
}

/// Answers with `body`, which holds the null results of `count` lookups.
fn answer_stale(
    shared: &Shared,
    client: &mut Connection,
    body: &[u8],
    count: usize,
    keep_alive: bool,
) -> Result<bool, Failure> {
    // Counted first: a client that has read the answer finds it counted.
    shared
        .stale_answers
        .fetch_add(count as u64, Ordering::SeqCst);
    respond(client, body, keep_alive)?;
    Ok(true)
}

/// Answers a batch holding at least one lookup: the other calls go upstream as a batch of
/// their own, and the answers are merged by id. If the upstream does not answer that
/// batch with a JSON array (an error status, a single error object), its response is
/// relayed as it came and the lookups go unanswered, as they would upstream.
fn batch(
    shared: &Shared,
    client: &mut Connection,
    request: &Request,
    calls: &[Call<'_>],
    keep_alive: bool,
    epoch: Epoch<'_>,
) -> Result<bool, Failure> {
    let (stale, forwarded): (Vec<&Call<'_>>, Vec<&Call<'_>>) =
        calls.iter().partition(|call| call.is_stale());
    if forwarded.is_empty() {
        let nulls = jsonrpc::merge(calls, b"").ok_or(Failure::Broken)?;
        return answer_stale(shared, client, &nulls, stale.len(), keep_alive);
    }
    let raws: Vec<&[u8]> = forwarded.iter().map(|call| call.raw).collect();
    let body = [b"[".as_slice(), &raws.join(b",".as_slice()), b"]"].concat();
    let exchange = exchange(shared, &with_body(request, &body), request, epoch)?;
    let merged = exchange
        .response
        .head
        .status()
        .filter(|status| (200..300).contains(status))
        .and_then(|_| jsonrpc::merge(calls, &exchange.response.body));
    let Some(merged) = merged else {
        return relay(client, exchange, epoch);
    };
    client.write(&exchange.interim)?;
    answer_stale(shared, client, &merged, stale.len(), keep_alive)
}

/// The request's head with `body` in place of its body (framing fields replaced).
fn with_body(request: &Request, body: &[u8]) -> Vec<u8> {
    let head = &request.message.head;
    let mut bytes = head.raw_start.clone();
    for field in &head.fields {
        let framing = field.name.eq_ignore_ascii_case("Content-Length")
            || field.name.eq_ignore_ascii_case("Transfer-Encoding");
        if !framing {
            bytes.extend_from_slice(&field.raw);
        }
    }
    bytes.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    bytes.extend_from_slice(body);
    bytes
}

/// The proxy's own answer: `200 OK`, JSON.
fn respond(client: &mut Connection, body: &[u8], keep_alive: bool) -> Result<(), Failure> {
    let close = if keep_alive {
        ""
    } else {
        "Connection: close\r\n"
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{close}\r\n",
        body.len()
    );
    client.write(&[head.as_bytes(), body].concat())
}

/// Sends `bytes` (the request, or what stands for it) upstream on a fresh connection and
/// reads the answer.
fn exchange(
    shared: &Shared,
    bytes: &[u8],
    request: &Request,
    epoch: Epoch<'_>,
) -> Result<Exchange, Failure> {
    // Upstream trouble is the client's trouble: its connection is closed, as in `Pass`.
    let broken = |failure| match failure {
        Failure::Cut => Failure::Cut,
        Failure::Broken | Failure::Unframeable => Failure::Broken,
    };
    let stream = shared.connect_upstream().map_err(|_| Failure::Broken)?;
    let mut upstream = Connection::new(stream).map_err(|_| Failure::Broken)?;
    upstream.write(bytes)?;
    let mut interim = Vec::new();
    loop {
        let (head, head_length) = upstream
            .head(epoch)
            .map_err(broken)?
            .ok_or(Failure::Broken)?;
        let status = head.status().ok_or(Failure::Broken)?;
        let framing = head.response_framing(&request.method).map_err(broken)?;
        let response = upstream
            .body(head, head_length, framing, epoch)
            .map_err(broken)?;
        if (100..200).contains(&status) && status != 101 {
            if !(status == 100 && request.continued) {
                interim.extend_from_slice(&response.raw);
            }
            continue; // the final response follows
        }
        return Ok(Exchange {
            interim,
            response,
            framing,
            upstream,
        });
    }
}

/// Relays the upstream's answer as it came; whether the connection carries on.
fn relay(client: &mut Connection, exchange: Exchange, epoch: Epoch<'_>) -> Result<bool, Failure> {
    client.write(&exchange.interim)?;
    client.write(&exchange.response.raw)?;
    if exchange.response.head.status() == Some(101) {
        // Switched protocols: no more HTTP to read, both ways are copied from here on.
        let mut upstream = exchange.upstream;
        upstream.write(&std::mem::take(&mut client.buffer))?;
        client.write(&std::mem::take(&mut upstream.buffer))?;
        let Ok(client_stream) = client.stream.try_clone() else {
            return Err(Failure::Broken);
        };
        splice(client_stream, upstream.stream, epoch, None);
        return Ok(false);
    }
    // A body that ran to the end of the upstream's connection ends the client's too.
    Ok(exchange.framing != Framing::UntilClose && exchange.response.head.keeps_alive())
}
