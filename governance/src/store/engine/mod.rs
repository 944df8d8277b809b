//! The store's engine: an ordered key space with guarded atomic batches.
//!
//! The store's logic (records, indexes, the lifecycle, the audit log) is written once
//! over [`KeySpace`]; an engine only keeps bytes. Two are built in: [`SledKeySpace`]
//! (one sled tree on disk, the default) and [`MemoryKeySpace`] (a `BTreeMap`, for
//! tests and as the ceiling of the store's own logic in the benchmarks). The interface
//! is small enough for a replicated store (etcd: a transaction of compares and puts).
//!
//! # Contract
//!
//! - **Keys** are byte strings in lexicographic order; [`KeySpace::scan`] returns a
//!   range in that order.
//! - **Reads** ([`get`](KeySpace::get), [`scan`](KeySpace::scan)) see every batch
//!   applied before they began. They take no lock and may run beside a write: two reads
//!   are not a snapshot. A caller that needs a consistent view reads, then makes its
//!   batch conditional on what it read (the store's transactions do: see `txn.rs`).
//! - **[`apply`](KeySpace::apply)** is atomic and isolated: every [`Condition`] is
//!   checked and every [`Op`] applied as one step that no other `apply` interleaves with,
//!   and a crash leaves all of the batch or none of it. If a condition does not hold,
//!   nothing is written and the error says which: [`ApplyError::Conflict`] (a key
//!   changed since it was read: read again and retry) or [`ApplyError::Fenced`] (the
//!   caller's fence no longer holds: it must stop writing; retrying cannot help). A
//!   failed fence is reported as `Fenced` whatever else failed.
//! - **Durability** is the engine's: [`flush`](KeySpace::flush) returns once every
//!   applied batch survives a crash of the process (for sled, see
//!   `docs/architecture.md` on what that does and does not promise on power loss).

#[cfg(any(test, feature = "test-support"))]
pub mod contract;
mod memory;
mod sled;

use std::fmt;

pub use self::memory::MemoryKeySpace;
pub use self::sled::SledKeySpace;
use super::StoreError;

/// An ordered key space with guarded atomic batches: what the store needs of a
/// database. See the [module documentation](self) for the contract.
pub trait KeySpace: Send + Sync + fmt::Debug {
    /// The engine's name, for logs and `/status` (`sled`, `memory`).
    fn name(&self) -> &'static str;

    /// The value at `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Up to `limit` entries with `start <= key < end`, in key order.
    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError>;

    /// How many keys lie in `start <= key < end`.
    fn count(&self, start: &[u8], end: &[u8]) -> Result<u64, StoreError> {
        Ok(self.scan(start, end, usize::MAX)?.len() as u64)
    }

    /// Checks `batch`'s conditions and applies its operations, atomically (see the
    /// module's contract). An empty batch of operations only checks.
    fn apply(&self, batch: &Batch) -> Result<(), ApplyError>;

    /// The engine's version: a number that changes whenever a batch is applied, for
    /// [`Batch::read_at`]; `None` if the engine keeps none (or a batch is being applied
    /// right now).
    fn version(&self) -> Option<u64> {
        None
    }

    /// Makes every batch applied so far durable.
    fn flush(&self) -> Result<(), StoreError>;
}

/// The key a leader's fence is at, with leader election (outside every record kind's
/// prefix, so no record is ever written there).
pub const LEADER_KEY: &[u8] = b"e/leader";

/// A key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// Conditions, and the writes to make if they all hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// Checked first, all of them, in the same step as the writes.
    pub conditions: Vec<Condition>,
    /// Applied in order (a later operation on the same key wins).
    pub ops: Vec<Op>,
    /// The engine's [`version`](KeySpace::version) before the reads the `Unchanged`
    /// and `Absent` conditions come from. If no batch was applied since, those
    /// conditions hold by construction and the engine may skip reading them again (the
    /// fence is always checked). `None`: check every condition.
    pub read_at: Option<u64>,
}

/// A write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Sets the key's value.
    Put(Vec<u8>, Vec<u8>),
    /// Removes the key (nothing if it is absent).
    Delete(Vec<u8>),
}

/// What must hold for a batch to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The key still holds exactly these bytes: its version is the one read. (Comparing
    /// the bytes admits an A-B-A change, which is harmless here: whatever was computed
    /// from the value read would be computed again from the same value.)
    Unchanged {
        /// The key.
        key: Vec<u8>,
        /// The bytes read.
        value: Vec<u8>,
    },
    /// The key is absent.
    Absent(Vec<u8>),
    /// The caller's fence: the writer still holds the right to write (for leader
    /// election: the leader's key still carries its token).
    Fence(Fence),
}

/// A writer's right to write: the fence key holds `token`. On the built-in engines the
/// key's value is the token as 8 big-endian bytes; on an engine with revisions (etcd)
/// it is the revision at which the key was created, so that a writer deposed and
/// re-elected does not hold its old token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The key that carries the token.
    pub key: Vec<u8>,
    /// The writer's token.
    pub token: u64,
}

/// Why [`KeySpace::apply`] wrote nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// A key changed since it was read (or appeared, or vanished): read again and retry.
    #[error("conflict at key {key:?}: it changed since it was read")]
    Conflict {
        /// The first key whose condition failed.
        key: Vec<u8>,
    },
    /// The caller's fence no longer holds: another writer took over.
    #[error("fenced: the write token at {key:?} is no longer {token}")]
    Fenced {
        /// The fence's key.
        key: Vec<u8>,
        /// The token the caller held.
        token: u64,
    },
    /// The engine failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The end of the range of keys that start with `prefix` (exclusive), for
/// [`KeySpace::scan`]. A prefix of only `0xff` bytes (which the store never uses) has
/// no end below the empty key's order; it gets the greatest 9-byte key.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return end;
        }
    }
    vec![u8::MAX; 9]
}

/// The built-in engines' version: even while no batch is being applied, odd while one
/// is (a sequence lock). Both increments happen under the engine's writer lock.
#[derive(Debug, Default)]
pub(crate) struct Version(std::sync::atomic::AtomicU64);

impl Version {
    /// The version, if no batch is being applied.
    pub(crate) fn stable(&self) -> Option<u64> {
        let version = self.0.load(std::sync::atomic::Ordering::SeqCst);
        version.is_multiple_of(2).then_some(version)
    }

    /// Whether no batch was applied since `read_at` (called under the writer lock).
    pub(crate) fn unchanged_since(&self, read_at: Option<u64>) -> bool {
        read_at.is_some_and(|at| self.0.load(std::sync::atomic::Ordering::SeqCst) == at)
    }

    /// Marks a batch as being applied (odd) or applied (even again).
    pub(crate) fn step(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Checks `conditions` against `read` (the engine's current value of a key), for the
/// built-in engines, which hold their writer lock meanwhile. With `unchanged` (no batch
/// applied since the caller's reads), only the fence is read.
pub(crate) fn check(
    conditions: &[Condition],
    unchanged: bool,
    mut read: impl FnMut(&[u8]) -> Result<Option<Vec<u8>>, StoreError>,
) -> Result<(), ApplyError> {
    // The fence first: a deposed writer is told so, whatever else changed.
    let (fences, others): (Vec<&Condition>, Vec<&Condition>) = conditions
        .iter()
        .partition(|condition| matches!(condition, Condition::Fence(_)));
    for condition in fences.into_iter().chain(others) {
        if unchanged && !matches!(condition, Condition::Fence(_)) {
            continue;
        }
        match condition {
            Condition::Unchanged { key, value } => {
                if read(key)?.as_deref() != Some(value.as_slice()) {
                    return Err(ApplyError::Conflict { key: key.clone() });
                }
            }
            Condition::Absent(key) => {
                if read(key)?.is_some() {
                    return Err(ApplyError::Conflict { key: key.clone() });
                }
            }
            Condition::Fence(fence) => {
                if read(&fence.key)?.as_deref() != Some(&fence.token.to_be_bytes()[..]) {
                    return Err(ApplyError::Fenced {
                        key: fence.key.clone(),
                        token: fence.token,
                    });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
