//! The checks that can hold the executor for an operator, and the decisions that settle
//! them (see `store::Hold`, `store::Decision`).
//!
//! | check                                  | when                                   | hold |
//! |----------------------------------------|----------------------------------------|------|
//! | the ledger's next nonce = the store's  | nothing in flight                      | `NonceDrift` |
//! | the lowest intent's nonce not spent at depth by a transaction not ours | it is not in a block | `ForeignNonce` |
//! | the chain's next nonce not below the lowest intent's | it is not in a block      | `NonceGap` |
//! | a final transaction of ours paid what it was signed to pay | in a block at depth | `Mismatch` |
//!
//! Each is checked again every tick, on fresh reads: a hold lifts by itself when its
//! fact changes. An operator's decision is applied here, by the executor, and only when
//! this tick finds the very question it answers; a decision on a question that no longer
//! stands is dropped (and audited as such).

use std::collections::HashMap;

use super::{TickReport, Tip, TreasuryExecutor, TreasuryExecutorError};
use crate::store::{Action, Decision, Hold, Intent, Resolution, Settled};
use crate::treasury::DisbursementId;

/// How many blocks below the final height the executor searches for the block that spent
/// a nonce: nodes that are not archives keep the state of about the last 128 blocks.
const SPENDER_SEARCH_BLOCKS: u64 = 128;

/// What spent a nonce, once found (kept: a block at depth does not change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Spender {
    pub(super) tx_hash: String,
    pub(super) block: u64,
}

/// Spenders found so far, by nonce.
pub(super) type Spenders = HashMap<u64, Spender>;

/// What the check of the lowest intent found.
pub(super) enum Spent {
    /// Nothing the chain says stands in its way.
    Open,
    /// Its nonce is spent by one of its own transactions, which the lookups do not show
    /// yet: wait for them (never guess its outcome from the block alone).
    Ours,
    /// A decision settled it: the intents changed.
    Settled,
    /// A call failed: stop the tick.
    Stop,
}

impl TreasuryExecutor {
    /// With nothing in flight, the ledger's next nonce must be the store's: anything else
    /// is another sender, a restored backup or a reset chain, for an operator to judge
    /// (never adopted silently: a restored backup would pay again what it forgot). A
    /// store that has no nonce yet takes the ledger's. `Ok(false)`: the call failed.
    pub(super) fn check_nonce(
        &mut self,
        report: &mut TickReport,
    ) -> Result<bool, TreasuryExecutorError> {
        let Some(ledger) = self.read(report, |ledger| ledger.next_nonce())? else {
            return Ok(false);
        };
        match self.store.next_nonce()? {
            None => {
                let store = self.store.set_next_nonce(ledger)?;
                if store != ledger {
                    // Set meanwhile by another writer: judged at the next check.
                    return Ok(false);
                }
            }
            Some(store) if store == ledger => {}
            Some(store) => {
                let hold = Hold::NonceDrift { store, ledger };
                if !self.settle(&hold)? {
                    return Err(TreasuryExecutorError::Held(hold));
                }
            }
        }
        Ok(true)
    }

    /// The lowest intent not in a block. If the chain spent its nonce at depth, one of its
    /// transactions should be there: the block that spent it is read to see which one
    /// did. Not one of ours: the executor will not guess (hold). And if the chain's next
    /// nonce is below `lowest_ours` (the nonce and disbursement of the lowest intent in
    /// flight: every nonce from there up is one of ours), the nonces between belong to no
    /// payment of ours: nothing of ours can be mined until someone fills them (hold). A
    /// chain's next nonce from `lowest_ours` up to this intent's is no gap: the intents
    /// there were found in blocks this tick, mined after the head it read (a busy chain
    /// moves while a tick runs).
    pub(super) fn check_spent(
        &mut self,
        intent: &Intent,
        lowest_ours: (u64, DisbursementId),
        tip: &Tip,
        report: &mut TickReport,
    ) -> Result<Spent, TreasuryExecutorError> {
        if let Some(height) = tip.final_height {
            let Some(spent) = self.read(report, |ledger| ledger.nonce_at(height))? else {
                return Ok(Spent::Stop);
            };
            if spent > intent.nonce {
                let spender = match self.spender(intent.nonce, height, report)? {
                    Some(spender) => spender,
                    None => return Ok(Spent::Stop),
                };
                if let Some(spender) = &spender
                    && intent.hashes().contains(&spender.tx_hash)
                {
                    report.last_error = Some(format!(
                        "nonce {} (disbursement {}) is spent by its own transaction {} in block \
                         {}, which lookups do not show yet: waiting for them",
                        intent.nonce, intent.id, spender.tx_hash, spender.block
                    ));
                    return Ok(Spent::Ours);
                }
                let hold = Hold::ForeignNonce {
                    id: intent.id,
                    nonce: intent.nonce,
                    chain_nonce: spent,
                    attempts: intent.hashes(),
                    spent_by: spender.map(|spender| spender.tx_hash),
                };
                if self.settle(&hold)? {
                    return Ok(Spent::Settled);
                }
                return Err(TreasuryExecutorError::Held(hold));
            }
        }
        let head = tip.head.number;
        let Some(next) = self.read(report, |ledger| ledger.nonce_at(head))? else {
            return Ok(Spent::Stop);
        };
        let (lowest, lowest_id) = lowest_ours;
        if next < lowest {
            let hold = Hold::NonceGap {
                id: lowest_id,
                nonce: lowest,
                chain_nonce: next,
            };
            self.settle(&hold)?; // drops a decision on another question
            return Err(TreasuryExecutorError::Held(hold));
        }
        Ok(Spent::Open)
    }

    /// The transaction that spent `nonce` at or below `height`: a binary search of the
    /// treasury's nonce over the last [`SPENDER_SEARCH_BLOCKS`] blocks, then that block's
    /// transactions. `Ok(None)`: a call failed; `Ok(Some(None))`: not found there.
    fn spender(
        &mut self,
        nonce: u64,
        height: u64,
        report: &mut TickReport,
    ) -> Result<Option<Option<Spender>>, TreasuryExecutorError> {
        if let Some(spender) = self.spenders.get(&nonce) {
            return Ok(Some(Some(spender.clone())));
        }
        // nonce_at(high) > nonce is known; find the first block where it is.
        let mut low = height.saturating_sub(SPENDER_SEARCH_BLOCKS);
        let mut high = height;
        let Some(below) = self.read(report, |ledger| ledger.nonce_at(low))? else {
            return Ok(None);
        };
        if below > nonce {
            return Ok(Some(None)); // spent before the window: out of reach
        }
        while high - low > 1 {
            let middle = low + (high - low) / 2;
            let Some(at) = self.read(report, |ledger| ledger.nonce_at(middle))? else {
                return Ok(None);
            };
            if at > nonce {
                high = middle;
            } else {
                low = middle;
            }
        }
        let Some(hash) = self.read(report, |ledger| ledger.treasury_transaction(high, nonce))?
        else {
            return Ok(None);
        };
        let spender = hash.map(|tx_hash| Spender {
            tx_hash,
            block: high,
        });
        if let Some(spender) = &spender {
            self.spenders.insert(nonce, spender.clone());
        }
        Ok(Some(spender))
    }

    /// Applies the operator's decision waiting for `hold`, if one answers it (`true`); a
    /// decision on another question is dropped. Both are audited, as the executor.
    pub(super) fn settle(&mut self, hold: &Hold) -> Result<bool, TreasuryExecutorError> {
        let Some(decision) = self.store.decision()? else {
            return Ok(false);
        };
        if !decision.answers(hold) {
            self.drop_decision(&decision, &format!("the executor now holds on: {hold}"))?;
            return Ok(false);
        }
        self.record()?;
        let auditor = self.auditor();
        let settled = self.store.apply_decision(&decision, &auditor, |record| {
            match (&decision.action, record) {
                (Action::Resolve { resolution }, Some(record)) => format!(
                    "nonce {}, disbursement {}: {} ({} decided); it is now {}",
                    hold_nonce(&decision.hold),
                    record.id,
                    match resolution {
                        Resolution::Paid { .. } => "paid",
                        Resolution::NotPaid => "not paid",
                    },
                    decision.actor,
                    record.status.name()
                ),
                (Action::AdoptNonce { nonce }, _) => format!(
                    "next nonce adopted: {} ({} decided)",
                    nonce.map_or_else(|| hold_nonce(&decision.hold).to_string(), |n| n.to_string()),
                    decision.actor
                ),
                (_, None) => format!("{} decided", decision.actor),
            }
        })?;
        match settled {
            // An operator replaced it since it was read: the next tick settles the new one.
            Settled::Superseded => Ok(false),
            Settled::Applied(_) => {
                self.spenders.clear();
                Ok(true)
            }
        }
    }

    /// Forgets a decision whose question no longer stands, saying why in the audit log
    /// (in the same transaction; nothing if an operator replaced it meanwhile).
    pub(super) fn drop_decision(
        &mut self,
        decision: &Decision,
        why: &str,
    ) -> Result<(), TreasuryExecutorError> {
        let detail = format!(
            "{} decided on: {}; not applied: {why}",
            decision.actor, decision.hold
        );
        self.store
            .drop_decision(decision, &self.auditor(), &detail)?;
        Ok(())
    }

    /// Who the executor's audit records name.
    fn auditor(&self) -> String {
        format!("executor:{}", self.config.identity)
    }
}

/// The nonce a hold is about (the ledger's, for a drift: what adopting it sets).
fn hold_nonce(hold: &Hold) -> u64 {
    match hold {
        Hold::NonceDrift { ledger, .. } => *ledger,
        Hold::NonceGap { nonce, .. }
        | Hold::Refused { nonce, .. }
        | Hold::ForeignNonce { nonce, .. }
        | Hold::Mismatch { nonce, .. } => *nonce,
    }
}
