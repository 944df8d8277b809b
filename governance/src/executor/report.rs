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
    /// The submission counters above, by the asset of the disbursement each was for (the
    /// `asset` label of `treasury_submissions_total`).
    pub by_asset: std::collections::BTreeMap<String, AssetCounts>,
    /// The last failure's message.
    pub last_error: Option<String>,
    /// The tick got past every check that can hold it for an operator (chain, lookups
    /// at the lowest nonce, nonce drift) and found nothing: a hold is lifted.
    pub(crate) checks_passed: bool,
}

/// One asset's share of a tick's submission counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AssetCounts {
    /// Accepted (ambiguous "already known" included).
    pub submitted: u64,
    /// Failed for infrastructure reasons.
    pub submission_failures: u64,
    /// Disbursements cancelled.
    pub cancelled: u64,
    /// Ambiguous answers.
    pub ambiguous: u64,
    /// Fee refusals.
    pub underpriced: u64,
}

/// What a submission (or a cancellation) came to, for [`TickReport::tally`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tally {
    Accepted,
    Failed,
    Cancelled,
    /// "Already known": ambiguous, and taken as accepted.
    KnownAlready,
    /// "Nonce too low": ambiguous.
    Ambiguous,
    Underpriced,
}

impl TickReport {
    /// Counts one submission's outcome (or a cancellation) in the totals and under
    /// `asset`.
    pub(crate) fn tally(&mut self, asset: &str, what: Tally) {
        let counts = self.by_asset.entry(asset.to_owned()).or_default();
        match what {
            Tally::Accepted => {
                self.submitted += 1;
                counts.submitted += 1;
            }
            Tally::Failed => {
                self.submission_failures += 1;
                counts.submission_failures += 1;
            }
            Tally::Cancelled => {
                self.cancelled += 1;
                counts.cancelled += 1;
            }
            Tally::KnownAlready => {
                self.ambiguous += 1;
                self.submitted += 1;
                counts.ambiguous += 1;
                counts.submitted += 1;
            }
            Tally::Ambiguous => {
                self.ambiguous += 1;
                counts.ambiguous += 1;
            }
            Tally::Underpriced => {
                self.underpriced += 1;
                counts.underpriced += 1;
            }
        }
    }
}
