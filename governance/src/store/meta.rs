//! Snapshots (breaker, executor), the pinned chain id, the audit log and the backlog.

use serde::de::DeserializeOwned;
use sled::Transactional;

use super::codec::{decode, encode, u64_key};
use super::records::{AuditRecord, Backlog, ExecutorSnapshot};
use super::{
    AUDIT, BREAKER, CHAIN_ID, EXECUTOR, GovStore, META, NEXT_AUDIT, StoreError, flatten,
    tx_counter, tx_put,
};
use crate::circuit_breaker::{CircuitBreaker, CircuitBreakerSnapshot};

impl GovStore {
    /// The chain this store pays on, once the executor has pinned it.
    pub fn chain_id(&self) -> Result<Option<String>, StoreError> {
        self.meta_record(CHAIN_ID)
    }

    /// Pins the chain this store pays on (the executor, at first contact).
    pub(crate) fn pin_chain_id(&self, chain_id: &str) -> Result<(), StoreError> {
        self.meta.insert(CHAIN_ID, encode(&chain_id))?;
        Ok(())
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

    pub(super) fn meta_record<T: DeserializeOwned>(
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
