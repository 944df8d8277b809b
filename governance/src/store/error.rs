//! `StoreError`: the store failed, or found a record it cannot read.

/// A storage failure. Halts the executor: a treasury must not guess past its own records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// sled reported an error (I/O, or a corrupt file).
    #[error("database error: {0}")]
    Database(String),
    /// A record's bytes do not decode.
    #[error("corrupt record in tree `{tree}` at key {key}: {reason}")]
    Corrupt {
        /// The tree holding it.
        tree: &'static str,
        /// Its key, readable.
        key: String,
        /// What failed to decode.
        reason: String,
    },
    /// A change would break a rule the store keeps (e.g. unstaging an intent that may
    /// have been broadcast), or records disagree; nothing was written.
    #[error("refused at tree `{tree}` key {key}: {reason}")]
    Invariant {
        /// The tree of the record at fault.
        tree: &'static str,
        /// Its key, readable.
        key: String,
        /// The rule it would break.
        reason: String,
    },
    /// A record that must exist does not (a broken invariant; treated like corruption).
    #[error("missing record in tree `{tree}` at key {key}")]
    Missing {
        /// The tree.
        tree: &'static str,
        /// The key.
        key: String,
    },
}

impl From<sled::Error> for StoreError {
    fn from(error: sled::Error) -> Self {
        StoreError::Database(error.to_string())
    }
}
