//! [`SledKeySpace`]: the key space in one sled tree, on disk.

use std::path::Path;
use std::sync::{Mutex, PoisonError};

use super::{ApplyError, Batch, Entry, KeySpace, Op, Version, check};
use crate::store::StoreError;

/// The key space in the default tree of a sled database. Writes are serialised
/// in-process (a mutex around checking a batch's conditions and `apply_batch`, which
/// sled applies atomically); reads take no lock. sled itself keeps a second process from
/// opening the database.
///
/// [`flush`](KeySpace::flush) is sled's flush (its log written, then
/// `sync_file_range` on Linux: the data reaches the device, but neither the file's
/// metadata nor the device's write cache is flushed), then an `fsync` of sled's data
/// file, which flushes both: a flush survives a power cut on a device that honours
/// cache flushes, not only a crash of the process.
#[derive(Debug)]
pub struct SledKeySpace {
    db: sled::Db,
    writer: Mutex<()>,
    version: Version,
    /// sled's data file, for the `fsync` after its flush (none for a temporary one).
    file: Option<std::fs::File>,
}

impl SledKeySpace {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<SledKeySpace, StoreError> {
        let path = path.as_ref();
        let db = sled::Config::new().path(path).open()?;
        // sled 0.34 keeps its log and pages in `<path>/db`.
        let file = std::fs::File::open(path.join("db")).map_err(|error| {
            StoreError::Database(format!("{}: {error}", path.join("db").display()))
        })?;
        Ok(Self::with_db(db, Some(file)))
    }

    /// A database in a temporary directory, removed when dropped.
    pub fn temporary() -> Result<SledKeySpace, StoreError> {
        Ok(Self::with_db(
            sled::Config::new().temporary(true).open()?,
            None,
        ))
    }

    fn with_db(db: sled::Db, file: Option<std::fs::File>) -> SledKeySpace {
        SledKeySpace {
            db,
            writer: Mutex::new(()),
            version: Version::default(),
            file,
        }
    }

    /// The sled database, for the store's migration from its earlier layout and for
    /// another component's own trees (see [`GovStore::aux_tree`](crate::GovStore::aux_tree)).
    pub(crate) fn db(&self) -> &sled::Db {
        &self.db
    }
}

impl KeySpace for SledKeySpace {
    fn name(&self) -> &'static str {
        "sled"
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get(key)?.map(|value| value.to_vec()))
    }

    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
        if start >= end {
            return Ok(vec![]);
        }
        self.db
            .range(start..end)
            .take(limit)
            .map(|entry| {
                let (key, value) = entry?;
                Ok((key.to_vec(), value.to_vec()))
            })
            .collect()
    }

    fn count(&self, start: &[u8], end: &[u8]) -> Result<u64, StoreError> {
        if start >= end {
            return Ok(0);
        }
        let mut count = 0;
        for key in self.db.range(start..end).keys() {
            key?;
            count += 1;
        }
        Ok(count)
    }

    fn apply(&self, batch: &Batch) -> Result<(), ApplyError> {
        let _writing = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let unchanged = self.version.unchanged_since(batch.read_at);
        check(&batch.conditions, unchanged, |key| {
            Ok(self.db.get(key)?.map(|value| value.to_vec()))
        })?;
        if batch.ops.is_empty() {
            return Ok(());
        }
        let mut writes = sled::Batch::default();
        for op in &batch.ops {
            match op {
                Op::Put(key, value) => writes.insert(key.as_slice(), value.as_slice()),
                Op::Delete(key) => writes.remove(key.as_slice()),
            }
        }
        self.version.step();
        let applied = self.db.apply_batch(writes);
        self.version.step();
        applied.map_err(StoreError::from)?;
        Ok(())
    }

    fn version(&self) -> Option<u64> {
        self.version.stable()
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        if let Some(file) = &self.file {
            file.sync_all()
                .map_err(|error| StoreError::Database(format!("fsync: {error}")))?;
        }
        Ok(())
    }
}
