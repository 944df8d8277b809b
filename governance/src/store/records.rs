//! The store's record types other than disbursements.

use serde::{Deserialize, Serialize};

use crate::executor::SignedTx;
use crate::treasury::DisbursementId;

/// A signed transaction paying one disbursement, stored before it may reach the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// The disbursement it pays.
    pub id: DisbursementId,
    /// Its nonce (the key of the `intents` tree).
    pub nonce: u64,
    /// The signed bytes, resubmitted unchanged until the ledger has them.
    pub tx: SignedTx,
    /// Whether the ledger accepted it.
    pub submitted: bool,
}

/// One operator action: who, what, why, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Its position in the log.
    pub seq: u64,
    /// When (Unix milliseconds).
    pub at_ms: u64,
    /// Who.
    pub actor: String,
    /// What, e.g. `breaker.force_open`.
    pub action: String,
    /// Why, as the operator said.
    pub reason: String,
    /// What it touched, e.g. a disbursement id or the transition made.
    pub detail: String,
}

/// The executor's state as an operator sees it, persisted after every tick.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutorSnapshot {
    /// Ticks run since the store was created.
    pub ticks: u64,
    /// When the last tick ended (Unix milliseconds).
    pub last_tick_ms: u64,
    /// The last error, if the last tick had one.
    pub last_error: Option<String>,
    /// Set when the executor halted (storage or signing), with the reason.
    pub halted: Option<String>,
    /// Submissions the ledger accepted.
    pub submitted: u64,
    /// Submissions that failed for infrastructure reasons.
    pub submission_failures: u64,
    /// Other ledger calls that failed for infrastructure reasons (see
    /// [`TickReport::read_failures`](crate::TickReport::read_failures)).
    #[serde(default)]
    pub read_failures: u64,
    /// Disbursements seen executed.
    pub executed: u64,
    /// Disbursements cancelled by the ledger's refusal.
    pub cancelled: u64,
    /// Submissions not attempted because the breaker refused.
    pub rejected_by_breaker: u64,
}

/// Work waiting in the indexes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backlog {
    /// Queued, dependencies executed, activation epoch not yet reached (or not yet seen).
    pub scheduled: u64,
    /// Queued and payable now.
    pub ready: u64,
    /// Signed and stored, not yet accepted by the ledger.
    pub staged: u64,
    /// Accepted by the ledger, not yet seen in a block.
    pub submitted: u64,
}
