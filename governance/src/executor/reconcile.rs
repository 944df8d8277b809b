//! Reconciling what is in flight, one intent at a time, lowest nonce first: observe what
//! the chain holds of it, then settle it, replace it, or hand it over again.
//!
//! | seen                                    | the executor                                   |
//! |-----------------------------------------|------------------------------------------------|
//! | its block still canonical, deep enough  | Executed (or Cancelled: reverted / a cancellation) |
//! | in a block, but it paid something else  | holds for an operator once final (`Mismatch`)  |
//! | in a block, not deep enough             | Included (confirmations so far)                |
//! | its block left the chain                | back to Submitted; the included bytes rebroadcast |
//! | its block unreadable (a lagging backend)| waits                                          |
//! | pending or unknown, nonce spent at depth| holds for an operator (none of ours is there)  |
//! | pending or unknown, cancel asked        | cancels (never left the node) or replaces with a cancellation |
//! | pending or unknown, priced out or stale | replaces with bumped fees (same nonce)         |
//! | unknown                                 | hands the latest attempt over (same bytes)     |

use super::holds::Spent;
use super::report::Tally;
use super::{Flow, TickReport, Tip, TreasuryExecutor, TreasuryExecutorError, bounded};
use crate::ledger::{AttemptKind, SignRequest, TxStatus};
use crate::store::{Attempt, Change, Hold, Inclusion, Intent, StoreError};
use crate::text::unix_ms;

/// What the chain holds of an intent, as far as this tick can tell.
#[derive(Debug)]
enum Seen {
    /// One of its transactions is in a canonical block (confirmations counted now).
    Landed(Inclusion),
    /// The block that held it is no longer the chain's.
    Reorged(Inclusion),
    /// Recorded in a block this endpoint cannot show (it lags): nothing to conclude.
    Unsure,
    /// In a mempool.
    Pending,
    /// Nobody here knows any of its transactions (which is not proof they did not land).
    Unknown,
    /// One of its transactions is in a block and succeeded, but did not pay what it was
    /// signed to pay (the ledger's reason). Never recorded as an inclusion: looked up
    /// afresh at every head until it is final (then held) or gone.
    Mismatch(Inclusion, String),
}

impl TreasuryExecutor {
    /// Reconciles every intent. Returns `Stop` when a call failed or the breaker refused,
    /// `Restart` when one was given back (the intents changed); a nonce spent by a
    /// stranger is [`TreasuryExecutorError::Held`].
    pub(super) fn reconcile(
        &mut self,
        tip: &Tip,
        report: &mut TickReport,
    ) -> Result<Flow, TreasuryExecutorError> {
        let mut lowest_open = true;
        let mut fee_cap = false;
        let mut oldest: Option<u64> = None;
        let intents = self.store.intents()?;
        // The lowest intent in flight: every nonce from its up is one of ours.
        let lowest_ours = intents.first().map(|intent| (intent.nonce, intent.id));
        self.quiet
            .retain(|nonce, _| intents.iter().any(|intent| intent.nonce == *nonce));
        self.mismatched
            .retain(|nonce, _| intents.iter().any(|intent| intent.nonce == *nonce));
        // An intent in an asset the ledger no longer pays (a token taken out of its
        // configuration) cannot be judged: halt, never guess what its receipt means.
        for intent in &intents {
            let asset = self.asset_of(intent.id)?;
            if let Err(reason) = self.ledger.validate_asset(&asset) {
                return Err(TreasuryExecutorError::Signing(format!(
                    "disbursement {} (nonce {}) is in flight in {asset:?}, which the ledger \
                     does not pay now ({reason}): configure it again and restart",
                    intent.id, intent.nonce
                )));
            }
        }
        if !self.prefetch(&intents, tip, report)? {
            return Ok(Flow::Stop);
        }
        for mut intent in intents {
            if self.is_quiet(&intent, tip) {
                // Nothing can have changed since this head was last looked at: no lookups.
                if let Some(sent) = intent.attempts.iter().filter_map(|a| a.sent_at_ms).min() {
                    oldest = Some(oldest.map_or(sent, |oldest| oldest.min(sent)));
                }
                if intent.inclusion.is_none() {
                    lowest_open = false; // checked at this head, and found open
                }
                continue;
            }
            let Some(mut seen) = self.observe(&intent, tip, report)? else {
                return Ok(Flow::Stop);
            };
            match &seen {
                Seen::Mismatch(_, reason) => {
                    self.mismatched.insert(intent.nonce, reason.clone());
                }
                Seen::Pending | Seen::Unknown if self.mismatched.contains_key(&intent.nonce) => {
                    // Seen in a block before: an endpoint that lost sight of it says nothing.
                    report.last_error = Some(format!(
                        "disbursement {} (nonce {}): its transaction was seen in a block that \
                         did not pay what it was signed to pay ({}), and is not seen now: \
                         waiting",
                        intent.id,
                        intent.nonce,
                        self.mismatched
                            .get(&intent.nonce)
                            .cloned()
                            .unwrap_or_default()
                    ));
                    seen = Seen::Unsure;
                }
                _ => {
                    self.mismatched.remove(&intent.nonce);
                }
            }
            let settled = matches!(&seen, Seen::Landed(inclusion) if tip.is_final(inclusion.block));
            if !settled
                && let Some(sent) = intent.attempts.iter().filter_map(|a| a.sent_at_ms).min()
            {
                oldest = Some(oldest.map_or(sent, |oldest| oldest.min(sent)));
            }
            let waiting = match &seen {
                Seen::Pending => intent.inclusion.is_none(),
                Seen::Landed(_) => !settled && intent.inclusion.is_some(),
                _ => false,
            };
            let attempts = intent.attempts.len();
            let mut open = false;
            let flow = match seen {
                Seen::Landed(inclusion) => self.landed(&intent, inclusion, tip, report)?,
                Seen::Reorged(inclusion) => self.reorged(&mut intent, &inclusion, tip, report)?,
                Seen::Unsure => Flow::Go,
                Seen::Mismatch(inclusion, reason) => {
                    self.mismatched(&intent, &inclusion, &reason, tip, report)?
                }
                Seen::Pending | Seen::Unknown => {
                    let checked = if std::mem::take(&mut lowest_open) && intent.bound {
                        let lowest = lowest_ours.unwrap_or((intent.nonce, intent.id));
                        self.check_spent(&intent, lowest, tip, report)?
                    } else {
                        Spent::Open
                    };
                    match checked {
                        Spent::Open => {
                            open = true;
                            let pending = matches!(seen, Seen::Pending);
                            self.advance(&mut intent, pending, tip, &mut fee_cap, report)?
                        }
                        Spent::Ours => Flow::Go,
                        // The intents changed under the ones not yet looked at (one left the
                        // middle): the next tick reads them afresh, in order.
                        Spent::Settled => Flow::Stop,
                        Spent::Stop => Flow::Stop,
                    }
                }
            };
            if flow != Flow::Go {
                return Ok(flow);
            }
            // Waiting in a pool, or in a block not yet deep enough, and nothing done to it:
            // until the head changes, looking again can only find the same.
            let unchanged = intent.attempts.len() == attempts && !fee_cap;
            if waiting && unchanged && (open || intent.inclusion.is_some()) {
                self.quiet
                    .insert(intent.nonce, (tip.head.hash.clone(), attempts));
            } else {
                self.quiet.remove(&intent.nonce);
            }
        }
        self.snapshot.fee_cap_reached = fee_cap;
        self.snapshot.oldest_pending_ms = oldest;
        report.fee_cap_reached = fee_cap;
        Ok(Flow::Go)
    }

    /// Looks up, in one batch ([`Ledger::lookup_batch`]), the latest attempt of every
    /// intent this tick will look up (bound, not in a block, not quiet), for `observe` to
    /// take. `Ok(false)`: the call failed (the tick stops, as one failed lookup would).
    fn prefetch(
        &mut self,
        intents: &[Intent],
        tip: &Tip,
        report: &mut TickReport,
    ) -> Result<bool, TreasuryExecutorError> {
        let hashes: Vec<String> = intents
            .iter()
            .filter(|intent| {
                intent.bound && intent.inclusion.is_none() && !self.is_quiet(intent, tip)
            })
            .map(|intent| intent.latest().tx.tx_hash.clone())
            .collect();
        if hashes.len() < 2 {
            return Ok(true);
        }
        let Some(statuses) = self.read(report, |ledger| ledger.lookup_batch(&hashes))? else {
            return Ok(false);
        };
        self.prefetched = hashes.into_iter().zip(statuses).collect();
        Ok(true)
    }

    /// The chain's block hash at `number`, read once a tick (payments in one block share
    /// the read). `None`: the call failed; `Some(None)`: no such block.
    fn block_hash(
        &mut self,
        number: u64,
        report: &mut TickReport,
    ) -> Result<Option<Option<String>>, TreasuryExecutorError> {
        if let Some(hash) = self.block_hashes.get(&number) {
            return Ok(Some(hash.clone()));
        }
        let Some(hash) = self.read(report, |ledger| ledger.block_hash(number))? else {
            return Ok(None);
        };
        self.block_hashes.insert(number, hash.clone());
        Ok(Some(hash))
    }

    /// Whether `intent` was looked at under this very head (by hash) and found waiting
    /// (pending, or in a block not deep enough), with nothing done to it since and nothing
    /// asked of it (no operator's cancellation, no fee refusal): the chain cannot have
    /// changed anything about it without a new head. On a chain whose blocks come every
    /// few seconds and ticks every second, this saves most lookups.
    fn is_quiet(&self, intent: &Intent, tip: &Tip) -> bool {
        intent.cancel.is_none()
            && intent.bound
            && !self.underpriced.contains(&intent.nonce)
            && self
                .quiet
                .get(&intent.nonce)
                .is_some_and(|(head, attempts)| {
                    *head == tip.head.hash && *attempts == intent.attempts.len()
                })
    }

    /// What the chain holds of `intent`. `None`: a call failed.
    fn observe(
        &mut self,
        intent: &Intent,
        tip: &Tip,
        report: &mut TickReport,
    ) -> Result<Option<Seen>, TreasuryExecutorError> {
        if let Some(inclusion) = &intent.inclusion {
            let Some(hash) = self.block_hash(inclusion.block, report)? else {
                return Ok(None);
            };
            return Ok(Some(match hash {
                Some(hash) if hash == inclusion.block_hash => Seen::Landed(Inclusion {
                    confirmations: tip.confirmations(inclusion.block),
                    ..inclusion.clone()
                }),
                Some(_) => Seen::Reorged(inclusion.clone()),
                None if tip.head.number < inclusion.block => Seen::Reorged(inclusion.clone()),
                None => Seen::Unsure,
            }));
        }
        if !intent.bound {
            return Ok(Some(Seen::Unknown)); // it never left the node: nobody can know it
        }
        let mut pending = false;
        // Newest first: the latest attempt is the likeliest to have landed.
        for attempt in intent.attempts.iter().rev() {
            let hash = &attempt.tx.tx_hash;
            let status = match self.prefetched.remove(hash) {
                Some(status) => status,
                None => {
                    let Some(status) = self.read(report, |ledger| ledger.lookup(hash))? else {
                        return Ok(None);
                    };
                    status
                }
            };
            let (block, block_hash, reverted) = match status {
                TxStatus::Unknown => continue,
                TxStatus::Pending => {
                    pending = true;
                    continue;
                }
                TxStatus::Included { block, block_hash } => (block, block_hash, false),
                TxStatus::Reverted { block, block_hash } => (block, block_hash, true),
                TxStatus::Mismatch {
                    block,
                    block_hash,
                    reason,
                } => {
                    let inclusion = Inclusion {
                        tx_hash: hash.clone(),
                        kind: attempt.kind,
                        block,
                        block_hash,
                        reverted: false,
                        confirmations: tip.confirmations(block),
                    };
                    return Ok(Some(Seen::Mismatch(inclusion, reason)));
                }
            };
            return Ok(Some(Seen::Landed(Inclusion {
                tx_hash: hash.clone(),
                kind: attempt.kind,
                block,
                block_hash,
                reverted,
                confirmations: tip.confirmations(block),
            })));
        }
        Ok(Some(if pending {
            Seen::Pending
        } else {
            Seen::Unknown
        }))
    }

    /// One of its transactions is in a block: final at depth, else Included. A receipt
    /// names a block; it only counts as final once the canonical block at that height is
    /// that block.
    fn landed(
        &mut self,
        intent: &Intent,
        inclusion: Inclusion,
        tip: &Tip,
        report: &mut TickReport,
    ) -> Result<Flow, TreasuryExecutorError> {
        let nonce = intent.nonce;
        if !tip.is_final(inclusion.block) {
            if intent.inclusion.as_ref() != Some(&inclusion) {
                self.unrecorded.push(Change::Included { nonce, inclusion });
            }
            return Ok(Flow::Go);
        }
        if intent.inclusion.as_ref().map(|seen| &seen.block_hash) != Some(&inclusion.block_hash) {
            // Fresh from a lookup: check its block against the chain's.
            let Some(canonical) = self.block_hash(inclusion.block, report)? else {
                return Ok(Flow::Stop);
            };
            if canonical.as_deref() != Some(inclusion.block_hash.as_str()) {
                // A receipt from another fork, or a lagging block read: wait, saying so.
                report.last_error = Some(format!(
                    "disbursement {} (nonce {nonce}): a receipt names block {} ({}), which is \
                     not the chain's block at that height: waiting",
                    intent.id, inclusion.block, inclusion.block_hash
                ));
                return Ok(Flow::Go);
            }
        }
        match (inclusion.kind, inclusion.reverted) {
            (AttemptKind::Payment, false) => report.executed += 1,
            (AttemptKind::Payment, true) => {
                self.tally(report, intent.id, Tally::Cancelled)?;
                report.last_error = Some(format!(
                    "disbursement {}: transaction {} reverted in block {}; nothing was paid",
                    intent.id, inclusion.tx_hash, inclusion.block
                ));
            }
            (AttemptKind::Cancellation, _) => self.tally(report, intent.id, Tally::Cancelled)?,
        }
        self.underpriced.remove(&nonce);
        self.unrecorded.push(Change::Finalized { nonce, inclusion });
        Ok(Flow::Go)
    }

    /// One of its transactions is in a block but did not pay what it was signed to pay:
    /// held for an operator once the block is final and canonical (an operator's decision
    /// on it applied here); until then it waits, saying so.
    fn mismatched(
        &mut self,
        intent: &Intent,
        inclusion: &Inclusion,
        reason: &str,
        tip: &Tip,
        report: &mut TickReport,
    ) -> Result<Flow, TreasuryExecutorError> {
        let waiting = |report: &mut TickReport, why: &str| {
            report.last_error = Some(format!(
                "disbursement {} (nonce {}): transaction {} in block {} did not pay what it was \
                 signed to pay ({reason}); {why}",
                intent.id, intent.nonce, inclusion.tx_hash, inclusion.block
            ));
        };
        if !tip.is_final(inclusion.block) {
            waiting(
                report,
                "the executor holds for an operator once it is final",
            );
            return Ok(Flow::Go);
        }
        let Some(canonical) = self.block_hash(inclusion.block, report)? else {
            return Ok(Flow::Stop);
        };
        if canonical.as_deref() != Some(inclusion.block_hash.as_str()) {
            waiting(
                report,
                "its block is not the chain's at that height: waiting",
            );
            return Ok(Flow::Go);
        }
        let hold = Hold::Mismatch {
            id: intent.id,
            nonce: intent.nonce,
            tx_hash: inclusion.tx_hash.clone(),
            block: inclusion.block,
            reason: reason.to_owned(),
        };
        if self.settle(&hold)? {
            return Ok(Flow::Stop); // the intents changed: the next tick reads them afresh
        }
        Err(TreasuryExecutorError::Held(hold))
    }

    /// Its block left the chain: back to Submitted, and the transaction that was there
    /// handed over again, same bytes (it may be back in a mempool, or gone).
    fn reorged(
        &mut self,
        intent: &mut Intent,
        inclusion: &Inclusion,
        tip: &Tip,
        report: &mut TickReport,
    ) -> Result<Flow, TreasuryExecutorError> {
        report.reorgs += 1;
        report.last_error = Some(format!(
            "reorg: block {} ({}) that held transaction {} of disbursement {} (nonce {}) left \
             the chain; rebroadcast",
            inclusion.block, inclusion.block_hash, inclusion.tx_hash, intent.id, intent.nonce
        ));
        self.unrecorded.push(Change::Reorged {
            nonce: intent.nonce,
        });
        intent.inclusion = None;
        let index = intent
            .attempts
            .iter()
            .position(|attempt| attempt.tx.tx_hash == inclusion.tx_hash)
            .unwrap_or(intent.attempts.len() - 1);
        self.send_until(intent, index, tip, report)
    }

    /// A pending or unknown intent: an operator's cancellation, a fee bump, or a hand-over.
    fn advance(
        &mut self,
        intent: &mut Intent,
        pending: bool,
        tip: &Tip,
        fee_cap: &mut bool,
        report: &mut TickReport,
    ) -> Result<Flow, TreasuryExecutorError> {
        if let Some(reason) = intent.cancel.clone()
            && !intent.has_attempt(AttemptKind::Cancellation)
        {
            if !intent.bound {
                self.record()?;
                self.store.cancel_unbound(intent.nonce, &reason)?;
                self.underpriced.remove(&intent.nonce);
                self.tally(report, intent.id, Tally::Cancelled)?;
                return Ok(Flow::Restart);
            }
            return self.replace(
                intent,
                AttemptKind::Cancellation,
                pending,
                tip,
                fee_cap,
                report,
            );
        }
        if !intent.bound && !self.handing {
            return Ok(Flow::Go); // an earlier one was not taken this tick: keep the order
        }
        if self.needs_bump(intent, tip) {
            let kind = intent.latest().kind;
            return self.replace(intent, kind, pending, tip, fee_cap, report);
        }
        if pending || priced_out(intent, tip) {
            // In a pool, or sure to be refused: next block's bump. One that never left the
            // node stays unhanded, and so does every later one (the handed-over prefix).
            if !intent.bound {
                self.handing = false;
            }
            return Ok(Flow::Go);
        }
        let latest = intent.attempts.len() - 1;
        self.send_until(intent, latest, tip, report)
    }

    /// Whether the latest attempt should be replaced with higher fees: the ledger refused
    /// its fee, its max fee is below the base fee, or it has waited `bump_after_blocks`
    /// since an endpoint accepted it. Never on a ledger without a fee market, and never
    /// twice in one block (a refusal answered within the block would otherwise climb to
    /// the caps in a few ticks on one stale fee quote).
    fn needs_bump(&self, intent: &Intent, tip: &Tip) -> bool {
        let latest = intent.latest();
        let fees = latest.tx.fees;
        if fees.max_fee_per_gas == 0
            || latest
                .signed_at_block
                .is_some_and(|signed| signed >= tip.head.number)
        {
            return false;
        }
        self.underpriced.contains(&intent.nonce)
            || tip
                .head
                .base_fee
                .is_some_and(|base_fee| fees.max_fee_per_gas < base_fee)
            || latest.sent_at_block.is_some_and(|sent| {
                tip.head.number >= sent.saturating_add(self.config.bump_after_blocks)
            })
    }

    /// Signs a replacement at the intent's nonce, fees at least `bump_percent` above the
    /// latest attempt's, writes it ahead (stored and flushed), then hands it over. At the
    /// fee caps it waits (saying so), still handing the latest attempt over if nobody
    /// knows it.
    fn replace(
        &mut self,
        intent: &mut Intent,
        kind: AttemptKind,
        pending: bool,
        tip: &Tip,
        fee_cap: &mut bool,
        report: &mut TickReport,
    ) -> Result<Flow, TreasuryExecutorError> {
        let nonce = intent.nonce;
        let previous = intent.latest().kind;
        let Some(disbursement) = self.store.get(intent.id)? else {
            return Err(StoreError::Missing {
                kind: "disbursements",
                key: intent.id.to_string(),
            }
            .into());
        };
        let request = SignRequest {
            disbursement: &disbursement,
            kind,
            nonce,
            min_fees: Some(intent.latest().tx.fees.bumped(self.config.bump_percent)),
        };
        let tx = match self.read(report, |ledger| ledger.sign(&request)) {
            Ok(Some(tx)) => tx,
            Ok(None) => return Ok(Flow::Stop),
            Err(TreasuryExecutorError::FeeCapReached(reason)) => {
                *fee_cap = true;
                report.last_error = Some(bounded(&format!(
                    "nonce {nonce} (disbursement {}) needs a replacement that {reason}: it \
                     waits at the cap",
                    intent.id
                )));
                if !intent.bound {
                    self.handing = false;
                    return Ok(Flow::Go);
                }
                if pending || priced_out(intent, tip) {
                    return Ok(Flow::Go);
                }
                let latest = intent.attempts.len() - 1;
                return self.send_until(intent, latest, tip, report);
            }
            Err(TreasuryExecutorError::Cancelled(reason)) => {
                // The first attempt was signed; a refusal now says nothing new: wait.
                report.last_error = Some(bounded(&format!(
                    "nonce {nonce}: cannot sign a replacement: {reason}"
                )));
                if !intent.bound {
                    self.handing = false;
                }
                return Ok(Flow::Go);
            }
            Err(other) => return Err(other),
        };
        self.underpriced.remove(&nonce);
        self.record()?;
        let attempt = Attempt::new(kind, tx, unix_ms(), Some(tip.head.number));
        *intent = self.store.add_attempt(nonce, &attempt)?;
        self.store.flush()?; // written ahead: durable before it can reach the ledger
        if kind == previous {
            report.fee_bumps += 1;
        }
        let latest = intent.attempts.len() - 1;
        self.send_until(intent, latest, tip, report)
    }
}

/// Whether the latest attempt offers less than the head's base fee: handing it over
/// again would only be refused.
fn priced_out(intent: &Intent, tip: &Tip) -> bool {
    let max_fee = intent.latest().tx.fees.max_fee_per_gas;
    max_fee > 0 && tip.head.base_fee.is_some_and(|base_fee| max_fee < base_fee)
}
