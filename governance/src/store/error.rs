//! `StoreError`: the store failed, or found a record it cannot read.

/// A storage failure. Halts the executor: a treasury must not guess past its own records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The engine reported an error (I/O, or a corrupt file).
    #[error("database error: {0}")]
    Database(String),
    /// The engine could not be reached (a replicated store without a quorum, or a
    /// network failure): nothing can be read, and a write that failed this way may or
    /// may not have applied. Read again before acting on it.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A record's bytes do not decode.
    #[error("corrupt `{kind}` record at key {key}: {reason}")]
    Corrupt {
        /// The kind of record (`disbursements`, `intents`, ...).
        kind: &'static str,
        /// Its key, readable.
        key: String,
        /// What failed to decode.
        reason: String,
    },
    /// A change would break a rule the store keeps (e.g. unstaging an intent that may
    /// have been broadcast), or records disagree; nothing was written.
    #[error("refused at `{kind}` record {key}: {reason}")]
    Invariant {
        /// The kind of the record at fault.
        kind: &'static str,
        /// Its key, readable.
        key: String,
        /// The rule it would break.
        reason: String,
    },
    /// A record that must exist does not (a broken invariant; treated like corruption).
    #[error("missing `{kind}` record at key {key}")]
    Missing {
        /// The kind of record.
        kind: &'static str,
        /// The key.
        key: String,
    },
    /// The store's fence no longer holds: another writer (a new leader) owns the store.
    /// Nothing was written.
    #[error("fenced: the write token at {key} is no longer {token}; another writer owns the store")]
    Fenced {
        /// The fence's key.
        key: String,
        /// The token this writer held.
        token: u64,
    },
    /// A transaction kept meeting concurrent writes to the same records; nothing was
    /// written.
    #[error("gave up after {attempts} conflicting attempts")]
    Contention {
        /// How many times it ran.
        attempts: usize,
    },
}

impl From<sled::Error> for StoreError {
    fn from(error: sled::Error) -> Self {
        StoreError::Database(error.to_string())
    }
}
