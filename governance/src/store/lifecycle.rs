//! The executor's steps, each one transaction: activate what is due, stage signed intents,
//! record what the ledger said, write a replacement ahead, and give back a nonce that
//! never left the node.
//!
//! The binding rule is kept here as well as in the executor: an intent that may have
//! been broadcast (`bound`) is never unstaged, never cancelled outright, never re-signed
//! at another nonce. Asked to, the store refuses ([`StoreError::Invariant`]).

use sled::Transactional;
use sled::transaction::TransactionalTree;

use super::codec::{decode, decode_u64, key_pair, key_u64, pair_key, u64_key};
use super::records::{Attempt, Inclusion, Intent};
use super::{
    DISBURSEMENTS, EPOCH, GovStore, INTENTS, META, NEXT_NONCE, READY, SCHEDULED, StoreError,
    TxResult, abort, cancel_cascade, execute, flatten, tx_counter, tx_need, tx_put,
};
use crate::ledger::AttemptKind;
use crate::treasury::{Disbursement, DisbursementStatus};

/// What the ledger said of an intent, recorded with the others of its tick in one
/// transaction. Each is applied to the intent as stored (read in the transaction), so an
/// operator's concurrent cancellation request is never written over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// The attempt with `tx_hash` was handed to an endpoint: the intent is bound. If the
    /// endpoint accepted it, it is submitted, and the attempt's first acceptance (head
    /// number and time) is remembered for fee bumps.
    Sent {
        nonce: u64,
        tx_hash: String,
        accepted: bool,
        head: u64,
        at_ms: u64,
    },
    /// One of its transactions is in a block not yet deep enough (or seen again there,
    /// with more confirmations).
    Included { nonce: u64, inclusion: Inclusion },
    /// The block that held it left the chain.
    Reorged { nonce: u64 },
    /// In a block at depth: the payment is Executed; a reverted payment or a
    /// cancellation makes it Cancelled. The intent is done.
    Finalized { nonce: u64, inclusion: Inclusion },
}

impl Change {
    fn nonce(&self) -> u64 {
        match self {
            Change::Sent { nonce, .. }
            | Change::Included { nonce, .. }
            | Change::Reorged { nonce }
            | Change::Finalized { nonce, .. } => *nonce,
        }
    }
}

impl GovStore {
    /// Moves scheduled disbursements whose activation epoch has come to `ready`, and
    /// remembers `epoch` so that later ones due by then are indexed ready at once.
    /// Returns how many moved. One cancelled by an operator since the index was read
    /// stays cancelled (it is no longer in `scheduled`).
    pub(crate) fn activate(&self, epoch: u64) -> Result<usize, StoreError> {
        let due: Vec<(u64, u64)> = self
            .scheduled
            .range(..pair_key(epoch.saturating_add(1), 0))
            .keys()
            .map(|key| key_pair(SCHEDULED, &key?))
            .collect::<Result<_, _>>()?;
        let seen = match self.meta.get(EPOCH)? {
            Some(bytes) => Some(decode_u64(META, EPOCH, &bytes)?),
            None => None,
        };
        let advance = seen.is_none_or(|seen| epoch > seen);
        if due.is_empty() && !advance {
            return Ok(0);
        }
        self.make_ready(&due, advance.then_some(epoch))
    }

    /// Moves the `due` (activation epoch, id) pairs still in `scheduled` to `ready`, and
    /// records `epoch` as seen. One not in `scheduled` any more (cancelled since `due` was
    /// read) is left alone.
    pub(super) fn make_ready(
        &self,
        due: &[(u64, u64)],
        epoch: Option<u64>,
    ) -> Result<usize, StoreError> {
        let trees = (&self.scheduled, &self.ready, &self.meta);
        let outcome = trees.transaction(|(scheduled, ready, meta)| {
            let mut moved = 0;
            for &(at, id) in due {
                // Read in the transaction: an operator's cancel removes it from
                // `scheduled`, and it must not come back as ready.
                if scheduled.remove(&pair_key(at, id))?.is_some() {
                    ready.insert(&u64_key(id), &[])?;
                    moved += 1;
                }
            }
            if let Some(epoch) = epoch {
                meta.insert(EPOCH, &u64_key(epoch))?;
            }
            Ok(moved)
        });
        flatten(outcome)
    }

    /// Up to `limit` ready disbursements, lowest id first.
    pub(crate) fn ready(&self, limit: usize) -> Result<Vec<Disbursement>, StoreError> {
        let mut out = Vec::with_capacity(limit.min(1024));
        for key in self.ready.iter().keys().take(limit) {
            let id = key_u64(READY, &key?)?;
            match self.get(id)? {
                Some(record) => out.push(record),
                None => {
                    return Err(StoreError::Missing {
                        tree: DISBURSEMENTS,
                        key: id.to_string(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Every intent in flight (staged, submitted or included), lowest nonce first.
    pub fn intents(&self) -> Result<Vec<Intent>, StoreError> {
        self.intents
            .iter()
            .map(|entry| {
                let (key, value) = entry?;
                decode(INTENTS, &key, &value)
            })
            .collect()
    }

    /// Whether any intent is in flight.
    pub(crate) fn has_intents(&self) -> Result<bool, StoreError> {
        Ok(self.intents.iter().next().transpose()?.is_some())
    }

    /// The next nonce to sign with, once known.
    pub fn next_nonce(&self) -> Result<Option<u64>, StoreError> {
        match self.meta.get(NEXT_NONCE)? {
            Some(bytes) => decode_u64(META, NEXT_NONCE, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Sets the next nonce: the ledger's, at the executor's first contact.
    pub(crate) fn set_next_nonce(&self, nonce: u64) -> Result<(), StoreError> {
        self.meta.insert(NEXT_NONCE, &u64_key(nonce))?;
        Ok(())
    }

    /// Stages signed intents in one transaction: each disbursement (ready, queued) becomes
    /// Staged, its intent is stored, and the next nonce moves past them. The caller
    /// flushes before anything reaches the ledger.
    ///
    /// Returns `false`, staging nothing, if one of them is no longer queued and ready (an
    /// operator cancelled it since the executor read the index): the caller signs afresh.
    pub(crate) fn stage(&self, intents: &[Intent], next_nonce: u64) -> Result<bool, StoreError> {
        let trees = (&self.disbursements, &self.ready, &self.intents, &self.meta);
        let outcome = trees.transaction(|(disbursements, ready, stored, meta)| {
            let mut records = Vec::with_capacity(intents.len());
            for intent in intents {
                let key = u64_key(intent.id);
                let record: Disbursement = tx_need(disbursements, DISBURSEMENTS, &key)?;
                if record.status != DisbursementStatus::Queued || ready.get(key)?.is_none() {
                    return Ok(false); // nothing written yet: the transaction changes nothing
                }
                if stored.get(u64_key(intent.nonce))?.is_some() {
                    return abort(StoreError::Invariant {
                        tree: INTENTS,
                        key: intent.nonce.to_string(),
                        reason: "the nonce already has an intent: refusing to sign it again".into(),
                    });
                }
                records.push(record);
            }
            for (intent, mut record) in intents.iter().zip(records) {
                let key = u64_key(intent.id);
                ready.remove(&key)?;
                record.status = intent.status();
                tx_put(disbursements, &key, &record)?;
                tx_put(stored, &u64_key(intent.nonce), intent)?;
            }
            meta.insert(NEXT_NONCE, &u64_key(next_nonce))?;
            Ok(true)
        });
        flatten(outcome)
    }

    /// Records what the ledger said, in one transaction (see [`Change`]). Dependents of an
    /// executed disbursement whose dependencies are now all executed are scheduled; those
    /// of a cancelled one are cancelled. No nonce is rewound: a finalized intent's nonce
    /// is spent on chain.
    pub(crate) fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let outcome = self.lifecycle_trees().transaction(
            |(disbursements, dependents, scheduled, ready, intents, meta)| {
                let epoch_seen = tx_counter(meta, EPOCH)?;
                for change in changes {
                    let key = u64_key(change.nonce());
                    let mut intent: Intent = tx_need(intents, INTENTS, &key)?;
                    match change {
                        Change::Sent {
                            tx_hash,
                            accepted,
                            head,
                            at_ms,
                            ..
                        } => {
                            intent.bound = true;
                            if *accepted {
                                intent.submitted = true;
                                if let Some(attempt) = intent
                                    .attempts
                                    .iter_mut()
                                    .find(|a| a.tx.tx_hash == *tx_hash)
                                {
                                    attempt.sent_at_block.get_or_insert(*head);
                                    attempt.sent_at_ms.get_or_insert(*at_ms);
                                }
                            }
                        }
                        Change::Included { inclusion, .. } => {
                            intent.bound = true;
                            intent.submitted = true;
                            intent.inclusion = Some(inclusion.clone());
                        }
                        Change::Reorged { .. } => intent.inclusion = None,
                        Change::Finalized { inclusion, .. } => {
                            intents.remove(&key)?;
                            finalize(
                                (disbursements, dependents, scheduled, ready),
                                epoch_seen,
                                &intent,
                                inclusion,
                            )?;
                            continue;
                        }
                    }
                    tx_put(intents, &key, &intent)?;
                    set_status(disbursements, &intent)?;
                }
                Ok(())
            },
        );
        flatten(outcome)
    }

    /// Adds a replacement (a fee bump, or a cancellation) to the intent at `nonce`, in
    /// one transaction; the caller flushes before broadcasting it. Returns the intent as
    /// stored.
    pub(crate) fn add_attempt(&self, nonce: u64, attempt: &Attempt) -> Result<Intent, StoreError> {
        let trees = (&self.disbursements, &self.intents);
        let outcome = trees.transaction(|(disbursements, intents)| {
            let key = u64_key(nonce);
            let mut intent: Intent = tx_need(intents, INTENTS, &key)?;
            intent.attempts.push(attempt.clone());
            tx_put(intents, &key, &intent)?;
            set_status(disbursements, &intent)?;
            Ok(intent)
        });
        flatten(outcome)
    }

    /// Cancels the disbursement of the intent at `nonce`, which never left the node (the
    /// ledger refused every hand-over of it, or an operator cancelled it before): its
    /// dependents too, every later intent (none of which left the node either) back to
    /// ready, and the next nonce back to `nonce`, so that no gap is left.
    pub(crate) fn cancel_unbound(
        &self,
        nonce: u64,
        reason: &str,
    ) -> Result<Disbursement, StoreError> {
        self.give_back(nonce, Some(reason))?
            .ok_or_else(|| StoreError::Missing {
                tree: INTENTS,
                key: nonce.to_string(),
            })
    }

    /// Returns the intent at `nonce` and every later one, none of which left the node, to
    /// ready (a disbursement an operator asked to cancel meanwhile is cancelled instead),
    /// and the next nonce to `nonce`: they will be signed afresh.
    pub(crate) fn unstage_from(&self, nonce: u64) -> Result<(), StoreError> {
        self.give_back(nonce, None).map(|_| ())
    }

    /// `cancel_unbound` (with a reason) or `unstage_from` (without).
    fn give_back(
        &self,
        nonce: u64,
        reason: Option<&str>,
    ) -> Result<Option<Disbursement>, StoreError> {
        let nonces: Vec<u64> = self
            .intents
            .range(u64_key(nonce)..)
            .keys()
            .map(|key| key_u64(INTENTS, &key?))
            .collect::<Result<_, _>>()?;
        let outcome = self.lifecycle_trees().transaction(
            |(disbursements, dependents, scheduled, ready, intents, meta)| {
                let mut cancelled = None;
                for &at in &nonces {
                    let key = u64_key(at);
                    let Some(intent) = super::tx_get::<Intent>(intents, INTENTS, &key)? else {
                        continue;
                    };
                    if intent.bound {
                        return abort(StoreError::Invariant {
                            tree: INTENTS,
                            key: at.to_string(),
                            reason: format!(
                                "the intent of disbursement {} may have been broadcast: it \
                                 stays bound to its nonce",
                                intent.id
                            ),
                        });
                    }
                    intents.remove(&key)?;
                    let cancel = match (at == nonce, reason) {
                        (true, Some(reason)) => Some(reason.to_owned()),
                        _ => intent.cancel.clone(),
                    };
                    match cancel {
                        Some(reason) => {
                            let record = cancel_cascade(
                                disbursements,
                                dependents,
                                scheduled,
                                ready,
                                intent.id,
                                reason,
                            )?;
                            if at == nonce {
                                cancelled = Some(record);
                            }
                        }
                        None => {
                            let id_key = u64_key(intent.id);
                            let mut record: Disbursement =
                                tx_need(disbursements, DISBURSEMENTS, &id_key)?;
                            record.status = DisbursementStatus::Queued;
                            tx_put(disbursements, &id_key, &record)?;
                            ready.insert(&id_key, &[])?;
                        }
                    }
                }
                meta.insert(NEXT_NONCE, &u64_key(nonce))?;
                Ok(cancelled)
            },
        );
        flatten(outcome)
    }

    /// Marks every intent bound: at start, since a process that died may have handed any
    /// of them over without recording it. Returns how many were not bound yet.
    pub(crate) fn bind_all(&self) -> Result<usize, StoreError> {
        let loose: Vec<Intent> = self.intents()?.into_iter().filter(|i| !i.bound).collect();
        if loose.is_empty() {
            return Ok(0);
        }
        let outcome = self.intents.transaction(|intents| {
            for intent in &loose {
                let key = u64_key(intent.nonce);
                let mut stored: Intent = tx_need(intents, INTENTS, &key)?;
                stored.bound = true;
                tx_put(intents, &key, &stored)?;
            }
            Ok(())
        });
        flatten(outcome)?;
        Ok(loose.len())
    }
}

/// Writes the disbursement's status as its intent reads.
fn set_status(disbursements: &TransactionalTree, intent: &Intent) -> TxResult<()> {
    let key = u64_key(intent.id);
    let mut record: Disbursement = tx_need(disbursements, DISBURSEMENTS, &key)?;
    record.status = intent.status();
    tx_put(disbursements, &key, &record)
}

/// The end of an intent: what landed at depth decides.
fn finalize(
    (disbursements, dependents, scheduled, ready): (
        &TransactionalTree,
        &TransactionalTree,
        &TransactionalTree,
        &TransactionalTree,
    ),
    epoch_seen: Option<u64>,
    intent: &Intent,
    inclusion: &Inclusion,
) -> TxResult<()> {
    let Inclusion {
        tx_hash,
        kind,
        block,
        reverted,
        ..
    } = inclusion;
    let reason = match (kind, reverted) {
        (AttemptKind::Payment, false) => {
            let status = DisbursementStatus::Executed {
                tx_hash: tx_hash.clone(),
                block: *block,
                resolution: None,
            };
            execute(
                disbursements,
                dependents,
                scheduled,
                ready,
                epoch_seen,
                intent.id,
                status,
            )?;
            return Ok(());
        }
        (AttemptKind::Payment, true) => {
            format!("reverted on chain in block {block} (transaction {tx_hash}): nothing was paid")
        }
        (AttemptKind::Cancellation, _) => format!(
            "cancelled by replacement ({}): transaction {tx_hash} took nonce {} in block \
             {block}; nothing was paid",
            intent.cancel.as_deref().unwrap_or("no reason recorded"),
            intent.nonce
        ),
    };
    cancel_cascade(
        disbursements,
        dependents,
        scheduled,
        ready,
        intent.id,
        reason,
    )?;
    Ok(())
}
