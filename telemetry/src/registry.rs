//! The `prometheus` feature is on: the metric definitions (name, help, type, labels), one
//! registry per `TreasuryMetrics`, and the text exposition.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus::core::Collector;
use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::labels;

/// Tick duration buckets, 1 ms to 10 s: a tick that only checks an open breaker takes about a
/// millisecond, one that signs and submits a batch over RPC takes seconds.
const TICK_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// RPC request duration buckets, 5 ms to 30 s: a nearby node answers a read in milliseconds, a
/// remote provider in tens to hundreds of milliseconds, a loaded one in seconds, and a request
/// that times out takes `request_timeout_ms` (5 s by default; one over 30 s lands in `+Inf`).
const RPC_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A handle on one registry and its metrics: cloning it shares them.
#[derive(Clone)]
pub(crate) struct Metrics(Arc<Registered>);

struct Registered {
    registry: Registry,
    breaker_state: IntGauge,
    breaker_failures: IntGauge,
    breaker_successes: IntGauge,
    breaker_transitions: IntCounterVec,
    breaker_rejected: IntCounter,
    breaker_forced: IntGauge,
    submissions: IntCounterVec,
    read_failures: IntCounter,
    tick_duration: Histogram,
    /// A vector with no labels rather than a plain gauge: its one series is created by the first
    /// `tick_completed`, so before that the metric is absent instead of reading "last tick at
    /// 1970", which is what lets the stalled alert tell "never ticked" from "ticked long ago".
    last_tick: GaugeVec,
    backlog: IntGaugeVec,
    halted: IntGauge,
    awaiting_operator: IntGauge,
    reorgs: IntCounter,
    fee_bumps: IntCounter,
    oldest_pending: Gauge,
    fee_cap_reached: IntGauge,
    balance_insufficient: IntGaugeVec,
    /// The assets registered (`native` and the configured tokens).
    assets: std::sync::Mutex<Vec<String>>,
    rpc_endpoint_state: IntGaugeVec,
    rpc_endpoint_in_sync: IntGaugeVec,
    rpc_endpoint_head: IntGaugeVec,
    rpc_requests: IntCounterVec,
    rpc_request_duration: HistogramVec,
    rpc_endpoint_transitions: IntCounterVec,
    admin_auth_failures: IntCounterVec,
    policy_refusals: IntCounterVec,
    awaiting_approval: IntGauge,
    held_by_policy: IntGauge,
    /// Per asset, each series created by the first `set_daily_spend` that names the asset: assets
    /// come from the configuration.
    policy_spent: GaugeVec,
    /// Like `policy_spent`, and an asset's series is removed again when its limit is `None`: no
    /// limit must read as no series, not as a limit of 0 (which the near-limit alert would divide by).
    policy_daily_limit: GaugeVec,
    executor_leader: IntGauge,
    leader_changes: IntCounter,
    store_engine_errors: IntCounterVec,
    /// The endpoints named so far, whose counter and histogram series exist (see
    /// [`Metrics::endpoint_named`]).
    rpc_endpoints: Mutex<HashSet<String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let r = Registry::new();
        let metrics = Registered {
            breaker_state: register(
                &r,
                IntGauge::new(
                    "treasury_circuit_breaker_state",
                    "Circuit breaker state: 0 closed, 1 open, 2 half-open.",
                ),
            ),
            breaker_failures: register(
                &r,
                IntGauge::new(
                    "treasury_circuit_breaker_failures",
                    "Failures counted in the circuit breaker's rolling window.",
                ),
            ),
            breaker_successes: register(
                &r,
                IntGauge::new(
                    "treasury_circuit_breaker_successes",
                    "Probe successes in the circuit breaker's current half-open cycle.",
                ),
            ),
            breaker_transitions: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "treasury_circuit_breaker_transitions_total",
                        "Circuit breaker state transitions, by state before (from) and after (to).",
                    ),
                    &["from", "to"],
                ),
            ),
            breaker_rejected: register(
                &r,
                IntCounter::new(
                    "treasury_circuit_breaker_rejected_total",
                    "Calls the circuit breaker rejected (open, or half-open with every probe slot taken).",
                ),
            ),
            breaker_forced: register(
                &r,
                IntGauge::new(
                    "treasury_circuit_breaker_forced",
                    "1 while an operator's force-open or force-close holds the circuit breaker, else 0.",
                ),
            ),
            submissions: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "treasury_submissions_total",
                        "Submissions to the ledger, by result (accepted, failed, cancelled, ambiguous, underpriced) and by the asset of the disbursement (native, or a configured token's symbol).",
                    ),
                    &["result", "asset"],
                ),
            ),
            read_failures: register(
                &r,
                IntCounter::new(
                    "treasury_ledger_read_failures_total",
                    "Ledger calls other than submissions (epoch, nonce, lookups, signing) that failed for infrastructure reasons; each counts against the circuit breaker.",
                ),
            ),
            tick_duration: register(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "treasury_executor_tick_duration_seconds",
                        "Time one executor tick took, in seconds.",
                    )
                    .buckets(TICK_BUCKETS.to_vec()),
                ),
            ),
            last_tick: register(
                &r,
                GaugeVec::new(
                    Opts::new(
                        "treasury_executor_last_tick_timestamp_seconds",
                        "Unix time in seconds at which the last executor tick completed.",
                    ),
                    &[],
                ),
            ),
            backlog: register(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "treasury_backlog",
                        "Disbursements waiting, by status: scheduled, ready, staged, submitted, included.",
                    ),
                    &["status"],
                ),
            ),
            halted: register(
                &r,
                IntGauge::new(
                    "treasury_executor_halted",
                    "1 once the executor has halted (a storage, signing or chain-id error, or a decision only an operator can make), else 0.",
                ),
            ),
            awaiting_operator: register(
                &r,
                IntGauge::new(
                    "treasury_executor_awaiting_operator",
                    "1 while the executor holds on something it will not guess (nonce drift, a nonce spent by a transaction not ours, a nonce gap, a business refusal of a payment that may be out there), else 0.",
                ),
            ),
            reorgs: register(
                &r,
                IntCounter::new(
                    "treasury_reorgs_total",
                    "Transactions seen included in a block that the chain then dropped (a reorg).",
                ),
            ),
            admin_auth_failures: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "treasury_admin_auth_failures_total",
                        "Admin API calls refused before authentication succeeded, by reason: missing (no bearer token), wrong (no configured token matches), limited (no valid token, from a peer that failed too often: answered 429).",
                    ),
                    &["reason"],
                ),
            ),
            fee_bumps: register(
                &r,
                IntCounter::new(
                    "treasury_fee_bumps_total",
                    "Replacement transactions signed at the same nonce with higher fees.",
                ),
            ),
            oldest_pending: register(
                &r,
                Gauge::new(
                    "treasury_oldest_pending_seconds",
                    "Age in seconds of the oldest payment broadcast but not yet confirmed at depth, 0 when none.",
                ),
            ),
            fee_cap_reached: register(
                &r,
                IntGauge::new(
                    "treasury_fee_cap_reached",
                    "1 while a pending transaction needs a fee bump that the configured max fee or tip does not allow, else 0.",
                ),
            ),
            balance_insufficient: register(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "treasury_balance_insufficient",
                        "1 while the balance of this asset does not cover the next payment (plus, in the native coin, the worst-case fees of everything in flight): payments paused, else 0.",
                    ),
                    &["asset"],
                ),
            ),
            assets: std::sync::Mutex::new(vec![labels::NATIVE_ASSET.to_owned()]),
            rpc_endpoint_state: register(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "treasury_rpc_endpoint_state",
                        "State of one RPC endpoint's circuit breaker: 0 closed, 1 open, 2 half-open.",
                    ),
                    &["endpoint"],
                ),
            ),
            rpc_endpoint_in_sync: register(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "treasury_rpc_endpoint_in_sync",
                        "1 while the RPC endpoint's head is at most max_head_lag_blocks behind the best endpoint's, else 0 (lagging, excluded, or never answered).",
                    ),
                    &["endpoint"],
                ),
            ),
            rpc_endpoint_head: register(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "treasury_rpc_endpoint_head",
                        "The last head block number the RPC endpoint reported.",
                    ),
                    &["endpoint"],
                ),
            ),
            rpc_requests: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "treasury_rpc_requests_total",
                        "JSON-RPC requests (a batch counts once, as method batch), by endpoint, method and result: ok, rpc_error, timeout, unreachable, http, malformed.",
                    ),
                    &["endpoint", "method", "result"],
                ),
            ),
            rpc_request_duration: register(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "treasury_rpc_request_duration_seconds",
                        "Time one JSON-RPC request (or batch) took, in seconds, by endpoint.",
                    )
                    .buckets(RPC_BUCKETS.to_vec()),
                    &["endpoint"],
                ),
            ),
            rpc_endpoint_transitions: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "treasury_rpc_endpoint_transitions_total",
                        "RPC endpoint circuit breaker state transitions, by endpoint, state before (from) and after (to).",
                    ),
                    &["endpoint", "from", "to"],
                ),
            ),
            policy_refusals: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "treasury_policy_refusals_total",
                        "Queue requests refused and ready disbursements held back by the spending policy, by rule.",
                    ),
                    &["reason"],
                ),
            ),
            awaiting_approval: register(
                &r,
                IntGauge::new(
                    "treasury_disbursements_awaiting_approval",
                    "Disbursements at or above an approval threshold waiting for more operators' approvals.",
                ),
            ),
            held_by_policy: register(
                &r,
                IntGauge::new(
                    "treasury_disbursements_held_by_policy",
                    "Ready disbursements the spending policy in force keeps from being signed (over max_amount, or a destination not on the allow-list); see GET /admin/policy (held).",
                ),
            ),
            policy_spent: register(
                &r,
                GaugeVec::new(
                    Opts::new(
                        "treasury_policy_spent_24h",
                        "What the disbursements queued in the rolling 24 hours (not cancelled) pay, by asset, in the asset's smallest unit.",
                    ),
                    &["asset"],
                ),
            ),
            policy_daily_limit: register(
                &r,
                GaugeVec::new(
                    Opts::new(
                        "treasury_policy_daily_limit",
                        "The spending policy's daily_limit, by asset, in the asset's smallest unit; absent for an asset without one.",
                    ),
                    &["asset"],
                ),
            ),
            executor_leader: register(
                &r,
                IntGauge::new(
                    "treasury_executor_leader",
                    "1 while this node is the active executor (the leader holding the store's lease; always 1 on an embedded store), else 0.",
                ),
            ),
            leader_changes: register(
                &r,
                IntCounter::new(
                    "treasury_executor_leader_changes_total",
                    "Times the leader this node observes was replaced by a new one (another node, or the same node under a new lease); every node counts the same changes.",
                ),
            ),
            store_engine_errors: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "treasury_store_engine_errors_total",
                        "Store engine operations that failed for an infrastructure reason (engine unreachable, timeout), by operation: get, scan, apply, lease. A failed condition (conflict, fenced) is not counted.",
                    ),
                    &["op"],
                ),
            ),
            rpc_endpoints: Mutex::default(),
            registry: r,
        };
        // Create every expected labelled series at 0 now: a counter whose series first appears
        // at 1 loses that first increment to `increase()` and `rate()`.
        for from in labels::BREAKER_STATES {
            for to in labels::BREAKER_STATES.into_iter().filter(|&to| to != from) {
                metrics.breaker_transitions.with_label_values(&[from, to]);
            }
        }
        for result in labels::SUBMISSION_RESULTS {
            metrics
                .submissions
                .with_label_values(&[result, labels::NATIVE_ASSET]);
        }
        metrics
            .balance_insufficient
            .with_label_values(&[labels::NATIVE_ASSET])
            .set(0);
        for reason in labels::AUTH_FAILURES {
            metrics.admin_auth_failures.with_label_values(&[reason]);
        }
        for status in labels::BACKLOG_STATUSES {
            metrics.backlog.with_label_values(&[status]);
        }
        for reason in labels::POLICY_REFUSALS {
            metrics.policy_refusals.with_label_values(&[reason]);
        }
        for op in labels::ENGINE_OPS {
            metrics.store_engine_errors.with_label_values(&[op]);
        }
        Self(Arc::new(metrics))
    }
}

/// Unwraps a metric definition and registers it. Both steps fail only on a malformed or
/// duplicate name or label, which are constants above and which every unit test would hit.
fn register<M: Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<M>,
) -> M {
    let metric = metric.expect("treasury metric definitions are valid");
    registry
        .register(Box::new(metric.clone()))
        .expect("treasury metric names are unique");
    metric
}

/// Gauges are `i64`; a count beyond `i64::MAX` reads as `i64::MAX` rather than wrapping negative.
fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Metrics {
    pub(crate) fn set_breaker(&self, state: u8, failures: u64, successes: u64) {
        self.0.breaker_state.set(i64::from(state));
        self.0.breaker_failures.set(saturating_i64(failures));
        self.0.breaker_successes.set(saturating_i64(successes));
    }

    pub(crate) fn breaker_transition(&self, from: &str, to: &str) {
        self.0
            .breaker_transitions
            .with_label_values(&[from, to])
            .inc();
    }

    pub(crate) fn breaker_rejected(&self) {
        self.0.breaker_rejected.inc();
    }

    pub(crate) fn set_breaker_forced(&self, forced: bool) {
        self.0.breaker_forced.set(i64::from(forced));
    }

    pub(crate) fn submissions(&self, result: &str, asset: &str, n: u64) {
        self.0
            .submissions
            .with_label_values(&[result, asset])
            .inc_by(n);
    }

    pub(crate) fn register_assets(&self, assets: &[&str]) {
        let mut known = self
            .0
            .assets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for asset in assets {
            if !known.iter().any(|k| k == asset) {
                known.push((*asset).to_owned());
            }
            self.0
                .balance_insufficient
                .with_label_values(&[asset])
                .set(0);
            for result in labels::SUBMISSION_RESULTS {
                self.0.submissions.with_label_values(&[result, asset]);
            }
        }
    }

    pub(crate) fn ledger_read_failures(&self, n: u64) {
        self.0.read_failures.inc_by(n);
    }

    pub(crate) fn observe_tick(&self, seconds: f64) {
        // NaN or a negative duration (a clock stepping back) would corrupt `_sum` for good.
        if seconds.is_finite() && seconds >= 0.0 {
            self.0.tick_duration.observe(seconds);
        }
    }

    pub(crate) fn tick_completed(&self, unix_seconds: f64) {
        if unix_seconds.is_finite() {
            self.0
                .last_tick
                .with_label_values::<&str>(&[])
                .set(unix_seconds);
        }
    }

    pub(crate) fn set_backlog(&self, status: &str, n: u64) {
        self.0
            .backlog
            .with_label_values(&[status])
            .set(saturating_i64(n));
    }

    pub(crate) fn set_halted(&self, halted: bool) {
        self.0.halted.set(i64::from(halted));
    }

    pub(crate) fn set_awaiting_operator(&self, awaiting: bool) {
        self.0.awaiting_operator.set(i64::from(awaiting));
    }

    pub(crate) fn reorgs(&self, n: u64) {
        self.0.reorgs.inc_by(n);
    }

    pub(crate) fn fee_bumps(&self, n: u64) {
        self.0.fee_bumps.inc_by(n);
    }

    pub(crate) fn admin_auth_failure(&self, reason: &str) {
        let reason = labels::AUTH_FAILURES
            .into_iter()
            .find(|known| *known == reason)
            .unwrap_or(labels::AUTH_WRONG);
        self.0
            .admin_auth_failures
            .with_label_values(&[reason])
            .inc();
    }

    pub(crate) fn set_oldest_pending_seconds(&self, seconds: f64) {
        // A negative age (a clock stepping back) means nothing, NaN would hide a stuck payment
        // from TreasuryPaymentStuck and +Inf would fake one: keep the last good value instead.
        if seconds.is_finite() && seconds >= 0.0 {
            // abs() only turns -0.0, which passes the check, into 0 (it would render as "-0").
            self.0.oldest_pending.set(seconds.abs());
        }
    }

    pub(crate) fn set_fee_cap_reached(&self, reached: bool) {
        self.0.fee_cap_reached.set(i64::from(reached));
    }

    pub(crate) fn set_balance_insufficient(&self, short: Option<&str>) {
        let assets = self
            .0
            .assets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for asset in &assets {
            self.0
                .balance_insufficient
                .with_label_values(&[asset])
                .set(i64::from(short == Some(asset.as_str())));
        }
        if let Some(short) = short
            && !assets.iter().any(|asset| asset == short)
        {
            self.0
                .balance_insufficient
                .with_label_values(&[labels::OTHER])
                .set(1);
        }
    }

    pub(crate) fn set_rpc_endpoint(&self, endpoint: &str, state: u8, in_sync: bool, head: u64) {
        self.endpoint_named(endpoint);
        let m = &self.0;
        m.rpc_endpoint_state
            .with_label_values(&[endpoint])
            .set(i64::from(state));
        m.rpc_endpoint_in_sync
            .with_label_values(&[endpoint])
            .set(i64::from(in_sync));
        m.rpc_endpoint_head
            .with_label_values(&[endpoint])
            .set(saturating_i64(head));
    }

    pub(crate) fn rpc_request(&self, endpoint: &str, method: &str, result: &str, seconds: f64) {
        self.endpoint_named(endpoint);
        let (method, result) = (labels::rpc_method(method), labels::rpc_result(result));
        self.0
            .rpc_requests
            .with_label_values(&[endpoint, method, result])
            .inc();
        // Like the tick's: NaN or a negative duration would corrupt `_sum` for good.
        if seconds.is_finite() && seconds >= 0.0 {
            self.0
                .rpc_request_duration
                .with_label_values(&[endpoint])
                .observe(seconds);
        }
    }

    pub(crate) fn rpc_endpoint_transition(&self, endpoint: &str, from: &str, to: &str) {
        self.endpoint_named(endpoint);
        self.0
            .rpc_endpoint_transitions
            .with_label_values(&[endpoint, from, to])
            .inc();
    }

    /// The first time `endpoint` is named, creates its counter and histogram series at 0, as
    /// `Default` does for the label values known in advance: the transitions' six `from != to`
    /// pairs, and the requests' every method in [`labels::RPC_METHODS`] and [`labels::OTHER`]
    /// with every result in [`labels::RPC_RESULTS`]. Its gauges are not: `0` would be a state.
    fn endpoint_named(&self, endpoint: &str) {
        {
            // Nothing panics while holding it, but a poisoned set is still a good set.
            let mut named = self
                .0
                .rpc_endpoints
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // Looked up first: the common case, every request, allocates nothing.
            if named.contains(endpoint) {
                return;
            }
            named.insert(endpoint.to_owned());
        }
        let m = &self.0;
        for from in labels::BREAKER_STATES {
            for to in labels::BREAKER_STATES.into_iter().filter(|&to| to != from) {
                m.rpc_endpoint_transitions
                    .with_label_values(&[endpoint, from, to]);
            }
        }
        for method in labels::RPC_METHODS.into_iter().chain([labels::OTHER]) {
            for result in labels::RPC_RESULTS {
                m.rpc_requests
                    .with_label_values(&[endpoint, method, result]);
            }
        }
        m.rpc_request_duration.with_label_values(&[endpoint]);
    }

    pub(crate) fn policy_refusals(&self, reason: &str, n: u64) {
        self.0
            .policy_refusals
            .with_label_values(&[labels::policy_refusal(reason)])
            .inc_by(n);
    }

    pub(crate) fn set_awaiting_approval(&self, n: u64) {
        self.0.awaiting_approval.set(saturating_i64(n));
    }

    pub(crate) fn set_held_by_policy(&self, n: u64) {
        self.0.held_by_policy.set(saturating_i64(n));
    }

    pub(crate) fn set_daily_spend(&self, asset: &str, spent: f64, limit: Option<f64>) {
        // Like the oldest-pending age: NaN, an infinity or a negative amount means nothing and
        // would make TreasuryDailySpendNearLimit fire or go quiet for no reason; keep the last
        // good value. abs() only turns -0.0 into 0.
        let valid = |amount: f64| amount.is_finite() && amount >= 0.0;
        if valid(spent) {
            self.0
                .policy_spent
                .with_label_values(&[asset])
                .set(spent.abs());
        }
        match limit {
            Some(limit) if valid(limit) => {
                self.0
                    .policy_daily_limit
                    .with_label_values(&[asset])
                    .set(limit.abs());
            }
            Some(_) => {}
            // Err only says the series was not there, which is what is wanted.
            None => {
                let _ = self.0.policy_daily_limit.remove_label_values(&[asset]);
            }
        }
    }

    pub(crate) fn set_executor_leader(&self, leader: bool) {
        self.0.executor_leader.set(i64::from(leader));
    }

    pub(crate) fn leader_changed(&self) {
        self.0.leader_changes.inc();
    }

    pub(crate) fn store_engine_error(&self, op: &str) {
        self.0
            .store_engine_errors
            .with_label_values(&[labels::engine_op(op)])
            .inc();
    }

    pub(crate) fn render(&self) -> Option<String> {
        let mut text = String::new();
        TextEncoder::new()
            .encode_utf8(&self.0.registry.gather(), &mut text)
            .ok()?;
        Some(text)
    }
}
