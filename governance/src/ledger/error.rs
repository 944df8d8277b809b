//! `LedgerError`: every way a ledger call can fail, as the executor needs to tell them
//! apart.

/// Why a ledger call failed. The executor classifies each one (see
/// [`TreasuryExecutorError::classify`](crate::TreasuryExecutorError::classify)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The connection was refused or dropped.
    #[error("ledger unreachable: {0}")]
    Unreachable(String),
    /// No answer in time.
    #[error("ledger timed out")]
    Timeout,
    /// An HTTP error status (5xx), or 429 rate limiting.
    #[error("ledger answered HTTP {0}")]
    Http(u16),
    /// An answer that could not be understood.
    #[error("malformed ledger response: {0}")]
    Malformed(String),
    /// The treasury cannot cover the amount (and fees).
    #[error("insufficient balance")]
    InsufficientBalance,
    /// The destination is not a valid address for this ledger.
    #[error("invalid destination: {0}")]
    InvalidDestination(String),
    /// The ledger's rules reject the transaction.
    #[error("rejected by the ledger: {0}")]
    Rejected(String),
    /// The fee is too low: below the block's base fee, or not enough above the
    /// transaction already holding the nonce in the pool ("replacement transaction
    /// underpriced"). The fee market's answer, not the endpoint's failure.
    #[error("fee refused: {0}")]
    Underpriced(String),
    /// The fees a replacement needs exceed the configured caps (from `sign`).
    #[error("fee cap reached: {0}")]
    FeeCapReached(String),
    /// The ledger already has this transaction.
    #[error("transaction already known")]
    AlreadyKnown,
    /// The nonce was already used.
    #[error("nonce too low")]
    NonceTooLow,
    /// The signing key is missing or unusable, or the endpoint is on another chain than
    /// configured.
    #[error("signing failed: {0}")]
    Signing(String),
    /// Anything else the ledger said, kept (bounded) for the operator.
    #[error("ledger error: {0}")]
    Other(String),
}
