//! The ledger port: what the executor needs from a chain. Implementations live in
//! `node` (the dev ledger, the EVM ledger) and, for tests, in `testing`.

use std::fmt;

use crate::treasury::Disbursement;

/// A signed transaction, ready to submit and resubmit byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignedTx {
    /// The transaction's hash as the ledger reports it (hex).
    pub tx_hash: String,
    /// The signed bytes (stored as hex).
    #[serde(with = "hex_bytes")]
    pub bytes: Vec<u8>,
}

/// Bytes as a lowercase hex string in serialised records: half the size of a JSON array
/// of numbers, and readable.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = String::with_capacity(bytes.len() * 2);
        for &b in bytes {
            text.push(char::from(DIGITS[usize::from(b >> 4)]));
            text.push(char::from(DIGITS[usize::from(b & 0xf)]));
        }
        serializer.serialize_str(&text)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        if text.len() % 2 != 0 {
            return Err(D::Error::custom("odd number of hex digits"));
        }
        let digit = |c: u8| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(D::Error::custom("not a hex digit")),
        };
        text.as_bytes()
            .chunks(2)
            .map(|pair| Ok(digit(pair[0])? << 4 | digit(pair[1])?))
            .collect()
    }
}

/// What the ledger knows of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStatus {
    /// Never seen.
    Unknown,
    /// Accepted, not yet in a block.
    Pending,
    /// Included in `block`.
    Included {
        /// The block's number.
        block: u64,
    },
    /// Included in `block`, but it failed (an EVM receipt with status 0): its nonce is
    /// spent and nothing was paid.
    Reverted {
        /// The block's number.
        block: u64,
    },
}

/// Why a ledger call failed. The executor classifies each one (see
/// [`TreasuryExecutorError`](super::TreasuryExecutorError)).
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
    /// The ledger already has this transaction.
    #[error("transaction already known")]
    AlreadyKnown,
    /// The nonce was already used.
    #[error("nonce too low")]
    NonceTooLow,
    /// The signing key is missing or unusable.
    #[error("signing failed: {0}")]
    Signing(String),
    /// Anything else the ledger said, kept (bounded) for the operator.
    #[error("ledger error: {0}")]
    Other(String),
}

/// The chain, as the executor sees it. Calls block; the node runs them off its async
/// runtime's worker threads.
pub trait Ledger: Send + Sync + fmt::Debug {
    /// The current epoch (activation epochs are compared against it).
    fn current_epoch(&self) -> Result<u64, LedgerError>;

    /// The next nonce the ledger expects from the treasury account.
    fn next_nonce(&self) -> Result<u64, LedgerError>;

    /// Signs a transfer paying `disbursement` with `nonce`. Deterministic: the same
    /// disbursement and nonce give the same hash.
    fn sign(&self, disbursement: &Disbursement, nonce: u64) -> Result<SignedTx, LedgerError>;

    /// Submits signed bytes. `Ok` means the ledger accepted them.
    fn submit(&self, tx: &SignedTx) -> Result<(), LedgerError>;

    /// What the ledger knows of the transaction with this hash.
    fn lookup(&self, tx_hash: &str) -> Result<TxStatus, LedgerError>;

    /// Whether `destination` is an address this ledger can pay, checked at queue time.
    fn validate_destination(&self, destination: &str) -> Result<(), String> {
        let _ = destination;
        Ok(())
    }
}
