//! The executor's steps, each one transaction: activate what is due, stage signed intents,
//! record what the ledger said, write a replacement ahead, and give back a nonce that
//! never left the node.
//!
//! The binding rule is kept here as well as in the executor: an intent that may have
//! been broadcast (`bound`) is never unstaged, never cancelled outright, never re-signed
//! at another nonce. Asked to, the store refuses ([`StoreError::Invariant`]).

use super::codec::{decode, decode_u64, key_pair, key_u64};
use super::keys::{Kind, pair_key, u64_key};
use super::records::{Attempt, Inclusion, Intent};
use super::txn::Txn;
use super::{EPOCH, GovStore, NEXT_NONCE, StoreError, cancel_cascade, execute, put_status};
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
        let (start, _) = Kind::Scheduled.all();
        let end = Kind::Scheduled.key(&pair_key(epoch.saturating_add(1), 0));
        let due: Vec<(u64, u64)> = self
            .space
            .scan(&start, &end, usize::MAX)?
            .iter()
            .map(|(key, _)| key_pair(Kind::Scheduled, Kind::Scheduled.strip(key)))
            .collect::<Result<_, _>>()?;
        let seen = match self.read(Kind::Meta, EPOCH)? {
            Some(bytes) => Some(decode_u64(Kind::Meta, EPOCH, &bytes)?),
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
        self.transact(|txn| {
            let mut moved = 0;
            for &(at, id) in due {
                // Read in the transaction: an operator's cancel removes it from
                // `scheduled`, and it must not come back as ready.
                if txn.take(Kind::Scheduled, &pair_key(at, id))? {
                    txn.put_raw(Kind::Ready, &u64_key(id), vec![]);
                    moved += 1;
                }
            }
            if let Some(epoch) = epoch {
                txn.set_counter(EPOCH, epoch);
            }
            Ok(moved)
        })
    }

    /// Up to `limit` ready disbursements, lowest id first.
    pub(crate) fn ready(&self, limit: usize) -> Result<Vec<Disbursement>, StoreError> {
        let mut out = Vec::with_capacity(limit.min(1024));
        for (key, _) in self.scan(Kind::Ready, &[], limit)? {
            let id = key_u64(Kind::Ready, &key)?;
            match self.get(id)? {
                Some(record) => out.push(record),
                None => {
                    return Err(StoreError::Missing {
                        kind: Kind::Disbursements.name(),
                        key: id.to_string(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Every intent in flight (staged, submitted or included), lowest nonce first.
    pub fn intents(&self) -> Result<Vec<Intent>, StoreError> {
        self.scan(Kind::Intents, &[], usize::MAX)?
            .into_iter()
            .map(|(key, value)| decode(Kind::Intents, &key, &value))
            .collect()
    }

    /// Whether any intent is in flight.
    pub(crate) fn has_intents(&self) -> Result<bool, StoreError> {
        Ok(!self.scan(Kind::Intents, &[], 1)?.is_empty())
    }

    /// The next nonce to sign with, once known.
    pub fn next_nonce(&self) -> Result<Option<u64>, StoreError> {
        match self.read(Kind::Meta, NEXT_NONCE)? {
            Some(bytes) => decode_u64(Kind::Meta, NEXT_NONCE, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Sets the next nonce: the ledger's, at the executor's first contact.
    /// Only where the store has none: conditional on its absence, so a write of it that
    /// applies late (its answer lost, on a replicated engine) can never move a nonce the
    /// store has since advanced back. Returns the store's nonce afterwards.
    pub(crate) fn set_next_nonce(&self, nonce: u64) -> Result<u64, StoreError> {
        self.transact(|txn| match txn.counter(NEXT_NONCE)? {
            Some(current) => Ok(current),
            None => {
                txn.set_counter(NEXT_NONCE, nonce);
                Ok(nonce)
            }
        })
    }

    /// Stages signed intents in one transaction: each disbursement (ready, queued) becomes
    /// Staged, its intent is stored, and the next nonce moves past them. The caller
    /// flushes before anything reaches the ledger.
    ///
    /// Returns `false`, staging nothing, if one of them is no longer queued and ready (an
    /// operator cancelled it since the executor read the index), or the spending policy in
    /// force no longer lets it be signed (it changed since): the caller signs afresh.
    pub(crate) fn stage(&self, intents: &[Intent], next_nonce: u64) -> Result<bool, StoreError> {
        self.transact(|txn| {
            // Read in the transaction: the policy is swapped only between transactions.
            let policy = self.policy();
            let mut records = Vec::with_capacity(intents.len());
            for intent in intents {
                let key = u64_key(intent.id);
                let record: Disbursement = txn.need(Kind::Disbursements, &key)?;
                if record.status != DisbursementStatus::Queued
                    || !txn.exists(Kind::Ready, &key)?
                    || policy.check_sign(&record).is_err()
                {
                    return Ok(false); // nothing written yet: the transaction changes nothing
                }
                if txn.exists(Kind::Intents, &u64_key(intent.nonce))? {
                    return Err(StoreError::Invariant {
                        kind: Kind::Intents.name(),
                        key: intent.nonce.to_string(),
                        reason: "the nonce already has an intent: refusing to sign it again".into(),
                    });
                }
                records.push(record);
            }
            let payments: Vec<Disbursement> = records.to_vec();
            if !super::policy::count_signed(txn, &policy, &payments)? {
                return Ok(false); // over the daily limit on what is signed: nothing written
            }
            for (intent, mut record) in intents.iter().zip(records) {
                let key = u64_key(intent.id);
                txn.delete(Kind::Ready, &key);
                put_status(txn, &mut record, intent.status());
                txn.put(Kind::Intents, &u64_key(intent.nonce), intent);
            }
            txn.set_counter(NEXT_NONCE, next_nonce);
            Ok(true)
        })
    }

    /// Records what the ledger said, in one transaction (see [`Change`]). Dependents of an
    /// executed disbursement whose dependencies are now all executed are scheduled; those
    /// of a cancelled one are cancelled. No nonce is rewound: a finalized intent's nonce
    /// is spent on chain.
    pub(crate) fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        self.transact(|txn| {
            let epoch_seen = txn.counter(EPOCH)?;
            for change in changes {
                let key = u64_key(change.nonce());
                let mut intent: Intent = txn.need(Kind::Intents, &key)?;
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
                        txn.delete(Kind::Intents, &key);
                        finalize(txn, epoch_seen, &intent, inclusion)?;
                        continue;
                    }
                }
                txn.put(Kind::Intents, &key, &intent);
                set_status(txn, &intent)?;
            }
            Ok(())
        })
    }

    /// Adds a replacement (a fee bump, or a cancellation) to the intent at `nonce`, in
    /// one transaction; the caller flushes before broadcasting it. Returns the intent as
    /// stored.
    pub(crate) fn add_attempt(&self, nonce: u64, attempt: &Attempt) -> Result<Intent, StoreError> {
        self.transact(|txn| {
            let key = u64_key(nonce);
            let mut intent: Intent = txn.need(Kind::Intents, &key)?;
            intent.attempts.push(attempt.clone());
            txn.put(Kind::Intents, &key, &intent);
            set_status(txn, &intent)?;
            Ok(intent)
        })
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
                kind: Kind::Intents.name(),
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
            .scan(Kind::Intents, &u64_key(nonce), usize::MAX)?
            .iter()
            .map(|(key, _)| key_u64(Kind::Intents, key))
            .collect::<Result<_, _>>()?;
        self.transact(|txn| {
            let mut cancelled = None;
            for &at in &nonces {
                let key = u64_key(at);
                let Some(intent) = txn.get::<Intent>(Kind::Intents, &key)? else {
                    continue;
                };
                if intent.bound {
                    return Err(StoreError::Invariant {
                        kind: Kind::Intents.name(),
                        key: at.to_string(),
                        reason: format!(
                            "the intent of disbursement {} may have been broadcast: it \
                             stays bound to its nonce",
                            intent.id
                        ),
                    });
                }
                txn.delete(Kind::Intents, &key);
                let cancel = match (at == nonce, reason) {
                    (true, Some(reason)) => Some(reason.to_owned()),
                    _ => intent.cancel.clone(),
                };
                match cancel {
                    Some(reason) => {
                        let record = cancel_cascade(txn, intent.id, reason)?;
                        if at == nonce {
                            cancelled = Some(record);
                        }
                    }
                    None => {
                        let id_key = u64_key(intent.id);
                        let mut record: Disbursement = txn.need(Kind::Disbursements, &id_key)?;
                        put_status(txn, &mut record, DisbursementStatus::Queued);
                        txn.put_raw(Kind::Ready, &id_key, vec![]);
                    }
                }
            }
            txn.set_counter(NEXT_NONCE, nonce);
            Ok(cancelled)
        })
    }

    /// Marks every intent bound: at start, since a process that died may have handed any
    /// of them over without recording it. Returns how many were not bound yet.
    pub(crate) fn bind_all(&self) -> Result<usize, StoreError> {
        let loose: Vec<Intent> = self.intents()?.into_iter().filter(|i| !i.bound).collect();
        if loose.is_empty() {
            return Ok(0);
        }
        self.transact(|txn| {
            for intent in &loose {
                let key = u64_key(intent.nonce);
                let mut stored: Intent = txn.need(Kind::Intents, &key)?;
                stored.bound = true;
                txn.put(Kind::Intents, &key, &stored);
            }
            Ok(())
        })?;
        Ok(loose.len())
    }
}

/// Writes the disbursement's status as its intent reads.
fn set_status(txn: &mut Txn<'_>, intent: &Intent) -> Result<(), StoreError> {
    let key = u64_key(intent.id);
    let mut record: Disbursement = txn.need(Kind::Disbursements, &key)?;
    put_status(txn, &mut record, intent.status());
    Ok(())
}

/// The end of an intent: what landed at depth decides.
fn finalize(
    txn: &mut Txn<'_>,
    epoch_seen: Option<u64>,
    intent: &Intent,
    inclusion: &Inclusion,
) -> Result<(), StoreError> {
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
            execute(txn, epoch_seen, intent.id, status)?;
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
    cancel_cascade(txn, intent.id, reason)?;
    Ok(())
}
