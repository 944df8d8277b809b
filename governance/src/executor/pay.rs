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

use std::collections::HashMap;

use super::report::Tally;
use super::{CrashPoint, Flow, TickReport, Tip, TreasuryExecutor, TreasuryExecutorError};
use crate::ledger::{AttemptKind, SignRequest};
use crate::policy::NATIVE;
use crate::store::{Attempt, Intent, RequestError};
use crate::text::unix_ms;
use crate::treasury::Disbursement;

/// Times a batch is signed afresh because an operator cancelled one of it meanwhile.
const MAX_STAGE_CONFLICTS: u32 = 3;

/// What the treasury can pay now.
enum Funds {
    /// This much of each asset read so far, after everything in flight.
    Available(Available),
    /// Nothing is signed: an intent that never left the node waits to be handed over.
    Unbound,
    /// A call failed.
    Failed,
}

/// The treasury's balances less what is in flight, by asset: the native coin (which
/// also pays every fee) read at once, a token's read when a payment in it is first met.
#[derive(Debug, Clone, Default)]
struct Available {
    by_asset: HashMap<String, u128>,
    /// In flight and not yet in a block, by asset (fees counted in the native coin).
    committed: HashMap<String, u128>,
}

/// What signing a batch came to.
struct Signed {
    intents: Vec<Intent>,
    /// The balances left for the rest of the tick.
    available: Available,
    /// The batch stopped at a disbursement the balance does not cover: short by this, in
    /// this asset.
    shortfall: Option<(u128, String)>,
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
            let funds = match available.take() {
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
        let (missing, asset) = shortfall.map_or((None, None), |(n, asset)| (Some(n), Some(asset)));
        report.balance_shortfall = missing;
        report.shortfall_asset = asset.clone();
        self.snapshot.balance_shortfall = missing;
        self.snapshot.shortfall_asset = asset;
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
        self.note_balance(NATIVE, balance);
        // What is in flight and not yet in a block may still take its amount (in its
        // asset) and its worst-case fee (in the coin).
        let in_flight: std::collections::HashSet<_> = intents.iter().map(|i| i.id).collect();
        self.assets.retain(|id, _| in_flight.contains(id));
        let mut committed: HashMap<String, u128> = HashMap::new();
        for intent in intents.iter().filter(|intent| intent.inclusion.is_none()) {
            let fee = intent.worst_case_fee();
            let asset = self.asset_of(intent.id)?;
            let native = committed.entry(NATIVE.to_owned()).or_default();
            *native = native.saturating_add(fee);
            let share = committed.entry(asset).or_default();
            *share = share.saturating_add(intent.amount);
        }
        let mut available = Available {
            by_asset: HashMap::new(),
            committed,
        };
        let native = balance.saturating_sub(available.committed(NATIVE));
        available.by_asset.insert(NATIVE.to_owned(), native);
        Ok(Funds::Available(available))
    }

    /// Remembers a balance read, for `/status`.
    fn note_balance(&mut self, asset: &str, balance: u128) {
        self.snapshot
            .balances
            .insert(asset.to_owned(), balance.to_string());
        self.snapshot.balances_at_ms = Some(unix_ms());
    }

    /// What the treasury holds of `asset` after what is in flight, read once a batch.
    /// `None`: the read failed.
    fn available_of(
        &mut self,
        funds: &mut Available,
        asset: &str,
        report: &mut TickReport,
    ) -> Result<Option<u128>, TreasuryExecutorError> {
        if let Some(&left) = funds.by_asset.get(asset) {
            return Ok(Some(left));
        }
        let Some(balance) = self.read(report, |ledger| ledger.asset_balance(asset))? else {
            return Ok(None);
        };
        self.note_balance(asset, balance);
        let left = balance.saturating_sub(funds.committed(asset));
        funds.by_asset.insert(asset.to_owned(), left);
        Ok(Some(left))
    }

    /// Signs `ready` in order from `next_nonce`, within `available`, at the `head`'s
    /// number.
    fn sign_batch(
        &mut self,
        ready: &[Disbursement],
        next_nonce: u64,
        mut available: Available,
        head: u64,
        report: &mut TickReport,
    ) -> Result<Signed, TreasuryExecutorError> {
        let mut signed = Signed {
            intents: Vec::with_capacity(ready.len()),
            available: Available::default(),
            shortfall: None,
            cancelled: false,
            failed: false,
        };
        for (nonce, disbursement) in (next_nonce..).zip(ready) {
            let asset = disbursement.asset.as_str();
            // A token's balance is read before signing: a transfer over it would revert
            // in its estimate, which cancels; a payment the balance does not cover waits.
            let Some(left) = self.available_of(&mut available, asset, report)? else {
                signed.failed = true;
                break;
            };
            if asset != NATIVE && disbursement.amount > left {
                signed.shortfall = Some((disbursement.amount - left, asset.to_owned()));
                report.last_error = Some(format!(
                    "disbursement {} waits: it needs {} {asset}, and the treasury has {left} \
                     left after what is in flight",
                    disbursement.id, disbursement.amount
                ));
                break;
            }
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
                    report.tally(&disbursement.asset, Tally::Cancelled);
                    signed.cancelled = true;
                    break;
                }
                Err(other) => return Err(other),
            };
            // In the coin: the fee, and the amount if it is the coin it pays.
            let cost = if asset == NATIVE {
                disbursement.amount.saturating_add(tx.fees.worst_case())
            } else {
                tx.fees.worst_case()
            };
            let coin = available.left(NATIVE);
            if cost > coin {
                signed.shortfall = Some((cost - coin, NATIVE.to_owned()));
                report.last_error = Some(format!(
                    "disbursement {} waits: it needs {cost} of the chain's coin with its \
                     worst-case fee, and the treasury has {coin} left after what is in flight",
                    disbursement.id
                ));
                break;
            }
            available.take(NATIVE, cost);
            if asset != NATIVE {
                available.take(asset, disbursement.amount);
            }
            self.assets
                .insert(disbursement.id, disbursement.asset.clone());
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

impl Available {
    /// What `asset` has committed in flight.
    fn committed(&self, asset: &str) -> u128 {
        self.committed.get(asset).copied().unwrap_or(0)
    }

    /// What is left of `asset` (0 if not read).
    fn left(&self, asset: &str) -> u128 {
        self.by_asset.get(asset).copied().unwrap_or(0)
    }

    /// Takes `amount` of `asset` for a payment signed in this batch.
    fn take(&mut self, asset: &str, amount: u128) {
        if let Some(left) = self.by_asset.get_mut(asset) {
            *left = left.saturating_sub(amount);
        }
    }
}
