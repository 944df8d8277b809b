//! The executor tick: reconcile what is in flight, then activate, stage and hand over
//! ready disbursements, every ledger call gated by the circuit breaker.
//!
//! ```text
//!  tick ─▶ breaker open? ── yes ─▶ skip (no calls to a dependency known to be down)
//!            │ no
//!            ▼
//!  chain      the endpoint's chain id = the one pinned in the store (else halt)
//!  head       the latest block: number, hash, base fee, epoch
//!  reconcile  each intent, lowest nonce first (reconcile.rs; the holds in holds.rs):
//!               included: its block still canonical? ─ no ─▶ back to submitted, rebroadcast
//!                                                     yes ─▶ deep enough? ─▶ Executed / Cancelled
//!               else: look up every attempt by hash ─ in a block ─▶ Included (or final)
//!                     nonce spent at depth by a stranger ─▶ hold for an operator
//!                     operator's cancel ─▶ cancel (never left the node) or replace with a cancellation
//!                     priced out or pending too long ─▶ replace with bumped fees (same nonce)
//!                     unknown ─▶ (re)broadcast the latest attempt, same bytes
//!  nonce      nothing in flight: the ledger's next nonce = the store's (else hold)
//!  activate   scheduled disbursements whose epoch has come become ready
//!  pay        ready (id order) ─▶ balance covers it? ─▶ sign ─▶ stage all + flush
//!             ─▶ hand each over under its own permit (send.rs)
//!  probe      breaker still half-open? ─▶ one head read as its probe (recovers with no
//!             payment traffic)
//! ```
//!
//! The binding rule: once a transaction for nonce N may have reached an endpoint, its
//! disbursement is bound to N. Only replacements at N (fee bumps, a cancellation) are
//! ever signed for it, each written ahead (stored and flushed) before it is handed over;
//! every attempt's hash is looked up; whichever lands is the payment. An intent is only
//! given back (cancelled outright, or unstaged to be signed afresh) if the ledger refused
//! every hand-over of it in this process. A store opened after a crash binds every intent,
//! since the process may have handed any of them over before dying.

mod config;
mod error;
mod holds;
mod pay;
mod reconcile;
mod report;
mod send;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use crate::circuit_breaker::{CircuitBreaker, CircuitState};
use crate::ledger::{Head, Ledger, LedgerError, TxStatus};
use crate::store::{Change, ExecutorSnapshot, GovStore, StoreError};
use crate::text::unix_ms;

pub use config::{Finality, MIN_BUMP_PERCENT, TreasuryExecutorConfig};
pub use error::TreasuryExecutorError;
use report::Tally;
pub use report::{AssetCounts, CrashPoint, TickReport};

/// Whether the tick goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// Carry on.
    Go,
    /// Stop the tick here: a call failed or the breaker refused.
    Stop,
    /// The intents changed (one was given back): read them again.
    Restart,
}

/// The head, and the highest block that counts as final under the configured finality
/// (`None`: none does yet).
#[derive(Debug, Clone)]
struct Tip {
    head: Head,
    final_height: Option<u64>,
}

impl Tip {
    fn is_final(&self, block: u64) -> bool {
        self.final_height.is_some_and(|height| block <= height)
    }

    /// Blocks on top of `block`, itself included.
    fn confirmations(&self, block: u64) -> u64 {
        self.head.number.saturating_add(1).saturating_sub(block)
    }
}

/// The executor's check before each broadcast ([`TreasuryExecutor::with_gate`]).
pub type BroadcastGate = Arc<dyn Fn() -> bool + Send + Sync>;

/// Runs ticks against a store and a ledger. Single-threaded by design: one executor per
/// store, driven by the node's loop.
pub struct TreasuryExecutor {
    config: TreasuryExecutorConfig,
    /// The breaker every ledger call goes through.
    breaker: Arc<CircuitBreaker>,
    store: GovStore,
    ledger: Arc<dyn Ledger>,
    snapshot: ExecutorSnapshot,
    saved_generation: Option<u64>,
    crash_at: Option<CrashPoint>,
    /// Nonces whose latest attempt the ledger refused as underpriced: replaced with a
    /// bumped fee at the next look.
    underpriced: HashSet<u64>,
    /// What the last tick did, even one that ended in an error (a hold found after a
    /// reorg was seen, say): metrics count from it.
    last_report: TickReport,
    /// What spent each nonce held as `ForeignNonce`, once found.
    spenders: holds::Spenders,
    /// Intents found waiting (pending, or in a block not deep enough) under a head (its
    /// hash), with how many attempts they had: not looked up again under that head.
    quiet: HashMap<u64, (String, usize)>,
    /// Block hashes read this tick, by number: payments in one block share one read.
    block_hashes: HashMap<u64, Option<String>>,
    /// Intents found in a block that did not pay what they were signed to pay, by nonce:
    /// a later lookup that shows them pending or unknown (a lagging or blipping endpoint)
    /// waits instead of taking the nonce for spent by a stranger.
    mismatched: HashMap<u64, String>,
    /// The asset of each disbursement in flight (for per-asset funds and counters): noted
    /// when signed, read from the store otherwise, pruned to what is in flight.
    assets: HashMap<crate::treasury::DisbursementId, String>,
    /// Lookups made this tick in one batch, by transaction hash.
    prefetched: HashMap<String, TxStatus>,
    /// Asked right before every broadcast: whether this executor may still broadcast
    /// (with leader election: whether it still holds its lease). `None`: always.
    gate: Option<BroadcastGate>,
    /// Whether the intents found at start were bound (the first tick does it, so that a
    /// corrupt one halts the executor rather than the node's start).
    bound_at_start: bool,
    /// Whether this tick may still hand over an intent that never left the node: not
    /// after the ledger refused one (the intents handed over stay a prefix, so that one
    /// refused can be given back with every intent after it).
    handing: bool,
    /// Ledger answers not yet written: written in one transaction, before anything that
    /// reads the intents' binding and at the end of the tick (the ledger keeps them too:
    /// a crash before the write loses nothing, and the store binds every intent at start).
    unrecorded: Vec<Change>,
}

impl TreasuryExecutor {
    /// An executor on `store` and `ledger`. Restores the breaker from the store's snapshot
    /// and the executor's counters and hold (a halt is not restored: a restart is how an
    /// operator clears one, after fixing its cause). Its first tick binds every intent in
    /// flight (the process that staged them may have handed them over before it died)
    /// before anything else. Every ledger call goes through `breaker` (restored from the
    /// store's snapshot first).
    pub fn new(
        config: TreasuryExecutorConfig,
        breaker: Arc<CircuitBreaker>,
        store: GovStore,
        ledger: Arc<dyn Ledger>,
    ) -> Result<Self, StoreError> {
        if let Some(snapshot) = store.breaker_snapshot()? {
            breaker.restore(&snapshot);
        }
        let mut snapshot = store.executor_snapshot()?.unwrap_or_default();
        // A hold outlives a restart (it is the chain's fact, re-checked by the first full
        // tick); a halt does not.
        snapshot.halted = snapshot
            .hold
            .clone()
            .map(|hold| TreasuryExecutorError::Held(hold).to_string());
        Ok(TreasuryExecutor {
            saved_generation: Some(breaker.generation()),
            breaker,
            config,
            store,
            ledger,
            snapshot,
            crash_at: None,
            underpriced: HashSet::new(),
            handing: true,
            bound_at_start: false,
            last_report: TickReport::default(),
            spenders: holds::Spenders::new(),
            quiet: HashMap::new(),
            block_hashes: HashMap::new(),
            prefetched: HashMap::new(),
            assets: HashMap::new(),
            mismatched: HashMap::new(),
            unrecorded: Vec::new(),
            gate: None,
        })
    }

    /// This executor, which asks `gate` right before every broadcast and, if it says
    /// no, broadcasts nothing and ends the tick with
    /// [`NotLeader`](TreasuryExecutorError::NotLeader). For leader election: the gate
    /// says whether the lease is still held. (It is liveness, not safety: the store's
    /// fence is what keeps a deposed executor from writing, and every transaction it can
    /// broadcast was written ahead under the fence; see docs/architecture.md.)
    pub fn with_gate(mut self, gate: BroadcastGate) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Whether the gate, if any, lets a broadcast through now.
    fn may_broadcast(&self) -> Result<(), TreasuryExecutorError> {
        match &self.gate {
            Some(gate) if !gate() => Err(TreasuryExecutorError::NotLeader),
            _ => Ok(()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &TreasuryExecutorConfig {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &GovStore {
        &self.store
    }

    /// The executor's state: counters, last error, halt or hold.
    pub fn snapshot(&self) -> &ExecutorSnapshot {
        &self.snapshot
    }

    /// What the last tick did, whether it returned its report or an error.
    pub fn last_report(&self) -> &TickReport {
        &self.last_report
    }

    /// Makes the next tick stop at `point` as if the process had died there.
    #[cfg(any(test, feature = "test-support"))]
    pub fn crash_at(&mut self, point: Option<CrashPoint>) {
        self.crash_at = point;
    }

    /// One tick. A Storage, Signing or ChainMismatch error halts the executor: every
    /// later tick returns [`TreasuryExecutorError::Halted`] until it is rebuilt. A
    /// [`Held`](TreasuryExecutorError::Held) one holds it: every later tick checks again,
    /// pays nothing while the question stands, and goes on once an operator (or the
    /// chain) settled it.
    pub fn tick(&mut self) -> Result<TickReport, TreasuryExecutorError> {
        if let Some(reason) = &self.snapshot.halted
            && self.snapshot.hold.is_none()
        {
            // Did nothing: metrics must not count the halting tick's work again.
            self.last_report = TickReport::default();
            return Err(TreasuryExecutorError::Halted(reason.clone()));
        }
        let mut report = TickReport::default();
        let mut result = self.run_tick(&mut report);
        if result.is_ok() {
            result = self.probe(&mut report);
        }
        if !matches!(result, Err(TreasuryExecutorError::Crashed(_)))
            && let Err(error) = self.record()
        {
            result = Err(error);
        }
        if matches!(result, Err(TreasuryExecutorError::Crashed(_))) {
            self.unrecorded.clear(); // died with the process
            return result.map(|()| report);
        }
        self.account(&report, &result);
        self.last_report = report.clone();
        if let Err(error) = self.persist() {
            let error = TreasuryExecutorError::Storage(error);
            self.snapshot.halted = Some(error.to_string());
            self.snapshot.hold = None;
            self.snapshot.last_error = Some(error.to_string());
            result = Err(error);
        }
        result.map(|()| report)
    }

    /// The asset disbursement `id` pays (remembered while it is in flight). A disbursement
    /// of an intent that is gone is a missing record (never guessed to be native).
    fn asset_of(&mut self, id: crate::treasury::DisbursementId) -> Result<String, StoreError> {
        if let Some(asset) = self.assets.get(&id) {
            return Ok(asset.clone());
        }
        let asset = self
            .store
            .get(id)?
            .ok_or_else(|| StoreError::Missing {
                kind: "disbursements",
                key: id.to_string(),
            })?
            .asset;
        self.assets.insert(id, asset.clone());
        Ok(asset)
    }

    /// Counts a submission's outcome for disbursement `id` (see [`TickReport::tally`]).
    fn tally(
        &mut self,
        report: &mut TickReport,
        id: crate::treasury::DisbursementId,
        what: Tally,
    ) -> Result<(), StoreError> {
        let asset = self.asset_of(id)?;
        report.tally(&asset, what);
        Ok(())
    }

    /// Folds a tick's report and result into the snapshot.
    fn account(&mut self, report: &TickReport, result: &Result<(), TreasuryExecutorError>) {
        let snapshot = &mut self.snapshot;
        snapshot.ticks += 1;
        snapshot.last_tick_ms = unix_ms();
        snapshot.submitted += report.submitted;
        snapshot.submission_failures += report.submission_failures;
        snapshot.read_failures += report.read_failures;
        snapshot.executed += report.executed;
        snapshot.cancelled += report.cancelled;
        snapshot.rejected_by_breaker += u64::from(report.rejected_by_breaker);
        snapshot.underpriced += report.underpriced;
        snapshot.fee_bumps += report.fee_bumps;
        snapshot.reorgs += report.reorgs;
        snapshot.last_error = match result {
            Err(error) => Some(error.to_string()),
            Ok(()) => report.last_error.clone(),
        };
        match result {
            Err(TreasuryExecutorError::Held(hold)) => {
                snapshot.halted = Some(TreasuryExecutorError::Held(hold.clone()).to_string());
                snapshot.hold = Some(hold.clone());
            }
            Err(error) if error.halts() => {
                snapshot.halted = Some(error.to_string());
                snapshot.hold = None;
            }
            // A tick cut short (a failed call, the breaker) proves nothing: a hold stays
            // until a tick has checked everything and found it settled.
            _ if report.checks_passed => {
                snapshot.halted = None;
                snapshot.hold = None;
            }
            _ => {}
        }
    }

    fn persist(&mut self) -> Result<(), StoreError> {
        self.store.save_executor_snapshot(&self.snapshot)?;
        let breaker = &self.breaker;
        let generation = breaker.generation();
        if self.saved_generation != Some(generation) {
            self.store.save_breaker(breaker)?;
            self.saved_generation = Some(generation);
        }
        Ok(())
    }

    /// Writes the ledger answers gathered so far.
    fn record(&mut self) -> Result<(), TreasuryExecutorError> {
        if self.unrecorded.is_empty() {
            return Ok(());
        }
        let changes = std::mem::take(&mut self.unrecorded);
        self.store.apply(&changes)?;
        if changes
            .iter()
            .any(|change| matches!(change, Change::Sent { accepted: true, .. }))
        {
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
        self.handing = true;
        self.block_hashes.clear();
        self.prefetched.clear();
        if !self.bound_at_start {
            self.store.bind_all()?;
            self.bound_at_start = true;
        }
        if self.breaker.is_rejecting() {
            report.rejected_by_breaker = true;
            return Ok(());
        }
        if !self.check_chain(report)? {
            return Ok(());
        }
        let Some(head) = self.read(report, |ledger| ledger.head())? else {
            return Ok(());
        };
        report.epoch = head.epoch;
        let Some(tip) = self.tip(head, report)? else {
            return Ok(());
        };
        match self.reconcile(&tip, report)? {
            Flow::Stop => return Ok(()),
            Flow::Go | Flow::Restart => {}
        }
        self.record()?;
        if !self.store.has_intents()? && !self.check_nonce(report)? {
            return Ok(());
        }
        report.checks_passed = true;
        if let Some(decision) = self.store.decision()? {
            self.drop_decision(&decision, "the executor no longer holds on it")?;
        }
        report.activated = self.store.activate(tip.head.epoch)?;
        self.pay(&tip, report)
    }

    /// The endpoint's chain against the store's, every tick: an endpoint behind a name or
    /// a load balancer can be repointed between any two calls, and a tick that looked
    /// payments up on another network could conclude they never happened. `Ok(false)`:
    /// the call failed.
    fn check_chain(&mut self, report: &mut TickReport) -> Result<bool, TreasuryExecutorError> {
        let Some(endpoint) = self.read(report, |ledger| ledger.chain_id())? else {
            return Ok(false);
        };
        match self.store.chain_id()? {
            None => self.store.pin_chain_id(&endpoint)?,
            Some(pinned) if pinned == endpoint => {}
            Some(pinned) => {
                return Err(TreasuryExecutorError::ChainMismatch { pinned, endpoint });
            }
        }
        Ok(true)
    }

    /// The head and the final height. `None`: a call failed.
    fn tip(
        &mut self,
        head: Head,
        report: &mut TickReport,
    ) -> Result<Option<Tip>, TreasuryExecutorError> {
        let final_height = match self.config.finality {
            Finality::Confirmations(confirmations) => head
                .number
                .saturating_add(1)
                .checked_sub(confirmations.max(1)),
            Finality::Finalized => match self.read(report, |ledger| ledger.finalized())? {
                Some(Some(height)) => Some(height),
                // Nothing would ever count as paid: say so rather than wait unseen.
                Some(None) => return Err(TreasuryExecutorError::NoFinalizedBlock),
                None => return Ok(None),
            },
        };
        Ok(Some(Tip { head, final_height }))
    }

    /// Lets a half-open breaker recover without payment traffic. A tick that leaves the
    /// breaker half-open (its reads succeeded, but nothing needed a submission, or not
    /// enough were accepted to close it) probes once with the cheapest read there is, the
    /// chain head: a success counts towards `success_threshold` like an accepted
    /// submission, a failure opens the breaker again. Without it, a breaker that opened
    /// while everything was already submitted would stay half-open for good, and its
    /// alert would page someone about a healthy node. A closed breaker, or one whose
    /// probe slots are all taken, is left alone.
    fn probe(&mut self, report: &mut TickReport) -> Result<(), TreasuryExecutorError> {
        let breaker = Arc::clone(&self.breaker);
        if breaker.state() != CircuitState::HalfOpen {
            return Ok(());
        }
        let Ok(permit) = breaker.try_acquire() else {
            return Ok(());
        };
        if !permit.is_probe() {
            permit.ignore();
            return Ok(());
        }
        report.probes += 1;
        match self.ledger.head() {
            Ok(_) => {
                permit.success();
                Ok(())
            }
            Err(error) => match TreasuryExecutorError::classify(error) {
                TreasuryExecutorError::Submission(error) => {
                    permit.failure();
                    report.read_failures += 1;
                    report.last_error = Some(bounded(&error.to_string()));
                    Ok(())
                }
                other => {
                    permit.ignore();
                    Err(other)
                }
            },
        }
    }

    /// A ledger call other than a submission, under a permit. An infrastructure failure
    /// counts against the breaker like a failed submission: a dead endpoint must open
    /// the breaker whichever call finds it dead, or a tick that only reconciles would
    /// retry it forever unseen. A success is ignored here (it neither closes a half-open
    /// breaker nor holds a probe slot): the tick's one probe ([`Self::probe`]) is what
    /// counts a read towards closing it, so a tick of many reads is one probe, not many.
    /// `Ok(None)`: the breaker refused, or the call failed (the tick should stop).
    fn read<T>(
        &mut self,
        report: &mut TickReport,
        call: impl FnOnce(&dyn Ledger) -> Result<T, LedgerError>,
    ) -> Result<Option<T>, TreasuryExecutorError> {
        let Ok(permit) = self.breaker.try_acquire() else {
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
    crate::text::bounded(message, MAX_ERROR_BYTES)
}
