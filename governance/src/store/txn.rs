//! The store's transactions over a [`KeySpace`]: read, decide, then apply the writes in
//! one batch conditional on everything read being unchanged (optimistic concurrency, as
//! etcd's STM does it). A batch refused for a conflict runs the transaction again from
//! fresh reads, so each transaction is serialisable against every other.

use std::collections::BTreeMap;
use std::sync::PoisonError;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::codec::{decode, decode_json, decode_u64, encode_json};
use super::engine::{ApplyError, Batch, Condition, Fence, KeySpace, Op};
use super::keys::{Kind, show_key};
use super::records::Totals;
use super::wire::Stored;
use super::{GovStore, StoreError, TOTALS};
use crate::treasury::DisbursementStatus;

/// How often a transaction runs again after conflicts before the store gives up.
/// Within a process transactions are serialised (`GovStore::writer`): a conflict needs
/// another process writing the same keys of a shared engine.
const ATTEMPTS: usize = 64;

/// One run of a transaction: the values read (what the batch is conditional on) and the
/// writes waiting. Reads see the transaction's own writes.
#[derive(Debug)]
pub(crate) struct Txn<'s> {
    space: &'s dyn KeySpace,
    /// The engine's version before the first read (see `Batch::read_at`).
    read_at: Option<u64>,
    read: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    written: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Disbursements moved in or out of each status, for the totals.
    moved: Vec<(DisbursementStatus, i64)>,
}

impl<'s> Txn<'s> {
    fn new(space: &'s dyn KeySpace) -> Txn<'s> {
        Txn {
            space,
            read_at: space.version(),
            read: BTreeMap::new(),
            written: BTreeMap::new(),
            moved: Vec::new(),
        }
    }

    /// Counts a disbursement moving from `from` (none: a new one) to `to`.
    pub fn count_move(&mut self, from: Option<&DisbursementStatus>, to: &DisbursementStatus) {
        if let Some(from) = from {
            if from.name() == to.name() {
                return;
            }
            self.moved.push((from.clone(), -1));
        }
        self.moved.push((to.clone(), 1));
    }

    /// Adds the moves counted to the stored totals (one read and one write, only if
    /// something moved).
    fn settle_totals(&mut self) -> Result<(), StoreError> {
        if self.moved.is_empty() {
            return Ok(());
        }
        let mut totals: Totals = self.get_json(Kind::Meta, TOTALS)?.unwrap_or_default();
        for (status, delta) in std::mem::take(&mut self.moved) {
            let count = totals.of(&status);
            *count = count.saturating_add_signed(delta);
        }
        self.put_json(Kind::Meta, TOTALS, &totals);
        Ok(())
    }

    fn raw(&mut self, full: Vec<u8>) -> Result<Option<&[u8]>, StoreError> {
        if self.written.contains_key(&full) {
            return Ok(self.written.get(&full).and_then(|value| value.as_deref()));
        }
        if !self.read.contains_key(&full) {
            let value = self.space.get(&full)?;
            self.read.insert(full.clone(), value);
        }
        Ok(self.read.get(&full).and_then(|value| value.as_deref()))
    }

    /// The raw bytes at `key` of `kind`.
    pub fn get_raw(&mut self, kind: Kind, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.raw(kind.key(key))?.map(<[u8]>::to_vec))
    }

    /// Whether a record of `kind` exists at `key`.
    pub fn exists(&mut self, kind: Kind, key: &[u8]) -> Result<bool, StoreError> {
        Ok(self.raw(kind.key(key))?.is_some())
    }

    /// The binary record at `key`.
    pub fn get<T: Stored>(&mut self, kind: Kind, key: &[u8]) -> Result<Option<T>, StoreError> {
        match self.raw(kind.key(key))? {
            Some(bytes) => decode(kind, key, bytes).map(Some),
            None => Ok(None),
        }
    }

    /// The binary record that must be at `key`.
    pub fn need<T: Stored>(&mut self, kind: Kind, key: &[u8]) -> Result<T, StoreError> {
        self.get(kind, key)?.ok_or_else(|| StoreError::Missing {
            kind: kind.name(),
            key: show_key(key),
        })
    }

    /// The JSON record at `key`.
    pub fn get_json<T: DeserializeOwned>(
        &mut self,
        kind: Kind,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        match self.raw(kind.key(key))? {
            Some(bytes) => decode_json(kind, key, bytes).map(Some),
            None => Ok(None),
        }
    }

    /// The counter at `key` of `meta`.
    pub fn counter(&mut self, key: &[u8]) -> Result<Option<u64>, StoreError> {
        match self.raw(Kind::Meta.key(key))? {
            Some(bytes) => decode_u64(Kind::Meta, key, bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Writes raw bytes.
    pub fn put_raw(&mut self, kind: Kind, key: &[u8], value: Vec<u8>) {
        self.written.insert(kind.key(key), Some(value));
    }

    /// Writes a binary record.
    pub fn put<T: Stored>(&mut self, kind: Kind, key: &[u8], value: &T) {
        self.put_raw(kind, key, value.to_bytes());
    }

    /// Writes a JSON record.
    pub fn put_json<T: Serialize>(&mut self, kind: Kind, key: &[u8], value: &T) {
        self.put_raw(kind, key, encode_json(value));
    }

    /// Writes a counter of `meta`.
    pub fn set_counter(&mut self, key: &[u8], value: u64) {
        self.put_raw(Kind::Meta, key, value.to_be_bytes().to_vec());
    }

    /// Removes the record at `key` (a write even if it is absent).
    pub fn delete(&mut self, kind: Kind, key: &[u8]) {
        self.written.insert(kind.key(key), None);
    }

    /// Removes the record at `key` if there is one; says whether there was.
    pub fn take(&mut self, kind: Kind, key: &[u8]) -> Result<bool, StoreError> {
        let present = self.exists(kind, key)?;
        if present {
            self.delete(kind, key);
        }
        Ok(present)
    }

    /// The batch: the writes, conditional on every value read (and on the fence).
    fn batch(self, fence: Option<&Fence>) -> Batch {
        let mut conditions: Vec<Condition> = self
            .read
            .into_iter()
            .map(|(key, value)| match value {
                Some(value) => Condition::Unchanged { key, value },
                None => Condition::Absent(key),
            })
            .collect();
        conditions.extend(fence.cloned().map(Condition::Fence));
        let ops = self
            .written
            .into_iter()
            .map(|(key, value)| match value {
                Some(value) => Op::Put(key, value),
                None => Op::Delete(key),
            })
            .collect();
        Batch {
            conditions,
            ops,
            read_at: self.read_at,
        }
    }
}

impl GovStore {
    /// Runs `body` as a transaction: its reads and writes through the [`Txn`], its writes
    /// applied together if nothing it read changed meanwhile, else run again. An error
    /// from `body` is returned (writing nothing) only if what it read was a consistent
    /// view: one made of a read racing a write is not an error of the store's, so `body`
    /// runs again.
    pub(crate) fn transact<T>(
        &self,
        mut body: impl FnMut(&mut Txn<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _writing = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        for _ in 0..ATTEMPTS {
            let mut txn = Txn::new(&*self.space);
            let outcome = body(&mut txn).and_then(|value| {
                txn.settle_totals()?;
                Ok(value)
            });
            let mut batch = txn.batch(self.fence.as_ref());
            let failed = outcome.is_err();
            if failed {
                batch.ops.clear(); // only check that the reads were consistent
            }
            match self.space.apply(&batch) {
                Ok(()) => return outcome,
                Err(ApplyError::Conflict { .. }) => continue,
                Err(ApplyError::Fenced { key, token }) => {
                    return Err(StoreError::Fenced {
                        key: show_key(&key),
                        token,
                    });
                }
                Err(ApplyError::Store(error)) => return Err(error),
            }
        }
        Err(StoreError::Contention { attempts: ATTEMPTS })
    }

    /// A single write outside any transaction's reads (still fenced): a snapshot, a
    /// counter the executor alone sets.
    pub(crate) fn write(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        let _writing = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let batch = Batch {
            conditions: self.fence.iter().cloned().map(Condition::Fence).collect(),
            ops,
            read_at: None,
        };
        match self.space.apply(&batch) {
            Ok(()) => Ok(()),
            Err(ApplyError::Fenced { key, token }) => Err(StoreError::Fenced {
                key: show_key(&key),
                token,
            }),
            // Its only condition is the fence, which fails as `Fenced`: an engine that
            // says otherwise is broken.
            Err(ApplyError::Conflict { key }) => Err(StoreError::Database(format!(
                "the engine reported a conflict at {} for a batch with no condition on it",
                show_key(&key)
            ))),
            Err(ApplyError::Store(error)) => Err(error),
        }
    }
}
