//! The connection to an etcd cluster: one client per endpoint, used in turn.
//!
//! etcd-client balances one channel over every endpoint, and a request can wait on an
//! endpoint that is down (etcdv3/etcd-client#39). So each endpoint gets a client of its
//! own, and calls go to the current one; a call that fails for want of the endpoint
//! (unreachable, no quorum behind it, timed out) moves on to the next.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};
use governance::store::StoreError;

use crate::bridge::Bridge;

/// How to reach the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdOptions {
    /// Client URLs (`http://host:port` or `https://host:port`).
    pub endpoints: Vec<String>,
    /// Every key the store writes starts with it (`/treasury/`).
    pub prefix: Vec<u8>,
    /// How long one request may take.
    pub request_timeout: Duration,
    /// User name and password, if the cluster has authentication on.
    pub user: Option<(String, String)>,
    /// TLS, for `https://` endpoints.
    pub tls: Option<TlsFiles>,
}

impl EtcdOptions {
    /// Options with the defaults: no user, no TLS, a 2-second request timeout.
    pub fn new(endpoints: Vec<String>, prefix: impl Into<Vec<u8>>) -> EtcdOptions {
        EtcdOptions {
            endpoints,
            prefix: prefix.into(),
            request_timeout: Duration::from_secs(2),
            user: None,
            tls: None,
        }
    }
}

/// PEM files for TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate authority that signed the members' certificates.
    pub ca_file: Option<PathBuf>,
    /// A client certificate and its key, if the cluster asks for one.
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// Whether a failure says the endpoint could not serve the request (try another), as
/// opposed to a refusal of the request itself.
pub(crate) fn unreachable(error: &etcd_client::Error) -> bool {
    use etcd_client::Error;
    use tonic::Code;
    match error {
        Error::TransportError(_) | Error::IoError(_) | Error::EndpointError(_) => true,
        // Besides the endpoint being down or cut off from the quorum: too many requests,
        // an auth token the member no longer knows (it restarted, or the token expired:
        // the client is connected again), a scan's revision compacted away. None is an
        // answer about the request itself; each is worth another endpoint or a later try.
        Error::GRpcStatus(status) => matches!(
            status.code(),
            Code::Unavailable
                | Code::DeadlineExceeded
                | Code::Cancelled
                | Code::Unknown
                | Code::ResourceExhausted
                | Code::Unauthenticated
                | Code::OutOfRange
        ),
        _ => false,
    }
}

/// What a call was for, to count its failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// A point read.
    Get,
    /// A range read or count.
    Scan,
    /// A transaction.
    Apply,
    /// The lease and the campaign.
    Lease,
}

/// Calls that failed for an infrastructure reason (not a failed condition), by kind,
/// since the connection opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineErrors {
    /// Point reads.
    pub get: u64,
    /// Range reads and counts.
    pub scan: u64,
    /// Transactions.
    pub apply: u64,
    /// Lease renewals, grants and campaigns.
    pub lease: u64,
}

/// The cluster's clients, on the bridge.
pub(crate) struct Connection {
    pub(crate) bridge: Bridge,
    options: EtcdOptions,
    /// One per endpoint, connected on first use (a client with a user authenticates
    /// when it connects, which fails while the endpoint is down).
    clients: Mutex<Vec<Option<Client>>>,
    /// The endpoint calls go to first.
    current: AtomicUsize,
    /// Failed calls by [`CallKind`], in its order.
    errors: [std::sync::atomic::AtomicU64; 4],
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("endpoints", &self.options.endpoints)
            .field("current", &self.current.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Connection {
    pub(crate) fn open(options: EtcdOptions) -> Result<Connection, StoreError> {
        if options.endpoints.is_empty() {
            return Err(StoreError::Database("etcd: no endpoints".into()));
        }
        let bridge = Bridge::start().map_err(|error| {
            StoreError::Database(format!("etcd: starting its runtime: {error}"))
        })?;
        Ok(Connection {
            bridge,
            clients: Mutex::new(vec![None; options.endpoints.len()]),
            options,
            current: AtomicUsize::new(0),
            errors: Default::default(),
        })
    }

    pub(crate) fn options(&self) -> &EtcdOptions {
        &self.options
    }

    /// Failed calls so far.
    pub(crate) fn errors(&self) -> EngineErrors {
        let count = |kind: CallKind| self.errors[kind as usize].load(Ordering::Relaxed);
        EngineErrors {
            get: count(CallKind::Get),
            scan: count(CallKind::Scan),
            apply: count(CallKind::Apply),
            lease: count(CallKind::Lease),
        }
    }

    /// How long a caller waits for one call across every endpoint.
    fn wait(&self) -> Duration {
        let each = self.options.request_timeout + Duration::from_millis(500);
        each * u32::try_from(self.options.endpoints.len()).unwrap_or(u32::MAX)
            + Duration::from_secs(1)
    }

    /// The client for endpoint `index`, connecting it if it is not yet.
    async fn client(&self, index: usize) -> Result<Client, etcd_client::Error> {
        let cached = self.clients.lock().unwrap_or_else(PoisonError::into_inner)[index].clone();
        if let Some(client) = cached {
            return Ok(client);
        }
        let client = Client::connect(
            [&self.options.endpoints[index]],
            Some(self.connect_options()?),
        )
        .await?;
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)[index] = Some(client.clone());
        Ok(client)
    }

    fn connect_options(&self) -> Result<ConnectOptions, etcd_client::Error> {
        let timeout = self.options.request_timeout;
        let mut options = ConnectOptions::new()
            .with_timeout(timeout)
            .with_connect_timeout(timeout)
            .with_keep_alive(Duration::from_secs(2), timeout)
            // A member cut off from the quorum answers at once instead of waiting.
            .with_require_leader(true);
        if let Some((user, password)) = &self.options.user {
            options = options.with_user(user.clone(), password.clone());
        }
        if let Some(tls) = &self.options.tls {
            let mut config = TlsOptions::new();
            if let Some(ca) = &tls.ca_file {
                config = config.ca_certificate(Certificate::from_pem(read(ca)?));
            }
            if let Some((cert, key)) = &tls.identity {
                config = config.identity(Identity::from_pem(read(cert)?, read(key)?));
            }
            options = options.with_tls(config);
        }
        Ok(options)
    }

    /// Runs `call` against the current endpoint and, if that endpoint cannot serve it, against
    /// each other one in turn (`retry`: for reads and other calls that are safe to repeat).
    /// Without `retry`, a call that fails for want of the endpoint moves the current
    /// endpoint on and fails: a write sent may have applied.
    pub(crate) async fn call<T, F, Fut>(
        &self,
        kind: CallKind,
        retry: bool,
        call: F,
    ) -> Result<T, StoreError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let outcome = self.try_endpoints(retry, call).await;
        if outcome.is_err() {
            self.errors[kind as usize].fetch_add(1, Ordering::Relaxed);
        }
        outcome
    }

    async fn try_endpoints<T, F, Fut>(&self, retry: bool, call: F) -> Result<T, StoreError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let count = self.options.endpoints.len();
        let first = self.current.load(Ordering::Relaxed) % count;
        let mut last = String::new();
        for step in 0..count {
            let index = (first + step) % count;
            let outcome = match self.client(index).await {
                Ok(client) => call(client).await,
                Err(error) => Err(error),
            };
            match outcome {
                Ok(value) => {
                    self.current.store(index, Ordering::Relaxed);
                    return Ok(value);
                }
                Err(error) if unreachable(&error) => {
                    if matches!(&error, etcd_client::Error::GRpcStatus(status)
                        if status.code() == tonic::Code::Unauthenticated)
                    {
                        // etcd-client authenticates only when it connects: connect again.
                        self.clients.lock().unwrap_or_else(PoisonError::into_inner)[index] = None;
                    }
                    last = format!("{}: {error}", self.options.endpoints[index]);
                    self.current.store((index + 1) % count, Ordering::Relaxed);
                    if !retry {
                        return Err(StoreError::Unavailable(format!(
                            "etcd: {last} (a write was sent: it may or may not have applied)"
                        )));
                    }
                }
                Err(error) => {
                    return Err(StoreError::Database(format!(
                        "etcd ({}): {error}",
                        self.options.endpoints[index]
                    )));
                }
            }
        }
        Err(StoreError::Unavailable(format!(
            "etcd: no endpoint answered; last: {last}"
        )))
    }

    /// Runs `future` on the bridge and waits for it.
    pub(crate) fn block<T, F>(&self, future: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        self.bridge.block(self.wait(), future).unwrap_or_else(|| {
            Err(StoreError::Unavailable(format!(
                "etcd: no answer within {:?}",
                self.wait()
            )))
        })
    }
}

fn read(path: &PathBuf) -> Result<Vec<u8>, etcd_client::Error> {
    std::fs::read(path)
        .map_err(|error| etcd_client::Error::InvalidArgs(format!("{}: {error}", path.display())))
}
