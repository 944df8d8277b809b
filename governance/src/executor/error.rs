//! `TreasuryExecutorError` and the classification of ledger failures.

use crate::ledger::LedgerError;
use crate::store::{Hold, StoreError};

/// What went wrong in a tick, by the class that decides what the executor does.
///
/// | class         | counts against the breaker | the executor                                   |
/// |---------------|----------------------------|------------------------------------------------|
/// | Submission    | yes                        | the intent stays (bound: it may have landed); retried |
/// | Underpriced   | no                         | the fee was refused: replaced with a bumped fee |
/// | Insufficient  | no                         | pauses: never cancels for want of funds        |
/// | Cancelled     | no                         | cancels it if it never left the node, else holds for an operator |
/// | Ambiguous     | no                         | settled by looking up every attempt's hash     |
/// | Signing       | no                         | halts (configuration error)                    |
/// | Storage       | no                         | halts (fail fast)                              |
/// | ChainMismatch | no                         | halts: the endpoint is on another chain        |
/// | NoFinalizedBlock | no                      | halts: finality by a block the endpoint never names |
/// | Held          | no                         | waits for an operator's decision               |
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
    /// The ledger refused the fee (not the endpoint's failure).
    #[error("fee refused: {0}")]
    Underpriced(LedgerError),
    /// A replacement needs more than the fee caps allow.
    #[error("fee cap reached: {0}")]
    FeeCapReached(String),
    /// The treasury cannot cover the payment and its fees.
    #[error("insufficient balance")]
    InsufficientBalance,
    /// The treasury key cannot sign (or the endpoint is on another chain than
    /// configured).
    #[error("signing: {0}")]
    Signing(String),
    /// The ledger's answer leaves it unclear whether the transaction landed.
    #[error("ambiguous: {0}")]
    Ambiguous(LedgerError),
    /// The endpoint is on another chain than the one this store pays on.
    #[error(
        "the endpoint is on chain {endpoint}, but this store pays on chain {pinned}: \
         refusing every call until the endpoint is fixed and the node restarted"
    )]
    ChainMismatch {
        /// The chain pinned in the store at first contact.
        pinned: String,
        /// The chain the endpoint reports.
        endpoint: String,
    },
    /// `Finality::Finalized` is configured, but the endpoint names no finalized block.
    #[error(
        "the endpoint names no finalized block, and finality by the finalized block is \
         configured (evm.wait_for_finalized): use an endpoint that serves the `finalized` \
         tag, or set evm.confirmations instead"
    )]
    NoFinalizedBlock,
    /// The executor waits for an operator's decision.
    #[error("awaiting an operator: {0}")]
    Held(Hold),
    /// The executor halted earlier and will not run until restarted.
    #[error("executor halted: {0}")]
    Halted(String),
    /// The executor's broadcast gate said no (this node no longer holds the leader
    /// lease): nothing was broadcast. Not a halt: the node stands down, and a new
    /// executor is built when it leads again.
    #[error("not the leader: this node no longer holds the lease, and broadcasts nothing")]
    NotLeader,
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
            LedgerError::InvalidDestination(_) | LedgerError::Rejected(_) => {
                TreasuryExecutorError::Cancelled(error.to_string())
            }
            LedgerError::InsufficientBalance => TreasuryExecutorError::InsufficientBalance,
            LedgerError::Underpriced(_) => TreasuryExecutorError::Underpriced(error),
            LedgerError::FeeCapReached(reason) => TreasuryExecutorError::FeeCapReached(reason),
            LedgerError::AlreadyKnown | LedgerError::NonceTooLow => {
                TreasuryExecutorError::Ambiguous(error)
            }
            LedgerError::Signing(reason) => TreasuryExecutorError::Signing(reason),
        }
    }

    /// Whether this failure halts the executor (a [`Held`](Self::Held) one until an
    /// operator's decision, the others until a restart).
    pub fn halts(&self) -> bool {
        matches!(
            self,
            TreasuryExecutorError::Storage(_)
                | TreasuryExecutorError::Signing(_)
                | TreasuryExecutorError::ChainMismatch { .. }
                | TreasuryExecutorError::NoFinalizedBlock
                | TreasuryExecutorError::Held(_)
                | TreasuryExecutorError::Halted(_)
        )
    }
}
