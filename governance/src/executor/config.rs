//! `TreasuryExecutorConfig`: the executor's settings (the canonical ones; the node
//! re-exports them).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::circuit_breaker::CircuitBreaker;

/// Called with (state as `u8`, failures in the window, half-open successes).
pub type BreakerTelemetry = Arc<dyn Fn(u8, u64, u64) + Send + Sync>;

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

/// The executor's configuration: the canonical one (the node re-exports it).
#[derive(Clone)]
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
    /// The breaker every ledger call goes through.
    pub circuit_breaker: Arc<CircuitBreaker>,
    /// Told the breaker's state after every tick and on every transition.
    pub circuit_breaker_telemetry: Option<BreakerTelemetry>,
}

impl TreasuryExecutorConfig {
    /// A configuration with a 1 s poll interval, batches of 100, finality at first
    /// inclusion, and fee bumps of 20% after 3 blocks.
    pub fn new(identity: impl Into<String>, circuit_breaker: Arc<CircuitBreaker>) -> Self {
        TreasuryExecutorConfig {
            identity: identity.into(),
            poll_interval: Duration::from_secs(1),
            batch_size: 100,
            finality: Finality::Confirmations(1),
            bump_after_blocks: 3,
            bump_percent: 20,
            circuit_breaker,
            circuit_breaker_telemetry: None,
        }
    }
}

impl fmt::Debug for TreasuryExecutorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TreasuryExecutorConfig")
            .field("identity", &self.identity)
            .field("poll_interval", &self.poll_interval)
            .field("batch_size", &self.batch_size)
            .field("finality", &self.finality)
            .field("bump_after_blocks", &self.bump_after_blocks)
            .field("bump_percent", &self.bump_percent)
            .field("circuit_breaker", &self.circuit_breaker)
            .field(
                "circuit_breaker_telemetry",
                &self.circuit_breaker_telemetry.is_some(),
            )
            .finish()
    }
}
