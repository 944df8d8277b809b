//! The executor tick: reconcile what is in flight, then stage, submit and record ready
//! disbursements, every submission gated by the circuit breaker.
//!
//! ```text
//!  tick ─▶ breaker open? ── yes ─▶ skip (no calls to a dependency known to be down)
//!            │ no
//!            ▼
//!  reconcile intents, lowest nonce first
//!     submitted: look up by hash ── included ─▶ Executed
//!                                └─ unknown ──▶ resubmit the same bytes (permit)
//!     staged:    look up by hash ── known ────▶ Submitted / Executed
//!                                └─ unknown ──▶ resubmit the same bytes (permit)
//!            ▼
//!  activate scheduled disbursements whose epoch has come
//!            ▼
//!  ready (id order, ≤ batch) ─▶ sign with consecutive nonces ─▶ stage all + flush
//!            ▼
//!  for each intent: permit? ── no ─▶ stop the batch
//!            │ yes
//!            ▼
//!         submit ─▶ classify ─▶ record on the permit ─▶ persist
//!            accepted    ─▶ Submitted, next intent
//!            submission  ─▶ stays staged; the next permit retries it
//!            cancelled   ─▶ Cancelled; later intents unstaged (their nonces reused)
//!            ambiguous   ─▶ look up by hash: known ─▶ Submitted; else re-sign later
//! ```
//!
//! Submission never goes past an intent the ledger has not accepted, so at most one
//! unaccepted intent can have reached the ledger: the lowest staged one. That is what
//! makes it safe to re-sign every later intent with a lower nonce after a cancellation.

mod error;
mod ledger;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::circuit_breaker::CircuitBreaker;
use crate::store::{ExecutorSnapshot, GovStore, Intent, RequestError, StoreError};

pub use error::TreasuryExecutorError;
pub use ledger::{Ledger, LedgerError, SignedTx, TxStatus};

/// Called with (state as `u8`, failures in the window, half-open successes).
pub type BreakerTelemetry = Arc<dyn Fn(u8, u64, u64) + Send + Sync>;

/// The executor's configuration: the canonical one (the node re-exports it).
#[derive(Clone)]
pub struct TreasuryExecutorConfig {
    /// Who this executor is, for logs and audit records.
    pub identity: String,
    /// How long the driver waits between ticks.
    pub poll_interval: Duration,
    /// Submissions (attempts) per tick at most.
    pub batch_size: usize,
    /// The breaker every submission goes through.
    pub circuit_breaker: Arc<CircuitBreaker>,
    /// Told the breaker's state after every tick and on every transition.
    pub circuit_breaker_telemetry: Option<BreakerTelemetry>,
}

impl TreasuryExecutorConfig {
    /// A configuration with a 1 s poll interval and batches of 100.
    pub fn new(identity: impl Into<String>, circuit_breaker: Arc<CircuitBreaker>) -> Self {
        TreasuryExecutorConfig {
            identity: identity.into(),
            poll_interval: Duration::from_secs(1),
            batch_size: 100,
            circuit_breaker,
            circuit_breaker_telemetry: None,
        }
    }
}

impl fmt::Debug for TreasuryExecutorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TreasuryExecutorConfig")
            .field("identity", &self.identity)
            .field("poll_interval", &self.poll_interval)
            .field("batch_size", &self.batch_size)
            .field("circuit_breaker", &self.circuit_breaker)
            .field(
                "circuit_breaker_telemetry",
                &self.circuit_breaker_telemetry.is_some(),
            )
            .finish()
    }
}

/// Where a test makes the executor stop as if the process had died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// After intents are staged and flushed, before any is submitted.
    AfterStage,
    /// After the ledger accepted a submission, before the store records it.
    AfterSubmit,
    /// After the store recorded an accepted submission.
    AfterRecord,
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// The ledger's epoch at the tick.
    pub epoch: u64,
    /// Disbursements whose activation epoch came.
    pub activated: usize,
    /// Submissions attempted (each under its own permit).
    pub attempts: u64,
    /// Submissions the ledger accepted.
    pub submitted: u64,
    /// Submissions that failed for infrastructure reasons.
    pub submission_failures: u64,
    /// Other ledger calls (epoch, nonce, lookups, signing's chain and fee reads) that
    /// failed for infrastructure reasons. Like a failed submission, each counts against
    /// the breaker.
    pub read_failures: u64,
    /// Disbursements seen executed.
    pub executed: u64,
    /// Disbursements cancelled by the ledger's refusal.
    pub cancelled: u64,
    /// Ambiguous answers ("already known", "nonce too low"), reconciled by hash.
    pub ambiguous: u64,
    /// The breaker refused (the batch stopped, or the tick was skipped).
    pub rejected_by_breaker: bool,
    /// The last submission failure's message.
    pub last_error: Option<String>,
}

/// What happened to one intent's submission.
enum Submitted {
    Accepted,
    Failed,
    Cancelled,
    /// Unstaged for re-signing with a fresh nonce.
    Restaged,
    Rejected,
}

/// Runs ticks against a store and a ledger. Single-threaded by design: one executor per
/// store, driven by the node's loop.
pub struct TreasuryExecutor {
    config: TreasuryExecutorConfig,
    store: GovStore,
    ledger: Arc<dyn Ledger>,
    snapshot: ExecutorSnapshot,
    saved_generation: Option<u64>,
    crash_at: Option<CrashPoint>,
    /// Whether the store's next nonce was checked against the ledger since start.
    nonce_checked: bool,
    /// Ledger answers not yet written: written in one transaction per batch (the ledger
    /// keeps them too, so a crash before the write loses nothing: reconciliation asks
    /// again by hash).
    unrecorded: Unrecorded,
}

#[derive(Debug, Default)]
struct Unrecorded {
    submitted: Vec<u64>,
    executed: Vec<(u64, u64)>,
    reverted: Vec<(u64, u64)>,
}

impl TreasuryExecutor {
    /// An executor on `store` and `ledger`. Restores the breaker from the store's snapshot,
    /// and the executor's counters (a halt is not restored: a restart is how an operator
    /// clears one, after fixing its cause). Installs the telemetry callback as the
    /// breaker's transition listener unless the breaker already has one.
    pub fn new(
        config: TreasuryExecutorConfig,
        store: GovStore,
        ledger: Arc<dyn Ledger>,
    ) -> Result<Self, StoreError> {
        let breaker = &config.circuit_breaker;
        if let Some(snapshot) = store.breaker_snapshot()? {
            breaker.restore(&snapshot);
        }
        if let Some(telemetry) = &config.circuit_breaker_telemetry {
            let weak = Arc::downgrade(breaker);
            let telemetry = Arc::clone(telemetry);
            // Ignored if the node already listens: it then reports transitions itself.
            let _ = breaker.set_listener(move |transition| {
                if let Some(breaker) = weak.upgrade() {
                    telemetry(
                        transition.to.as_u8(),
                        breaker.failure_count(),
                        breaker.success_count(),
                    );
                }
            });
        }
        let mut snapshot = store.executor_snapshot()?.unwrap_or_default();
        snapshot.halted = None;
        Ok(TreasuryExecutor {
            saved_generation: Some(breaker.generation()),
            config,
            store,
            ledger,
            snapshot,
            crash_at: None,
            nonce_checked: false,
            unrecorded: Unrecorded::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &TreasuryExecutorConfig {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &GovStore {
        &self.store
    }

    /// The executor's state: counters, last error, halt.
    pub fn snapshot(&self) -> &ExecutorSnapshot {
        &self.snapshot
    }

    /// Makes the next tick stop at `point` as if the process had died there.
    #[cfg(any(test, feature = "test-support"))]
    pub fn crash_at(&mut self, point: Option<CrashPoint>) {
        self.crash_at = point;
    }

    /// One tick. A Storage or Signing error halts the executor: every later tick returns
    /// [`TreasuryExecutorError::Halted`] until it is rebuilt. The telemetry callback runs
    /// after every tick.
    pub fn tick(&mut self) -> Result<TickReport, TreasuryExecutorError> {
        if let Some(reason) = &self.snapshot.halted {
            return Err(TreasuryExecutorError::Halted(reason.clone()));
        }
        let mut report = TickReport::default();
        let mut result = self.run_tick(&mut report);
        if !matches!(result, Err(TreasuryExecutorError::Crashed(_)))
            && let Err(error) = self.record()
        {
            result = Err(error);
        }
        if matches!(result, Err(TreasuryExecutorError::Crashed(_))) {
            self.unrecorded = Unrecorded::default(); // died with the process
            return result.map(|()| report);
        }
        let snapshot = &mut self.snapshot;
        snapshot.ticks += 1;
        snapshot.last_tick_ms = now_ms();
        snapshot.submitted += report.submitted;
        snapshot.submission_failures += report.submission_failures;
        snapshot.read_failures += report.read_failures;
        snapshot.executed += report.executed;
        snapshot.cancelled += report.cancelled;
        snapshot.rejected_by_breaker += u64::from(report.rejected_by_breaker);
        snapshot.last_error = match &result {
            Err(error) => Some(error.to_string()),
            Ok(()) => report.last_error.clone(),
        };
        if let Err(error) = &result
            && error.halts()
        {
            snapshot.halted = Some(error.to_string());
        }
        if let Err(error) = self.persist() {
            let error = TreasuryExecutorError::Storage(error);
            self.snapshot.halted = Some(error.to_string());
            self.snapshot.last_error = Some(error.to_string());
            result = Err(error);
        }
        self.report_telemetry();
        result.map(|()| report)
    }

    fn persist(&mut self) -> Result<(), StoreError> {
        self.store.save_executor_snapshot(&self.snapshot)?;
        let breaker = &self.config.circuit_breaker;
        let generation = breaker.generation();
        if self.saved_generation != Some(generation) {
            self.store.save_breaker(breaker)?;
            self.saved_generation = Some(generation);
        }
        Ok(())
    }

    fn report_telemetry(&self) {
        if let Some(telemetry) = &self.config.circuit_breaker_telemetry {
            let breaker = &self.config.circuit_breaker;
            telemetry(
                breaker.state().as_u8(),
                breaker.failure_count(),
                breaker.success_count(),
            );
        }
    }

    /// Writes the ledger answers gathered so far.
    fn record(&mut self) -> Result<(), TreasuryExecutorError> {
        let Unrecorded {
            submitted,
            executed,
            reverted,
        } = std::mem::take(&mut self.unrecorded);
        self.store
            .record_results(&submitted, &executed, &reverted)?;
        if !submitted.is_empty() {
            self.crash_point(CrashPoint::AfterRecord)?;
        }
        Ok(())
    }

    fn crash_point(&self, point: CrashPoint) -> Result<(), TreasuryExecutorError> {
        if self.crash_at == Some(point) {
            return Err(TreasuryExecutorError::Crashed(point));
        }
        Ok(())
    }

    fn run_tick(&mut self, report: &mut TickReport) -> Result<(), TreasuryExecutorError> {
        if self.config.circuit_breaker.is_rejecting() {
            report.rejected_by_breaker = true;
            return Ok(());
        }
        // Once per executor, at start: with nothing of ours in flight, the ledger's next
        // nonce is the truth. Adopt it if the store differs: another sender used the key
        // (signing from the store's nonce would meet "nonce too low"), or the chain was
        // reset (signing past its nonce would leave a gap nothing fills). With intents in
        // flight, reconciliation by hash settles the nonce instead.
        if !self.nonce_checked {
            if self.store.intents()?.is_empty() {
                let Some(nonce) = self.read(report, |ledger| ledger.next_nonce())? else {
                    return Ok(());
                };
                if self.store.next_nonce()? != Some(nonce) {
                    self.store.set_next_nonce(nonce)?;
                }
            }
            self.nonce_checked = true;
        }
        let mut next_nonce = match self.store.next_nonce()? {
            Some(nonce) => nonce,
            None => {
                let Some(nonce) = self.read(report, |ledger| ledger.next_nonce())? else {
                    return Ok(());
                };
                self.store.set_next_nonce(nonce)?;
                nonce
            }
        };

        // 1. What is in flight, lowest nonce first. Stop at the first intent the ledger
        //    has not accepted: nothing after it may be submitted before it.
        for intent in self.store.intents()? {
            let Some(status) = self.read(report, |ledger| ledger.lookup(&intent.tx.tx_hash))?
            else {
                return Ok(());
            };
            match status {
                TxStatus::Included { block } => {
                    self.unrecorded.executed.push((intent.nonce, block));
                    report.executed += 1;
                }
                TxStatus::Reverted { block } => self.reverted(&intent, block, report),
                TxStatus::Pending => {
                    if !intent.submitted {
                        self.unrecorded.submitted.push(intent.nonce);
                    }
                }
                TxStatus::Unknown => match self.submit(&intent, report)? {
                    Submitted::Accepted => {}
                    // The rest waits for the next tick: nothing may pass this intent.
                    Submitted::Failed | Submitted::Rejected => return Ok(()),
                    Submitted::Cancelled | Submitted::Restaged => break,
                },
            }
        }

        self.record()?;

        // 2. Disbursements whose time has come.
        let Some(epoch) = self.read(report, |ledger| ledger.current_epoch())? else {
            return Ok(());
        };
        report.epoch = epoch;
        report.activated = self.store.activate(report.epoch)?;

        // 3. Stage the ready ones and submit them, within the batch's attempts.
        let batch = self.config.batch_size as u64;
        let mut restaged = 0;
        'batch: while report.attempts < batch {
            self.record()?;
            if let Some(nonce) = self.store.next_nonce()? {
                next_nonce = nonce; // a cancellation or restage rewinds it
            }
            let unaccepted: Vec<Intent> = self
                .store
                .intents()?
                .into_iter()
                .filter(|intent| !intent.submitted)
                .collect();
            let intents = if unaccepted.is_empty() {
                let ready = self.store.ready((batch - report.attempts) as usize)?;
                if ready.is_empty() {
                    break;
                }
                let mut intents = Vec::with_capacity(ready.len());
                for (nonce, disbursement) in (next_nonce..).zip(&ready) {
                    match self.read(report, |ledger| ledger.sign(disbursement, nonce)) {
                        Ok(Some(tx)) => intents.push(Intent {
                            id: disbursement.id,
                            nonce,
                            tx,
                            submitted: false,
                        }),
                        Ok(None) => break, // the endpoint failed or the breaker refused
                        Err(TreasuryExecutorError::Cancelled(reason)) => {
                            // Unpayable as it stands (a destination this ledger cannot
                            // pay): nothing was signed for it, so cancel it and go on.
                            // (Not found or no longer queued: an operator got there first.)
                            if let Err(RequestError::Storage(error)) =
                                self.store.cancel(disbursement.id, &reason)
                            {
                                return Err(error.into());
                            }
                            report.cancelled += 1;
                            break;
                        }
                        Err(other) => return Err(other),
                    }
                }
                if intents.is_empty() {
                    if report.read_failures > 0 || report.rejected_by_breaker {
                        break;
                    }
                    continue; // one was cancelled before signing: read the index again
                }
                if !self
                    .store
                    .stage(&intents, next_nonce + intents.len() as u64)?
                {
                    // An operator cancelled one of them meanwhile: read the index again.
                    restaged += 1;
                    if restaged > 3 {
                        break;
                    }
                    continue;
                }
                self.store.flush()?; // durable before any of them can reach the ledger
                self.crash_point(CrashPoint::AfterStage)?;
                intents
            } else {
                unaccepted
            };
            for intent in &intents {
                loop {
                    match self.submit(intent, report)? {
                        Submitted::Accepted => break,
                        Submitted::Failed if report.attempts < batch => continue,
                        Submitted::Failed | Submitted::Rejected => break 'batch,
                        // Later intents went back to ready: stage them afresh.
                        Submitted::Cancelled | Submitted::Restaged => continue 'batch,
                    }
                }
            }
        }
        Ok(())
    }

    /// A ledger call other than a submission, under a permit. An infrastructure failure
    /// counts against the breaker like a failed submission: a dead endpoint must open
    /// the breaker whichever call finds it dead, or a tick that only reconciles would
    /// retry it forever unseen. A success proves nothing about submissions and is
    /// ignored (it neither closes a half-open breaker nor holds a probe slot).
    /// `Ok(None)`: the breaker refused, or the call failed (the tick should stop).
    fn read<T>(
        &self,
        report: &mut TickReport,
        call: impl FnOnce(&dyn Ledger) -> Result<T, LedgerError>,
    ) -> Result<Option<T>, TreasuryExecutorError> {
        let Ok(permit) = self.config.circuit_breaker.try_acquire() else {
            report.rejected_by_breaker = true;
            return Ok(None);
        };
        match call(&*self.ledger) {
            Ok(value) => {
                permit.ignore();
                Ok(Some(value))
            }
            Err(error) => match TreasuryExecutorError::classify(error) {
                TreasuryExecutorError::Submission(error) => {
                    permit.failure();
                    report.read_failures += 1;
                    report.last_error = Some(bounded(&error.to_string()));
                    Ok(None)
                }
                other => {
                    permit.ignore();
                    Err(other)
                }
            },
        }
    }

    /// Submits one intent under a permit, classifies the answer, records it on the
    /// permit, and persists the result.
    fn submit(
        &mut self,
        intent: &Intent,
        report: &mut TickReport,
    ) -> Result<Submitted, TreasuryExecutorError> {
        let breaker = Arc::clone(&self.config.circuit_breaker);
        let Ok(permit) = breaker.try_acquire() else {
            report.rejected_by_breaker = true;
            return Ok(Submitted::Rejected);
        };
        report.attempts += 1;
        let answer = self.ledger.submit(&intent.tx);
        self.crash_point(CrashPoint::AfterSubmit)?;
        let error = match answer {
            Ok(()) => {
                permit.success();
                self.unrecorded.submitted.push(intent.nonce);
                report.submitted += 1;
                return Ok(Submitted::Accepted);
            }
            Err(error) => error,
        };
        match TreasuryExecutorError::classify(error) {
            TreasuryExecutorError::Submission(error) => {
                permit.failure();
                report.submission_failures += 1;
                report.last_error = Some(bounded(&error.to_string()));
                Ok(Submitted::Failed)
            }
            TreasuryExecutorError::Cancelled(reason) => {
                permit.ignore();
                // Cancelling frees the nonce for another payment, so first make sure
                // this transaction did not land after all (an earlier attempt whose
                // answer was lost, now refused as a duplicate spend).
                match self.ledger.lookup(&intent.tx.tx_hash) {
                    Ok(TxStatus::Unknown) => {}
                    Ok(TxStatus::Pending) => {
                        self.unrecorded.submitted.push(intent.nonce);
                        report.submitted += 1;
                        return Ok(Submitted::Accepted);
                    }
                    Ok(TxStatus::Included { block }) => {
                        self.unrecorded.executed.push((intent.nonce, block));
                        report.executed += 1;
                        return Ok(Submitted::Accepted);
                    }
                    Ok(TxStatus::Reverted { block }) => {
                        self.reverted(intent, block, report);
                        return Ok(Submitted::Accepted);
                    }
                    Err(error) => {
                        report.last_error = Some(bounded(&format!(
                            "{reason}; could not confirm by hash: {error}"
                        )));
                        return Ok(Submitted::Failed);
                    }
                }
                self.record()?;
                self.store.cancel_intent(intent.nonce, &reason)?;
                report.cancelled += 1;
                Ok(Submitted::Cancelled)
            }
            TreasuryExecutorError::Ambiguous(error) => {
                permit.ignore();
                report.ambiguous += 1;
                self.reconcile_ambiguous(intent, error, report)
            }
            other => {
                permit.ignore();
                Err(other)
            }
        }
    }

    /// The transaction is in a block but reverted: its nonce is spent (nothing to
    /// re-sign), nothing was paid. Its disbursement (and dependents) will be Cancelled
    /// with the block in the reason, for an operator to queue again if it should be.
    fn reverted(&mut self, intent: &Intent, block: u64, report: &mut TickReport) {
        self.unrecorded.reverted.push((intent.nonce, block));
        report.cancelled += 1;
        report.last_error = Some(format!(
            "disbursement {}: transaction {} reverted in block {block}; nothing was paid",
            intent.id, intent.tx.tx_hash
        ));
    }

    /// "Already known" or "nonce too low": the ledger's record by hash decides.
    fn reconcile_ambiguous(
        &mut self,
        intent: &Intent,
        error: LedgerError,
        report: &mut TickReport,
    ) -> Result<Submitted, TreasuryExecutorError> {
        match self.ledger.lookup(&intent.tx.tx_hash) {
            Ok(TxStatus::Included { block }) => {
                self.unrecorded.executed.push((intent.nonce, block));
                report.executed += 1;
                Ok(Submitted::Accepted)
            }
            Ok(TxStatus::Reverted { block }) => {
                self.reverted(intent, block, report);
                Ok(Submitted::Accepted)
            }
            Ok(TxStatus::Pending) => {
                self.unrecorded.submitted.push(intent.nonce);
                report.submitted += 1;
                Ok(Submitted::Accepted)
            }
            Ok(TxStatus::Unknown) if error == LedgerError::NonceTooLow => {
                // Our nonce went to another transaction: this one was never paid. Sign
                // it (and everything after it) afresh from the ledger's nonce.
                let nonce = self
                    .ledger
                    .next_nonce()
                    .map_err(TreasuryExecutorError::classify)?;
                self.record()?;
                self.store.unstage_from(intent.nonce, nonce)?;
                Ok(Submitted::Restaged)
            }
            Ok(TxStatus::Unknown) | Err(_) => {
                report.last_error = Some(bounded(&format!(
                    "{error}, and the ledger does not know the transaction yet"
                )));
                Ok(Submitted::Failed)
            }
        }
    }
}

impl fmt::Debug for TreasuryExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TreasuryExecutor")
            .field("config", &self.config)
            .field("ledger", &self.ledger)
            .field("snapshot", &self.snapshot)
            .finish_non_exhaustive()
    }
}

/// Ledger messages kept for operators are cut to this many bytes.
const MAX_ERROR_BYTES: usize = 512;

fn bounded(message: &str) -> String {
    if message.len() <= MAX_ERROR_BYTES {
        return message.to_owned();
    }
    let mut end = MAX_ERROR_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
