//! `GovStore`: the treasury's durable state, over an ordered key space.
//!
//! The store's logic is written once over [`KeySpace`] (see [`engine`]): sled on disk by
//! default ([`GovStore::open`]), in memory for tests ([`GovStore::in_memory`]). Records
//! live under a prefix per kind (the table in `keys.rs`); the hot ones (disbursements,
//! intents) in a versioned binary form (`wire.rs`), the ones people read in JSON. Every
//! change that touches more than one record is one transaction (`txn.rs`): its writes
//! are one atomic batch, conditional on what it read. A record that does not decode is a
//! [`StoreError::Corrupt`] naming its kind and key, never a panic.
//!
//! The store's operations, by who calls them:
//!
//! - `queue.rs`: governance and operators: queue (one or a batch), read, cancel; the
//!   indexes that keep a tick off the history.
//! - `lifecycle.rs`: the executor: activate, stage, record what the ledger said, write a
//!   replacement ahead, cancel or unstage an intent that never left the node.
//! - `operator.rs`: an operator's decisions the executor waits for (resolve a nonce
//!   spent by a stranger, adopt the ledger's nonce), recorded for the executor to apply;
//!   marking paid what a restored backup forgot.
//! - `snapshots.rs`: snapshots (breaker, executor), the pinned chain id, the backlog.
//! - `audit.rs`: the audit log.
//! - `migrate.rs`: a sled database in the earlier layout (a tree per kind, JSON),
//!   rewritten in place on first open.

mod audit;
mod codec;
pub mod engine;
mod error;
mod keys;
mod lifecycle;
mod migrate;
mod operator;
mod policy;
mod queue;
mod records;
mod snapshots;
mod transfer;
mod txn;
mod wire;

#[cfg(test)]
mod policy_tests;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::treasury::{DisbursementId, DisbursementStatus, QueueError};

pub use audit::Audit;
use engine::{Fence, KeySpace, MemoryKeySpace, SledKeySpace};
pub use error::StoreError;
use keys::{Kind, pair_key, u64_key};
pub(crate) use lifecycle::Change;
pub use migrate::Migration;
pub(crate) use operator::Settled;
pub use operator::{Action, Decision, Resolution};
pub use policy::{MAX_APPROVE_BATCH, Rejudged, check_approval_ids};
pub use queue::{Cancellation, Queued};
pub use records::{
    Attempt, AuditRecord, Backlog, ExecutorSnapshot, Hold, Inclusion, Intent, Totals, describe_hold,
};
pub use snapshots::OverrideError;
pub use transfer::TransferError;
use txn::Txn;
pub use wire::Stored;

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
/// How many disbursements are in each status ([`Totals`]), kept by every transaction
/// that moves one.
const TOTALS: &[u8] = b"totals";
/// The spend of each asset in the policy's rolling 24 hours
/// ([`Spend`](crate::policy::Spend)), kept as disbursements are queued and cancelled.
const SPEND: &[u8] = b"spend";
/// What was signed per asset in the policy's rolling 24 hours, kept as payments are
/// staged: the daily limit bounds what is paid as well as what is queued.
const SIGNED: &[u8] = b"signed";

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

/// The treasury's store. Cheap to share: clones share the engine.
#[derive(Debug, Clone)]
pub struct GovStore {
    space: Arc<dyn KeySpace>,
    /// The sled database, when the engine is sled: other components keep their own
    /// trees in it ([`aux_tree`](Self::aux_tree)).
    sled: Option<sled::Db>,
    /// Every write is conditional on it, once set ([`fenced`](Self::fenced)).
    fence: Option<Fence>,
    /// Serialises breaker saves, each snapshot taken under it: see
    /// [`save_breaker`](Self::save_breaker).
    breaker_save: Arc<Mutex<()>>,
    /// Serialises this process's transactions and writes, read phase included: they
    /// never conflict with each other (the conditions still guard against another
    /// process's writes, on a shared engine), so none is retried, or starved, by a
    /// storm of others.
    writer: Arc<Mutex<()>>,
    /// What [`open`](Self::open) migrated.
    migration: Option<Migration>,
    /// The spending policy in force ([`set_policy`](Self::set_policy)).
    policy: policy::Shared,
}

impl GovStore {
    /// Opens (or creates) the store in the sled database at `path`. A database in the
    /// earlier layout (a tree per record kind, JSON records) is migrated first, in place
    /// (see `migrate.rs`).
    pub fn open(path: impl AsRef<Path>) -> Result<GovStore, StoreError> {
        Self::on_sled(SledKeySpace::open(path)?)
    }

    /// A store in a temporary sled database that vanishes when dropped.
    pub fn open_temporary() -> Result<GovStore, StoreError> {
        Self::on_sled(SledKeySpace::temporary()?)
    }

    fn on_sled(space: SledKeySpace) -> Result<GovStore, StoreError> {
        let migration = migrate::from_trees(&space)?;
        let db = space.db().clone();
        let mut store = Self::with_space(Arc::new(space));
        store.sled = Some(db);
        store.migration = migration;
        store.count_totals()?;
        Ok(store)
    }

    /// What opening this store migrated from the earlier layout, if anything (for the
    /// node's log).
    pub fn migration(&self) -> Option<Migration> {
        self.migration
    }

    /// A store in memory: nothing survives the process (for tests and benchmarks).
    pub fn in_memory() -> GovStore {
        Self::with_space(Arc::new(MemoryKeySpace::new()))
    }

    /// The store over any engine. Unlike [`open`](Self::open), it migrates nothing and
    /// does not count the totals of records already there: give it an empty engine, or
    /// one a store has always written (the totals are kept from the first record on).
    pub fn with_space(space: Arc<dyn KeySpace>) -> GovStore {
        GovStore {
            space,
            sled: None,
            fence: None,
            breaker_save: Arc::default(),
            writer: Arc::default(),
            migration: None,
            policy: Arc::default(),
        }
    }

    /// This store, every write of which is conditional on `fence` (a leader's right to
    /// write): once another writer takes the fence, every write fails with
    /// [`StoreError::Fenced`] and changes nothing.
    pub fn fenced(mut self, fence: Fence) -> GovStore {
        self.fence = Some(fence);
        self
    }

    /// The engine's name (`sled`, `memory`).
    pub fn engine(&self) -> &'static str {
        self.space.name()
    }

    /// Makes every change so far durable (for sled, an fsync).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.space.flush()
    }

    /// A tree of the same sled database for another component's own records (the node's
    /// dev ledger keeps its chain here). Named `aux/<name>`, apart from the store's keys.
    /// Only a store on sled has one.
    pub fn aux_tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        match &self.sled {
            Some(db) => Ok(db.open_tree(format!("aux/{name}"))?),
            None => Err(StoreError::Database(format!(
                "the {} engine keeps no side trees (asked for `{name}`)",
                self.engine()
            ))),
        }
    }

    /// Writes raw bytes as the record of the kind named `kind` at `key` (the key after
    /// the kind's prefix), bypassing every rule: for tests that damage records on
    /// purpose.
    #[cfg(any(test, feature = "test-support"))]
    pub fn raw_insert(&self, kind: &str, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let kind = Kind::named(kind)
            .ok_or_else(|| StoreError::Database(format!("no kind of record is named {kind}")))?;
        self.write(vec![engine::Op::Put(kind.key(key), value.to_vec())])
    }

    /// Writes many raw records of the kind named `kind` (keys after the prefix), in
    /// batches, bypassing every rule: for benchmarks that need a long history.
    #[cfg(any(test, feature = "test-support"))]
    pub fn raw_insert_many(
        &self,
        kind: &str,
        records: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        let kind = Kind::named(kind)
            .ok_or_else(|| StoreError::Database(format!("no kind of record is named {kind}")))?;
        let mut ops = Vec::new();
        for (key, value) in records {
            ops.push(engine::Op::Put(kind.key(&key), value));
            if ops.len() == 50_000 {
                self.write(std::mem::take(&mut ops))?;
            }
        }
        self.write(ops)
    }

    /// Removes every record of every kind: for fuzzing, which starts each input afresh.
    #[cfg(any(test, feature = "test-support"))]
    pub fn raw_clear(&self) -> Result<(), StoreError> {
        let mut ops = vec![];
        for kind in Kind::ALL {
            let (start, end) = kind.all();
            for (key, _) in self.space.scan(&start, &end, usize::MAX)? {
                ops.push(engine::Op::Delete(key));
            }
        }
        self.write(ops)
    }

    /// Up to `limit` records of `kind` from `start` (a key after the prefix), as (key
    /// after the prefix, value).
    fn scan(
        &self,
        kind: Kind,
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<engine::Entry>, StoreError> {
        let (first, end) = kind.from(start);
        let mut entries = self.space.scan(&first, &end, limit)?;
        for (key, _) in &mut entries {
            let short = kind.strip(key).to_vec();
            *key = short;
        }
        Ok(entries)
    }

    /// The raw value of `kind` at `key`, outside any transaction.
    fn read(&self, kind: Kind, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.space.get(&kind.key(key))
    }
}

/// Writes `record` with its status changed to `status`, counting the move in the totals.
fn put_status(
    txn: &mut Txn<'_>,
    record: &mut crate::treasury::Disbursement,
    status: DisbursementStatus,
) {
    txn.count_move(Some(&record.status), &status);
    record.status = status;
    txn.put(Kind::Disbursements, &u64_key(record.id), &*record);
}

/// Indexes a queued disbursement whose dependencies are all executed: `ready` if its
/// activation epoch has already been seen, else `scheduled` until it comes.
fn schedule(txn: &mut Txn<'_>, epoch_seen: Option<u64>, activation_epoch: u64, id: DisbursementId) {
    if epoch_seen.is_some_and(|seen| activation_epoch <= seen) {
        txn.put_raw(Kind::Ready, &u64_key(id), vec![]);
    } else {
        txn.put_raw(Kind::Scheduled, &pair_key(activation_epoch, id), vec![]);
    }
}

/// Cancels `id`, whatever its status (the caller has decided it may be: an operator's
/// cancel checks it is queued; a refused, reverted or replaced intent's disbursement is
/// staged, submitted or included), and, transitively, every queued disbursement waiting
/// for it.
fn cancel_cascade(
    txn: &mut Txn<'_>,
    id: DisbursementId,
    reason: String,
) -> Result<crate::treasury::Disbursement, StoreError> {
    let root = id;
    let mut first = None;
    let mut stack = vec![(id, reason)];
    while let Some((id, reason)) = stack.pop() {
        let key = u64_key(id);
        let mut record: crate::treasury::Disbursement = txn.need(Kind::Disbursements, &key)?;
        let waits = matches!(
            record.status,
            DisbursementStatus::Queued | DisbursementStatus::AwaitingApproval
        );
        if id != root && !waits {
            continue; // a dependent already cancelled (a diamond), or executed
        }
        txn.take(Kind::Scheduled, &pair_key(record.activation_epoch, id))?;
        txn.take(Kind::Ready, &key)?;
        txn.take(Kind::Awaiting, &key)?;
        txn.take(Kind::Held, &key)?;
        let (asset, amount, at) = (
            record.asset().to_owned(),
            record.amount,
            record.queued_at_ms,
        );
        policy::change_spend(txn, |spend| spend.remove(&asset, amount, at))?;
        put_status(txn, &mut record, DisbursementStatus::Cancelled { reason });
        let waiting: Vec<DisbursementId> = txn.get(Kind::Dependents, &key)?.unwrap_or_default();
        txn.take(Kind::Dependents, &key)?;
        stack.extend(
            waiting
                .into_iter()
                .map(|child| (child, format!("dependency {id} was cancelled"))),
        );
        first.get_or_insert(record);
    }
    first.ok_or_else(|| StoreError::Missing {
        kind: Kind::Disbursements.name(),
        key: id.to_string(),
    })
}

/// Marks `id` Executed and schedules every dependent whose dependencies are now all
/// executed.
fn execute(
    txn: &mut Txn<'_>,
    epoch_seen: Option<u64>,
    id: DisbursementId,
    status: DisbursementStatus,
) -> Result<crate::treasury::Disbursement, StoreError> {
    let key = u64_key(id);
    let mut record: crate::treasury::Disbursement = txn.need(Kind::Disbursements, &key)?;
    put_status(txn, &mut record, status);
    let Some(waiting) = txn.get::<Vec<DisbursementId>>(Kind::Dependents, &key)? else {
        return Ok(record); // nothing waits for it (removing the absent key costs a write)
    };
    txn.delete(Kind::Dependents, &key);
    for dependent in waiting {
        let child: crate::treasury::Disbursement =
            txn.need(Kind::Disbursements, &u64_key(dependent))?;
        if child.status != DisbursementStatus::Queued {
            continue;
        }
        let mut all_executed = true;
        for dep in &child.depends_on {
            let parent: crate::treasury::Disbursement =
                txn.need(Kind::Disbursements, &u64_key(*dep))?;
            all_executed &= matches!(parent.status, DisbursementStatus::Executed { .. });
        }
        if all_executed {
            schedule(txn, epoch_seen, child.activation_epoch, dependent);
        }
    }
    Ok(record)
}
