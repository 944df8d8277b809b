//! The proxy against a tiny upstream that answers each request with `pong`.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use super::*;

/// An upstream that reads one chunk per connection and answers "pong: <chunk>".
fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("addr");
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            thread::spawn(move || {
                let mut buffer = [0u8; 1024];
                while let Ok(n) = stream.read(&mut buffer) {
                    if n == 0
                        || stream
                            .write_all(&[b"pong: ", &buffer[..n]].concat())
                            .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    address
}

fn exchange(address: SocketAddr, message: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_millis(500)))?;
    stream.write_all(message)?;
    let mut reply = vec![0u8; 1024];
    let n = stream.read(&mut reply)?;
    reply.truncate(n);
    Ok(reply)
}

#[test]
fn pass_forwards_both_ways() {
    let proxy = FaultProxy::start(upstream()).expect("proxy");
    assert_eq!(
        exchange(proxy.addr(), b"ping").expect("reply"),
        b"pong: ping"
    );
    assert_eq!(proxy.connections(), 1);
}

#[test]
fn refuse_closes_the_port_and_pass_reopens_it() {
    let proxy = FaultProxy::start(upstream()).expect("proxy");
    proxy.set_mode(Mode::Refuse).expect("refuse");
    let error = exchange(proxy.addr(), b"ping").expect_err("refused");
    assert_eq!(error.kind(), ErrorKind::ConnectionRefused, "{error}");
    proxy.set_mode(Mode::Pass).expect("pass");
    assert_eq!(
        exchange(proxy.addr(), b"again").expect("reply"),
        b"pong: again"
    );
}

#[test]
fn blackhole_accepts_and_never_answers() {
    let proxy = FaultProxy::start(upstream()).expect("proxy");
    proxy.set_mode(Mode::Blackhole).expect("blackhole");
    let error = exchange(proxy.addr(), b"ping").expect_err("no answer");
    assert!(
        matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{error}"
    );
}

#[test]
fn http_500_and_garbage_answer_for_the_server() {
    let proxy = FaultProxy::start(upstream()).expect("proxy");
    proxy.set_mode(Mode::Http500).expect("500");
    let reply = exchange(proxy.addr(), b"POST / HTTP/1.1\r\n\r\n").expect("reply");
    assert!(
        reply.starts_with(b"HTTP/1.1 500 "),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    proxy.set_mode(Mode::Garbage).expect("garbage");
    let reply = exchange(proxy.addr(), b"POST / HTTP/1.1\r\n\r\n").expect("reply");
    assert!(
        !reply.is_empty() && !reply.starts_with(b"HTTP/"),
        "{reply:?}"
    );
}

#[test]
fn latency_delays_but_delivers() {
    let proxy = FaultProxy::start(upstream()).expect("proxy");
    proxy
        .set_mode(Mode::Latency(Duration::from_millis(150)))
        .expect("latency");
    let mut stream = TcpStream::connect(proxy.addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let began = Instant::now();
    stream.write_all(b"slow").expect("write");
    let mut reply = [0u8; 64];
    let n = stream.read(&mut reply).expect("read");
    assert_eq!(&reply[..n], b"pong: slow");
    // Delayed on the way there and on the way back: at least the two delays.
    assert!(
        began.elapsed() >= Duration::from_millis(300),
        "{:?}",
        began.elapsed()
    );
}

#[test]
fn switching_cuts_live_connections() {
    let proxy = FaultProxy::start(upstream()).expect("proxy");
    let mut stream = TcpStream::connect(proxy.addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    stream.write_all(b"one").expect("write");
    let mut reply = [0u8; 64];
    assert_eq!(stream.read(&mut reply).expect("read"), b"pong: one".len());
    proxy.set_mode(Mode::Blackhole).expect("blackhole");
    // The proxy closes the old connection: the next read ends (EOF or reset).
    let _ = stream.write_all(b"two");
    match stream.read(&mut reply) {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!("still forwarding after the switch: {:?}", &reply[..n]),
    }
}

// Stale reads: the proxy against a fake JSON-RPC node.

use std::sync::{Arc, Mutex};

/// How the fake node frames its answers.
#[derive(Debug, Clone, Copy)]
enum Answering {
    /// With a Content-Length, keeping the connection unless asked to close.
    Length,
    /// Chunked, in two chunks, keeping the connection unless asked to close.
    Chunked,
    /// Without a length: the body ends when the node closes the connection.
    Close,
}

/// A fake JSON-RPC node on loopback: answers each HTTP request (framed by Content-Length)
/// with `respond(body)` and keeps every body it got.
struct Node {
    address: SocketAddr,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Node {
    /// Answers every call with a fixed result, `"0xfeed"`.
    fn start() -> Node {
        Node::with(Answering::Length, feed)
    }

    fn with(answering: Answering, respond: fn(&str) -> String) -> Node {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("addr");
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&bodies);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let seen = Arc::clone(&seen);
                thread::spawn(move || node_connection(stream, answering, respond, &seen));
            }
        });
        Node { address, bodies }
    }

    /// The bodies of the requests it got, in order.
    fn bodies(&self) -> Vec<String> {
        self.bodies.lock().expect("bodies").clone()
    }
}

fn node_connection(
    mut stream: TcpStream,
    answering: Answering,
    respond: fn(&str) -> String,
    seen: &Mutex<Vec<String>>,
) {
    let mut buffer = Vec::new();
    loop {
        let Some((head, body)) = read_message(&mut stream, &mut buffer) else {
            return;
        };
        seen.lock().expect("bodies").push(body.clone());
        let answer = respond(&body);
        let close = head.to_ascii_lowercase().contains("connection: close");
        let reply = match answering {
            Answering::Length => format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
                answer.len()
            ),
            Answering::Chunked => {
                let (first, second) = answer.split_at(answer.len() / 2);
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
                     {:x}\r\n{first}\r\n{:x};ext=1\r\n{second}\r\n0\r\n\r\n",
                    first.len(),
                    second.len()
                )
            }
            Answering::Close => format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{answer}"
            ),
        };
        if stream.write_all(reply.as_bytes()).is_err() || close {
            return;
        }
        if matches!(answering, Answering::Close) {
            return;
        }
    }
}

/// One message framed by Content-Length (or none): its head and body. `None` at the end.
fn read_message(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<(String, String)> {
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buffer[head_end..head_end + length]).into_owned();
    buffer.drain(..head_end + length);
    Some((head, body))
}

/// `{"jsonrpc":"2.0","id":<id>,"result":"0xfeed"}`, the id found naively (the tests'
/// bodies have one top-level `"id":` and no other).
fn feed(body: &str) -> String {
    let id = body.find(r#""id":"#).map_or("null", |at| {
        let rest = &body[at + 5..];
        let end = if let Some(text) = rest.strip_prefix('"') {
            text.find('"').map_or(rest.len(), |end| end + 2)
        } else {
            rest.find([',', '}']).unwrap_or(rest.len())
        };
        &rest[..end]
    });
    format!(r#"{{"jsonrpc":"2.0","id":{id},"result":"0xfeed"}}"#)
}

/// A request for `body`, as the node's client sends it (`close`) or kept alive.
fn post(body: &str, close: bool) -> String {
    let connection = if close { "Connection: close\r\n" } else { "" };
    format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{connection}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// An answer read off a connection.
#[derive(Debug)]
struct Reply {
    head: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (field, value) = line.split_once(':')?;
            field.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// A client connection to the proxy.
struct Client {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Client {
    fn connect(address: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&address, Duration::from_secs(2)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        Client {
            stream,
            buffer: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &str) {
        self.stream.write_all(bytes.as_bytes()).expect("write");
    }

    /// The next answer (framed by Content-Length, which the proxy's own answers have).
    fn reply(&mut self) -> Reply {
        let (head, body) = read_message(&mut self.stream, &mut self.buffer).expect("a reply");
        let reply = Reply { head, body };
        let length = reply.header("Content-Length").expect("Content-Length");
        assert_eq!(length, reply.body.len().to_string(), "{reply:?}");
        reply
    }

    /// Whether the proxy closed the connection: the next read ends (EOF or reset), rather
    /// than bringing bytes or timing out.
    fn closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(error) => !matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        }
    }

    /// Everything until the proxy closes.
    fn rest(&mut self) -> String {
        let mut rest = std::mem::take(&mut self.buffer);
        self.stream.read_to_end(&mut rest).expect("read to the end");
        String::from_utf8(rest).expect("UTF-8")
    }
}

/// One call on a connection of its own, as the node makes it.
fn call(proxy: &FaultProxy, body: &str) -> Reply {
    let mut client = Client::connect(proxy.addr());
    client.send(&post(body, true));
    let reply = client.reply();
    assert!(client.closed(), "asked to close: {reply:?}");
    reply
}

fn stale_proxy(node: &Node) -> FaultProxy {
    let proxy = FaultProxy::start(node.address).expect("proxy");
    proxy.set_mode(Mode::StaleReads).expect("stale reads");
    proxy
}

const RECEIPT: &str =
    r#"{"jsonrpc":"2.0","id":7,"method":"eth_getTransactionReceipt","params":["0xab12"]}"#;
const BLOCK_NUMBER: &str = r#"{"jsonrpc":"2.0","id":2,"method":"eth_blockNumber","params":[]}"#;

#[test]
fn stale_reads_answer_lookups_null_with_their_id() {
    let node = Node::start();
    let proxy = stale_proxy(&node);

    let reply = call(&proxy, RECEIPT);
    assert!(reply.head.starts_with("HTTP/1.1 200 OK\r\n"), "{reply:?}");
    assert_eq!(reply.header("Content-Type"), Some("application/json"));
    assert_eq!(reply.body, r#"{"jsonrpc":"2.0","id":7,"result":null}"#);

    // A string id with an escaped quote, keys in another order, the other lookup.
    let reply = call(
        &proxy,
        r#"{ "params" : ["0xab12"], "method" : "eth_getTransactionByHash", "id" : "tx-\"1\"", "jsonrpc" : "2.0" }"#,
    );
    assert_eq!(
        reply.body,
        r#"{"jsonrpc":"2.0","id":"tx-\"1\"","result":null}"#
    );

    assert_eq!(node.bodies(), Vec::<String>::new(), "the node saw a lookup");
    assert_eq!(proxy.stale_answers(), 2);
}

#[test]
fn stale_reads_forward_sends_and_other_calls() {
    let node = Node::start();
    let proxy = stale_proxy(&node);
    let send = r#"{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0x02f8"]}"#;

    assert_eq!(
        call(&proxy, send).body,
        r#"{"jsonrpc":"2.0","id":1,"result":"0xfeed"}"#
    );
    assert_eq!(
        call(&proxy, BLOCK_NUMBER).body,
        r#"{"jsonrpc":"2.0","id":2,"result":"0xfeed"}"#
    );
    assert_eq!(node.bodies(), [send, BLOCK_NUMBER]);
    assert_eq!(proxy.stale_answers(), 0);
}

#[test]
fn stale_reads_read_the_top_level_method_only() {
    let node = Node::start();
    let proxy = stale_proxy(&node);

    // "method" after params that hold "method" in a string and in a nested object.
    let lookup = r#"{"jsonrpc":"2.0","params":[{"note":"\"method\":\"eth_blockNumber\"}","inner":{"method":"eth_blockNumber","list":[1,{"x":"]"}]}}],"id":3,"method":"eth_getTransactionReceipt"}"#;
    assert_eq!(
        call(&proxy, lookup).body,
        r#"{"jsonrpc":"2.0","id":3,"result":null}"#
    );
    // The other way round: a lookup only inside params is not a lookup.
    let other = r#"{"jsonrpc":"2.0","method":"eth_blockNumber","params":[{"method":"eth_getTransactionReceipt","note":"\"method\":\"eth_getTransactionReceipt\""}],"id":4}"#;
    assert_eq!(
        call(&proxy, other).body,
        r#"{"jsonrpc":"2.0","id":4,"result":"0xfeed"}"#
    );
    // An escaped method name is the same name.
    let escaped = r#"{"id":5,"\u006dethod":"eth_getTransaction\u0052eceipt","params":[]}"#;
    assert_eq!(
        call(&proxy, escaped).body,
        r#"{"jsonrpc":"2.0","id":5,"result":null}"#
    );

    assert_eq!(node.bodies(), [other]);
    assert_eq!(proxy.stale_answers(), 2);
}

#[test]
fn stale_reads_forward_what_is_not_an_answerable_lookup() {
    let node = Node::start();
    let proxy = stale_proxy(&node);
    let bodies = [
        // Cut short: not JSON.
        r#"{"jsonrpc":"2.0","id":1,"method":"eth_getTransactionReceipt","params":["#,
        // Two methods: ambiguous.
        r#"{"id":2,"method":"eth_blockNumber","method":"eth_getTransactionReceipt"}"#,
        // A raw control character in a string: not JSON.
        "{\"id\":3,\"method\":\"eth_getTransactionReceipt\",\"params\":[\"a\u{1}b\"]}",
        // No id: a notification, nothing to answer.
        r#"{"jsonrpc":"2.0","method":"eth_getTransactionReceipt","params":[]}"#,
        // Trailing bytes after the object.
        r#"{"id":4,"method":"eth_getTransactionReceipt"} x"#,
    ];
    for body in bodies {
        let reply = call(&proxy, body);
        assert!(reply.body.contains("0xfeed"), "{body}: {reply:?}");
    }
    assert_eq!(node.bodies(), bodies);
    assert_eq!(proxy.stale_answers(), 0);
}

#[test]
fn stale_reads_answer_each_request_of_a_keep_alive_connection_in_order() {
    let node = Node::start();
    let proxy = stale_proxy(&node);
    let mut client = Client::connect(proxy.addr());

    // Two requests in one write (pipelined), then a third after the answers.
    client.send(&(post(RECEIPT, false) + &post(BLOCK_NUMBER, false)));
    assert_eq!(
        client.reply().body,
        r#"{"jsonrpc":"2.0","id":7,"result":null}"#
    );
    assert_eq!(
        client.reply().body,
        r#"{"jsonrpc":"2.0","id":2,"result":"0xfeed"}"#
    );
    let lookup = r#"{"jsonrpc":"2.0","id":8,"method":"eth_getTransactionByHash","params":["0x1"]}"#;
    client.send(&post(lookup, false));
    let reply = client.reply();
    assert_eq!(reply.body, r#"{"jsonrpc":"2.0","id":8,"result":null}"#);
    assert_eq!(reply.header("Connection"), None, "kept alive");

    assert_eq!(proxy.connections(), 1);
    assert_eq!(node.bodies(), [BLOCK_NUMBER]);
    assert_eq!(proxy.stale_answers(), 2);
}

#[test]
fn stale_reads_read_chunked_requests() {
    let node = Node::start();
    let proxy = stale_proxy(&node);
    let mut client = Client::connect(proxy.addr());
    let (first, second) = RECEIPT.split_at(20);
    client.send(&format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{first}\r\n{:X}\r\n{second}\r\n0\r\n\r\n",
        first.len(),
        second.len()
    ));
    assert_eq!(
        client.reply().body,
        r#"{"jsonrpc":"2.0","id":7,"result":null}"#
    );
    assert_eq!(node.bodies(), Vec::<String>::new());
    assert_eq!(proxy.stale_answers(), 1);
}

#[test]
fn stale_reads_relay_chunked_and_close_delimited_answers_whole() {
    // Chunked: the proxy finds the end of the answer, so the connection carries on.
    let node = Node::with(Answering::Chunked, feed);
    let proxy = stale_proxy(&node);
    let mut client = Client::connect(proxy.addr());
    client.send(&post(BLOCK_NUMBER, false));
    client.send(&post(RECEIPT, true));
    let answer = r#"{"jsonrpc":"2.0","id":2,"result":"0xfeed"}"#;
    let (first, second) = answer.split_at(answer.len() / 2);
    assert_eq!(
        client.rest(),
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
             {:x}\r\n{first}\r\n{:x};ext=1\r\n{second}\r\n0\r\n\r\n\
             HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 38\r\nConnection: close\r\n\r\n\
             {{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":null}}",
            first.len(),
            second.len()
        )
    );
    assert_eq!(node.bodies(), [BLOCK_NUMBER]);

    // Close-delimited: relayed to the node's end, and then the client's connection ends.
    let node = Node::with(Answering::Close, feed);
    let proxy = stale_proxy(&node);
    let mut client = Client::connect(proxy.addr());
    client.send(&post(BLOCK_NUMBER, false));
    assert_eq!(
        client.rest(),
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{answer}"
        )
    );
    assert_eq!(node.bodies(), [BLOCK_NUMBER]);
}

/// Answers the one sub-batch `stale_reads_split_batches` expects, in reverse order.
fn sub_batch(body: &str) -> String {
    if body
        == r#"[{"jsonrpc":"2.0","id":2,"method":"eth_blockNumber"},{"jsonrpc":"2.0","id":4,"method":"eth_sendRawTransaction","params":["0x02"]},{"jsonrpc":"2.0","method":"eth_getTransactionReceipt"}]"#
    {
        r#"[{"jsonrpc":"2.0","id":4,"result":"0xsent"}, {"jsonrpc":"2.0","id":2,"result":"0x10"}]"#
            .to_owned()
    } else {
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"unexpected"}}"#.to_owned()
    }
}

#[test]
fn stale_reads_split_batches() {
    let node = Node::with(Answering::Length, sub_batch);
    let proxy = stale_proxy(&node);

    let batch = r#"[ {"jsonrpc":"2.0","id":1,"method":"eth_getTransactionReceipt","params":["0x1"]},
        {"jsonrpc":"2.0","id":2,"method":"eth_blockNumber"},
        {"jsonrpc":"2.0","id":"x","method":"eth_getTransactionByHash","params":["0x2"]},
        {"jsonrpc":"2.0","id":4,"method":"eth_sendRawTransaction","params":["0x02"]},
        {"jsonrpc":"2.0","method":"eth_getTransactionReceipt"} ]"#;
    assert_eq!(
        call(&proxy, batch).body,
        concat!(
            r#"[{"jsonrpc":"2.0","id":1,"result":null},"#,
            r#"{"jsonrpc":"2.0","id":2,"result":"0x10"},"#,
            r#"{"jsonrpc":"2.0","id":"x","result":null},"#,
            r#"{"jsonrpc":"2.0","id":4,"result":"0xsent"}]"#
        )
    );
    assert_eq!(proxy.stale_answers(), 2);
    assert_eq!(node.bodies().len(), 1, "one sub-batch upstream");

    // Only lookups: answered without the node.
    let lookups = r#"[{"id":5,"method":"eth_getTransactionReceipt"},{"id":6,"method":"eth_getTransactionByHash"}]"#;
    assert_eq!(
        call(&proxy, lookups).body,
        r#"[{"jsonrpc":"2.0","id":5,"result":null},{"jsonrpc":"2.0","id":6,"result":null}]"#
    );
    assert_eq!(proxy.stale_answers(), 4);
    assert_eq!(node.bodies().len(), 1);

    // No lookup: forwarded as it is.
    let plain = r#"[{"jsonrpc":"2.0","id":9,"method":"eth_chainId"}]"#;
    assert!(call(&proxy, plain).body.contains("unexpected"));
    assert_eq!(node.bodies().last().map(String::as_str), Some(plain));
    assert_eq!(proxy.stale_answers(), 4);
}

#[test]
fn switching_back_to_pass_forwards_lookups_again() {
    let node = Node::start();
    let proxy = stale_proxy(&node);
    let mut live = Client::connect(proxy.addr());
    live.send(&post(RECEIPT, false));
    assert_eq!(
        live.reply().body,
        r#"{"jsonrpc":"2.0","id":7,"result":null}"#
    );

    proxy.set_mode(Mode::Pass).expect("pass");
    // The connection of the stale mode is cut, not left answering stale. (The write may
    // already fail: the proxy may have closed it.)
    let _ = live.stream.write_all(post(RECEIPT, false).as_bytes());
    assert!(live.closed(), "still answering after the switch");

    assert_eq!(
        call(&proxy, RECEIPT).body,
        r#"{"jsonrpc":"2.0","id":7,"result":"0xfeed"}"#
    );
    assert_eq!(node.bodies(), [RECEIPT]);
    assert_eq!(proxy.stale_answers(), 1);
}

#[test]
fn count_sends_forwards_everything_and_counts_raw_transactions() {
    let node = Node::start();
    let proxy = FaultProxy::start(node.address).expect("proxy");
    proxy.set_mode(Mode::CountSends).expect("count sends");
    let send = r#"{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0x02f8"]}"#;

    // A lookup is forwarded (not answered null), and not counted.
    assert_eq!(
        call(&proxy, RECEIPT).body,
        r#"{"jsonrpc":"2.0","id":7,"result":"0xfeed"}"#
    );
    assert_eq!(proxy.raw_transactions(), 0);
    assert_eq!(
        call(&proxy, send).body,
        r#"{"jsonrpc":"2.0","id":1,"result":"0xfeed"}"#
    );
    assert_eq!(proxy.raw_transactions(), 1);

    // Each request of a kept-alive connection, and each send of a batch, counts; a
    // "method" nested in the params does not.
    let mut live = Client::connect(proxy.addr());
    live.send(&post(send, false));
    assert!(live.reply().body.contains("0xfeed"));
    let nested = r#"{"jsonrpc":"2.0","id":3,"method":"eth_call","params":[{"method":"eth_sendRawTransaction"}]}"#;
    live.send(&post(nested, false));
    assert!(live.reply().body.contains("0xfeed"));
    assert_eq!(proxy.raw_transactions(), 2);
    let batch = r#"[{"jsonrpc":"2.0","id":4,"method":"eth_sendRawTransaction","params":["0x1"]},
        {"jsonrpc":"2.0","id":5,"method":"eth_blockNumber"},
        {"jsonrpc":"2.0","id":6,"method":"eth_sendRawTransaction","params":["0x2"]}]"#;
    live.send(&post(batch, true));
    let _ = live.rest();
    assert_eq!(proxy.raw_transactions(), 4);
    assert_eq!(proxy.stale_answers(), 0);
    assert_eq!(
        node.bodies(),
        [RECEIPT, send, send, nested, batch],
        "everything forwarded as it came"
    );
}

#[test]
fn stale_reads_count_the_sends_they_forward_and_pass_counts_none() {
    let node = Node::start();
    let proxy = stale_proxy(&node);
    let send = r#"{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0x02f8"]}"#;
    call(&proxy, send);
    call(&proxy, RECEIPT);
    assert_eq!((proxy.raw_transactions(), proxy.stale_answers()), (1, 1));
    proxy.set_mode(Mode::Pass).expect("pass");
    call(&proxy, send);
    assert_eq!(proxy.raw_transactions(), 1, "Pass does not read requests");
    assert_eq!(node.bodies(), [send, send]);
}

#[test]
fn stale_reads_tunnel_what_is_not_http() {
    let proxy = FaultProxy::start(upstream()).expect("proxy");
    proxy.set_mode(Mode::StaleReads).expect("stale reads");
    assert_eq!(
        exchange(proxy.addr(), b"not http at all\r\n\r\n").expect("reply"),
        b"pong: not http at all\r\n\r\n"
    );
}

#[test]
fn the_scanner_reads_json_strictly() {
    use crate::jsonrpc::{Body, parse};

    let Some(Body::Single(call)) =
        parse(br#" {"a":[{"method":"x"}],"method":"m\"q","id":[1, {"b":2}]} "#)
    else {
        panic!("an object");
    };
    assert_eq!(call.method.as_deref(), Some("m\"q"));
    assert_eq!(call.id, Some(br#"[1, {"b":2}]"#.as_slice()));

    // A surrogate pair decodes; a lone one is refused.
    let Some(Body::Single(call)) = parse(br#"{"method":"\ud83d\ude00"}"#) else {
        panic!("an object");
    };
    assert_eq!(call.method.as_deref(), Some("\u{1f600}"));
    for bad in [
        br#"{"method":"\ud83d"}"#.as_slice(),
        br#"{"id":01}"#,
        br#"{"id":1.}"#,
        br#"{"id":-}"#,
        br#"{"id":1e}"#,
        br#"{"id":tru}"#,
        br#"{"id":1,}"#,
        br#"[1,]"#,
        br#"{"id" 1}"#,
        b"\xff",
        b"",
    ] {
        assert_eq!(parse(bad), None, "{}", String::from_utf8_lossy(bad));
    }
    for good in [
        br#"{"id":-0.5e+3}"#.as_slice(),
        br#"{"id":null,"method":null}"#,
        br#"[]"#,
        br#"[1,"two",{"id":3}]"#,
    ] {
        assert!(parse(good).is_some(), "{}", String::from_utf8_lossy(good));
    }

    // Deep nesting is refused, not recursed into without end.
    let deep = format!(
        "{{\"params\":{}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_eq!(parse(deep.as_bytes()), None);
}
