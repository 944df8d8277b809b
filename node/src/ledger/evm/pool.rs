//! The endpoint pool: every configured JSON-RPC endpoint behind its own
//! [`CircuitBreaker`], with a health record, and the rules that route the ledger's calls
//! over them.
//!
//! - **Refresh** ([`Pool::refresh`], the executor's first call of every tick): every
//!   endpoint not excluded and admitted by its breaker is asked, concurrently, for its
//!   chain id and its latest block. A chain id other than the configured one (or, with
//!   none configured, the first one read, in configuration order) **excludes** the
//!   endpoint for good, with the reason. An endpoint whose head is more than
//!   `max_head_lag_blocks` behind the best is **out of sync**. The refresh is also each
//!   breaker's probe: an open breaker past its timeout is probed by it, so an endpoint
//!   recovers by itself with no payment traffic.
//! - **Reads** go to the endpoints in sync, best first (highest head, then lowest
//!   latency), the order fixed at the refresh so that one tick reads one endpoint's view
//!   of the chain; an infrastructure failure moves on to the next.
//! - **Confirmation**: where a second endpoint is in sync, an answer that would change
//!   what the executor does next is checked by it ([`Pool::confirmed`], and the EVM
//!   ledger's `lookup`): "unknown" is never trusted from one endpoint.
//! - **Broadcast** ([`Pool::broadcast`]): the same bytes to every endpoint in sync,
//!   concurrently; combined by [`combine_broadcast`].
//!
//! The executor's breaker sees the pool as one ledger: a pool call fails only when every
//! endpoint failed or none is usable.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Instant;

use governance::{CircuitBreaker, CircuitBreakerConfig, CircuitState, Clock, LedgerError};
use serde::Serialize;
use serde_json::{Value, json};
use telemetry::labels;

#[cfg(test)]
mod tests;

/// How much of a new latency sample the moving average takes.
const LATENCY_WEIGHT: f64 = 0.3;

/// One JSON-RPC endpoint's way of answering a call: the HTTP client, or a script in tests.
pub(crate) trait Transport: Send + Sync {
    /// Calls `method` and returns its `result`.
    fn call(&self, method: &str, params: Value) -> Result<Value, LedgerError>;

    /// Calls each `(method, params)` in one exchange: one answer per call, in order; the
    /// outer error is the exchange's. The default makes the calls one by one.
    fn batch(
        &self,
        calls: &[(&str, Value)],
    ) -> Result<Vec<Result<Value, LedgerError>>, LedgerError> {
        Ok(calls
            .iter()
            .map(|(method, params)| self.call(method, params.clone()))
            .collect())
    }
}

impl Transport for super::rpc::RpcClient {
    fn call(&self, method: &str, params: Value) -> Result<Value, LedgerError> {
        super::rpc::RpcClient::call(self, method, params)
    }

    fn batch(
        &self,
        calls: &[(&str, Value)],
    ) -> Result<Vec<Result<Value, LedgerError>>, LedgerError> {
        super::rpc::RpcClient::batch(self, calls)
    }
}

/// One endpoint's answer to a refresh: its chain id, and its head if it is on the
/// treasury's chain.
type RefreshAnswer = Result<(u64, Option<u64>), LedgerError>;

/// What the pool reports as it works: one event per request and per breaker transition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RpcEvent<'a> {
    /// One request to an endpoint and how it ended (`result` is one of `ok`, `rpc_error`,
    /// `timeout`, `unreachable`, `http`, `malformed`).
    Request {
        /// The endpoint's label.
        endpoint: &'a str,
        /// The JSON-RPC method.
        method: &'a str,
        /// How it ended.
        result: &'static str,
        /// How long it took.
        seconds: f64,
    },
    /// An endpoint's breaker changed state (`closed`, `open`, `half_open`).
    Transition {
        /// The endpoint's label.
        endpoint: &'a str,
        /// The state it left.
        from: &'static str,
        /// The state it entered.
        to: &'static str,
    },
}

/// Told every [`RpcEvent`].
pub type RpcObserver = Arc<dyn Fn(&RpcEvent<'_>) + Send + Sync>;

/// Whether the endpoint is on the treasury's chain.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
enum ChainCheck {
    /// Not read yet.
    #[default]
    Unchecked,
    /// The treasury's chain.
    Matches,
    /// Another chain: never used again (until a restart).
    Excluded(String),
}

/// What the pool knows of one endpoint.
#[derive(Debug, Clone, Default)]
struct Health {
    chain: ChainCheck,
    /// The head at its last refresh.
    head: Option<u64>,
    /// Whether it answered the last refresh.
    fresh: bool,
    /// Moving average of its answers' latency, in milliseconds.
    latency_ms: Option<f64>,
    /// Its last failure.
    last_error: Option<String>,
}

/// One endpoint: how to reach it, its breaker, its health.
pub(crate) struct Endpoint {
    label: String,
    transport: Box<dyn Transport>,
    breaker: CircuitBreaker,
    /// Whether calls go through `breaker`: not when the endpoint is the only one, as the
    /// executor's breaker then guards it alone (two breakers on one endpoint would only
    /// make the seed's semantics harder to read).
    gated: bool,
    health: Mutex<Health>,
    observer: Arc<OnceLock<RpcObserver>>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("label", &self.label)
            .field("state", &self.breaker.state())
            .finish_non_exhaustive()
    }
}

/// Whether a failure is the endpoint's (it counts against its breaker) rather than an
/// answer it gave.
pub(crate) fn is_infrastructure(error: &LedgerError) -> bool {
    matches!(
        error,
        LedgerError::Unreachable(_)
            | LedgerError::Timeout
            | LedgerError::Http(_)
            | LedgerError::Malformed(_)
    )
}

/// Whether a read that failed so may be asked of another endpoint: an infrastructure
/// failure, or an unclassified error, which is this endpoint's ("missing trie node" from
/// a pruned node, a rate limit sent as a JSON-RPC error).
pub(crate) fn can_try_another(error: &LedgerError) -> bool {
    is_infrastructure(error) || matches!(error, LedgerError::Other(_))
}

/// The `result` label ([`telemetry::labels::RPC_RESULTS`]) of an exchange that failed
/// so, or succeeded (`None`).
fn result_label(error: Option<&LedgerError>) -> &'static str {
    match error {
        None => labels::OK,
        Some(LedgerError::Timeout) => labels::TIMEOUT,
        Some(LedgerError::Unreachable(_)) => labels::UNREACHABLE,
        Some(LedgerError::Http(_)) => labels::HTTP,
        Some(LedgerError::Malformed(_)) => labels::MALFORMED,
        Some(_) => labels::RPC_ERROR,
    }
}

impl Endpoint {
    fn health(&self) -> MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The endpoint's label: its configured name, or `scheme://host:port`.
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// Calls `method` under the endpoint's breaker: an infrastructure failure counts
    /// against it, any answer (a result or a JSON-RPC error) for it.
    pub(crate) fn call(&self, method: &str, params: Value) -> Result<Value, LedgerError> {
        self.call_as(method, params, false)
    }

    /// [`call`](Self::call); `forced`: even if its breaker is open (the pool's last
    /// resort when every endpoint's is: the executor's breaker paces those calls), and a
    /// success closes it.
    fn call_as(&self, method: &str, params: Value, forced: bool) -> Result<Value, LedgerError> {
        if forced && self.breaker.is_rejecting() {
            let result = self.timed(method, params);
            match &result {
                Err(error) if is_infrastructure(error) => {}
                _ => {
                    self.breaker.reset();
                }
            }
            return result;
        }
        let permit = if self.gated {
            let Ok(permit) = self.breaker.try_acquire() else {
                return Err(LedgerError::Unreachable(format!(
                    "{}: its breaker is open",
                    self.label
                )));
            };
            Some(permit)
        } else {
            None
        };
        let result = self.timed(method, params);
        match (&result, permit) {
            (Err(error), Some(permit)) if is_infrastructure(error) => permit.failure(),
            (_, Some(permit)) => permit.success(),
            (_, None) => {}
        }
        result
    }

    /// Calls each `(method, params)` in one exchange under the endpoint's breaker (one
    /// call for it: a failure if the exchange failed, else a success). One answer per
    /// call; a failed exchange is every call's answer.
    pub(crate) fn call_batch(&self, calls: &[(&str, Value)]) -> Vec<Result<Value, LedgerError>> {
        let permit = if self.gated {
            match self.breaker.try_acquire() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    let error =
                        LedgerError::Unreachable(format!("{}: its breaker is open", self.label));
                    return vec![Err(error); calls.len()];
                }
            }
        } else {
            None
        };
        let started = Instant::now();
        let exchange = self.transport.batch(calls);
        let elapsed = started.elapsed();
        let label = result_label(exchange.as_ref().err());
        match (&exchange, permit) {
            (Err(error), Some(permit)) if is_infrastructure(error) => permit.failure(),
            (_, Some(permit)) => permit.success(),
            (_, None) => {}
        }
        // The latency of one call: a batch's, shared by its calls.
        let per_call = elapsed / u32::try_from(calls.len().max(1)).unwrap_or(u32::MAX);
        self.note(
            labels::BATCH,
            label,
            exchange.as_ref().err(),
            elapsed,
            per_call,
        );
        match exchange {
            Ok(mut answers) => {
                answers.resize_with(calls.len(), || {
                    Err(LedgerError::Malformed(
                        "no answer to this call of the batch".into(),
                    ))
                });
                answers
            }
            Err(error) => vec![Err(error); calls.len()],
        }
    }

    /// One call on the transport, its latency and failure noted and reported.
    fn timed(&self, method: &str, params: Value) -> Result<Value, LedgerError> {
        let started = Instant::now();
        let result = self.transport.call(method, params);
        let elapsed = started.elapsed();
        self.note(
            method,
            result_label(result.as_ref().err()),
            result.as_ref().err(),
            elapsed,
            elapsed,
        );
        result
    }

    /// Notes one exchange: the latency average (`per_call`), an infrastructure failure as
    /// the last error, and the request for the observer.
    fn note(
        &self,
        method: &str,
        result: &'static str,
        error: Option<&LedgerError>,
        elapsed: std::time::Duration,
        per_call: std::time::Duration,
    ) {
        {
            let mut health = self.health();
            let sample = per_call.as_secs_f64() * 1000.0;
            health.latency_ms = Some(match health.latency_ms {
                Some(average) => average + LATENCY_WEIGHT * (sample - average),
                None => sample,
            });
            if let Some(error) = error
                && is_infrastructure(error)
            {
                health.last_error = Some(error.to_string());
            }
        }
        if let Some(observer) = self.observer.get() {
            observer(&RpcEvent::Request {
                endpoint: &self.label,
                method,
                result,
                seconds: elapsed.as_secs_f64(),
            });
        }
    }

    /// Counts a wrong answer against the endpoint (its reads lag behind its head): enough
    /// of them open its breaker, and it is not read from while open.
    pub(crate) fn penalize(&self, reason: String) {
        tracing::warn!(endpoint = %self.label, %reason, "an endpoint answered wrongly");
        if self.gated {
            self.breaker.record_failure();
        }
        self.health().last_error = Some(reason);
    }

    /// Reads its chain id and, if it is `expected` (or nothing is expected yet), its head,
    /// as a refresh does.
    fn refresh(&self, expected: Option<u64>, forced: bool) -> RefreshAnswer {
        let chain = super::rpc::quantity_u64(
            &self.call_as("eth_chainId", json!([]), forced)?,
            "eth_chainId",
        )?;
        if expected.is_some_and(|expected| expected != chain) {
            return Ok((chain, None));
        }
        let block = self.call_as("eth_getBlockByNumber", json!(["latest", false]), forced)?;
        let head = super::rpc::quantity_u64(
            block.get("number").unwrap_or(&Value::Null),
            "the latest block's number",
        )?;
        Ok((chain, Some(head)))
    }
}

/// One endpoint as `/status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndpointStatus {
    /// Its configured name, or `scheme://host:port` (never credentials).
    pub name: String,
    /// Its breaker: `closed`, `open` or `half_open`.
    pub state: CircuitState,
    /// Whether reads and submissions go to it.
    pub in_sync: bool,
    /// Its head at the last refresh.
    pub head: Option<u64>,
    /// Blocks behind the best endpoint's head.
    pub lag: Option<u64>,
    /// Moving average of its answers' latency.
    pub latency_ms: Option<f64>,
    /// Its last failure.
    pub last_error: Option<String>,
    /// Why it is excluded for good (another chain), if it is.
    pub excluded: Option<String>,
}

/// The endpoints, and the order the last refresh put them in.
pub(crate) struct Pool {
    endpoints: Vec<Endpoint>,
    max_head_lag: u64,
    /// The configured chain id, else the first one read.
    chain_id: OnceLock<u64>,
    /// Whether `chain_id` was configured.
    configured_chain: bool,
    /// Endpoints in sync at the last refresh, best first; `None` before the first.
    order: Mutex<Option<Vec<usize>>>,
    observer: Arc<OnceLock<RpcObserver>>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("endpoints", &self.endpoints)
            .field("max_head_lag", &self.max_head_lag)
            .field("chain_id", &self.chain_id.get())
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool of `(label, transport)` endpoints, each behind a breaker configured as
    /// `breaker` on `clock`.
    pub(crate) fn new<C: Clock + Clone>(
        endpoints: Vec<(String, Box<dyn Transport>)>,
        breaker: &CircuitBreakerConfig,
        clock: C,
        max_head_lag: u64,
        chain_id: Option<u64>,
    ) -> Pool {
        let observer: Arc<OnceLock<RpcObserver>> = Arc::new(OnceLock::new());
        let gated = endpoints.len() > 1;
        let endpoints = endpoints
            .into_iter()
            .map(|(label, transport)| {
                let breaker = CircuitBreaker::with_clock(breaker.clone(), clock.clone());
                let events = Arc::clone(&observer);
                let name = label.clone();
                // A new breaker has no listener yet.
                let _ = breaker.set_listener(move |transition| {
                    if let Some(observer) = events.get() {
                        observer(&RpcEvent::Transition {
                            endpoint: &name,
                            from: transition.from.as_str(),
                            to: transition.to.as_str(),
                        });
                    }
                });
                Endpoint {
                    label,
                    transport,
                    breaker,
                    gated,
                    health: Mutex::new(Health::default()),
                    observer: Arc::clone(&observer),
                }
            })
            .collect();
        let pinned = OnceLock::new();
        if let Some(id) = chain_id {
            let _ = pinned.set(id);
        }
        Pool {
            endpoints,
            max_head_lag,
            chain_id: pinned,
            configured_chain: chain_id.is_some(),
            order: Mutex::new(None),
            observer,
        }
    }

    /// Installs the observer (once; later calls are ignored).
    pub(crate) fn observe(&self, observer: RpcObserver) {
        let _ = self.observer.set(observer);
    }

    /// The endpoints, in configuration order.
    pub(crate) fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// Expects chain `id` (the one pinned in the database) unless a chain is configured:
    /// endpoints on another are excluded from the first refresh on, whichever answers
    /// first.
    pub(crate) fn expect_chain(&self, id: u64) {
        let _ = self.chain_id.set(id);
    }

    /// The chain id every endpoint used must be on, once known.
    pub(crate) fn chain_id(&self) -> Option<u64> {
        self.chain_id.get().copied()
    }

    /// Asks every endpoint not excluded (and admitted by its breaker) for its chain id and
    /// head, concurrently; excludes those on another chain and orders those in sync.
    /// Returns the treasury's chain id, or why no endpoint is usable.
    pub(crate) fn refresh(&self) -> Result<u64, LedgerError> {
        let expected = self.chain_id.get().copied();
        // Every endpoint's breaker open: the pool would never call again by itself, so the
        // executor's breaker (which paces these ticks) decides, and each refresh probes
        // them all.
        let forced = self.endpoints.iter().all(|endpoint| {
            endpoint.breaker.is_rejecting()
                || matches!(endpoint.health().chain, ChainCheck::Excluded(_))
        });
        let endpoints: Vec<&Endpoint> = self.endpoints.iter().collect();
        let answers: Vec<Option<RefreshAnswer>> = on_each(
            &endpoints,
            |endpoint| {
                let excluded = matches!(endpoint.health().chain, ChainCheck::Excluded(_));
                (!excluded && (forced || !endpoint.breaker.is_rejecting()))
                    .then(|| endpoint.refresh(expected, forced))
            },
            || {
                Some(Err(LedgerError::Other(
                    "an endpoint's refresh panicked".into(),
                )))
            },
        );
        let mut last_error = None;
        for (endpoint, answer) in self.endpoints.iter().zip(answers) {
            let mut health = endpoint.health();
            health.fresh = false;
            match answer {
                None => {}
                Some(Err(error)) => {
                    health.last_error = Some(error.to_string());
                    last_error = Some(error);
                }
                Some(Ok((chain, head))) => {
                    let expected = *self.chain_id.get_or_init(|| chain);
                    match head {
                        Some(head) if chain == expected => {
                            health.chain = ChainCheck::Matches;
                            health.head = Some(head);
                            health.fresh = true;
                        }
                        // The first to answer pinned the chain, and its head was not read.
                        None if chain == expected => {}
                        _ => {
                            let reason = if self.configured_chain {
                                format!("it is on chain {chain}, but evm.chain_id is {expected}")
                            } else {
                                format!(
                                    "it is on chain {chain}, but the treasury pays on chain \
                                     {expected} (pinned in the database, or the first chain \
                                     read; set evm.chain_id to say so)"
                                )
                            };
                            tracing::error!(endpoint = %endpoint.label, %reason, "RPC endpoint excluded until a restart");
                            health.chain = ChainCheck::Excluded(reason);
                            health.head = None;
                        }
                    }
                }
            }
        }
        let order = self.rank();
        let usable = !order.is_empty();
        *self.order.lock().unwrap_or_else(PoisonError::into_inner) = Some(order);
        match self.chain_id.get() {
            Some(&id) if usable => Ok(id),
            _ => Err(last_error.unwrap_or_else(|| self.unusable())),
        }
    }

    /// Why no endpoint is usable: every one on another chain (a signing error: the
    /// executor halts rather than pay on the wrong chain), or each one's state.
    fn unusable(&self) -> LedgerError {
        let excluded: Vec<String> = self
            .endpoints
            .iter()
            .filter_map(|endpoint| match &endpoint.health().chain {
                ChainCheck::Excluded(reason) => Some(format!("{}: {reason}", endpoint.label)),
                _ => None,
            })
            .collect();
        if excluded.len() == self.endpoints.len() {
            return LedgerError::Signing(format!(
                "every RPC endpoint is on another chain ({}): refusing to sign",
                excluded.join("; ")
            ));
        }
        LedgerError::Unreachable(format!("no RPC endpoint in sync: {}", self.summary()))
    }

    /// The treasury's chain id, refreshing the pool first if it never was (so that
    /// nothing is signed before an endpoint's chain was checked), and failing if no
    /// endpoint is usable (every one on another chain: a signing error).
    pub(crate) fn checked_chain_id(&self) -> Result<u64, LedgerError> {
        let refreshed = self
            .order
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some();
        if !refreshed {
            return self.refresh();
        }
        self.route()?;
        self.chain_id().ok_or_else(|| self.unusable())
    }

    /// The endpoints in sync, best first: those that answered the last refresh on the
    /// treasury's chain, no more than `max_head_lag` behind the best head; by head, then
    /// latency.
    fn rank(&self) -> Vec<usize> {
        let views: Vec<(usize, Health)> = self
            .endpoints
            .iter()
            .enumerate()
            .map(|(i, endpoint)| (i, endpoint.health().clone()))
            .collect();
        let best = views
            .iter()
            .filter(|(_, health)| health.fresh)
            .filter_map(|(_, health)| health.head)
            .max();
        let mut order: Vec<(usize, u64, f64)> = views
            .iter()
            .filter(|(_, health)| health.fresh && health.chain == ChainCheck::Matches)
            .filter_map(|(i, health)| {
                let head = health.head?;
                let best = best?;
                (best - head <= self.max_head_lag).then_some((
                    *i,
                    head,
                    health.latency_ms.unwrap_or(f64::MAX),
                ))
            })
            .collect();
        order.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.total_cmp(&b.2)));
        order.into_iter().map(|(i, _, _)| i).collect()
    }

    /// The endpoints to use now, best first: the last refresh's order (refreshing first if
    /// there was none), less any whose breaker has opened since.
    pub(crate) fn route(&self) -> Result<Vec<&Endpoint>, LedgerError> {
        let order = self
            .order
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let order = match order {
            // One endpoint needs no ranking and has no alternative: it is read as it is,
            // unless it is on another chain (the executor's first call of a tick,
            // `chain_id`, refreshes it and checks its chain).
            _ if self.endpoints.len() == 1 => {
                if matches!(self.endpoints[0].health().chain, ChainCheck::Excluded(_)) {
                    vec![]
                } else {
                    vec![0]
                }
            }
            Some(order) => order,
            None => {
                self.refresh()?;
                self.rank()
            }
        };
        let route: Vec<&Endpoint> = order
            .into_iter()
            .map(|i| &self.endpoints[i])
            .filter(|endpoint| !endpoint.breaker.is_rejecting())
            .collect();
        if route.is_empty() {
            return Err(self.unusable());
        }
        Ok(route)
    }

    /// Each endpoint's state in a few words, for an error message.
    fn summary(&self) -> String {
        self.status()
            .iter()
            .map(|status| {
                let why = match (&status.excluded, &status.last_error) {
                    (Some(reason), _) => format!("excluded ({reason})"),
                    (None, Some(error))
                        if status.state != CircuitState::Closed || !status.in_sync =>
                    {
                        format!("{} ({error})", status.state)
                    }
                    _ if !status.in_sync => "out of sync".to_owned(),
                    _ => status.state.to_string(),
                };
                format!("{}: {why}", status.name)
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// `call` on the best endpoint in sync, then the next if it fails for infrastructure
    /// reasons: the pool's call fails only when every endpoint did, with the last
    /// failure.
    pub(crate) fn read<T>(
        &self,
        call: impl Fn(&Endpoint) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        self.read_from(&self.route()?, call).map(|(_, value)| value)
    }

    /// [`read`](Self::read) over `endpoints`; also says which one answered.
    fn read_from<T>(
        &self,
        endpoints: &[&Endpoint],
        call: impl Fn(&Endpoint) -> Result<T, LedgerError>,
    ) -> Result<(usize, T), LedgerError> {
        let mut last = None;
        for (i, &endpoint) in endpoints.iter().enumerate() {
            match call(endpoint) {
                Err(error) if can_try_another(&error) => last = Some(error),
                result => return result.map(|value| (i, value)),
            }
        }
        Err(last.unwrap_or_else(|| self.unusable()))
    }

    /// Reads with [`read`](Self::read), and where a second endpoint is in sync asks it
    /// too: the answer stands if both give it; if they differ the executor cannot know,
    /// and the call fails naming both answers (`what` says what was asked). `at_block`:
    /// the answer is about that block, so only an endpoint whose head has reached it is
    /// asked to confirm (one a block or two behind would not know it yet). Endpoints that
    /// failed before the first answer are not asked again; if none is left to ask, the
    /// first answer stands, as with one endpoint.
    pub(crate) fn confirmed<T: PartialEq + fmt::Debug>(
        &self,
        what: &str,
        at_block: Option<u64>,
        call: impl Fn(&Endpoint) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let route = self.route()?;
        let (at, value) = self.read_from(&route, &call)?;
        let first = route[at];
        let others: Vec<&Endpoint> = route[at + 1..]
            .iter()
            .copied()
            .filter(|endpoint| {
                at_block
                    .is_none_or(|block| endpoint.health().head.is_some_and(|head| head >= block))
            })
            .collect();
        if others.is_empty() {
            return Ok(value);
        }
        let (second, check) = self.read_from(&others, &call)?;
        if check == value {
            Ok(value)
        } else {
            Err(LedgerError::Other(format!(
                "RPC endpoints disagree on {what}: {} says {value:?}, {} says {check:?}",
                first.label, others[second].label
            )))
        }
    }

    /// Runs `call` on every endpoint in sync at once (a submission: the same bytes to
    /// each) and combines the answers with [`combine_broadcast`].
    pub(crate) fn broadcast(
        &self,
        call: impl Fn(&Endpoint) -> Result<(), LedgerError> + Sync,
    ) -> Result<(), LedgerError> {
        let mut answers = self.broadcast_batch(1, |endpoint| vec![call(endpoint)]);
        answers.pop().unwrap_or_else(|| Err(self.unusable()))
    }

    /// Runs `call` (a batch of submissions: one answer per transaction) on every endpoint
    /// in sync at once, and combines the answers transaction by transaction with
    /// [`combine_broadcast`]. `n` answers, in order.
    pub(crate) fn broadcast_batch(
        &self,
        n: usize,
        call: impl Fn(&Endpoint) -> Vec<Result<(), LedgerError>> + Sync,
    ) -> Vec<Result<(), LedgerError>> {
        let route = match self.route() {
            Ok(route) if !route.is_empty() => route,
            Ok(_) => return vec![Err(self.unusable()); n],
            Err(error) => return vec![Err(error); n],
        };
        let mut per_endpoint = on_each(&route, call, || {
            vec![Err(LedgerError::Other("a submission thread panicked".into())); n]
        });
        for answers in &mut per_endpoint {
            answers.resize_with(n, || {
                Err(LedgerError::Malformed(
                    "no answer to this transaction".into(),
                ))
            });
        }
        (0..n)
            .map(|i| {
                combine_broadcast(
                    per_endpoint
                        .iter()
                        .map(|answers| answers[i].clone())
                        .collect(),
                )
            })
            .collect()
    }

    /// Every endpoint, for `/status` and the metrics.
    pub(crate) fn status(&self) -> Vec<EndpointStatus> {
        let order = self
            .order
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_default();
        let healths: Vec<Health> = self
            .endpoints
            .iter()
            .map(|endpoint| endpoint.health().clone())
            .collect();
        let best = healths
            .iter()
            .filter(|health| health.fresh)
            .filter_map(|health| health.head)
            .max();
        self.endpoints
            .iter()
            .zip(healths)
            .enumerate()
            .map(|(i, (endpoint, health))| {
                let state = endpoint.breaker.state();
                EndpointStatus {
                    name: endpoint.label.clone(),
                    state,
                    in_sync: order.contains(&i) && !endpoint.breaker.is_rejecting(),
                    head: health.head,
                    lag: health
                        .head
                        .zip(best)
                        .map(|(head, best)| best.saturating_sub(head)),
                    latency_ms: health.latency_ms.map(|ms| (ms * 10.0).round() / 10.0),
                    last_error: health.last_error.clone(),
                    excluded: match health.chain {
                        ChainCheck::Excluded(reason) => Some(reason),
                        _ => None,
                    },
                }
            })
            .collect()
    }

    /// Endpoint `i`'s breaker state.
    #[cfg(test)]
    pub(crate) fn breaker_state(&self, i: usize) -> CircuitState {
        self.endpoints[i].breaker.state()
    }
}

/// `call` on each endpoint, at once when there are several (a thread each); a call that
/// panicked answers `panicked()`.
fn on_each<T: Send>(
    endpoints: &[&Endpoint],
    call: impl Fn(&Endpoint) -> T + Sync,
    panicked: impl Fn() -> T,
) -> Vec<T> {
    if let [only] = endpoints {
        return vec![call(only)];
    }
    let call = &call;
    std::thread::scope(|scope| {
        let handles: Vec<_> = endpoints
            .iter()
            .map(|&endpoint| scope.spawn(move || call(endpoint)))
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap_or_else(|_| panicked()))
            .collect()
    })
}

/// One answer per endpoint to the same submission, as one answer:
///
/// | answers (none accepted)                          | the pool's answer                |
/// |--------------------------------------------------|----------------------------------|
/// | any accepted                                     | accepted                         |
/// | any "already known" / "nonce too low"            | that (the bytes are out there)   |
/// | any signing error (another chain)                | that: the executor halts         |
/// | any infrastructure failure                       | that (it may have arrived)       |
/// | any underpriced                                  | that (bumped)                    |
/// | any insufficient balance                         | that (pauses)                    |
/// | every one a business refusal                     | the first (cancelled)            |
///
/// A business refusal (`Rejected`, `InvalidDestination`) is only the pool's answer when
/// every endpoint gave one: one endpoint's rules never cancel a payment another took.
pub(crate) fn combine_broadcast(answers: Vec<Result<(), LedgerError>>) -> Result<(), LedgerError> {
    fn rank(error: &LedgerError) -> u8 {
        match error {
            LedgerError::AlreadyKnown | LedgerError::NonceTooLow => 0,
            LedgerError::Signing(_) => 1,
            error if is_infrastructure(error) => 2,
            LedgerError::Other(_) => 2,
            LedgerError::Underpriced(_) => 3,
            LedgerError::FeeCapReached(_) => 4,
            LedgerError::InsufficientBalance => 5,
            _ => 6,
        }
    }
    let mut best: Option<LedgerError> = None;
    for answer in answers {
        match answer {
            Ok(()) => return Ok(()),
            Err(error) => {
                if best.as_ref().is_none_or(|kept| rank(&error) < rank(kept)) {
                    best = Some(error);
                }
            }
        }
    }
    Err(best.unwrap_or_else(|| LedgerError::Unreachable("no RPC endpoint in sync".into())))
}
