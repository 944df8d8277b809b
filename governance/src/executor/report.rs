//! What a tick did (`TickReport`), and where a test can make it die (`CrashPoint`).

/// Where a test makes the executor stop as if the process had died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// After intents are staged and flushed, before any is submitted.
    AfterStage,
    /// After the ledger answered a submission, before the store records it.
    AfterSubmit,
    /// After the store recorded an accepted submission.
    AfterRecord,
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// The ledger's epoch at the tick.
    pub epoch: u64,
    /// Disbursements whose activation epoch came.
    pub activated: usize,
    /// Submissions attempted (each under its own permit): first hand-overs,
    /// rebroadcasts and replacements.
    pub attempts: u64,
    /// Submissions the ledger accepted.
    pub submitted: u64,
    /// Submissions that failed for infrastructure reasons.
    pub submission_failures: u64,
    /// Other ledger calls (chain id, head, blocks, nonces, balance, lookups, signing's
    /// fee reads) that failed for infrastructure reasons. Like a failed submission, each
    /// counts against the breaker.
    pub read_failures: u64,
    /// Disbursements executed (paid at depth).
    pub executed: u64,
    /// Disbursements cancelled (refused before they left the node, reverted on chain, or
    /// replaced by an operator's cancellation).
    pub cancelled: u64,
    /// Ambiguous answers ("already known", "nonce too low"), settled by lookups.
    pub ambiguous: u64,
    /// Submissions whose fee the ledger refused (never counted against the breaker).
    pub underpriced: u64,
    /// Replacements signed at the same nonce with higher fees.
    pub fee_bumps: u64,
    /// Included transactions whose block left the chain (rebroadcast).
    pub reorgs: u64,
    /// A transaction needs a fee bump the caps do not allow: it waits.
    pub fee_cap_reached: bool,
    /// The next disbursement waits: the treasury lacks this much to pay it with the
    /// worst-case fees of everything in flight.
    pub balance_shortfall: Option<u128>,
    /// The asset of the shortfall.
    pub shortfall_asset: Option<String>,
    /// The breaker refused (the batch stopped, or the tick was skipped).
    pub rejected_by_breaker: bool,
    /// Probes of a half-open breaker by a head read (at most one per tick).
    pub probes: u64,
    /// Ready disbursements the spending policy in force kept from being signed, by rule
    /// ([`Refusal::rule`](crate::policy::Refusal::rule)): one entry each.
    pub policy_refusals: Vec<&'static str>,
    /// The last failure's message.
    pub last_error: Option<String>,
    /// The tick got past every check that can hold it for an operator (chain, lookups
    /// at the lowest nonce, nonce drift) and found nothing: a hold is lifted.
    pub(crate) checks_passed: bool,
}
