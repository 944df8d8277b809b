//! An operator's decisions on what the executor will not guess: what spent a nonce that
//! none of our transactions holds, which nonce to go on from after a drift, and which
//! queued disbursements a restored backup forgot were paid.
//!
//! A decision on a hold is not applied by the admin call: it is recorded (only while the
//! executor holds on exactly that question), and the executor applies it at its next tick
//! if, reading the chain again, it finds the same question (`Decision::answers`); if the
//! hold lifted meanwhile (a lagging lookup caught up), the decision is dropped. So the
//! executor stays the only writer of intents, and a decision can never race a tick that
//! just found the payment.

use serde::{Deserialize, Serialize};

use super::audit::{Audit, write_audit};
use super::keys::{Kind, pair_key, u64_key};
use super::records::{ExecutorSnapshot, Hold, Intent, describe_hold};
use super::txn::Txn;
use super::{
    DECISION, EPOCH, EXECUTOR, GovStore, NEXT_NONCE, RequestError, StoreError, cancel_cascade,
    execute, put_status,
};
use crate::treasury::{Disbursement, DisbursementId, DisbursementStatus};

/// An operator's finding about a disbursement whose nonce the chain spent without any
/// of its transactions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Resolution {
    /// It was paid (the operator found the payment): Executed, its dependents released.
    Paid {
        /// The transaction that paid it, if the operator names one.
        tx_hash: Option<String>,
    },
    /// It was not paid: queued again, to be signed at a fresh nonce (or cancelled, if an
    /// operator asked to cancel it).
    NotPaid,
}

/// What an operator decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Settle a nonce spent by none of its transactions (answers `Hold::ForeignNonce`), or
    /// by one that did not pay what it was signed to pay (`Hold::Mismatch`).
    Resolve {
        /// The finding.
        resolution: Resolution,
    },
    /// Go on from this nonce, or the ledger's (answers `Hold::NonceDrift`).
    AdoptNonce {
        /// The nonce; `None`: the ledger's, as the hold names it.
        nonce: Option<u64>,
    },
}

/// An operator's decision on a hold, waiting for the executor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The hold it answers, as the operator saw it.
    pub hold: Hold,
    /// What to do.
    pub action: Action,
    /// Why (what the operator checked).
    pub reason: String,
    /// Who.
    pub actor: String,
    /// When (Unix milliseconds).
    pub at_ms: u64,
}

impl Decision {
    /// Whether this decision answers `hold` as the executor finds it now: the same
    /// disbursement and nonce for a spent nonce; the very same nonces for a drift (had the
    /// ledger's moved since the operator looked, adopting it would adopt something they
    /// did not see).
    pub fn answers(&self, hold: &Hold) -> bool {
        match (&self.action, &self.hold, hold) {
            (
                Action::Resolve { .. },
                Hold::ForeignNonce { id, nonce, .. },
                Hold::ForeignNonce {
                    id: now_id,
                    nonce: now_nonce,
                    ..
                },
            ) => id == now_id && nonce == now_nonce,
            (
                Action::Resolve { .. },
                Hold::Mismatch {
                    id, nonce, tx_hash, ..
                },
                Hold::Mismatch {
                    id: now_id,
                    nonce: now_nonce,
                    tx_hash: now_hash,
                    ..
                },
            ) => id == now_id && nonce == now_nonce && tx_hash == now_hash,
            (Action::AdoptNonce { .. }, seen @ Hold::NonceDrift { .. }, now) => seen == now,
            _ => false,
        }
    }
}

impl GovStore {
    /// Records `decision` for the executor to apply. Refused ([`RequestError::Conflict`])
    /// unless the executor holds on the question it answers now (as of its last tick);
    /// replaces an earlier decision still waiting.
    pub fn decide(&self, decision: &Decision) -> Result<(), RequestError> {
        self.decide_with(decision, None)
    }

    /// [`decide`](Self::decide), audited in the same transaction as `action` with
    /// `detail` (the decision's actor, reason and time, and the caller's unverified
    /// name): both or neither.
    pub fn decide_audited(
        &self,
        decision: &Decision,
        unverified_actor: Option<&str>,
        action: &str,
        detail: &str,
    ) -> Result<(), RequestError> {
        self.decide_with(decision, Some((unverified_actor, action, detail)))
    }

    fn decide_with(
        &self,
        decision: &Decision,
        audit: Option<(Option<&str>, &str, &str)>,
    ) -> Result<(), RequestError> {
        let outcome = self.transact(|txn| {
            let held = txn
                .get_json::<ExecutorSnapshot>(Kind::Meta, EXECUTOR)?
                .and_then(|snapshot| snapshot.hold);
            match &held {
                Some(hold) if decision.answers(hold) => {}
                other => {
                    return Ok(Err(RequestError::Conflict(format!(
                        "the executor does not hold on this question ({})",
                        describe_hold(other.as_ref())
                    ))));
                }
            }
            txn.put_json(Kind::Meta, DECISION, decision);
            if let Some((note, action, detail)) = audit {
                let who = Audit {
                    actor: decision.actor.clone(),
                    reason: decision.reason.clone(),
                    at_ms: decision.at_ms,
                    unverified_actor: note.map(str::to_owned),
                };
                write_audit(txn, &who, action, &decision.reason, detail)?;
            }
            Ok(Ok(()))
        });
        outcome?
    }

    /// The decision waiting for the executor, if any.
    pub fn decision(&self) -> Result<Option<Decision>, StoreError> {
        self.meta_record(DECISION)
    }

    /// Forgets `decision` (it answered a hold that lifted), auditing it as `auditor` with
    /// `detail`, in one transaction; `false` (nothing written) if the decision waiting is
    /// no longer this one (an operator replaced it since it was read).
    pub(crate) fn drop_decision(
        &self,
        decision: &Decision,
        auditor: &str,
        detail: &str,
    ) -> Result<bool, StoreError> {
        self.transact(|txn| {
            if txn.get_json::<Decision>(Kind::Meta, DECISION)?.as_ref() != Some(decision) {
                return Ok(false);
            }
            txn.delete(Kind::Meta, DECISION);
            write_audit(
                txn,
                &executor_audit(auditor, decision),
                "decision.dropped",
                &decision.reason,
                detail,
            )?;
            Ok(true)
        })
    }

    /// Applies `decision` (the executor, having found its hold again this tick), forgets
    /// it, and audits it as `auditor` (`describe` says what became of the disbursement),
    /// in one transaction. [`Settled::Superseded`], with nothing written, if the decision
    /// waiting is no longer this one: an operator replaced it since the executor read it,
    /// and the next tick settles the new one (applying the old one could pay twice).
    pub(crate) fn apply_decision(
        &self,
        decision: &Decision,
        auditor: &str,
        describe: impl Fn(Option<&Disbursement>) -> String,
    ) -> Result<Settled, StoreError> {
        self.transact(|txn| {
            if txn.get_json::<Decision>(Kind::Meta, DECISION)?.as_ref() != Some(decision) {
                return Ok(Settled::Superseded);
            }
            let record = apply_in(txn, decision)?;
            let detail = describe(record.as_ref());
            write_audit(
                txn,
                &executor_audit(auditor, decision),
                "decision.applied",
                &decision.reason,
                &detail,
            )?;
            Ok(Settled::Applied(record.map(Box::new)))
        })
    }

    /// Marks a queued disbursement Executed by `tx_hash`: one a restored backup believes
    /// unpaid, which the chain shows paid. Refused ([`RequestError::Conflict`]) unless the
    /// executor holds on a nonce drift (nothing is signed meanwhile), or the disbursement
    /// is not queued. Its dependents are released.
    pub fn mark_paid(
        &self,
        id: DisbursementId,
        tx_hash: &str,
        reason: &str,
    ) -> Result<Disbursement, RequestError> {
        self.mark_paid_with(id, tx_hash, reason, None)
    }

    /// [`mark_paid`](Self::mark_paid), audited in the same transaction
    /// (`disbursement.mark_paid`, with `audit`'s reason): both or neither.
    pub fn mark_paid_audited(
        &self,
        id: DisbursementId,
        tx_hash: &str,
        audit: &Audit,
    ) -> Result<Disbursement, RequestError> {
        self.mark_paid_with(id, tx_hash, &audit.reason, Some(audit))
    }

    fn mark_paid_with(
        &self,
        id: DisbursementId,
        tx_hash: &str,
        reason: &str,
        audit: Option<&Audit>,
    ) -> Result<Disbursement, RequestError> {
        let outcome = self.transact(|txn| {
            let held = txn
                .get_json::<ExecutorSnapshot>(Kind::Meta, EXECUTOR)?
                .and_then(|snapshot| snapshot.hold);
            if !matches!(held, Some(Hold::NonceDrift { .. })) {
                return Ok(Err(RequestError::Conflict(format!(
                    "only while the executor holds on a nonce drift ({})",
                    describe_hold(held.as_ref())
                ))));
            }
            let key = u64_key(id);
            let Some(record) = txn.get::<Disbursement>(Kind::Disbursements, &key)? else {
                return Ok(Err(RequestError::NotFound(id)));
            };
            if !matches!(
                record.status,
                DisbursementStatus::Queued | DisbursementStatus::AwaitingApproval
            ) {
                return Ok(Err(RequestError::Conflict(format!(
                    "disbursement {id} is {}, not queued",
                    record.status.name()
                ))));
            }
            txn.take(Kind::Scheduled, &pair_key(record.activation_epoch, id))?;
            txn.take(Kind::Ready, &key)?;
            // The spending policy held it back, or it awaited approvals: paid after all
            // (a restored backup forgot the payment).
            txn.take(Kind::Held, &key)?;
            txn.take(Kind::Awaiting, &key)?;
            let epoch_seen = txn.counter(EPOCH)?;
            let record = execute(
                txn,
                epoch_seen,
                id,
                DisbursementStatus::Executed {
                    tx_hash: tx_hash.to_owned(),
                    block: 0,
                    resolution: Some(format!("marked paid by an operator: {reason}")),
                },
            )?;
            if let Some(audit) = audit {
                let detail = format!("disbursement {id}: paid by {tx_hash}");
                write_audit(txn, audit, "disbursement.mark_paid", reason, &detail)?;
            }
            Ok(Ok(record))
        });
        outcome?
    }
}

/// What [`GovStore::apply_decision`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Settled {
    /// The decision waiting was another one: nothing written.
    Superseded,
    /// Applied; a resolution's disbursement as it now is.
    Applied(Option<Box<Disbursement>>),
}

/// The executor's audit of an operator's decision: as the executor, with the decision's
/// reason and time.
fn executor_audit(auditor: &str, decision: &Decision) -> Audit {
    Audit {
        actor: auditor.to_owned(),
        reason: decision.reason.clone(),
        at_ms: crate::text::unix_ms(),
        unverified_actor: None,
    }
}

/// The transaction of [`GovStore::apply_decision`]: `decision` applied and forgotten.
fn apply_in(txn: &mut Txn<'_>, decision: &Decision) -> Result<Option<Disbursement>, StoreError> {
    txn.delete(Kind::Meta, DECISION);
    let (resolution, nonce, landed) = match (&decision.action, &decision.hold) {
        (Action::Resolve { resolution }, Hold::ForeignNonce { nonce, .. }) => {
            (resolution, *nonce, None)
        }
        (
            Action::Resolve { resolution },
            Hold::Mismatch {
                nonce,
                tx_hash,
                block,
                ..
            },
        ) => (resolution, *nonce, Some((tx_hash, *block))),
        (Action::AdoptNonce { nonce }, Hold::NonceDrift { ledger, .. }) => {
            txn.set_counter(NEXT_NONCE, nonce.unwrap_or(*ledger));
            return Ok(None);
        }
        _ => return Ok(None), // answers nothing: `answers` keeps these out
    };
    let key = u64_key(nonce);
    let intent: Intent = txn.need(Kind::Intents, &key)?;
    txn.delete(Kind::Intents, &key);
    let record = match resolution {
        Resolution::Paid { tx_hash } => {
            let epoch_seen = txn.counter(EPOCH)?;
            // A mismatch's own transaction is the payment unless the operator names another.
            let (tx_hash, block) = match (tx_hash, landed) {
                (Some(hash), Some((own, block))) if hash.eq_ignore_ascii_case(own) => {
                    (own.clone(), block)
                }
                (Some(hash), _) => (hash.clone(), 0),
                (None, Some((hash, block))) => (hash.clone(), block),
                (None, None) => (String::new(), 0),
            };
            execute(
                txn,
                epoch_seen,
                intent.id,
                DisbursementStatus::Executed {
                    tx_hash,
                    block,
                    resolution: Some(format!(
                        "paid, as {} found: {}",
                        decision.actor, decision.reason
                    )),
                },
            )?
        }
        // An operator asked to cancel it meanwhile: now it can be, outright.
        Resolution::NotPaid if intent.cancel.is_some() => {
            cancel_cascade(txn, intent.id, intent.cancel.clone().unwrap_or_default())?
        }
        Resolution::NotPaid => {
            let id = u64_key(intent.id);
            let mut record: Disbursement = txn.need(Kind::Disbursements, &id)?;
            put_status(txn, &mut record, DisbursementStatus::Queued);
            // It was ready when it was staged: its epoch and dependencies have
            // not changed since.
            txn.put_raw(Kind::Ready, &id, vec![]);
            record
        }
    };
    Ok(Some(record))
}
