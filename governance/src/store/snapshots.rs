//! Snapshots (breaker, executor), the pinned chain id and the backlog.

use serde::de::DeserializeOwned;

use super::audit::{Audit, write_audit};
use super::codec::{decode_json, encode_json};
use super::engine::Op;
use super::keys::Kind;
use super::records::{Backlog, ExecutorSnapshot, Totals};
use super::{BREAKER, CHAIN_ID, EXECUTOR, GovStore, StoreError, TOTALS};
use crate::circuit_breaker::{CircuitBreaker, CircuitBreakerSnapshot, Transition};

/// Why [`GovStore::override_breaker`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverrideError {
    /// Nothing was stored, and the override was undone in memory.
    #[error("the override was not saved, so it was undone: {0}")]
    NotSaved(StoreError),
    /// The override stands and is recorded with its audit record, but the flush that
    /// makes it durable failed: a crash now could forget it.
    #[error(
        "the override ({0}) is applied and recorded, but the flush failed: it may not survive a crash: {1}"
    )]
    NotFlushed(Transition, StoreError),
}

impl GovStore {
    /// The chain this store pays on, once the executor has pinned it.
    pub fn chain_id(&self) -> Result<Option<String>, StoreError> {
        self.meta_record(CHAIN_ID)
    }

    /// Pins the chain this store pays on (the executor, at first contact).
    pub(crate) fn pin_chain_id(&self, chain_id: &str) -> Result<(), StoreError> {
        self.put_meta(CHAIN_ID, encode_json(&chain_id))
    }

    /// The persisted breaker snapshot, if any.
    pub fn breaker_snapshot(&self) -> Result<Option<CircuitBreakerSnapshot>, StoreError> {
        self.meta_record(BREAKER)
    }

    /// Persists `breaker`'s state. Saves from several threads (the executor after a
    /// transition, an operator's override) are serialised and each takes its snapshot
    /// under the lock, so the last save holds the latest state: a snapshot taken before
    /// an override can never be written over the override's.
    pub fn save_breaker(&self, breaker: &CircuitBreaker) -> Result<(), StoreError> {
        let _saving = self
            .breaker_save
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.put_meta(BREAKER, encode_json(&breaker.snapshot()))
    }

    /// An operator's override of `breaker`: `apply` runs, and the breaker's new state is
    /// saved with its audit record (`action`, the transition as the detail) in one
    /// transaction, then flushed, all under the lock that orders breaker saves (so the
    /// executor cannot save the override unaudited in between). If the transaction
    /// fails, the override is undone in memory ([`OverrideError::NotSaved`]): memory,
    /// disk and the audit log agree that it did not happen. If only the flush fails, it
    /// stands, recorded ([`OverrideError::NotFlushed`]).
    pub fn override_breaker(
        &self,
        breaker: &CircuitBreaker,
        apply: impl FnOnce(&CircuitBreaker) -> Transition,
        audit: &Audit,
        action: &str,
    ) -> Result<Transition, OverrideError> {
        let _saving = self
            .breaker_save
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let before = breaker.snapshot();
        let transition = apply(breaker);
        let snapshot = encode_json(&breaker.snapshot());
        let detail = transition.to_string();
        let saved = self.transact(|txn| {
            txn.put_raw(Kind::Meta, BREAKER, snapshot.clone());
            write_audit(txn, audit, action, &audit.reason, &detail)?;
            Ok(())
        });
        if let Err(error) = saved {
            breaker.restore(&before);
            return Err(OverrideError::NotSaved(error));
        }
        self.flush()
            .map_err(|error| OverrideError::NotFlushed(transition, error))?;
        Ok(transition)
    }

    /// The persisted executor snapshot, if any.
    pub fn executor_snapshot(&self) -> Result<Option<ExecutorSnapshot>, StoreError> {
        self.meta_record(EXECUTOR)
    }

    /// Persists the executor snapshot.
    pub fn save_executor_snapshot(&self, snapshot: &ExecutorSnapshot) -> Result<(), StoreError> {
        self.put_meta(EXECUTOR, encode_json(snapshot))
    }

    fn put_meta(&self, key: &[u8], value: Vec<u8>) -> Result<(), StoreError> {
        self.write(vec![Op::Put(Kind::Meta.key(key), value)])
    }

    pub(super) fn meta_record<T: DeserializeOwned>(
        &self,
        key: &'static [u8],
    ) -> Result<Option<T>, StoreError> {
        match self.read(Kind::Meta, key)? {
            Some(bytes) => decode_json(Kind::Meta, key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// How many disbursements are in each status: kept by the store as it moves them, so
    /// reading it costs one record, whatever the history.
    pub fn totals(&self) -> Result<Totals, StoreError> {
        Ok(self.meta_record(TOTALS)?.unwrap_or_default())
    }

    /// Counts the disbursements by status, reading every record (the whole history).
    pub fn count_by_status(&self) -> Result<Totals, StoreError> {
        let mut totals = Totals::default();
        let mut after = None;
        loop {
            let page = self.list(after, 10_000)?;
            let Some(last) = page.last() else {
                return Ok(totals);
            };
            after = Some(last.id);
            for record in &page {
                *totals.of(&record.status) += 1;
            }
        }
    }

    /// Writes the totals counted from the records if the store has none (a new store, or
    /// one written before they were kept). At open, before anything else writes.
    pub(super) fn count_totals(&self) -> Result<(), StoreError> {
        if self.read(Kind::Meta, TOTALS)?.is_some() {
            return Ok(());
        }
        let totals = self.count_by_status()?;
        self.put_meta(TOTALS, encode_json(&totals))
    }

    /// How much work is waiting. Counts the indexes, never the history.
    pub fn backlog(&self) -> Result<Backlog, StoreError> {
        let count = |kind: Kind| {
            let (start, end) = kind.all();
            self.space.count(&start, &end)
        };
        let mut backlog = Backlog {
            scheduled: count(Kind::Scheduled)?,
            ready: count(Kind::Ready)?,
            awaiting_approval: count(Kind::Awaiting)?,
            held: count(Kind::Held)?,
            ..Backlog::default()
        };
        for intent in self.intents()? {
            if intent.inclusion.is_some() {
                backlog.included += 1;
            } else if intent.submitted {
                backlog.submitted += 1;
            } else {
                backlog.staged += 1;
            }
        }
        Ok(backlog)
    }
}
