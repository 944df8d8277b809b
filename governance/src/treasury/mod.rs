//! The treasury model: disbursements, their lifecycle, and what a valid one is.
//!
//! ```text
//! AwaitingApproval ◀──▶ Queued ──▶ Staged ──▶ Submitted ──▶ Included ──▶ Executed
//!   │                    │          │  ▲          │  ▲          │
//!   │                    │          │  └─ reorg ──┼──┴──────────┘ (the block left the chain)
//!   └────────────────────┴──────────┴──────────────┴─────────────▶ Cancelled (reason)
//! ```
//!
//! AwaitingApproval: at or above its approval threshold, waiting for approvals from more
//! operators (back to it from Queued if a tightened policy needs more before signing).
//! Queued: approved, waiting for its activation epoch and its dependencies. Staged: a
//! signed intent (nonce, tx hash, bytes) is durably stored and may be submitted.
//! Submitted: the ledger accepted it. Included: one of its transactions is in a block,
//! which has not yet reached the configured depth. Executed: at depth; paid. Cancelled:
//! a business failure or an operator's cancel; once a transaction for its nonce may have
//! been broadcast, only a cancellation by replacement that lands at that nonce cancels
//! it. A disbursement whose dependency is cancelled is cancelled too.

mod error;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use error::QueueError;

/// The longest memo a disbursement may carry, in bytes.
pub const MAX_MEMO_BYTES: usize = 8 * 1024;
/// The longest destination string accepted (an address in any ledger's text form).
pub const MAX_DESTINATION_BYTES: usize = 256;
/// The longest external key accepted.
pub const MAX_EXTERNAL_KEY_BYTES: usize = 256;
/// The longest asset name (a token's symbol).
pub const MAX_ASSET_BYTES: usize = 32;
/// The most dependencies one disbursement may name.
pub const MAX_DEPENDENCIES: usize = 64;

/// Identifies a disbursement; allocated in increasing order, so a dependency (which must
/// already exist) always has a smaller id and cycles are impossible.
pub type DisbursementId = u64;

/// A request to pay, as governance approved it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDisbursement {
    /// Where the money goes, in the ledger's address format.
    pub destination: String,
    /// How much, in the ledger's smallest unit. Must be positive.
    pub amount: u128,
    /// Free text for the record (at most 8 KiB).
    #[serde(default)]
    pub memo: String,
    /// The first epoch at which it may be paid (its timelock).
    #[serde(default)]
    pub activation_epoch: u64,
    /// Disbursements that must be executed first.
    #[serde(default)]
    pub depends_on: Vec<DisbursementId>,
    /// Queueing the same key twice returns the first disbursement instead of a second.
    #[serde(default)]
    pub external_key: Option<String>,
    /// What it pays: [`NATIVE`](crate::policy::NATIVE) (the ledger's own coin), or a
    /// token the ledger is configured with, by its symbol. The amount is in the asset's
    /// smallest unit.
    #[serde(default = "native")]
    pub asset: String,
}

fn native() -> String {
    crate::policy::NATIVE.to_owned()
}

/// A disbursement as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disbursement {
    /// Its id.
    pub id: DisbursementId,
    /// Where the money goes.
    pub destination: String,
    /// How much.
    pub amount: u128,
    /// Free text.
    pub memo: String,
    /// The first epoch at which it may be paid.
    pub activation_epoch: u64,
    /// Disbursements that must be executed first.
    pub depends_on: Vec<DisbursementId>,
    /// The idempotency key it was queued with, if any.
    pub external_key: Option<String>,
    /// What it pays ([`NATIVE`](crate::policy::NATIVE), or a token's symbol).
    #[serde(default = "native")]
    pub asset: String,
    /// Where it is in its lifecycle.
    pub status: DisbursementStatus,
    /// When it was queued (Unix milliseconds).
    pub queued_at_ms: u64,
    /// Who approved it, in order (the operator who queued it first): see
    /// [`crate::policy`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<Approval>,
}

/// One operator's approval of a disbursement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The authenticated name that approved it (an admin token's name).
    pub actor: String,
    /// When (Unix milliseconds).
    pub at_ms: u64,
}

impl Disbursement {
    /// The asset it pays: [`NATIVE`](crate::policy::NATIVE) (the ledger's own coin), or
    /// a token's symbol.
    pub fn asset(&self) -> &str {
        &self.asset
    }

    /// How many distinct names approved it.
    pub fn approvers(&self) -> u32 {
        let mut names: Vec<&str> = self.approvals.iter().map(|a| a.actor.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        u32::try_from(names.len()).unwrap_or(u32::MAX)
    }

    /// Whether `actor` approved it.
    pub fn approved_by(&self, actor: &str) -> bool {
        self.approvals.iter().any(|a| a.actor == actor)
    }
}

/// Where a disbursement is in its lifecycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum DisbursementStatus {
    /// At or above its asset's approval threshold, waiting for more operators' approvals
    /// (see [`crate::policy`]); never payable in this status.
    AwaitingApproval,
    /// Approved; waiting for its epoch, its dependencies or the executor.
    Queued,
    /// A signed intent is stored durably and may be submitted.
    Staged {
        /// The nonce the transaction was signed with.
        nonce: u64,
        /// The latest signed transaction's hash.
        tx_hash: String,
        /// An operator's cancellation by replacement is under way: its reason.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cancelling: Option<String>,
    },
    /// The ledger accepted a transaction for it.
    Submitted {
        /// The nonce.
        nonce: u64,
        /// The latest transaction's hash.
        tx_hash: String,
        /// An operator's cancellation by replacement is under way: its reason.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cancelling: Option<String>,
    },
    /// One of its transactions is in a block that is not yet deep enough to count.
    Included {
        /// The nonce.
        nonce: u64,
        /// The included transaction's hash.
        tx_hash: String,
        /// The block's number.
        block: u64,
        /// The block's hash (a reorg changes the hash at that height).
        block_hash: String,
        /// Blocks on top of it, itself included, when last seen.
        confirmations: u64,
        /// Set when the included transaction is the operator's cancellation (with its
        /// reason): at depth, the disbursement is Cancelled, not Executed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cancelling: Option<String>,
    },
    /// Included at depth: paid.
    Executed {
        /// The transaction's hash.
        tx_hash: String,
        /// The block that included it.
        block: u64,
        /// Set when an operator resolved it (`paid`), with their reason.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resolution: Option<String>,
    },
    /// Will never be paid.
    Cancelled {
        /// Why.
        reason: String,
    },
}

impl DisbursementStatus {
    /// The status's name: `awaiting_approval`, `queued`, `staged`, `submitted`, `included`, `executed`,
    /// `cancelled`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::AwaitingApproval => "awaiting_approval",
            Self::Queued => "queued",
            Self::Staged { .. } => "staged",
            Self::Submitted { .. } => "submitted",
            Self::Included { .. } => "included",
            Self::Executed { .. } => "executed",
            Self::Cancelled { .. } => "cancelled",
        }
    }

    /// Executed or cancelled: nothing more will happen to it.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Executed { .. } | Self::Cancelled { .. })
    }
}

impl NewDisbursement {
    /// Checks what can be checked without the store: amount, memo, destination, key and
    /// the shape of the dependency list. (That dependencies exist is the store's check.)
    pub fn validate(&self) -> Result<(), QueueError> {
        if self.amount == 0 {
            return Err(QueueError::ZeroAmount);
        }
        if self.destination.trim().is_empty() {
            return Err(QueueError::EmptyDestination);
        }
        if self.destination.len() > MAX_DESTINATION_BYTES {
            return Err(QueueError::DestinationTooLong {
                len: self.destination.len(),
                max: MAX_DESTINATION_BYTES,
            });
        }
        if self.memo.len() > MAX_MEMO_BYTES {
            return Err(QueueError::MemoTooLong {
                len: self.memo.len(),
                max: MAX_MEMO_BYTES,
            });
        }
        if let Some(key) = &self.external_key
            && (key.is_empty() || key.len() > MAX_EXTERNAL_KEY_BYTES)
        {
            return Err(QueueError::InvalidExternalKey {
                len: key.len(),
                max: MAX_EXTERNAL_KEY_BYTES,
            });
        }
        if self.asset.is_empty()
            || self.asset.len() > MAX_ASSET_BYTES
            || !self
                .asset
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        {
            return Err(QueueError::UnknownAsset(crate::text::bounded(
                &self.asset,
                64,
            )));
        }
        if self.depends_on.len() > MAX_DEPENDENCIES {
            return Err(QueueError::TooManyDependencies {
                count: self.depends_on.len(),
                max: MAX_DEPENDENCIES,
            });
        }
        let mut seen = self.depends_on.clone();
        seen.sort_unstable();
        if let Some(pair) = seen.windows(2).find(|w| w[0] == w[1]) {
            return Err(QueueError::DuplicateDependency(pair[0]));
        }
        Ok(())
    }
}
