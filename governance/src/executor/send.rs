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

use super::{CrashPoint, Flow, TickReport, Tip, TreasuryExecutor, TreasuryExecutorError};
use super::{bounded, now_ms};
use crate::ledger::LedgerError;
use crate::store::{Change, Hold, Intent};

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

    /// Hands attempt `index` over under a permit, classifies the answer, records it on the
    /// permit, and records what it means for the intent.
    fn send(
        &mut self,
        intent: &mut Intent,
        index: usize,
        tip: &Tip,
        report: &mut TickReport,
    ) -> Result<Sent, TreasuryExecutorError> {
        let breaker = Arc::clone(&self.config.circuit_breaker);
        let Ok(permit) = breaker.try_acquire() else {
            report.rejected_by_breaker = true;
            return Ok(Sent::Flow(Flow::Stop));
        };
        report.attempts += 1;
        let tx = intent.attempts[index].tx.clone();
        let answer = self.ledger.submit(&tx);
        self.crash_point(CrashPoint::AfterSubmit)?;
        let class = answer.err().map(TreasuryExecutorError::classify);
        let was_bound = intent.bound;
        let refused = matches!(
            class,
            Some(
                TreasuryExecutorError::Cancelled(_)
                    | TreasuryExecutorError::InsufficientBalance
                    | TreasuryExecutorError::Underpriced(_)
                    | TreasuryExecutorError::Signing(_)
            )
        );
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
                at_ms: now_ms(),
            });
        }
        let nonce = intent.nonce;
        let Some(class) = class else {
            permit.success();
            report.submitted += 1;
            return Ok(Sent::Flow(Flow::Go));
        };
        if matches!(class, TreasuryExecutorError::Submission(_)) {
            permit.failure();
            report.submission_failures += 1;
            report.last_error = Some(bounded(&class.to_string()));
            return Ok(Sent::Retry);
        }
        permit.ignore();
        let flow = match class {
            TreasuryExecutorError::Ambiguous(LedgerError::AlreadyKnown) => {
                report.ambiguous += 1;
                report.submitted += 1;
                Flow::Go
            }
            TreasuryExecutorError::Ambiguous(error) => {
                // "Nonce too low": spent, by this payment (its hand-over may have gone
                // through elsewhere) or by a stranger. Never given back on that word.
                report.ambiguous += 1;
                report.last_error = Some(format!(
                    "nonce {nonce} (disbursement {}): {error}; its transactions are looked up, \
                     and the block that spent the nonce is read once it is final",
                    intent.id
                ));
                Flow::Go
            }
            TreasuryExecutorError::Underpriced(error) => {
                report.underpriced += 1;
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
                if was_bound {
                    // It may still land: only a cancellation at its nonce could end it, and
                    // whether to send one is an operator's call (it costs a fee, and the
                    // refusal may pass), not the executor's.
                    return Err(TreasuryExecutorError::Held(Hold::Refused {
                        id: intent.id,
                        nonce,
                        reason: bounded(&reason),
                    }));
                } else {
                    report.cancelled += 1;
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
