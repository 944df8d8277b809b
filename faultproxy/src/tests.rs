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
