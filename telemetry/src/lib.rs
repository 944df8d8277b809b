//! Treasury metrics: one [`TreasuryMetrics`] handle that records the breaker's and the executor's
//! state, exported as Prometheus text when the `prometheus` feature is on and a no-op when it is off.
//!
//! Architecture invariant: telemetry reads state and never drives it. It takes plain values
//! (a state as `u8`, counts, label strings) rather than governance's types, so it does not depend
//! on governance, and nothing here can change what the breaker or the executor does.
//!
//! With the feature off the public API is the same, every call compiles to nothing, [`ENABLED`] is
//! `false`, [`TreasuryMetrics::render`] returns `None`, and the `prometheus` crate is not built.
//!
//! ```
//! use telemetry::{TreasuryMetrics, labels};
//!
//! let metrics = TreasuryMetrics::new();
//! metrics.set_breaker(1, 5, 0);
//! metrics.breaker_transition(labels::CLOSED, labels::OPEN);
//! match metrics.render() {
//!     Some(text) => assert!(text.contains("treasury_circuit_breaker_state 1")),
//!     None => assert!(!telemetry::ENABLED),
//! }
//! ```
//!
//! The metrics, the alert rules built on them (`telemetry/prometheus/alerts.yml`) and the Grafana
//! dashboard (`telemetry/grafana/treasury.json`) are described in `docs/metrics.md`.

pub mod labels;
#[cfg(not(feature = "prometheus"))]
mod noop;
#[cfg(feature = "prometheus")]
mod registry;
#[cfg(test)]
mod tests;

use std::fmt;

#[cfg(not(feature = "prometheus"))]
use noop::Metrics;
#[cfg(feature = "prometheus")]
use registry::Metrics;

/// Whether the `prometheus` feature is on, i.e. whether [`TreasuryMetrics`] records anything.
pub const ENABLED: bool = cfg!(feature = "prometheus");

/// The treasury's metrics, in a registry of their own.
///
/// A cheap handle (one reference count, or nothing at all with the feature off): clone it into
/// every place that records, and every clone records into the same registry. Recording returns
/// nothing and cannot fail: metrics must never be a reason for the executor to stop.
///
/// Label values are meant to come from [`labels`]; another value is recorded as given, as a new
/// series, so passing unbounded strings (ids, error messages) would grow the registry without end.
#[derive(Clone, Default)]
pub struct TreasuryMetrics {
    inner: Metrics,
}

impl TreasuryMetrics {
    /// A new set of metrics with its own registry. Every metric is present from the start (at 0,
    /// labelled series for each value in [`labels`]) except the last-tick timestamp, which appears
    /// with the first [`tick_completed`](Self::tick_completed) so that "never ticked" is visible,
    /// the per-endpoint RPC metrics, which appear with the first call that names an endpoint
    /// (endpoints come from the configuration, not from [`labels`]), and the per-asset spend and
    /// daily limit, which appear with the first [`set_daily_spend`](Self::set_daily_spend) that
    /// names an asset (assets come from the configuration too).
    pub fn new() -> Self {
        Self::default()
    }

    /// The breaker's state (`0` closed, `1` open, `2` half-open), the failures in its rolling
    /// window, and the probe successes in its current half-open cycle: the three seed gauges
    /// `treasury_circuit_breaker_state`, `treasury_circuit_breaker_failures` and
    /// `treasury_circuit_breaker_successes`.
    pub fn set_breaker(&self, state: u8, failures: u64, successes: u64) {
        self.inner.set_breaker(state, failures, successes);
    }

    /// One breaker transition, e.g. `(labels::CLOSED, labels::OPEN)` for a trip:
    /// `treasury_circuit_breaker_transitions_total{from, to}`.
    pub fn breaker_transition(&self, from: &str, to: &str) {
        self.inner.breaker_transition(from, to);
    }

    /// One call the breaker rejected: `treasury_circuit_breaker_rejected_total`.
    pub fn breaker_rejected(&self) {
        self.inner.breaker_rejected();
    }

    /// Whether an operator's force-open or force-close is in effect:
    /// `treasury_circuit_breaker_forced` (1 or 0).
    pub fn set_breaker_forced(&self, forced: bool) {
        self.inner.set_breaker_forced(forced);
    }

    /// One submission's result (one of [`labels::SUBMISSION_RESULTS`]) for a disbursement
    /// in `asset`: `treasury_submissions_total{result, asset}`.
    pub fn submission(&self, result: &str, asset: &str) {
        self.inner.submissions(result, asset, 1);
    }

    /// `n` submissions with this `result` in `asset` at once (see
    /// [`submission`](Self::submission)).
    pub fn submissions(&self, result: &str, asset: &str, n: u64) {
        self.inner.submissions(result, asset, n);
    }

    /// Starts `treasury_submissions_total` at 0 for every result of each of `assets` (the
    /// ones the ledger pays: `native` and the configured tokens), so that the first
    /// increment of each is seen by `rate()`. The `asset` label is bounded by them.
    pub fn register_assets(&self, assets: &[&str]) {
        self.inner.register_assets(assets);
    }

    /// `n` ledger calls other than submissions (epoch, nonce, lookups, signing's reads)
    /// that failed for infrastructure reasons; each counted against the breaker:
    /// `treasury_ledger_read_failures_total`.
    pub fn ledger_read_failures(&self, n: u64) {
        self.inner.ledger_read_failures(n);
    }

    /// How long one executor tick took, in seconds: `treasury_executor_tick_duration_seconds`.
    /// A negative or non-finite value is ignored.
    pub fn observe_tick(&self, seconds: f64) {
        self.inner.observe_tick(seconds);
    }

    /// When the last executor tick completed, as Unix time in seconds:
    /// `treasury_executor_last_tick_timestamp_seconds`. A non-finite value is ignored.
    pub fn tick_completed(&self, unix_seconds: f64) {
        self.inner.tick_completed(unix_seconds);
    }

    /// How many disbursements are in `status` (one of [`labels::BACKLOG_STATUSES`]):
    /// `treasury_backlog{status}`.
    pub fn set_backlog(&self, status: &str, n: u64) {
        self.inner.set_backlog(status, n);
    }

    /// Whether the executor has halted: `treasury_executor_halted` (1 or 0). Every halt counts: a
    /// storage or signing error, a chain-id mismatch, and a halt that awaits an operator's
    /// decision (see [`set_awaiting_operator`](Self::set_awaiting_operator)).
    pub fn set_halted(&self, halted: bool) {
        self.inner.set_halted(halted);
    }

    /// Whether the executor holds on a question it does not decide by itself (governance's
    /// `Hold`: a nonce drift, a nonce consumed on chain by a transaction that is not one of ours,
    /// a gap below its nonces, a refused transaction that may be out there), so that it pays
    /// nothing until the hold lifts or an operator decides through the admin API:
    /// `treasury_executor_awaiting_operator` (1 or 0). Such a halt also sets
    /// [`set_halted`](Self::set_halted).
    pub fn set_awaiting_operator(&self, awaiting: bool) {
        self.inner.set_awaiting_operator(awaiting);
    }

    /// `n` transactions seen included in a block that the chain then dropped (a reorg):
    /// `treasury_reorgs_total`.
    pub fn reorgs(&self, n: u64) {
        self.inner.reorgs(n);
    }

    /// An admin API call refused before authentication succeeded, with the reason
    /// ([`labels::AUTH_FAILURES`]): `treasury_admin_auth_failures_total{reason}`.
    pub fn admin_auth_failure(&self, reason: &str) {
        self.inner.admin_auth_failure(reason);
    }

    /// `n` replacement transactions signed at the same nonce with higher fees:
    /// `treasury_fee_bumps_total`.
    pub fn fee_bumps(&self, n: u64) {
        self.inner.fee_bumps(n);
    }

    /// The age in seconds of the oldest payment broadcast but not yet confirmed at depth, `0.0`
    /// when there is none: `treasury_oldest_pending_seconds`. A negative or non-finite value is
    /// ignored (the gauge keeps its previous value).
    pub fn set_oldest_pending_seconds(&self, seconds: f64) {
        self.inner.set_oldest_pending_seconds(seconds);
    }

    /// Whether a pending transaction needs a fee bump that the configured maximum fee (or tip)
    /// does not allow, so that it waits: `treasury_fee_cap_reached` (1 or 0).
    pub fn set_fee_cap_reached(&self, reached: bool) {
        self.inner.set_fee_cap_reached(reached);
    }

    /// Which asset's balance, if any, does not cover the next payment (plus, in the coin,
    /// the worst-case fees of everything in flight), so that payments are paused (never
    /// cancelled): `treasury_balance_insufficient{asset}` is 1 for it and 0 for every
    /// other registered asset ([`register_assets`](Self::register_assets)); an asset not
    /// registered is shown as `other`.
    pub fn set_balance_insufficient(&self, short: Option<&str>) {
        self.inner.set_balance_insufficient(short);
    }

    /// One RPC endpoint's health, as the node's endpoint pool last saw it:
    /// `treasury_rpc_endpoint_state{endpoint}` (its own breaker's state, `0` closed, `1` open,
    /// `2` half-open, like [`set_breaker`](Self::set_breaker)), `treasury_rpc_endpoint_in_sync{endpoint}`
    /// (1 or 0) and `treasury_rpc_endpoint_head{endpoint}` (the last block number it reported).
    ///
    /// `endpoint` is a label bounded by configuration: the endpoint's configured name or
    /// `scheme://host:port`, never its credentials (a key in its path or query). `in_sync` is
    /// `false` when its head is more than `max_head_lag_blocks` behind the best endpoint's, when it
    /// is excluded (another chain), or when it never answered.
    ///
    /// An endpoint's series appear with the first call that names it: call this for every
    /// configured endpoint at start, so that they all exist from then on, and after every tick.
    pub fn set_rpc_endpoint(&self, endpoint: &str, state: u8, in_sync: bool, head: u64) {
        self.inner.set_rpc_endpoint(endpoint, state, in_sync, head);
    }

    /// One JSON-RPC request to `endpoint`, or one batch request ([`labels::BATCH`]), and how it
    /// ended (one of [`labels::RPC_RESULTS`]): `treasury_rpc_requests_total{endpoint, method, result}`;
    /// and how long it took in seconds: `treasury_rpc_request_duration_seconds{endpoint}`.
    ///
    /// A method not in [`labels::RPC_METHODS`] is counted as method [`labels::OTHER`], and a result
    /// not in [`labels::RPC_RESULTS`] as result [`labels::OTHER`]. A negative or non-finite duration
    /// is left out of the histogram; the request is still counted.
    pub fn rpc_request(&self, endpoint: &str, method: &str, result: &str, seconds: f64) {
        self.inner.rpc_request(endpoint, method, result, seconds);
    }

    /// One transition of `endpoint`'s own breaker, e.g. `(labels::CLOSED, labels::OPEN)`:
    /// `treasury_rpc_endpoint_transitions_total{endpoint, from, to}`.
    pub fn rpc_endpoint_transition(&self, endpoint: &str, from: &str, to: &str) {
        self.inner.rpc_endpoint_transition(endpoint, from, to);
    }

    /// `n` queue requests refused (403) or ready disbursements held back from signing by the
    /// spending policy's rule `reason` (one of [`labels::POLICY_REFUSALS`]):
    /// `treasury_policy_refusals_total{reason}`. A ready disbursement sent back to awaiting
    /// approval, because the policy in force now needs more approvals than it has, counts as
    /// [`labels::POLICY_APPROVALS`].
    ///
    /// A reason not in [`labels::POLICY_REFUSALS`] is counted as reason [`labels::OTHER`].
    pub fn policy_refusals(&self, reason: &str, n: u64) {
        self.inner.policy_refusals(reason, n);
    }

    /// How many disbursements at or above an approval threshold wait for more operators'
    /// approvals: `treasury_disbursements_awaiting_approval`.
    pub fn set_awaiting_approval(&self, n: u64) {
        self.inner.set_awaiting_approval(n);
    }

    /// How many ready disbursements the spending policy in force keeps from being signed (over
    /// `max_amount`, or a destination not on the allow-list; `GET /admin/policy` → `held`):
    /// `treasury_disbursements_held_by_policy`.
    pub fn set_held_by_policy(&self, n: u64) {
        self.inner.set_held_by_policy(n);
    }

    /// What `asset`'s disbursements queued in the rolling 24 hours (not cancelled) pay, in the
    /// asset's smallest unit: `treasury_policy_spent_24h{asset}`; and its configured
    /// `daily_limit`: `treasury_policy_daily_limit{asset}`, whose series is removed when `limit`
    /// is `None` (no limit is not a limit of 0).
    ///
    /// `asset` is a label bounded by configuration (the configured assets, today `"native"`), and
    /// its series appear with the first call that names it: call this for every configured asset
    /// at start and after every change to the spend or the policy. A negative or non-finite
    /// `spent` or `limit` is ignored (that gauge keeps its previous value, or stays absent).
    pub fn set_daily_spend(&self, asset: &str, spent: f64, limit: Option<f64>) {
        self.inner.set_daily_spend(asset, spent, limit);
    }

    /// Whether this node is the active executor, the leader that holds the store's lease:
    /// `treasury_executor_leader` (1 or 0). Every node exports it: a node on an embedded store
    /// (sled), the only executor there is, reports `true`; on a replicated store (etcd), exactly
    /// one node of a healthy cluster does. `0` from the start, until the node says otherwise.
    pub fn set_executor_leader(&self, leader: bool) {
        self.inner.set_executor_leader(leader);
    }

    /// The leader this node observes was replaced by a new one (another node, or the same node
    /// under a new lease after losing its own): `treasury_executor_leader_changes_total`.
    ///
    /// Not for the first leader a node observes after it starts, and not when the leader merely
    /// goes away (the next one's arrival counts), so that every node counts the same changes and
    /// the flapping alert takes the `max` over the nodes, not the sum.
    pub fn leader_changed(&self) {
        self.inner.leader_changed();
    }

    /// One store engine operation (one of [`labels::ENGINE_OPS`]) that failed for an
    /// infrastructure reason, an engine unreachable or timing out:
    /// `treasury_store_engine_errors_total{op}`. A failed condition of a batch (a conflict, a
    /// fence) is the store working as designed, not an engine error: it is not counted.
    ///
    /// An `op` not in [`labels::ENGINE_OPS`] is counted as op [`labels::OTHER`].
    pub fn store_engine_error(&self, op: &str) {
        self.inner.store_engine_error(op);
    }

    /// The Prometheus text exposition (format 0.0.4) of every metric, for `GET /metrics`.
    ///
    /// `None` with the feature off (the node then serves no `/metrics`). With it on, `None` only
    /// if encoding fails, which the metrics defined here never make it do.
    pub fn render(&self) -> Option<String> {
        self.inner.render()
    }
}

impl fmt::Debug for TreasuryMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TreasuryMetrics")
            .field("enabled", &ENABLED)
            .finish_non_exhaustive()
    }
}
