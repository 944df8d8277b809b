//! A fault-injecting TCP proxy for tests: it sits between a client (the node) and a
//! server (the chain's RPC) on loopback and, switchable while it runs, passes traffic,
//! refuses connections, accepts them and never answers, answers HTTP 500, answers garbage,
//! passes traffic late, or serves stale reads: it answers JSON-RPC transaction lookups
//! (`eth_getTransactionReceipt`, `eth_getTransactionByHash`) with a `null` result, as a
//! load-balanced provider whose read backend lags does, and forwards every other call.
//! In the modes that read requests one by one (`StaleReads`, `CountSends`) it counts the
//! `eth_sendRawTransaction` calls it forwards ([`FaultProxy::raw_transactions`]): how a
//! test tells that a client broadcast nothing.
//!
//! Std only, a thread per connection: it serves a handful of test connections, not load.
//!
//! ```
//! use std::net::TcpListener;
//! use faultproxy::{FaultProxy, Mode};
//!
//! let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
//! let proxy = FaultProxy::start(upstream.local_addr().unwrap()).unwrap();
//! proxy.set_mode(Mode::Refuse).unwrap(); // the next connection to proxy.addr() is refused
//! assert_eq!(proxy.mode(), Mode::Refuse);
//! ```

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

mod http;
mod jsonrpc;
mod stale;
#[cfg(test)]
mod tests;

/// What the proxy does with the next connection (a connection keeps the mode it was
/// accepted in, except that switching away from `Pass`, `Latency`, `Blackhole`,
/// `StaleReads` or `CountSends` cuts live ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward both ways.
    Pass,
    /// Refuse connections (the listening socket is closed: connect fails at once).
    Refuse,
    /// Accept, read, and never answer (the client times out).
    Blackhole,
    /// Read the request and answer `HTTP/1.1 500 Internal Server Error`.
    Http500,
    /// Read the request and answer bytes that are not HTTP.
    Garbage,
    /// Forward both ways, each chunk delayed by this long.
    Latency(Duration),
    /// Read HTTP/1.1 requests one by one (keep-alive included): answer a JSON-RPC
    /// `eth_getTransactionReceipt` or `eth_getTransactionByHash` call with `200 OK` and
    /// `{"jsonrpc":"2.0","id":<its id>,"result":null}` (the transaction looks unknown),
    /// and forward any other request unchanged, sends included. In a batch, the lookups
    /// are answered `null` and the other calls go upstream as a smaller batch, the answers
    /// merged back in the batch's order. A body that is not JSON is forwarded unchanged.
    StaleReads,
    /// Forward every request unchanged, as `Pass` does, but read HTTP/1.1 requests one by
    /// one, as `StaleReads` does, so that the `eth_sendRawTransaction` calls among them
    /// are counted ([`FaultProxy::raw_transactions`]). What is not HTTP it frames is
    /// tunneled, uncounted, for the rest of the connection, as in `StaleReads`.
    CountSends,
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    address: SocketAddr,
    mode: Mutex<Mode>,
    /// Bumped when the mode changes, so connections of an earlier mode can tell.
    epoch: AtomicU64,
    stopped: AtomicBool,
    connections: AtomicU64,
    /// Lookups answered `null` in `StaleReads`.
    stale_answers: AtomicU64,
    /// `eth_sendRawTransaction` calls forwarded in `StaleReads` and `CountSends`.
    raw_transactions: AtomicU64,
    /// The listener while accepting; `None` while refusing.
    listener: Mutex<Option<TcpListener>>,
    /// The thread accepting on it.
    acceptor: Mutex<Option<thread::JoinHandle<()>>>,
}

impl Shared {
    fn mode(&self) -> Mode {
        *lock(&self.mode)
    }

    /// A fresh connection to the upstream.
    fn connect_upstream(&self) -> io::Result<TcpStream> {
        TcpStream::connect_timeout(&self.upstream, Duration::from_secs(5))
    }
}

/// The epoch a connection was accepted in: it ends when the mode changes.
#[derive(Debug, Clone, Copy)]
struct Epoch<'a> {
    epochs: &'a AtomicU64,
    epoch: u64,
}

impl Epoch<'_> {
    fn changed(self) -> bool {
        self.epochs.load(Ordering::SeqCst) != self.epoch
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running proxy. Dropping it stops accepting; live connections end with their peers.
#[derive(Debug)]
pub struct FaultProxy {
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// Starts a proxy on an ephemeral loopback port, forwarding to `upstream`.
    pub fn start(upstream: SocketAddr) -> io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            address,
            mode: Mutex::new(Mode::Pass),
            epoch: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            connections: AtomicU64::new(0),
            stale_answers: AtomicU64::new(0),
            raw_transactions: AtomicU64::new(0),
            listener: Mutex::new(None),
            acceptor: Mutex::new(None),
        });
        spawn_acceptor(Arc::clone(&shared), listener)?;
        Ok(FaultProxy { shared })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.shared.address
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        self.shared.mode()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Transaction lookups answered `null` in `StaleReads` so far (each call of a batch
    /// counts).
    pub fn stale_answers(&self) -> u64 {
        self.shared.stale_answers.load(Ordering::SeqCst)
    }

    /// `eth_sendRawTransaction` calls forwarded upstream so far in the modes that read
    /// requests (`StaleReads`, `CountSends`; each call of a batch counts). A call is
    /// counted once its request has been read off the client, before it goes upstream:
    /// a client whose send was answered finds it counted. Calls in a body that is not
    /// JSON the proxy reads exactly, and traffic in the other modes, are not counted.
    pub fn raw_transactions(&self) -> u64 {
        self.shared.raw_transactions.load(Ordering::SeqCst)
    }

    /// Switches the mode. Live connections of the old mode are cut, so that an outage
    /// starts now, not when the client next reconnects.
    pub fn set_mode(&self, mode: Mode) -> io::Result<()> {
        let previous = std::mem::replace(&mut *lock(&self.shared.mode), mode);
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
        match (previous == Mode::Refuse, mode == Mode::Refuse) {
            (false, true) => self.stop_accepting(),
            (true, false) => {
                let listener = TcpListener::bind(self.shared.address)?;
                spawn_acceptor(Arc::clone(&self.shared), listener)?;
            }
            _ => {}
        }
        Ok(())
    }
}

impl FaultProxy {
    /// Closes the listening socket and waits for the acceptor to let go of it, so that a
    /// connect right after this is refused (not accepted into the backlog and reset).
    fn stop_accepting(&self) {
        drop(lock(&self.shared.listener).take());
        wake(self.shared.address);
        if let Some(acceptor) = lock(&self.shared.acceptor).take() {
            let _ = acceptor.join();
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
        self.stop_accepting();
    }
}

/// Unblocks an `accept` by connecting to it (ignored if nothing listens).
fn wake(address: SocketAddr) {
    let _ = TcpStream::connect_timeout(&address, Duration::from_millis(200));
}

fn spawn_acceptor(shared: Arc<Shared>, listener: TcpListener) -> io::Result<()> {
    let accepting = listener.try_clone()?;
    *lock(&shared.listener) = Some(listener);
    let acceptor_shared = Arc::clone(&shared);
    let handle = thread::spawn(move || {
        let shared = acceptor_shared;
        for stream in accepting.incoming() {
            if shared.stopped.load(Ordering::SeqCst) || lock(&shared.listener).is_none() {
                return; // refusing or stopped: this listener is done
            }
            let Ok(client) = stream else { continue };
            shared.connections.fetch_add(1, Ordering::SeqCst);
            let shared = Arc::clone(&shared);
            thread::spawn(move || serve(&shared, client));
        }
    });
    *lock(&shared.acceptor) = Some(handle);
    Ok(())
}

fn serve(shared: &Shared, client: TcpStream) {
    let epoch = Epoch {
        epochs: &shared.epoch,
        epoch: shared.epoch.load(Ordering::SeqCst),
    };
    match shared.mode() {
        Mode::Pass => forward(shared, client, &[], epoch, None),
        Mode::Latency(delay) => forward(shared, client, &[], epoch, Some(delay)),
        Mode::Refuse => {
            let _ = client.shutdown(Shutdown::Both);
        }
        Mode::Blackhole => {
            // Read and discard until the client gives up or the mode changes.
            let _ = client.set_read_timeout(Some(Duration::from_millis(100)));
            let mut sink = [0u8; 4096];
            let mut client = client;
            while !epoch.changed() {
                match client.read(&mut sink) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(error) if is_timeout(&error) => {}
                    Err(_) => return,
                }
            }
        }
        Mode::Http500 => answer(
            client,
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 21\r\nConnection: close\r\n\r\ninjected server error",
        ),
        Mode::Garbage => answer(client, b"\x00\xffthis is not HTTP\r\n\x7f\x00"),
        Mode::StaleReads => stale::serve(shared, client, epoch, true),
        Mode::CountSends => stale::serve(shared, client, epoch, false),
    }
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Reads what the client sends (briefly), then answers `reply` and closes.
fn answer(mut client: TcpStream, reply: &[u8]) {
    let _ = client.set_read_timeout(Some(Duration::from_millis(200)));
    let mut request = [0u8; 8192];
    let _ = client.read(&mut request);
    let _ = client.write_all(reply);
    let _ = client.shutdown(Shutdown::Both);
}

/// Sends `read` (what was already read off the client) upstream on a fresh connection,
/// then copies both ways until either side closes or the mode changes.
fn forward(
    shared: &Shared,
    client: TcpStream,
    read: &[u8],
    epoch: Epoch<'_>,
    delay: Option<Duration>,
) {
    let server = shared.connect_upstream().and_then(|mut server| {
        server.write_all(read)?;
        Ok(server)
    });
    let Ok(server) = server else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    splice(client, server, epoch, delay);
}

/// Copies both ways between `client` and `server` until either side closes or the mode
/// changes.
fn splice(client: TcpStream, server: TcpStream, epoch: Epoch<'_>, delay: Option<Duration>) {
    let (Ok(client_read), Ok(server_read)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    thread::scope(|s| {
        s.spawn(|| pump(client_read, server, epoch, delay));
        pump(server_read, client, epoch, delay);
    });
}

fn pump(mut from: TcpStream, mut to: TcpStream, epoch: Epoch<'_>, delay: Option<Duration>) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buffer = [0u8; 16 * 1024];
    loop {
        if epoch.changed() {
            break; // the mode changed: cut the connection
        }
        match from.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                if epoch.changed() {
                    break; // arrived after the switch: not forwarded
                }
                if let Some(delay) = delay {
                    thread::sleep(delay);
                }
                if to.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
            Err(error) if is_timeout(&error) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
