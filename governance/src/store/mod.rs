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
//! | `intents`       | nonce                    | `Intent` (JSON): every attempt at the nonce, binding, inclusion |
//! | `external_keys` | key                      | id                                      |
//! | `meta`          | name                     | counters, the pinned chain id, snapshots |
//! | `audit`         | sequence                 | `AuditRecord` (JSON)                    |
//!
//! Integers are big-endian so that sled orders them. Every change that touches more
//! than one record is one sled transaction. A record that does not decode is a
//! [`StoreError::Corrupt`] naming its tree and key, never a panic.
//!
//! The store's operations, by who calls them:
//!
//! - `queue.rs`: governance and operators: queue (one or a batch), read, cancel.
//! - `lifecycle.rs`: the executor: activate, stage, record what the ledger said, write a
//!   replacement ahead, cancel or unstage an intent that never left the node.
//! - `operator.rs`: an operator's decisions the executor waits for (resolve a nonce
//!   spent by a stranger, adopt the ledger's nonce), recorded for the executor to apply;
//!   marking paid what a restored backup forgot.
//! - `meta.rs`: snapshots (breaker, executor), the pinned chain id, the audit log, the
//!   backlog.

mod codec;
mod error;
mod lifecycle;
mod meta;
mod operator;
mod queue;
mod records;

#[cfg(test)]
mod tests;

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use crate::treasury::{DisbursementId, DisbursementStatus, QueueError};

use codec::{decode, decode_u64, encode, pair_key, show_key, u64_key};
pub use error::StoreError;
pub(crate) use lifecycle::Change;
pub use operator::{Action, Decision, Resolution};
pub use queue::{Cancellation, Queued};
pub use records::{
    Attempt, AuditRecord, Backlog, ExecutorSnapshot, Hold, Inclusion, Intent, describe_hold,
};

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
/// The chain the store pays on, pinned at the executor's first contact.
const CHAIN_ID: &[u8] = b"chain_id";
/// An operator's decision on a hold, waiting for the executor to apply it.
const DECISION: &[u8] = b"decision";
/// The latest ledger epoch [`GovStore::activate`] has seen: a disbursement whose
/// activation epoch is not after it goes straight to `ready`.
const EPOCH: &[u8] = b"epoch";

/// Why a request (queue, cancel, an operator's decision) did nothing.
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
    /// The store is not in the state the request is for (e.g. a decision on a nonce the
    /// executor is not waiting on); nothing changed.
    #[error("{0}")]
    Conflict(String),
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StoreError),
}

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

/// See [`GovStore::lifecycle_trees`].
type LifecycleTrees<'a> = (
    &'a sled::Tree,
    &'a sled::Tree,
    &'a sled::Tree,
    &'a sled::Tree,
    &'a sled::Tree,
    &'a sled::Tree,
);

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

    /// The trees a change to an intent's lifecycle may touch, for one transaction:
    /// disbursements, dependents, scheduled, ready, intents, meta.
    fn lifecycle_trees(&self) -> LifecycleTrees<'_> {
        (
            &self.disbursements,
            &self.dependents,
            &self.scheduled,
            &self.ready,
            &self.intents,
            &self.meta,
        )
    }

    /// The raw tree named `name`, for tests that damage records on purpose.
    #[cfg(any(test, feature = "test-support"))]
    pub fn raw_tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(name)?)
    }
}

/// Cancels `id`, whatever its status (the caller has decided it may be: an operator's
/// cancel checks it is queued; a refused, reverted or replaced intent's disbursement is
/// staged, submitted or included), and, transitively, every queued disbursement waiting
/// for it.
fn cancel_cascade(
    disbursements: &TransactionalTree,
    dependents: &TransactionalTree,
    scheduled: &TransactionalTree,
    ready: &TransactionalTree,
    id: DisbursementId,
    reason: String,
) -> TxResult<crate::treasury::Disbursement> {
    let root = id;
    let mut first = None;
    let mut stack = vec![(id, reason)];
    while let Some((id, reason)) = stack.pop() {
        let key = u64_key(id);
        let mut record: crate::treasury::Disbursement =
            tx_need(disbursements, DISBURSEMENTS, &key)?;
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

/// Marks `id` Executed and schedules every dependent whose dependencies are now all
/// executed.
fn execute(
    disbursements: &TransactionalTree,
    dependents: &TransactionalTree,
    scheduled: &TransactionalTree,
    ready: &TransactionalTree,
    epoch_seen: Option<u64>,
    id: DisbursementId,
    status: DisbursementStatus,
) -> TxResult<crate::treasury::Disbursement> {
    let key = u64_key(id);
    let mut record: crate::treasury::Disbursement = tx_need(disbursements, DISBURSEMENTS, &key)?;
    record.status = status;
    tx_put(disbursements, &key, &record)?;
    let Some(waiting) = tx_get::<Vec<DisbursementId>>(dependents, DEPENDENTS, &key)? else {
        return Ok(record); // nothing waits for it (removing the absent key costs a write)
    };
    dependents.remove(&key)?;
    for dependent in waiting {
        let child: crate::treasury::Disbursement =
            tx_need(disbursements, DISBURSEMENTS, &u64_key(dependent))?;
        if child.status != DisbursementStatus::Queued {
            continue;
        }
        let mut all_executed = true;
        for dep in &child.depends_on {
            let parent: crate::treasury::Disbursement =
                tx_need(disbursements, DISBURSEMENTS, &u64_key(*dep))?;
            all_executed &= matches!(parent.status, DisbursementStatus::Executed { .. });
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
    Ok(record)
}
