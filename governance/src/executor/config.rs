//! `TreasuryExecutorConfig`: the executor's settings (the canonical ones; the node
//! re-exports them).

use std::time::Duration;

/// When a transaction in a block counts: at a depth, or once the chain calls its block
/// finalized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finality {
    /// This many blocks, its own included (1: at first inclusion).
    Confirmations(u64),
    /// Once its block is at or below the chain's `finalized` block.
    Finalized,
}

/// The least `bump_percent` a node accepts for a replacement at the same nonce.
pub const MIN_BUMP_PERCENT: u64 = 10;

/// The executor's settings: plain data, the canonical ones (the node's configuration
/// embeds them). The breaker it goes through is given to
/// [`TreasuryExecutor::new`](crate::TreasuryExecutor::new) beside them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreasuryExecutorConfig {
    /// Who this executor is, for logs and audit records.
    pub identity: String,
    /// How long the driver waits between ticks.
    pub poll_interval: Duration,
    /// Submissions (attempts) per tick at most.
    pub batch_size: usize,
    /// When an included transaction counts as paid (and its dependents may go).
    pub finality: Finality,
    /// A transaction pending this many blocks after an endpoint accepted it is replaced
    /// with higher fees (as is one whose max fee is below the base fee).
    pub bump_after_blocks: u64,
    /// How much a replacement raises both fees, at least ([`MIN_BUMP_PERCENT`] or more).
    pub bump_percent: u64,
}

impl TreasuryExecutorConfig {
    /// A configuration with a 1 s poll interval, batches of 100, finality at first
    /// inclusion, and fee bumps of 20% after 3 blocks.
    pub fn new(identity: impl Into<String>) -> Self {
        TreasuryExecutorConfig {
            identity: identity.into(),
            poll_interval: Duration::from_secs(1),
            batch_size: 100,
            finality: Finality::Confirmations(1),
            bump_after_blocks: 3,
            bump_percent: 20,
        }
    }
}

impl Default for TreasuryExecutorConfig {
    /// [`new`](Self::new) named `treasury-executor`.
    fn default() -> Self {
        Self::new("treasury-executor")
    }
}
