//! The label values [`TreasuryMetrics`](crate::TreasuryMetrics) expects, defined once so that the
//! code, the alert rules and the dashboard agree on them.

/// Breaker state `0`, in `from` / `to` of the transitions counter.
pub const CLOSED: &str = "closed";
/// Breaker state `1`.
pub const OPEN: &str = "open";
/// Breaker state `2`.
pub const HALF_OPEN: &str = "half_open";
/// Every breaker state label, indexed by the state's `u8` value.
pub const BREAKER_STATES: [&str; 3] = [CLOSED, OPEN, HALF_OPEN];

/// The ledger accepted the submission.
pub const ACCEPTED: &str = "accepted";
/// An infrastructure failure (refused, timeout, 5xx, 429, malformed): counts against the breaker.
pub const FAILED: &str = "failed";
/// A business refusal (insufficient balance, invalid destination, …): the disbursement is cancelled.
pub const CANCELLED: &str = "cancelled";
/// "Already known" or "nonce too low": reconciled by transaction hash.
pub const AMBIGUOUS: &str = "ambiguous";
/// The ledger refused the fee ("underpriced", "max fee per gas less than block base fee",
/// "replacement transaction underpriced"): not an infrastructure failure, never counted against
/// the breaker; the executor bumps the fee.
pub const UNDERPRICED: &str = "underpriced";
/// Every `result` label of the submissions counter.
pub const SUBMISSION_RESULTS: [&str; 5] = [ACCEPTED, FAILED, CANCELLED, AMBIGUOUS, UNDERPRICED];

/// Queued, waiting for its activation epoch.
pub const SCHEDULED: &str = "scheduled";
/// Payable now, not yet signed.
pub const READY: &str = "ready";
/// Signed and stored, not yet accepted by the ledger.
pub const STAGED: &str = "staged";
/// Accepted by the ledger, not yet seen in a block.
pub const SUBMITTED: &str = "submitted";
/// In a block, waiting for confirmations (not yet confirmed at the configured depth).
pub const INCLUDED: &str = "included";
/// Every `status` label of the backlog gauge.
pub const BACKLOG_STATUSES: [&str; 5] = [SCHEDULED, READY, STAGED, SUBMITTED, INCLUDED];

/// The label of a breaker state given as its `u8` value (`0` → `"closed"`), `None` if unknown.
pub const fn breaker_state(state: u8) -> Option<&'static str> {
    match state {
        0 => Some(CLOSED),
        1 => Some(OPEN),
        2 => Some(HALF_OPEN),
        _ => None,
    }
}
