//! `App`: what the HTTP handlers and the executor driver share, and the `/status` view.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::{Value, json};
use telemetry::{TreasuryMetrics, labels};

use crate::config::NodeConfig;
use crate::governance::{
    CircuitBreaker, ExecutorSnapshot, GovStore, Hold, Ledger, TickReport, Transition,
    TreasuryExecutorError,
};
use crate::ledger::evm::{EvmLedger, RpcEvent};

/// The node's shared state.
#[derive(Debug)]
pub struct App {
    /// The configuration it runs with.
    pub config: NodeConfig,
    /// The breaker every submission goes through.
    pub breaker: Arc<CircuitBreaker>,
    /// The treasury store.
    pub store: GovStore,
    /// The ledger the executor pays on (queue-time destination checks use it too).
    pub ledger: Arc<dyn Ledger>,
    /// What `/status` shows of the ledger: its kind, and for the EVM ledger the
    /// endpoint (credentials removed) and the treasury's address. Never a key.
    pub ledger_details: Value,
    /// Prometheus metrics (no-ops without the `telemetry` feature).
    pub metrics: TreasuryMetrics,
    /// The EVM ledger, for its endpoints' health (`None` on the dev ledger).
    pub evm: Option<Arc<EvmLedger>>,
    /// Failed admin authentications by peer.
    pub auth_limiter: crate::admin::AuthLimiter,
    /// The leader election, with the store on etcd (`None` on sled: this node always
    /// leads).
    pub election: Option<Arc<dyn crate::ha::Election>>,
    /// The election's leader changes as last published (the election counts them).
    published_changes: std::sync::atomic::AtomicU64,
    /// The engine's failed calls as last published.
    engine_errors: std::sync::Mutex<[u64; 4]>,
    /// On a standby: the leader's breaker as last read from the store and restored here.
    mirrored: std::sync::Mutex<Option<crate::governance::CircuitBreakerSnapshot>>,
    /// Set while a standby restores the leader's breaker: its transitions are not this
    /// node's to count.
    mirroring: std::sync::atomic::AtomicBool,
    executor: RwLock<ExecutorView>,
    /// When the allow-list was last read, and why the last re-read failed.
    policy_reload: RwLock<PolicyReload>,
    /// The executor's counters as persisted when this process started: `/status`'s
    /// `since_start` counts from them.
    baseline: ExecutorSnapshot,
    /// When this process started (ms since the epoch).
    baseline_ms: u64,
}

/// The last reading of the policy's allow-list.
#[derive(Debug, Clone, Default)]
struct PolicyReload {
    loaded_at_ms: u64,
    error: Option<String>,
}

/// The executor as last seen by the driver.
#[derive(Debug, Clone, Default)]
struct ExecutorView {
    snapshot: ExecutorSnapshot,
    last_report: Option<TickReport>,
    running: bool,
}

impl App {
    /// Shared state for a node about to start.
    pub fn new(
        config: NodeConfig,
        breaker: Arc<CircuitBreaker>,
        store: GovStore,
        ledger: Arc<dyn Ledger>,
        ledger_details: Value,
        metrics: TreasuryMetrics,
    ) -> App {
        let baseline = store.executor_snapshot().ok().flatten().unwrap_or_default();
        App {
            baseline,
            baseline_ms: crate::governance::text::unix_ms(),
            auth_limiter: crate::admin::AuthLimiter::new(config.admin_auth_failures_per_minute),
            config,
            breaker,
            store,
            ledger,
            ledger_details,
            metrics,
            evm: None,
            election: None,
            published_changes: std::sync::atomic::AtomicU64::new(0),
            engine_errors: std::sync::Mutex::default(),
            mirrored: std::sync::Mutex::default(),
            mirroring: std::sync::atomic::AtomicBool::new(false),
            executor: RwLock::new(ExecutorView::default()),
            policy_reload: RwLock::new(PolicyReload {
                loaded_at_ms: crate::governance::text::unix_ms(),
                error: None,
            }),
        }
    }

    /// SIGHUP: reads the policy's allow-list again and puts the policy in force (held
    /// disbursements it now allows are ready again). A file that cannot be read or parsed
    /// changes nothing: the list in force stays, and the error is logged and shown in
    /// `/status`.
    pub fn reload_policy(&self) {
        let Some(file) = &self.config.policy.destinations_file else {
            tracing::info!("SIGHUP: no policy.destinations_file to re-read");
            return;
        };
        let policy = match self.config.policy.load() {
            Ok(policy) => policy,
            Err(error) => {
                tracing::error!(
                    %error,
                    "SIGHUP: the allow-list was not re-read; the one read before stays in force"
                );
                let mut reload = self
                    .policy_reload
                    .write()
                    .unwrap_or_else(|e| e.into_inner());
                reload.error = Some(error.to_string());
                return;
            }
        };
        let destinations = policy.destinations.as_ref().map_or(0, |list| list.len());
        // The new list is in force once set_policy swaps it, even if re-judging what
        // waits then fails (that failure is the store's, and said as such).
        let outcome = self.store.set_policy(policy);
        let mut reload = self
            .policy_reload
            .write()
            .unwrap_or_else(|e| e.into_inner());
        *reload = PolicyReload {
            loaded_at_ms: crate::governance::text::unix_ms(),
            error: None,
        };
        match outcome {
            Ok(rejudged) => tracing::info!(
                file = %file.display(),
                destinations,
                released = rejudged.released,
                "SIGHUP: the allow-list is re-read and in force"
            ),
            Err(error) => {
                tracing::error!(
                    %error,
                    destinations,
                    "SIGHUP: the new allow-list is in force, but releasing the held \
                     disbursements it allows failed (the next SIGHUP or restart tries again)"
                );
                reload.error = Some(format!(
                    "the new list is in force; releasing what it allows failed: {error}"
                ));
            }
        }
    }

    /// `/status`'s `policy`: the rules in force, each limited asset's queued and signed
    /// spend in the rolling 24 hours, the allow-list's state. Which disbursements wait on
    /// it (ids, amounts, destinations, approvers) is for an admin token:
    /// [`policy_detail`](Self::policy_detail), `GET /admin/policy`.
    fn policy_view(&self) -> Value {
        let policy = self.store.policy();
        let now = crate::governance::text::unix_ms();
        let figure = |spent: Result<u128, crate::governance::StoreError>| match spent {
            Ok(n) => json!(n.to_string()),
            Err(error) => json!({ "error": error.to_string() }),
        };
        let mut limits = serde_json::Map::new();
        for (asset, limit) in &policy.limits {
            limits.insert(
                asset.clone(),
                json!({
                    "max_amount": limit.max_amount.map(|n| n.to_string()),
                    "daily_limit": limit.daily_limit.map(|n| n.to_string()),
                    "approval_threshold": limit.approval_threshold.map(|n| n.to_string()),
                    "spent_24h": figure(self.store.spent(asset, now)),
                    "signed_24h": figure(self.store.signed_spend(asset, now)),
                }),
            );
        }
        let reload = self
            .policy_reload
            .read()
            .map(|r| r.clone())
            .unwrap_or_default();
        json!({
            "approvals_required": policy.approvals_required,
            "limits": limits,
            "destinations": self.config.policy.destinations_file.as_ref().map(|file| json!({
                "file": file.display().to_string(),
                "count": policy.destinations.as_ref().map_or(0, |list| list.len()),
                "loaded_at_ms": reload.loaded_at_ms,
                "reload_error": reload.error,
            })),
        })
    }

    /// `GET /admin/policy`: `/status`'s `policy`, and the first `limit` disbursements
    /// held by it (with the reason) and awaiting approval (with who approved them and how
    /// many approvals they need).
    pub fn policy_detail(&self, limit: usize) -> Result<Value, crate::governance::StoreError> {
        let policy = self.store.policy();
        let held: Vec<Value> = self
            .store
            .held(limit)?
            .into_iter()
            .map(|(id, reason)| json!({ "id": id, "reason": reason }))
            .collect();
        let awaiting: Vec<Value> = self
            .store
            .awaiting_approval(limit)?
            .iter()
            .map(|d| {
                json!({
                    "id": d.id,
                    "destination": d.destination,
                    "amount": d.amount.to_string(),
                    "approvals": d.approvals.iter().map(|a| &a.actor).collect::<Vec<_>>(),
                    "needed": policy.approvals_needed(d.asset(), d.amount),
                })
            })
            .collect();
        let mut view = self.policy_view();
        if let Some(fields) = view.as_object_mut() {
            fields.insert("held".into(), Value::Array(held));
            fields.insert("awaiting_approval".into(), Value::Array(awaiting));
        }
        Ok(view)
    }

    /// Updates the policy's gauges: awaiting approval, held, and each limited asset's
    /// spend against its limit.
    fn publish_policy(&self, backlog: &crate::governance::Backlog) {
        let metrics = &self.metrics;
        metrics.set_awaiting_approval(backlog.awaiting_approval);
        metrics.set_held_by_policy(backlog.held);
        let policy = self.store.policy();
        let now = crate::governance::text::unix_ms();
        for (asset, limit) in &policy.limits {
            match self.store.spent(asset, now) {
                Ok(spent) => metrics.set_daily_spend(
                    asset,
                    spent as f64,
                    limit.daily_limit.map(|n| n as f64),
                ),
                Err(error) => tracing::error!(%error, "cannot read the day's spend"),
            }
        }
    }

    /// The same, paying on `evm`: `/status` and the metrics show its endpoints, and its
    /// requests and endpoint breaker transitions are counted.
    pub fn with_evm(mut self, evm: Arc<EvmLedger>) -> App {
        let metrics = self.metrics.clone();
        evm.observe(Arc::new(move |event: &RpcEvent<'_>| match *event {
            RpcEvent::Request {
                endpoint,
                method,
                result,
                seconds,
            } => metrics.rpc_request(endpoint, method, result, seconds),
            RpcEvent::Transition { endpoint, from, to } => {
                tracing::warn!(endpoint, from, to, "RPC endpoint breaker transition");
                metrics.rpc_endpoint_transition(endpoint, from, to);
            }
        }));
        self.evm = Some(evm);
        self.publish_endpoints();
        self
    }

    /// Updates the gauges that follow the RPC endpoints.
    pub fn publish_endpoints(&self) {
        let Some(evm) = &self.evm else { return };
        for endpoint in evm.endpoint_status() {
            self.metrics.set_rpc_endpoint(
                &endpoint.name,
                endpoint.state.as_u8(),
                endpoint.in_sync,
                endpoint.head.unwrap_or(0),
            );
        }
    }

    /// Updates the gauges that follow the breaker.
    pub fn publish_breaker(&self) {
        let breaker = &self.breaker;
        self.metrics.set_breaker(
            breaker.state().as_u8(),
            breaker.failure_count(),
            breaker.success_count(),
        );
        self.metrics.set_breaker_forced(breaker.is_forced());
    }

    /// Told of every breaker transition (the breaker's listener).
    pub fn on_transition(&self, transition: &Transition) {
        if self.mirroring.load(std::sync::atomic::Ordering::SeqCst) {
            // A standby taking the leader's saved state: the leader counted the transition.
            tracing::info!(%transition, "the leader's circuit breaker, as it saved it");
            return;
        }
        self.metrics
            .breaker_transition(transition.from.as_str(), transition.to.as_str());
        tracing::warn!(%transition, "circuit breaker transition");
    }

    /// What the executor waits for an operator to decide, as of its last tick.
    pub fn hold(&self) -> Option<Hold> {
        self.executor
            .read()
            .ok()
            .and_then(|view| view.snapshot.hold.clone())
    }

    /// Records what one tick did.
    /// `report` is what the tick did even if `result` is an error (a tick that saw a
    /// reorg, then held, still counts the reorg).
    pub fn observe_tick(
        &self,
        snapshot: &ExecutorSnapshot,
        report: &TickReport,
        result: &Result<TickReport, TreasuryExecutorError>,
        took: Duration,
    ) {
        let metrics = &self.metrics;
        metrics.observe_tick(took.as_secs_f64());
        metrics.tick_completed(unix_seconds());
        for (asset, counts) in &report.by_asset {
            metrics.submissions(labels::ACCEPTED, asset, counts.submitted);
            metrics.submissions(labels::FAILED, asset, counts.submission_failures);
            metrics.submissions(labels::CANCELLED, asset, counts.cancelled);
            metrics.submissions(labels::AMBIGUOUS, asset, counts.ambiguous);
            metrics.submissions(labels::UNDERPRICED, asset, counts.underpriced);
        }
        metrics.ledger_read_failures(report.read_failures);
        metrics.reorgs(report.reorgs);
        metrics.fee_bumps(report.fee_bumps);
        for rule in &report.policy_refusals {
            metrics.policy_refusals(rule, 1);
        }
        if report.rejected_by_breaker {
            metrics.breaker_rejected();
        }
        metrics.set_halted(snapshot.halted.is_some());
        metrics.set_awaiting_operator(snapshot.hold.is_some());
        metrics.set_fee_cap_reached(snapshot.fee_cap_reached);
        metrics.set_balance_insufficient(
            snapshot.balance_shortfall.and(
                snapshot
                    .shortfall_asset
                    .as_deref()
                    .or(Some(labels::NATIVE_ASSET)),
            ),
        );
        metrics.set_oldest_pending_seconds(oldest_pending_seconds(snapshot));
        self.publish_breaker();
        self.publish_endpoints();
        match self.store.backlog() {
            Ok(backlog) => {
                metrics.set_backlog(labels::SCHEDULED, backlog.scheduled);
                metrics.set_backlog(labels::READY, backlog.ready);
                metrics.set_backlog(labels::STAGED, backlog.staged);
                metrics.set_backlog(labels::SUBMITTED, backlog.submitted);
                metrics.set_backlog(labels::INCLUDED, backlog.included);
                self.publish_policy(&backlog);
            }
            Err(error) => tracing::error!(%error, "cannot read the backlog"),
        }
        if let Ok(mut view) = self.executor.write() {
            view.snapshot = snapshot.clone();
            view.last_report = result.as_ref().ok().cloned();
            view.running = true;
        }
    }

    /// With leader election: joins it. The leader gauge follows the election.
    pub fn with_election(mut self, election: Arc<dyn crate::ha::Election>) -> App {
        self.metrics.set_executor_leader(false);
        self.election = Some(election);
        self
    }

    /// The election as this node sees it; on sled, this node always leads.
    pub fn ha_view(&self) -> crate::ha::HaView {
        match &self.election {
            Some(election) => election.view(),
            None => crate::ha::HaView {
                role: crate::ha::RoleKind::Leader,
                token: None,
                error: None,
                leader: None,
                term: 0,
                since_ms: self.baseline_ms,
                changes: 0,
            },
        }
    }

    /// Told of the election at each round of the driver: the leader gauge, and the leader
    /// changes the election counted since the last round (`HaView::changes`).
    pub fn observe_election(&self, view: &crate::ha::HaView) {
        use std::sync::atomic::Ordering;
        self.metrics
            .set_executor_leader(view.role == crate::ha::RoleKind::Leader);
        let before = self.published_changes.swap(view.changes, Ordering::SeqCst);
        for _ in before..view.changes {
            self.metrics.leader_changed();
        }
        if let Some(election) = &self.election {
            let now = election.engine_errors();
            let mut published = self
                .engine_errors
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (op, (now, before)) in labels::ENGINE_OPS
                .iter()
                .zip(now.iter().zip(published.iter()))
            {
                for _ in *before..*now {
                    self.metrics.store_engine_error(op);
                }
            }
            *published = now;
        }
    }

    /// On a standby: restores the breaker the leader last saved, when it changed, so that
    /// this node's `/status` and metrics show the breaker in force (and a takeover starts
    /// from it, as it would anyway). Blocks on the store.
    pub fn mirror_breaker(&self) {
        let Ok(Some(snapshot)) = self.store.breaker_snapshot() else {
            return;
        };
        let mut mirrored = self
            .mirrored
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if mirrored.as_ref() != Some(&snapshot) {
            // The breaker's listener runs inside `restore`, on this thread.
            self.mirroring
                .store(true, std::sync::atomic::Ordering::SeqCst);
            self.breaker.restore(&snapshot);
            self.mirroring
                .store(false, std::sync::atomic::Ordering::SeqCst);
            *mirrored = Some(snapshot);
            self.publish_breaker();
        }
    }

    /// This node leads a new term: the breaker is its own again (restored from the store
    /// by the term's executor), so the next time it stands by it mirrors afresh.
    pub fn lead(&self) {
        *self
            .mirrored
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// The store a change an operator makes to the executor's state goes through: on
    /// etcd, fenced by this node's term (refused once another node leads), `None` if this
    /// node does not lead; on sled, the store.
    pub fn leader_store(&self) -> Option<GovStore> {
        match &self.election {
            None => Some(self.store.clone()),
            Some(election) => {
                let token = election.view().token?;
                election.may_broadcast(token).then(|| {
                    self.store
                        .clone()
                        .fenced(crate::governance::store::engine::Fence {
                            key: crate::governance::store::engine::LEADER_KEY.to_vec(),
                            token,
                        })
                })
            }
        }
    }

    /// This node does not lead: its executor is not running, and what the last term's
    /// executor said (a halt on the write that found it deposed, a hold, a shortfall) is
    /// the leader's to report now: the gauges it set are cleared.
    pub fn stand_by(&self) {
        if let Ok(mut view) = self.executor.write() {
            view.running = false;
            view.snapshot.halted = None;
            view.snapshot.hold = None;
            view.snapshot.fee_cap_reached = false;
            view.snapshot.balance_shortfall = None;
            view.snapshot.shortfall_asset = None;
        }
        let metrics = &self.metrics;
        metrics.set_halted(false);
        metrics.set_awaiting_operator(false);
        metrics.set_fee_cap_reached(false);
        metrics.set_balance_insufficient(None);
    }

    /// The `/status` document.
    pub fn status(&self) -> Value {
        let ha = self.ha_view();
        let ha_json = ha.to_json(self.store.engine());
        if matches!(
            ha.role,
            crate::ha::RoleKind::Unavailable | crate::ha::RoleKind::Starting
        ) {
            // Every store read would wait out its timeout: say what is known.
            return json!({
                "ha": ha_json,
                "executor": { "identity": self.config.identity, "running": false },
                "ledger": self.ledger_view(),
            });
        }
        let mut status = self.full_status();
        if let Some(fields) = status.as_object_mut() {
            fields.insert("ha".into(), ha_json);
        }
        status
    }

    fn full_status(&self) -> Value {
        let breaker = &self.breaker;
        let view = self.executor.read().map(|v| v.clone()).unwrap_or_default();
        let snapshot = &view.snapshot;
        let backlog = match self.store.backlog() {
            Ok(b) => json!({
                "scheduled": b.scheduled, "ready": b.ready, "staged": b.staged,
                "submitted": b.submitted, "included": b.included,
                "awaiting_approval": b.awaiting_approval, "held": b.held,
            }),
            Err(error) => json!({ "error": error.to_string() }),
        };
        let totals = match self.store.totals() {
            Ok(totals) => serde_json::to_value(totals).unwrap_or(Value::Null),
            Err(error) => json!({ "error": error.to_string() }),
        };
        json!({
            "breaker": {
                "state": breaker.state().as_str(),
                "forced": breaker.is_forced(),
                "failures": breaker.failure_count(),
                "successes": breaker.success_count(),
                "probes_in_flight": breaker.probes_in_flight(),
                "consecutive_trips": breaker.consecutive_trips(),
                "generation": breaker.generation(),
                "open_remaining_ms": breaker.open_remaining().map(|d| d.as_millis() as u64),
                "config": breaker.config(),
            },
            "executor": {
                "identity": self.config.identity,
                "running": view.running,
                "halted": snapshot.halted,
                "hold": snapshot.hold,
                "decision": self.store.decision().ok().flatten(),
                "last_error": snapshot.last_error,
                "ticks": snapshot.ticks,
                "last_tick_ms": snapshot.last_tick_ms,
                "totals": totals,
                "since_start": self.since_start(snapshot),
                "fee_cap_reached": snapshot.fee_cap_reached,
                "oldest_pending_seconds": snapshot.oldest_pending_ms.map(|_| oldest_pending_seconds(snapshot)),
                "last_tick": view.last_report.map(|r| json!({
                    "epoch": r.epoch, "attempts": r.attempts, "submitted": r.submitted,
                    "submission_failures": r.submission_failures,
                    "read_failures": r.read_failures, "executed": r.executed,
                    "cancelled": r.cancelled, "ambiguous": r.ambiguous,
                    "underpriced": r.underpriced, "fee_bumps": r.fee_bumps,
                    "reorgs": r.reorgs, "rejected_by_breaker": r.rejected_by_breaker,
                    "probes": r.probes,
                })),
            },
            "balance": {
                "insufficient": snapshot.balance_shortfall.is_some(),
                // A decimal string: wei overflow what JSON readers hold exactly.
                "missing": snapshot.balance_shortfall.map(|missing| missing.to_string()),
                "asset": snapshot.shortfall_asset,
                // As last read before paying (only when something was ready).
                "treasury": snapshot.balances,
                "read_at_ms": snapshot.balances_at_ms,
            },
            "backlog": backlog,
            "policy": self.policy_view(),
            "ledger": self.ledger_view(),
            "chain_id": self.store.chain_id().ok().flatten(),
        })
    }
}

impl App {
    /// `/status`'s `executor.since_start`: what this process's executor did (the
    /// persisted counters minus those it started from).
    fn since_start(&self, now: &ExecutorSnapshot) -> Value {
        let base = &self.baseline;
        json!({
            "ticks": now.ticks.saturating_sub(base.ticks),
            "submitted": now.submitted.saturating_sub(base.submitted),
            "submission_failures": now.submission_failures.saturating_sub(base.submission_failures),
            "read_failures": now.read_failures.saturating_sub(base.read_failures),
            "executed": now.executed.saturating_sub(base.executed),
            "cancelled": now.cancelled.saturating_sub(base.cancelled),
            "rejected_by_breaker": now.rejected_by_breaker.saturating_sub(base.rejected_by_breaker),
            "underpriced": now.underpriced.saturating_sub(base.underpriced),
            "fee_bumps": now.fee_bumps.saturating_sub(base.fee_bumps),
            "reorgs": now.reorgs.saturating_sub(base.reorgs),
        })
    }

    /// `/status`'s `ledger`: its kind and treasury, and each RPC endpoint's health.
    fn ledger_view(&self) -> Value {
        let mut view = self.ledger_details.clone();
        if let (Some(evm), Some(fields)) = (&self.evm, view.as_object_mut()) {
            fields.insert(
                "endpoints".into(),
                serde_json::to_value(evm.endpoint_status()).unwrap_or(Value::Null),
            );
        }
        view
    }
}

/// Seconds since the oldest transaction still waiting for its confirmations was first
/// accepted; 0 when none is.
fn oldest_pending_seconds(snapshot: &ExecutorSnapshot) -> f64 {
    snapshot.oldest_pending_ms.map_or(0.0, |sent_ms| {
        (unix_seconds() - sent_ms as f64 / 1000.0).max(0.0)
    })
}

fn unix_seconds() -> f64 {
    crate::governance::text::unix_ms() as f64 / 1000.0
}
