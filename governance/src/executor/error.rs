//! `TreasuryExecutorError` and the classification of ledger failures.

use super::ledger::LedgerError;
use crate::store::StoreError;

/// What went wrong in a tick, by the class that decides what the executor does.
///
/// | class      | counts against the breaker | the executor                               |
/// |------------|----------------------------|--------------------------------------------|
/// | Submission | yes                        | keeps the intent staged, retries later     |
/// | Storage    | no                         | halts (fail fast)                          |
/// | Cancelled  | no                         | marks the disbursement Cancelled, goes on  |
/// | Signing    | no                         | halts (configuration error)                |
/// | Ambiguous  | no                         | reconciles by transaction hash             |
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TreasuryExecutorError {
    /// The ledger could not be reached or answered badly: infrastructure.
    #[error("submission failed: {0}")]
    Submission(LedgerError),
    /// The store failed or holds a corrupt record.
    #[error("storage: {0}")]
    Storage(#[from] StoreError),
    /// The ledger refused the payment for a business reason.
    #[error("cancelled: {0}")]
    Cancelled(String),
    /// The treasury key cannot sign.
    #[error("signing: {0}")]
    Signing(String),
    /// The ledger's answer leaves it unclear whether the transaction landed.
    #[error("ambiguous: {0}")]
    Ambiguous(LedgerError),
    /// The executor halted earlier and will not run until restarted.
    #[error("executor halted: {0}")]
    Halted(String),
    /// A test's crash point was reached (only with the `test-support` feature).
    #[error("crashed at {0:?}")]
    Crashed(super::CrashPoint),
}

impl TreasuryExecutorError {
    /// Sorts a ledger failure into its class.
    pub fn classify(error: LedgerError) -> TreasuryExecutorError {
        match error {
            LedgerError::Unreachable(_)
            | LedgerError::Timeout
            | LedgerError::Http(_)
            | LedgerError::Malformed(_)
            | LedgerError::Other(_) => TreasuryExecutorError::Submission(error),
            LedgerError::InsufficientBalance
            | LedgerError::InvalidDestination(_)
            | LedgerError::Rejected(_) => TreasuryExecutorError::Cancelled(error.to_string()),
            LedgerError::AlreadyKnown | LedgerError::NonceTooLow => {
                TreasuryExecutorError::Ambiguous(error)
            }
            LedgerError::Signing(reason) => TreasuryExecutorError::Signing(reason),
        }
    }

    /// Whether this failure halts the executor.
    pub fn halts(&self) -> bool {
        matches!(
            self,
            TreasuryExecutorError::Storage(_)
                | TreasuryExecutorError::Signing(_)
                | TreasuryExecutorError::Halted(_)
        )
    }
}
