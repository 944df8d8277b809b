//! A TLS-terminating proxy for tests: `https://127.0.0.1:PORT` in front of a plain HTTP
//! server (anvil), with the self-signed certificate of `tests/fixtures/tls` (trusted by
//! giving `cert.pem` as `[evm] ca_file`). rustls on std sockets, two threads per
//! connection (one each way); it serves a handful of test connections, not load.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection};

use super::{lock, workspace};

/// The fixture's certificate: give it as `ca_file` to trust the proxy.
pub fn ca_file() -> PathBuf {
    workspace().join("node/tests/fixtures/tls/cert.pem")
}

/// A running proxy. Its accepting thread is left blocked in `accept` when the test ends.
pub struct TlsProxy {
    /// Where it listens (`127.0.0.1`, in the certificate's names).
    pub address: SocketAddr,
    /// How each handshake that did not complete ended, as the server saw it.
    handshake_failures: Arc<Mutex<Vec<String>>>,
}

impl TlsProxy {
    /// Listens on an ephemeral port of 127.0.0.1 and forwards each connection's plaintext
    /// to `upstream`.
    pub fn start(upstream: SocketAddr) -> TlsProxy {
        let directory = workspace().join("node/tests/fixtures/tls");
        let certificates: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(directory.join("cert.pem"))
                .expect("the fixture's certificate")
                .collect::<Result<_, _>>()
                .expect("the fixture's certificate parses");
        let key = PrivateKeyDer::from_pem_file(directory.join("key.pem"))
            .expect("the fixture's key parses");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(certificates, key)
            .expect("the fixture's certificate and key match");
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        let handshake_failures = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::clone(&handshake_failures);
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let config = Arc::clone(&config);
                let failures = Arc::clone(&failures);
                thread::spawn(move || {
                    if let Err(failure) = serve(client, config, upstream) {
                        lock(&failures).push(failure);
                    }
                });
            }
        });
        TlsProxy {
            address,
            handshake_failures,
        }
    }

    /// How the handshakes that did not complete ended (a client that refuses the
    /// certificate may send an alert, or just close).
    pub fn handshake_failures(&self) -> Vec<String> {
        lock(&self.handshake_failures).clone()
    }
}

/// One connection: TLS with `client`, plaintext with `upstream`, until either side closes.
/// The TLS state is shared by both directions; no socket is read while holding it. The
/// error: how a handshake that did not complete ended.
fn serve(client: TcpStream, config: Arc<ServerConfig>, upstream: SocketAddr) -> Result<(), String> {
    let tls = Arc::new(Mutex::new(
        ServerConnection::new(config).map_err(|error| error.to_string())?,
    ));
    let result = relay(client, Arc::clone(&tls), upstream);
    if lock(&tls).is_handshaking() {
        return Err(match result {
            Ok(()) => "the client closed the connection during the handshake".into(),
            Err(error) => error.to_string(),
        });
    }
    Ok(())
}

fn relay(
    client: TcpStream,
    tls: Arc<Mutex<ServerConnection>>,
    upstream: SocketAddr,
) -> io::Result<()> {
    let server = TcpStream::connect(upstream)?;
    let down = {
        let (tls, mut client, mut server) =
            (Arc::clone(&tls), client.try_clone()?, server.try_clone()?);
        // upstream → client: plaintext in, records out.
        thread::spawn(move || -> io::Result<()> {
            let mut buffer = [0_u8; 16 * 1024];
            loop {
                let n = server.read(&mut buffer).unwrap_or(0);
                let mut tls = lock(&tls);
                if n == 0 {
                    tls.send_close_notify();
                    let written = flush(&mut tls, &mut client);
                    let _ = client.shutdown(Shutdown::Write);
                    return written;
                }
                tls.writer().write_all(&buffer[..n])?;
                flush(&mut tls, &mut client)?;
            }
        })
    };
    // client → upstream: records in, plaintext out (and the handshake's records back).
    let (mut client_reader, mut client_writer, mut server_writer) =
        (client.try_clone()?, client, server);
    let mut buffer = [0_u8; 16 * 1024];
    let result = loop {
        let n = match client_reader.read(&mut buffer) {
            Ok(0) | Err(_) => break Ok(()),
            Ok(n) => n,
        };
        let mut plaintext = Vec::new();
        {
            let mut tls = lock(&tls);
            let mut records = &buffer[..n];
            let mut failed = None;
            while !records.is_empty() {
                if let Err(error) = tls.read_tls(&mut records) {
                    failed = Some(error);
                    break;
                }
                if let Err(error) = tls.process_new_packets() {
                    // Tell the client (an alert) before giving up.
                    let _ = flush(&mut tls, &mut client_writer);
                    failed = Some(io::Error::new(io::ErrorKind::InvalidData, error));
                    break;
                }
                match tls.reader().read_to_end(&mut plaintext) {
                    Ok(_) => {}
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                    Err(error) => {
                        failed = Some(error);
                        break;
                    }
                }
            }
            if let Some(error) = failed {
                break Err(error);
            }
            flush(&mut tls, &mut client_writer)?;
        }
        if server_writer.write_all(&plaintext).is_err() {
            break Ok(());
        }
    };
    let _ = server_writer.shutdown(Shutdown::Both);
    let _ = client_writer.shutdown(Shutdown::Both);
    let _ = down.join();
    result
}

/// Writes the records the TLS state has ready to `client`.
fn flush(tls: &mut ServerConnection, client: &mut TcpStream) -> io::Result<()> {
    while tls.wants_write() {
        tls.write_tls(client)?;
    }
    Ok(())
}
