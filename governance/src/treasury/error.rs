//! `QueueError`: why a disbursement was refused at queue time.

use super::DisbursementId;

/// A disbursement refused at queue time. Nothing was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The amount is zero.
    #[error("amount must be greater than zero")]
    ZeroAmount,
    /// The destination is empty.
    #[error("destination must not be empty")]
    EmptyDestination,
    /// The destination is implausibly long.
    #[error("destination is {len} bytes, more than {max}")]
    DestinationTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The ledger does not accept the destination.
    #[error("invalid destination: {0}")]
    InvalidDestination(String),
    /// The memo is over 8 KiB.
    #[error("memo is {len} bytes, more than {max}")]
    MemoTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The external key is empty or too long.
    #[error("external_key must be 1 to {max} bytes, got {len}")]
    InvalidExternalKey {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Too many dependencies.
    #[error("{count} dependencies, more than {max}")]
    TooManyDependencies {
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A dependency is listed twice.
    #[error("dependency {0} is listed twice")]
    DuplicateDependency(DisbursementId),
    /// A dependency does not exist (dependencies must be earlier disbursements).
    #[error("dependency {0} does not exist")]
    UnknownDependency(DisbursementId),
    /// A dependency is already cancelled, so this one could never be paid.
    #[error("dependency {0} is cancelled")]
    CancelledDependency(DisbursementId),
    /// The asset is not one the ledger pays (`native`, or a configured token's symbol).
    #[error("unknown asset {0:?}: the ledger pays `native` and its configured tokens")]
    UnknownAsset(String),
    /// The spending policy refuses it (a limit, or the allow-list): not an invalid
    /// request but a forbidden one.
    #[error("refused by the spending policy: {0}")]
    Refused(crate::policy::Refusal),
}
