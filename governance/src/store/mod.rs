//! `GovStore`: the treasury's durable state on sled.
//!
//! One tree per record kind, plus the indexes that keep a tick off history:
//!
//! | tree            | key                      | value                                   |
//! |-----------------|--------------------------|-----------------------------------------|
//! | `disbursements` | id                       | `Disbursement` (JSON)                   |
//! | `dependents`    | id                       | ids still waiting for it (JSON)         |
//! | `scheduled`     | (activation epoch, id)   | empty: queued, dependencies executed    |
//! | `ready`         | id                       | empty: scheduled and its epoch reached  |
//! | `intents`       | nonce                    | `Intent` (JSON): staged or submitted    |
//! | `external_keys` | key                      | id                                      |
//! | `meta`          | name                     | counters and snapshots                  |
//! | `audit`         | sequence                 | `AuditRecord` (JSON)                    |
//!
//! Integers are big-endian so that sled orders them. Every change that touches more
//! than one record is one sled transaction. A record that does not decode is a
//! [`StoreError::Corrupt`] naming its tree and key, never a panic.

mod codec;
mod error;
mod records;

#[cfg(test)]
mod tests;

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use crate::circuit_breaker::{CircuitBreaker, CircuitBreakerSnapshot};
use crate::treasury::{
    Disbursement, DisbursementId, DisbursementStatus, NewDisbursement, QueueError,
};

use codec::{decode, decode_u64, encode, key_pair, key_u64, pair_key, show_key, u64_key};
pub use error::StoreError;
pub use records::{AuditRecord, Backlog, ExecutorSnapshot, Intent};

const DISBURSEMENTS: &str = "disbursements";
const DEPENDENTS: &str = "dependents";
const SCHEDULED: &str = "scheduled";
const READY: &str = "ready";
const INTENTS: &str = "intents";
const EXTERNAL_KEYS: &str = "external_keys";
const META: &str = "meta";
const AUDIT: &str = "audit";

const NEXT_ID: &[u8] = b"next_id";
const NEXT_NONCE: &[u8] = b"next_nonce";
const NEXT_AUDIT: &[u8] = b"next_audit";
const BREAKER: &[u8] = b"breaker";
const EXECUTOR: &[u8] = b"executor";
/// The latest ledger epoch [`GovStore::activate`] has seen: a disbursement whose
/// activation epoch is not after it goes straight to `ready`.
const EPOCH: &[u8] = b"epoch";

/// The outcome of [`GovStore::queue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// The disbursement, new or (for a repeated external key) the existing one.
    pub disbursement: Disbursement,
    /// `false` when the external key was already queued.
    pub created: bool,
}

/// Why [`GovStore::queue`] or [`GovStore::cancel`] did nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The request is invalid; nothing was stored.
    #[error(transparent)]
    Invalid(#[from] QueueError),
    /// Item `index` of a batch is invalid; nothing of the batch was stored.
    #[error("item {index}: {error}")]
    InvalidItem {
        /// Its position in the batch, from 0.
        index: usize,
        /// What is wrong with it.
        error: QueueError,
    },
    /// No disbursement has this id.
    #[error("disbursement {0} not found")]
    NotFound(DisbursementId),
    /// The disbursement is past the point where it can be cancelled.
    #[error("disbursement {id} is {status} and can no longer be cancelled")]
    NotCancellable {
        /// Its id.
        id: DisbursementId,
        /// Its status's name.
        status: &'static str,
    },
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StoreError),
}

/// What [`GovStore::queue_batch`] decided for one item before writing anything.
enum Plan {
    /// Its external key is already queued: this is the first disbursement.
    Existing(Disbursement),
    /// New, waiting for these dependencies to execute.
    New(Vec<DisbursementId>),
}

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

fn abort<T>(error: StoreError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(error))
}

fn tx_get<T: DeserializeOwned>(
    tree: &TransactionalTree,
    name: &'static str,
    key: &[u8],
) -> TxResult<Option<T>> {
    match tree.get(key)? {
        Some(bytes) => decode(name, key, &bytes).map(Some).or_else(abort),
        None => Ok(None),
    }
}

fn tx_need<T: DeserializeOwned>(
    tree: &TransactionalTree,
    name: &'static str,
    key: &[u8],
) -> TxResult<T> {
    match tx_get(tree, name, key)? {
        Some(value) => Ok(value),
        None => abort(StoreError::Missing {
            tree: name,
            key: show_key(key),
        }),
    }
}

fn tx_put<T: Serialize>(tree: &TransactionalTree, key: &[u8], value: &T) -> TxResult<()> {
    tree.insert(key, encode(value))?;
    Ok(())
}

fn tx_counter(tree: &TransactionalTree, key: &'static [u8]) -> TxResult<Option<u64>> {
    match tree.get(key)? {
        Some(bytes) => decode_u64(META, key, &bytes).map(Some).or_else(abort),
        None => Ok(None),
    }
}

/// Indexes a queued disbursement whose dependencies are all executed: `ready` if its
/// activation epoch has already been seen, else `scheduled` until it comes.
fn tx_schedule(
    scheduled: &TransactionalTree,
    ready: &TransactionalTree,
    epoch_seen: Option<u64>,
    activation_epoch: u64,
    id: DisbursementId,
) -> TxResult<()> {
    if epoch_seen.is_some_and(|seen| activation_epoch <= seen) {
        ready.insert(&u64_key(id), &[])?;
    } else {
        scheduled.insert(&pair_key(activation_epoch, id), &[])?;
    }
    Ok(())
}

fn flatten<T>(result: Result<T, TransactionError<StoreError>>) -> Result<T, StoreError> {
    result.map_err(|error| match error {
        TransactionError::Abort(error) => error,
        TransactionError::Storage(error) => error.into(),
    })
}

/// The treasury's store. Cheap to share: sled handles are reference-counted.
#[derive(Debug, Clone)]
pub struct GovStore {
    db: sled::Db,
    disbursements: sled::Tree,
    dependents: sled::Tree,
    scheduled: sled::Tree,
    ready: sled::Tree,
    intents: sled::Tree,
    external_keys: sled::Tree,
    meta: sled::Tree,
    audit: sled::Tree,
    /// Serialises breaker saves, each snapshot taken under it: see
    /// [`save_breaker`](Self::save_breaker).
    breaker_save: std::sync::Arc<std::sync::Mutex<()>>,
}

impl GovStore {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<GovStore, StoreError> {
        Self::with_db(sled::Config::new().path(path).open()?)
    }

    /// A store that lives in a temporary directory and vanishes when dropped.
    pub fn open_temporary() -> Result<GovStore, StoreError> {
        Self::with_db(sled::Config::new().temporary(true).open()?)
    }

    fn with_db(db: sled::Db) -> Result<GovStore, StoreError> {
        Ok(GovStore {
            disbursements: db.open_tree(DISBURSEMENTS)?,
            dependents: db.open_tree(DEPENDENTS)?,
            scheduled: db.open_tree(SCHEDULED)?,
            ready: db.open_tree(READY)?,
            intents: db.open_tree(INTENTS)?,
            external_keys: db.open_tree(EXTERNAL_KEYS)?,
            meta: db.open_tree(META)?,
            audit: db.open_tree(AUDIT)?,
            breaker_save: std::sync::Arc::default(),
            db,
        })
    }

    /// Makes every change so far durable (an fsync).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// A tree of the same database for another component's own records (the node's dev
    /// ledger keeps its chain here). Named `aux/<name>`, apart from the store's trees.
    pub fn aux_tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(format!("aux/{name}"))?)
    }

    /// The raw tree named `name`, for tests that damage records on purpose.
    #[cfg(any(test, feature = "test-support"))]
    pub fn raw_tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(name)?)
    }

    // ----- disbursements ---------------------------------------------------------------

    /// Queues a disbursement, allocating its id. Queueing an external key again returns
    /// the first disbursement (`created: false`). Call [`flush`](Self::flush) before
    /// acknowledging it to anyone.
    pub fn queue(&self, new: &NewDisbursement, now_ms: u64) -> Result<Queued, RequestError> {
        match self.queue_batch(std::slice::from_ref(new), now_ms) {
            Ok(mut queued) => queued
                .pop()
                .ok_or(RequestError::Storage(StoreError::Missing {
                    tree: DISBURSEMENTS,
                    key: "the queued disbursement".into(),
                })),
            Err(RequestError::InvalidItem { error, .. }) => Err(RequestError::Invalid(error)),
            Err(other) => Err(other),
        }
    }

    /// Queues a batch (a governance proposal's payouts) in one transaction: all of it or,
    /// if any item is invalid, none of it ([`RequestError::InvalidItem`] names the first).
    /// Ids are allocated in the batch's order; an item may depend on ids queued before
    /// the batch. An external key already queued (or repeated within the batch) yields
    /// the first disbursement with `created: false`. Call [`flush`](Self::flush) before
    /// acknowledging it to anyone.
    pub fn queue_batch(
        &self,
        batch: &[NewDisbursement],
        now_ms: u64,
    ) -> Result<Vec<Queued>, RequestError> {
        for (index, new) in batch.iter().enumerate() {
            new.validate()
                .map_err(|error| RequestError::InvalidItem { index, error })?;
        }
        let trees = (
            &self.disbursements,
            &self.dependents,
            &self.scheduled,
            &self.ready,
            &self.external_keys,
            &self.meta,
        );
        let outcome = trees.transaction(
            |(disbursements, dependents, scheduled, ready, external_keys, meta)| {
                // Read-only first, so that an invalid item leaves nothing written.
                let mut plans = Vec::with_capacity(batch.len());
                for (index, new) in batch.iter().enumerate() {
                    if let Some(key) = &new.external_key
                        && let Some(id) = external_keys.get(key.as_bytes())?
                    {
                        let id = decode_u64(EXTERNAL_KEYS, key.as_bytes(), &id).or_else(abort)?;
                        plans.push(Plan::Existing(tx_need(
                            disbursements,
                            DISBURSEMENTS,
                            &u64_key(id),
                        )?));
                        continue;
                    }
                    let mut waiting_for = vec![];
                    for &dep in &new.depends_on {
                        let Some(record) =
                            tx_get::<Disbursement>(disbursements, DISBURSEMENTS, &u64_key(dep))?
                        else {
                            return Ok(Err((index, QueueError::UnknownDependency(dep))));
                        };
                        match record.status {
                            DisbursementStatus::Executed { .. } => {}
                            DisbursementStatus::Cancelled { .. } => {
                                return Ok(Err((index, QueueError::CancelledDependency(dep))));
                            }
                            _ => waiting_for.push(dep),
                        }
                    }
                    plans.push(Plan::New(waiting_for));
                }
                let first_id = tx_counter(meta, NEXT_ID)?.unwrap_or(0);
                let epoch_seen = tx_counter(meta, EPOCH)?;
                let mut next_id = first_id;
                let mut out: Vec<Queued> = Vec::with_capacity(batch.len());
                let mut keys_in_batch: Vec<(&str, usize)> = vec![];
                for (new, plan) in batch.iter().zip(plans) {
                    let waiting_for = match plan {
                        Plan::Existing(disbursement) => {
                            out.push(Queued {
                                disbursement,
                                created: false,
                            });
                            continue;
                        }
                        Plan::New(waiting_for) => waiting_for,
                    };
                    if let Some(key) = &new.external_key
                        && let Some(&(_, first)) =
                            keys_in_batch.iter().find(|(seen, _)| *seen == key.as_str())
                    {
                        let disbursement = out[first].disbursement.clone();
                        out.push(Queued {
                            disbursement,
                            created: false,
                        });
                        continue;
                    }
                    let id = next_id;
                    next_id += 1;
                    let disbursement = Disbursement {
                        id,
                        destination: new.destination.clone(),
                        amount: new.amount,
                        memo: new.memo.clone(),
                        activation_epoch: new.activation_epoch,
                        depends_on: new.depends_on.clone(),
                        external_key: new.external_key.clone(),
                        status: DisbursementStatus::Queued,
                        queued_at_ms: now_ms,
                    };
                    tx_put(disbursements, &u64_key(id), &disbursement)?;
                    for &dep in &waiting_for {
                        let mut list: Vec<DisbursementId> =
                            tx_get(dependents, DEPENDENTS, &u64_key(dep))?.unwrap_or_default();
                        list.push(id);
                        tx_put(dependents, &u64_key(dep), &list)?;
                    }
                    if waiting_for.is_empty() {
                        tx_schedule(scheduled, ready, epoch_seen, new.activation_epoch, id)?;
                    }
                    if let Some(key) = &new.external_key {
                        external_keys.insert(key.as_bytes(), &u64_key(id))?;
                        keys_in_batch.push((key.as_str(), out.len()));
                    }
                    out.push(Queued {
                        disbursement,
                        created: true,
                    });
                }
                if next_id != first_id {
                    meta.insert(NEXT_ID, &u64_key(next_id))?;
                }
                Ok(Ok(out))
            },
        );
        flatten(outcome)?.map_err(|(index, error)| RequestError::InvalidItem { index, error })
    }

    /// The disbursement with this id.
    pub fn get(&self, id: DisbursementId) -> Result<Option<Disbursement>, StoreError> {
        let key = u64_key(id);
        match self.disbursements.get(key)? {
            Some(bytes) => decode(DISBURSEMENTS, &key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Up to `limit` disbursements with ids after `after`, in id order.
    pub fn list(
        &self,
        after: Option<DisbursementId>,
        limit: usize,
    ) -> Result<Vec<Disbursement>, StoreError> {
        let start = after.map_or(0, |id| id.saturating_add(1));
        self.disbursements
            .range(u64_key(start)..)
            .take(limit)
            .map(|entry| {
                let (key, value) = entry?;
                decode(DISBURSEMENTS, &key, &value)
            })
            .collect()
    }

    /// An operator's cancel. Only a queued disbursement can be cancelled: once staged, a
    /// signed transaction may already be on its way. Its dependents are cancelled too.
    pub fn cancel(&self, id: DisbursementId, reason: &str) -> Result<Disbursement, RequestError> {
        let trees = (
            &self.disbursements,
            &self.dependents,
            &self.scheduled,
            &self.ready,
        );
        let outcome = trees.transaction(|(disbursements, dependents, scheduled, ready)| {
            let Some(record) = tx_get::<Disbursement>(disbursements, DISBURSEMENTS, &u64_key(id))?
            else {
                return Ok(Err(RequestError::NotFound(id)));
            };
            if record.status != DisbursementStatus::Queued {
                return Ok(Err(RequestError::NotCancellable {
                    id,
                    status: record.status.name(),
                }));
            }
            let cancelled = cancel_cascade(
                disbursements,
                dependents,
                scheduled,
                ready,
                id,
                reason.to_owned(),
            )?;
            Ok(Ok(cancelled))
        });
        flatten(outcome)?
    }

    // ----- the executor's steps --------------------------------------------------------

    /// Moves scheduled disbursements whose activation epoch has come to `ready`, and
    /// remembers `epoch` so that later ones due by then are indexed ready at once.
    /// Returns how many moved.
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
        let trees = (&self.scheduled, &self.ready, &self.meta);
        let outcome = trees.transaction(|(scheduled, ready, meta)| {
            for &(at, id) in &due {
                scheduled.remove(&pair_key(at, id))?;
                ready.insert(&u64_key(id), &[])?;
            }
            if advance {
                meta.insert(EPOCH, &u64_key(epoch))?;
            }
            Ok(())
        });
        flatten(outcome)?;
        Ok(due.len())
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

    /// Every staged or submitted intent, lowest nonce first.
    pub(crate) fn intents(&self) -> Result<Vec<Intent>, StoreError> {
        self.intents
            .iter()
            .map(|entry| {
                let (key, value) = entry?;
                decode(INTENTS, &key, &value)
            })
            .collect()
    }

    /// The next nonce to sign with, once known.
    pub(crate) fn next_nonce(&self) -> Result<Option<u64>, StoreError> {
        match self.meta.get(NEXT_NONCE)? {
            Some(bytes) => decode_u64(META, NEXT_NONCE, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Sets the next nonce (from the ledger, when the store has none).
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
                records.push(record);
            }
            for (intent, mut record) in intents.iter().zip(records) {
                let key = u64_key(intent.id);
                ready.remove(&key)?;
                record.status = DisbursementStatus::Staged {
                    nonce: intent.nonce,
                    tx_hash: intent.tx.tx_hash.clone(),
                };
                tx_put(disbursements, &key, &record)?;
                tx_put(stored, &u64_key(intent.nonce), intent)?;
            }
            meta.insert(NEXT_NONCE, &u64_key(next_nonce))?;
            Ok(true)
        });
        flatten(outcome)
    }

    /// Records what the ledger said, in one transaction: the intents with the nonces in
    /// `submitted` were accepted; those in `executed` are in the given blocks (their
    /// disbursements become Executed, the intents are dropped, and dependents whose
    /// dependencies are now all executed are scheduled); those in `reverted` are in the
    /// given blocks but failed (nonce spent, nothing paid: their disbursements and
    /// dependents become Cancelled, the intents are dropped, no nonce is rewound).
    pub(crate) fn record_results(
        &self,
        submitted: &[u64],
        executed: &[(u64, u64)],
        reverted: &[(u64, u64)],
    ) -> Result<(), StoreError> {
        if submitted.is_empty() && executed.is_empty() && reverted.is_empty() {
            return Ok(());
        }
        let trees = (
            &self.disbursements,
            &self.dependents,
            &self.scheduled,
            &self.ready,
            &self.intents,
            &self.meta,
        );
        let outcome = trees.transaction(
            |(disbursements, dependents, scheduled, ready, intents, meta)| {
                let epoch_seen = tx_counter(meta, EPOCH)?;
                for &nonce in submitted {
                    let mut intent: Intent = tx_need(intents, INTENTS, &u64_key(nonce))?;
                    let key = u64_key(intent.id);
                    let mut record: Disbursement = tx_need(disbursements, DISBURSEMENTS, &key)?;
                    intent.submitted = true;
                    record.status = DisbursementStatus::Submitted {
                        nonce,
                        tx_hash: intent.tx.tx_hash.clone(),
                    };
                    tx_put(intents, &u64_key(nonce), &intent)?;
                    tx_put(disbursements, &key, &record)?;
                }
                for &(nonce, block) in executed {
                    let intent: Intent = tx_need(intents, INTENTS, &u64_key(nonce))?;
                    intents.remove(&u64_key(nonce))?;
                    let key = u64_key(intent.id);
                    let mut record: Disbursement = tx_need(disbursements, DISBURSEMENTS, &key)?;
                    record.status = DisbursementStatus::Executed {
                        tx_hash: intent.tx.tx_hash.clone(),
                        block,
                    };
                    tx_put(disbursements, &key, &record)?;
                    let Some(waiting) =
                        tx_get::<Vec<DisbursementId>>(dependents, DEPENDENTS, &key)?
                    else {
                        continue; // nothing waits for it (removing the absent key costs a write)
                    };
                    dependents.remove(&key)?;
                    for dependent in waiting {
                        let child: Disbursement =
                            tx_need(disbursements, DISBURSEMENTS, &u64_key(dependent))?;
                        if child.status != DisbursementStatus::Queued {
                            continue;
                        }
                        let mut all_executed = true;
                        for dep in &child.depends_on {
                            let parent: Disbursement =
                                tx_need(disbursements, DISBURSEMENTS, &u64_key(*dep))?;
                            all_executed &=
                                matches!(parent.status, DisbursementStatus::Executed { .. });
                        }
                        if all_executed {
                            tx_schedule(
                                scheduled,
                                ready,
                                epoch_seen,
                                child.activation_epoch,
                                dependent,
                            )?;
                        }
                    }
                }
                for &(nonce, block) in reverted {
                    let intent: Intent = tx_need(intents, INTENTS, &u64_key(nonce))?;
                    intents.remove(&u64_key(nonce))?;
                    let reason = format!(
                        "reverted on chain in block {block} (transaction {}): nothing was paid",
                        intent.tx.tx_hash
                    );
                    cancel_cascade(
                        disbursements,
                        dependents,
                        scheduled,
                        ready,
                        intent.id,
                        reason,
                    )?;
                }
                Ok(())
            },
        );
        flatten(outcome)
    }

    /// The ledger refused the intent with `nonce` for a business reason. Its disbursement
    /// (and its dependents) are cancelled, and every later intent, none of which can
    /// have reached the ledger (submission stops at the first unaccepted intent), goes
    /// back to ready, so that the nonce is reused and no gap is left.
    pub(crate) fn cancel_intent(
        &self,
        nonce: u64,
        reason: &str,
    ) -> Result<Disbursement, StoreError> {
        let later = self.later_intents(nonce)?;
        let trees = (
            &self.disbursements,
            &self.dependents,
            &self.scheduled,
            &self.ready,
            &self.intents,
            &self.meta,
        );
        let outcome = trees.transaction(
            |(disbursements, dependents, scheduled, ready, intents, meta)| {
                let intent: Intent = tx_need(intents, INTENTS, &u64_key(nonce))?;
                intents.remove(&u64_key(nonce))?;
                let cancelled = cancel_cascade(
                    disbursements,
                    dependents,
                    scheduled,
                    ready,
                    intent.id,
                    reason.to_owned(),
                )?;
                unstage(disbursements, ready, intents, &later)?;
                meta.insert(NEXT_NONCE, &u64_key(nonce))?;
                Ok(cancelled)
            },
        );
        flatten(outcome)
    }

    /// Returns the intent with `nonce` and every later one to ready, and rewinds the next
    /// nonce to `next_nonce`: for an intent the ledger says is stale ("nonce too low")
    /// but does not know by hash, so it was never paid and must be signed afresh.
    pub(crate) fn unstage_from(&self, nonce: u64, next_nonce: u64) -> Result<(), StoreError> {
        let mut all = vec![nonce];
        all.extend(self.later_intents(nonce)?);
        let trees = (&self.disbursements, &self.ready, &self.intents, &self.meta);
        let outcome = trees.transaction(|(disbursements, ready, intents, meta)| {
            unstage(disbursements, ready, intents, &all)?;
            meta.insert(NEXT_NONCE, &u64_key(next_nonce))?;
            Ok(())
        });
        flatten(outcome)
    }

    fn later_intents(&self, nonce: u64) -> Result<Vec<u64>, StoreError> {
        self.intents
            .range(u64_key(nonce.saturating_add(1))..)
            .keys()
            .map(|key| key_u64(INTENTS, &key?))
            .collect()
    }

    // ----- snapshots, audit, backlog ---------------------------------------------------

    /// The persisted breaker snapshot, if any.
    pub fn breaker_snapshot(&self) -> Result<Option<CircuitBreakerSnapshot>, StoreError> {
        self.meta_record(BREAKER)
    }

    /// Persists the breaker snapshot.
    /// Persists `breaker`'s state. Saves from several threads (the executor after a
    /// transition, an operator's override) are serialised and each takes its snapshot
    /// under the lock, so the last save holds the latest state: a snapshot taken before
    /// an override can never be written over the override's.
    pub fn save_breaker(&self, breaker: &CircuitBreaker) -> Result<(), StoreError> {
        let _saving = self
            .breaker_save
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.meta.insert(BREAKER, encode(&breaker.snapshot()))?;
        Ok(())
    }

    /// The persisted executor snapshot, if any.
    pub fn executor_snapshot(&self) -> Result<Option<ExecutorSnapshot>, StoreError> {
        self.meta_record(EXECUTOR)
    }

    /// Persists the executor snapshot.
    pub fn save_executor_snapshot(&self, snapshot: &ExecutorSnapshot) -> Result<(), StoreError> {
        self.meta.insert(EXECUTOR, encode(snapshot))?;
        Ok(())
    }

    fn meta_record<T: DeserializeOwned>(
        &self,
        key: &'static [u8],
    ) -> Result<Option<T>, StoreError> {
        match self.meta.get(key)? {
            Some(bytes) => decode(META, key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Appends an operator action to the audit log and flushes it.
    pub fn record_audit(
        &self,
        actor: &str,
        action: &str,
        reason: &str,
        detail: &str,
        at_ms: u64,
    ) -> Result<AuditRecord, StoreError> {
        let outcome = (&self.audit, &self.meta).transaction(|(audit, meta)| {
            let seq = tx_counter(meta, NEXT_AUDIT)?.unwrap_or(0);
            meta.insert(NEXT_AUDIT, &u64_key(seq + 1))?;
            let record = AuditRecord {
                seq,
                at_ms,
                actor: actor.to_owned(),
                action: action.to_owned(),
                reason: reason.to_owned(),
                detail: detail.to_owned(),
            };
            tx_put(audit, &u64_key(seq), &record)?;
            Ok(record)
        });
        let record = flatten(outcome)?;
        self.flush()?;
        Ok(record)
    }

    /// Up to `limit` audit records after sequence number `after`, oldest first.
    pub fn audit(&self, after: Option<u64>, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let start = after.map_or(0, |seq| seq.saturating_add(1));
        self.audit
            .range(u64_key(start)..)
            .take(limit)
            .map(|entry| {
                let (key, value) = entry?;
                decode(AUDIT, &key, &value)
            })
            .collect()
    }

    /// How much work is waiting. Counts the indexes, never the history.
    pub fn backlog(&self) -> Result<Backlog, StoreError> {
        let mut backlog = Backlog {
            scheduled: self.scheduled.len() as u64,
            ready: self.ready.len() as u64,
            ..Backlog::default()
        };
        for intent in self.intents()? {
            if intent.submitted {
                backlog.submitted += 1;
            } else {
                backlog.staged += 1;
            }
        }
        Ok(backlog)
    }
}

/// Cancels `id`, whatever its status (the caller has decided it may be: an operator's
/// cancel checks it is queued; a refused or reverted intent's disbursement is staged or
/// submitted), and, transitively, every queued disbursement waiting for it.
fn cancel_cascade(
    disbursements: &TransactionalTree,
    dependents: &TransactionalTree,
    scheduled: &TransactionalTree,
    ready: &TransactionalTree,
    id: DisbursementId,
    reason: String,
) -> TxResult<Disbursement> {
    let root = id;
    let mut first = None;
    let mut stack = vec![(id, reason)];
    while let Some((id, reason)) = stack.pop() {
        let key = u64_key(id);
        let mut record: Disbursement = tx_need(disbursements, DISBURSEMENTS, &key)?;
        if id != root && record.status != DisbursementStatus::Queued {
            continue; // a dependent already cancelled (a diamond), or executed
        }
        scheduled.remove(&pair_key(record.activation_epoch, id))?;
        ready.remove(&key)?;
        record.status = DisbursementStatus::Cancelled { reason };
        tx_put(disbursements, &key, &record)?;
        let waiting: Vec<DisbursementId> =
            tx_get(dependents, DEPENDENTS, &key)?.unwrap_or_default();
        dependents.remove(&key)?;
        stack.extend(
            waiting
                .into_iter()
                .map(|child| (child, format!("dependency {id} was cancelled"))),
        );
        first.get_or_insert(record);
    }
    match first {
        Some(record) => Ok(record),
        None => abort(StoreError::Missing {
            tree: DISBURSEMENTS,
            key: id.to_string(),
        }),
    }
}

/// Drops the intents with these nonces and returns their disbursements to ready.
fn unstage(
    disbursements: &TransactionalTree,
    ready: &TransactionalTree,
    intents: &TransactionalTree,
    nonces: &[u64],
) -> TxResult<()> {
    for &nonce in nonces {
        let Some(intent) = tx_get::<Intent>(intents, INTENTS, &u64_key(nonce))? else {
            continue;
        };
        intents.remove(&u64_key(nonce))?;
        let key = u64_key(intent.id);
        let mut record: Disbursement = tx_need(disbursements, DISBURSEMENTS, &key)?;
        record.status = DisbursementStatus::Queued;
        tx_put(disbursements, &key, &record)?;
        ready.insert(&key, &[])?;
    }
    Ok(())
}
