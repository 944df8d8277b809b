//! A minimal HTTP/1.1 client for the xtasks (std only): one request per connection.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// An answer: the status code and the body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// Sends `method path` to `address` (`host:port`) with an optional bearer token and JSON
/// body, and reads the whole answer (10 s deadline per read).
pub fn request(
    address: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Result<Answer, String> {
    let mut stream =
        TcpStream::connect(address).map_err(|e| format!("cannot connect to {address}: {e}"))?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    if let Some(token) = token {
        head += &format!("Authorization: Bearer {token}\r\n");
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || method == "POST" {
        head += &format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
    }
    head += "\r\n";
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.as_bytes()))
        .map_err(|e| format!("cannot send {method} {path}: {e}"))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| format!("cannot read the answer to {method} {path}: {e}"))?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{method} {path}: an answer without a head"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("{method} {path}: no status in {:?}", head.lines().next()))?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok(Answer { status, body })
}

/// A GET whose answer must be 200: its body.
/// `/status`'s `executor.totals.executed`: how many disbursements the store holds
/// executed (counted by the store, so it survives restarts).
pub fn executed_total(status: &str) -> Result<u64, String> {
    let totals = status
        .find("\"totals\":")
        .map(|at| &status[at..])
        .ok_or("no executor.totals in /status")?;
    crate::anvil::json_field(totals, "executed")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| "no executor.totals.executed in /status".to_owned())
}

pub fn get(address: &str, path: &str) -> Result<String, String> {
    let answer = request(address, "GET", path, None, None)?;
    if answer.status != 200 {
        return Err(format!("GET {path}: HTTP {}", answer.status));
    }
    Ok(answer.body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        // A size past the end, or inside a character, is a malformed answer: stop there.
        let Some((chunk, after)) = rest.split_at_checked(size).filter(|_| size > 0) else {
            break;
        };
        out += chunk;
        body = after.trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(super::dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
        assert_eq!(
            super::dechunk("2\r\nab\r\n9\r\nc\r\n"),
            "ab",
            "a size past the end"
        );
        assert_eq!(
            super::dechunk("1\r\n\u{e9}\r\n"),
            "",
            "a size inside a character"
        );
    }
}
