//! [`MemoryKeySpace`]: the key space in a `BTreeMap`, for tests and benchmarks.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

use super::{ApplyError, Batch, Entry, KeySpace, Op, Version, check};
use crate::store::StoreError;

/// A key space in memory: nothing survives the process. Every `apply` holds the write
/// lock, so it is atomic and isolated; reads take the read lock.
///
/// For tests of what happens when the store fails, [`fail_applies`](Self::fail_applies)
/// makes the next batches fail as a full disk would.
#[derive(Debug, Default)]
pub struct MemoryKeySpace {
    map: RwLock<BTreeMap<Vec<u8>, Vec<u8>>>,
    failing: AtomicU64,
    version: Version,
}

impl MemoryKeySpace {
    /// An empty key space.
    pub fn new() -> MemoryKeySpace {
        MemoryKeySpace::default()
    }

    /// Makes the next `count` calls of `apply` fail with a database error, writing
    /// nothing.
    pub fn fail_applies(&self, count: u64) {
        self.failing.store(count, Ordering::SeqCst);
    }
}

impl KeySpace for MemoryKeySpace {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        Ok(map.get(key).cloned())
    }

    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
        if start >= end {
            return Ok(vec![]);
        }
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        Ok(map
            .range::<[u8], _>((
                std::ops::Bound::Included(start),
                std::ops::Bound::Excluded(end),
            ))
            .take(limit)
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect())
    }

    fn apply(&self, batch: &Batch) -> Result<(), ApplyError> {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        let failing = self.failing.load(Ordering::SeqCst);
        if failing > 0 {
            self.failing.store(failing - 1, Ordering::SeqCst);
            return Err(StoreError::Database("injected failure (MemoryKeySpace)".into()).into());
        }
        let unchanged = self.version.unchanged_since(batch.read_at);
        check(&batch.conditions, unchanged, |key| {
            Ok(map.get(key).cloned())
        })?;
        if batch.ops.is_empty() {
            return Ok(());
        }
        self.version.step();
        for op in &batch.ops {
            match op {
                Op::Put(key, value) => {
                    map.insert(key.clone(), value.clone());
                }
                Op::Delete(key) => {
                    map.remove(key);
                }
            }
        }
        self.version.step();
        Ok(())
    }

    fn version(&self) -> Option<u64> {
        self.version.stable()
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
