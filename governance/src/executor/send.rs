//! Handing a signed transaction over to the ledger: the one place a submission happens,
//! and the one place its answer is classified.
//!
//! | answer                         | breaker | binds the intent | then                                   |
//! |--------------------------------|---------|------------------|----------------------------------------|
//! | accepted                       | success | yes              | Submitted                              |
//! | unreachable, timeout, 5xx, …   | failure | yes (it may have arrived) | retried under a new permit    |
//! | already known                  | ignored | yes              | Submitted (it is in a mempool)         |
//! | nonce too low                  | ignored | yes (it may be ours) | lookups decide; a nonce spent by a stranger holds |
//! | underpriced                    | ignored | no               | replaced with a bumped fee             |
//! | insufficient balance           | ignored | no               | bound: waits; else given back (paused) |
//! | invalid destination, rejected  | ignored | no               | bound: holds for an operator; else Cancelled |
//! | signing                        | ignored | —                | halts                                  |
//!
//! "Binds": the answer does not prove the transaction stayed out of every mempool, so
//! the disbursement belongs to this nonce for good. "Nonce too low" is what a node says
//! of bytes already mined, so it binds too: a proxy or load balancer that retried the
//! hand-over, or a second endpoint, may have put this very transaction in a block (giving
//! it back would forget its hash and sign the payment again). Lookups and the spent-nonce
//! check decide: ours, it is paid; a stranger's, the executor holds for an operator.
//! A refusal is the endpoint's answer
//! about this very hand-over: it did not take the transaction. Only an intent whose every
//! hand-over was refused may be given back (cancelled outright, or returned to ready to be
//! signed afresh), and then only with every later intent, none of which was handed over
//! after it (see `handing`).

use std::sync::Arc;

use super::bounded;
use super::report::Tally;
use super::{CrashPoint, Flow, TickReport, Tip, TreasuryExecutor, TreasuryExecutorError};
use crate::circuit_breaker::Permit;
use crate::ledger::{LedgerError, SignedTx};
use crate::store::{Change, Hold, Intent, RequestError, StoreError};
use crate::text::unix_ms;

/// Whether an answer is the endpoint refusing this very hand-over (it did not take the
/// transaction): a fee, balance or business refusal, or another chain.
fn is_refusal(answer: &Result<(), LedgerError>) -> bool {
    matches!(
        answer
            .as_ref()
            .err()
            .map(|error| TreasuryExecutorError::classify(error.clone())),
        Some(
            TreasuryExecutorError::Cancelled(_)
                | TreasuryExecutorError::InsufficientBalance
                | TreasuryExecutorError::Underpriced(_)
                | TreasuryExecutorError::Signing(_)
        )
    )
}

/// One hand-over's result.
enum Sent {
    /// The tick's flow after it.
    Flow(Flow),
    /// An infrastructure failure: hand it over again under a new permit.
    Retry,
}

impl TreasuryExecutor {
    /// Hands attempt `index` of `intent` over, again after each infrastructure failure
    /// while the breaker admits and the batch has room.
    pub(super) fn send_until(
        &mut self,
        intent: &mut Intent,
        index: usize,
        tip: &Tip,
        report: &mut TickReport,
    ) -> Result<Flow, TreasuryExecutorError> {
        loop {
            match self.send(intent, index, tip, report)? {
                Sent::Flow(flow) => return Ok(flow),
                Sent::Retry if report.attempts < self.config.batch_size as u64 => {}
                Sent::Retry => return Ok(Flow::Stop),
            }
        }
    }

    /// Hands the first attempts of `intents` (which never left the node, consecutive
    /// nonces) over in batches ([`Ledger::submit_batch`]), each transaction under its own
    /// permit, as far as the breaker admits, and settles every answer in nonce order as
    /// [`send`](Self::send) settles one. Every answer of a batch is settled before anything
    /// is handed over again, so that an answer that binds is never left unrecorded.
    ///
    /// A ledger that hands transactions over one by one stops at the first that is not
    /// accepted, and that one is handed over again (after a failure) before the rest: the
    /// order of one-by-one sends. One that sends a whole batch in one exchange (JSON-RPC)
    /// answers every transaction; then an intent the ledger refused, with a later one it
    /// may have taken, is bound (its nonce must be spent: nothing below a taken nonce can
    /// be given back), and a business refusal cancels it by replacement (a cancellation at
    /// its nonce, signed at the next look), since nothing of it ever left the node.
    pub(super) fn send_batch(
        &mut self,
        intents: &mut [Intent],
        tip: &Tip,
        report: &mut TickReport,
    ) -> Result<Flow, TreasuryExecutorError> {
        let breaker = Arc::clone(&self.breaker);
        let mut next = 0;
        while next < intents.len() {
            if !self.handing {
                return Ok(Flow::Go); // refused: the rest stays staged for the next tick
            }
            self.may_broadcast()?;
            let mut permits = Vec::new();
            for _ in next..intents.len() {
                match breaker.try_acquire() {
                    Ok(permit) => permits.push(permit),
                    Err(_) => {
                        report.rejected_by_breaker = true;
                        break;
                    }
                }
            }
            if permits.is_empty() {
                return Ok(Flow::Stop);
            }
            let txs: Vec<SignedTx> = intents[next..next + permits.len()]
                .iter()
                .map(|intent| intent.attempts[0].tx.clone())
                .collect();
            let mut answers = self.ledger.submit_batch(&txs);
            answers.truncate(txs.len());
            if answers.is_empty() {
                // The ledger broke its contract: the first may have arrived.
                answers.push(Err(LedgerError::Malformed(
                    "no answer to a batch of transactions".into(),
                )));
            }
            report.attempts += answers.len() as u64;
            self.crash_point(CrashPoint::AfterSubmit)?;
            let mut taken_after = vec![false; answers.len()];
            for i in (0..answers.len().saturating_sub(1)).rev() {
                taken_after[i] = taken_after[i + 1] || !is_refusal(&answers[i + 1]);
            }
            let answered = answers.len();
            let mut retry = Vec::new();
            let mut permits = permits.into_iter();
            for (i, (answer, permit)) in answers.into_iter().zip(permits.by_ref()).enumerate() {
                let at = next + i;
                let fill_gap = taken_after[i] && !intents[at].bound && is_refusal(&answer);
                if fill_gap {
                    let intent = &mut intents[at];
                    intent.bound = true;
                    self.unrecorded.push(Change::Sent {
                        nonce: intent.nonce,
                        tx_hash: txs[i].tx_hash.clone(),
                        accepted: false,
                        head: tip.head.number,
                        at_ms: unix_ms(),
                    });
                }
                match self.settle_answer(
                    &mut intents[at],
                    &txs[i],
                    answer,
                    permit,
                    fill_gap,
                    tip,
                    report,
                )? {
                    Sent::Flow(Flow::Go) => {}
                    // Only a refusal of one that nothing later was taken past gets here
                    // (or a halt): the answers after it are refusals, which bind nothing.
                    Sent::Flow(flow) => return Ok(flow),
                    Sent::Retry => retry.push(at),
                }
            }
            drop(permits); // those not sent: not used
            for at in retry {
                if report.attempts >= self.config.batch_size as u64 {
                    return Ok(Flow::Stop);
                }
                match self.send_until(&mut intents[at], 0, tip, report)? {
                    Flow::Go => {}
                    other => return Ok(other),
                }
            }
            next += answered;
        }
        Ok(Flow::Go)
    }

    /// Hands attempt `index` over under a permit, classifies the answer, records it on the
    /// permit, and records what it means for the intent.
    fn send(
        &mut self,
        intent: &mut Intent,
        index: usize,
        tip: &Tip,
        report: &mut TickReport,
    ) -> Result<Sent, TreasuryExecutorError> {
        self.may_broadcast()?;
        let breaker = Arc::clone(&self.breaker);
        let Ok(permit) = breaker.try_acquire() else {
            report.rejected_by_breaker = true;
            return Ok(Sent::Flow(Flow::Stop));
        };
        report.attempts += 1;
        let tx = intent.attempts[index].tx.clone();
        let answer = self.ledger.submit(&tx);
        self.crash_point(CrashPoint::AfterSubmit)?;
        self.settle_answer(intent, &tx, answer, permit, false, tip, report)
    }

    /// Classifies the ledger's answer to one hand-over of `tx`, records it on the permit,
    /// and records what it means for the intent. `fill_gap`: the ledger refused this
    /// intent's only hand-over but may have taken a later one of its batch (bound by the
    /// caller), so a business refusal cancels it by replacement rather than holding.
    #[allow(clippy::too_many_arguments)] // one answer and everything it is settled against
    fn settle_answer(
        &mut self,
        intent: &mut Intent,
        tx: &SignedTx,
        answer: Result<(), LedgerError>,
        permit: Permit<'_>,
        fill_gap: bool,
        tip: &Tip,
        report: &mut TickReport,
    ) -> Result<Sent, TreasuryExecutorError> {
        let refused = is_refusal(&answer);
        let class = answer.err().map(TreasuryExecutorError::classify);
        let was_bound = intent.bound;
        if !refused {
            let accepted = matches!(
                class,
                None | Some(TreasuryExecutorError::Ambiguous(LedgerError::AlreadyKnown))
            );
            intent.bound = true;
            intent.submitted |= accepted;
            self.unrecorded.push(Change::Sent {
                nonce: intent.nonce,
                tx_hash: tx.tx_hash.clone(),
                accepted,
                head: tip.head.number,
                at_ms: unix_ms(),
            });
        }
        let nonce = intent.nonce;
        let Some(class) = class else {
            permit.success();
            self.tally(report, intent.id, Tally::Accepted)?;
            return Ok(Sent::Flow(Flow::Go));
        };
        if matches!(class, TreasuryExecutorError::Submission(_)) {
            permit.failure();
            self.tally(report, intent.id, Tally::Failed)?;
            report.last_error = Some(bounded(&class.to_string()));
            return Ok(Sent::Retry);
        }
        permit.ignore();
        let flow = match class {
            TreasuryExecutorError::Ambiguous(LedgerError::AlreadyKnown) => {
                self.tally(report, intent.id, Tally::KnownAlready)?;
                Flow::Go
            }
            TreasuryExecutorError::Ambiguous(error) => {
                // "Nonce too low": spent, by this payment (its hand-over may have gone
                // through elsewhere) or by a stranger. Never given back on that word.
                self.tally(report, intent.id, Tally::Ambiguous)?;
                report.last_error = Some(format!(
                    "nonce {nonce} (disbursement {}): {error}; its transactions are looked up, \
                     and the block that spent the nonce is read once it is final",
                    intent.id
                ));
                Flow::Go
            }
            TreasuryExecutorError::Underpriced(error) => {
                self.tally(report, intent.id, Tally::Underpriced)?;
                report.last_error = Some(bounded(&format!("nonce {nonce}: {error}")));
                self.underpriced.insert(nonce);
                if !was_bound {
                    self.handing = false;
                }
                Flow::Go
            }
            TreasuryExecutorError::InsufficientBalance => {
                report.last_error = Some(format!(
                    "nonce {nonce} (disbursement {}): insufficient balance: payments wait \
                     until the treasury is topped up",
                    intent.id
                ));
                if was_bound {
                    Flow::Go
                } else {
                    // Paused: nothing more is handed over this tick; the next one checks
                    // the balance before signing again.
                    self.handing = false;
                    self.give_back(intent, None)?
                }
            }
            TreasuryExecutorError::Cancelled(reason) => {
                report.last_error = Some(bounded(&format!("disbursement {}: {reason}", intent.id)));
                if fill_gap {
                    self.record()?; // bound first: the store cancels a bound one by replacement
                    match self.store.cancel(intent.id, &reason) {
                        Ok(_)
                        | Err(RequestError::NotCancellable { .. } | RequestError::NotFound(_)) => {}
                        Err(RequestError::Storage(error)) => return Err(error.into()),
                        Err(other) => {
                            return Err(TreasuryExecutorError::Storage(StoreError::Invariant {
                                kind: "intents",
                                key: nonce.to_string(),
                                reason: format!("cannot cancel by replacement: {other}"),
                            }));
                        }
                    }
                    intent.cancel = Some(reason);
                    Flow::Go
                } else if was_bound {
                    // It may still land: only a cancellation at its nonce could end it, and
                    // whether to send one is an operator's call (it costs a fee, and the
                    // refusal may pass), not the executor's.
                    return Err(TreasuryExecutorError::Held(Hold::Refused {
                        id: intent.id,
                        nonce,
                        reason: bounded(&reason),
                    }));
                } else {
                    self.tally(report, intent.id, Tally::Cancelled)?;
                    self.give_back(intent, Some(&reason))?
                }
            }
            other => return Err(other),
        };
        Ok(Sent::Flow(flow))
    }

    /// The intent never left the node: cancel it (with a reason), or return it to ready
    /// with every later intent (none of which left the node either), rewinding the nonce.
    /// The next batch is signed from that nonce.
    fn give_back(
        &mut self,
        intent: &Intent,
        cancel: Option<&str>,
    ) -> Result<Flow, TreasuryExecutorError> {
        self.record()?;
        match cancel {
            Some(reason) => {
                self.store.cancel_unbound(intent.nonce, reason)?;
            }
            None => self.store.unstage_from(intent.nonce)?,
        }
        self.underpriced.remove(&intent.nonce);
        Ok(Flow::Restart)
    }
}
