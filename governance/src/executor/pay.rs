//! Paying what is ready: while the batch has room, take ready disbursements in id order,
//! check the treasury covers each with the worst-case fees of everything in flight, sign
//! them with consecutive nonces, stage them all and flush (written ahead), then hand them
//! over in batches, each transaction under its own permit (`send.rs`).
//!
//! What is ready passes the spending policy in force first (`GovStore::payable`): one it
//! refuses is taken off the ready index, never signed.
//!
//! A disbursement the balance does not cover waits (queued, and the batch stops there,
//! keeping the id order): the shortfall is reported, nothing is cancelled for want of
//! funds.

use super::{CrashPoint, Flow, TickReport, Tip, TreasuryExecutor, TreasuryExecutorError};
use crate::ledger::{AttemptKind, SignRequest};
use crate::store::{Attempt, Intent, RequestError};
use crate::text::unix_ms;
use crate::treasury::Disbursement;

/// Times a batch is signed afresh because an operator cancelled one of it meanwhile.
const MAX_STAGE_CONFLICTS: u32 = 3;

/// What the treasury can pay now.
enum Funds {
    /// This much, after everything in flight.
    Available(u128),
    /// Nothing is signed: an intent that never left the node waits to be handed over.
    Unbound,
    /// A call failed.
    Failed,
}

/// What signing a batch came to.
struct Signed {
    intents: Vec<Intent>,
    /// The balance left for the rest of the tick.
    available: u128,
    /// The batch stopped at a disbursement the balance does not cover, short by this.
    shortfall: Option<u128>,
    /// One was cancelled before any nonce was spent on it: read the index again.
    cancelled: bool,
    /// A call failed: stop the tick.
    failed: bool,
}

impl TreasuryExecutor {
    /// Stages and hands over ready disbursements until the batch is full, nothing is
    /// ready, the balance falls short, or a call fails.
    pub(super) fn pay(
        &mut self,
        tip: &Tip,
        report: &mut TickReport,
    ) -> Result<(), TreasuryExecutorError> {
        let batch = self.config.batch_size as u64;
        let mut available = None;
        let mut conflicts = 0;
        let mut shortfall = None;
        'batch: while report.attempts < batch && self.handing {
            self.record()?;
            let Some(next_nonce) = self.store.next_nonce()? else {
                return Ok(()); // set by the nonce check before any payment
            };
            let payable = self.store.payable((batch - report.attempts) as usize)?;
            for (_, refusal) in &payable.refused {
                report.policy_refusals.push(refusal.rule());
            }
            if let Some((id, refusal)) = &payable.waiting {
                report.last_error = Some(format!(
                    "disbursement {id} waits (and those after it): {refusal}"
                ));
            }
            let ready = payable.ready;
            if ready.is_empty() {
                break;
            }
            let funds = match available {
                Some(funds) => funds,
                None => match self.available(report)? {
                    Funds::Available(funds) => funds,
                    Funds::Unbound => break,
                    Funds::Failed => return Ok(()),
                },
            };
            let signed = self.sign_batch(&ready, next_nonce, funds, tip.head.number, report)?;
            if signed.failed {
                return Ok(());
            }
            available = Some(signed.available);
            shortfall = signed.shortfall;
            let Signed { intents, .. } = signed;
            if intents.is_empty() {
                if signed.cancelled {
                    continue;
                }
                break;
            }
            let after = next_nonce + intents.len() as u64;
            if !self.store.stage(&intents, after)? {
                // An operator cancelled one of them meanwhile: read the index again.
                conflicts += 1;
                if conflicts > MAX_STAGE_CONFLICTS {
                    break;
                }
                continue;
            }
            self.store.flush()?; // durable before any of them can reach the ledger
            self.crash_point(CrashPoint::AfterStage)?;
            let mut intents = intents;
            match self.send_batch(&mut intents, tip, report)? {
                Flow::Go => {}
                Flow::Stop => return Ok(()),
                Flow::Restart => {
                    available = None; // what was given back is no longer committed
                    continue 'batch;
                }
            }
            if !self.handing {
                break 'batch; // the rest stays staged: the next tick hands it over
            }
            if shortfall.is_some() {
                break;
            }
        }
        report.balance_shortfall = shortfall;
        self.snapshot.balance_shortfall = shortfall;
        Ok(())
    }

    /// The treasury's balance less the worst-case cost of everything in flight and not yet
    /// in a block (what is in a block is already out of the balance).
    fn available(&mut self, report: &mut TickReport) -> Result<Funds, TreasuryExecutorError> {
        let intents = self.store.intents()?;
        // An intent that never left the node is handed over before any later nonce is
        // signed (the handed-over intents stay a prefix): reconciliation does it. (Within
        // a batch, one not taken stops the batch; after one is given back, this runs again.)
        if intents.iter().any(|intent| !intent.bound) {
            return Ok(Funds::Unbound);
        }
        let Some(balance) = self.read(report, |ledger| ledger.balance())? else {
            return Ok(Funds::Failed);
        };
        let committed = intents
            .iter()
            .filter(|intent| intent.inclusion.is_none())
            .map(Intent::worst_case_cost)
            .fold(0u128, u128::saturating_add);
        Ok(Funds::Available(balance.saturating_sub(committed)))
    }

    /// Signs `ready` in order from `next_nonce`, within `available`, at the `head`'s
    /// number.
    fn sign_batch(
        &mut self,
        ready: &[Disbursement],
        next_nonce: u64,
        mut available: u128,
        head: u64,
        report: &mut TickReport,
    ) -> Result<Signed, TreasuryExecutorError> {
        let mut signed = Signed {
            intents: Vec::with_capacity(ready.len()),
            available,
            shortfall: None,
            cancelled: false,
            failed: false,
        };
        for (nonce, disbursement) in (next_nonce..).zip(ready) {
            let request = SignRequest::payment(disbursement, nonce);
            let tx = match self.read(report, |ledger| ledger.sign(&request)) {
                Ok(Some(tx)) => tx,
                Ok(None) => {
                    signed.failed = true;
                    break;
                }
                Err(TreasuryExecutorError::Cancelled(reason)) => {
                    // Unpayable as it stands (a destination this ledger cannot pay):
                    // nothing was signed for it, so cancel it and go on. (Not found or no
                    // longer queued: an operator got there first.)
                    if let Err(RequestError::Storage(error)) =
                        self.store.cancel(disbursement.id, &reason)
                    {
                        return Err(error.into());
                    }
                    report.cancelled += 1;
                    signed.cancelled = true;
                    break;
                }
                Err(other) => return Err(other),
            };
            let cost = disbursement.amount.saturating_add(tx.fees.worst_case());
            if cost > available {
                signed.shortfall = Some(cost - available);
                report.last_error = Some(format!(
                    "disbursement {} waits: it needs {cost} with its worst-case fee, and the \
                     treasury has {available} left after what is in flight",
                    disbursement.id
                ));
                break;
            }
            available -= cost;
            let first = Attempt::new(AttemptKind::Payment, tx, unix_ms(), Some(head));
            signed.intents.push(Intent::new(
                disbursement.id,
                nonce,
                disbursement.amount,
                first,
            ));
        }
        signed.available = available;
        Ok(signed)
    }
}
