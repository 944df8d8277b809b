//! `DevLedgerConfig`: the `[dev_ledger]` table of the node's TOML config, and its checks.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The dev ledger's settings. Every field has a default, so an empty (or absent)
/// `[dev_ledger]` table gives a working chain.
///
/// ```toml
/// [dev_ledger]
/// block_time_ms = 1000
/// epoch_length = 10
/// treasury_balance = "1000000000000000000000000"   # a decimal string (or a small integer)
///
/// [[dev_ledger.outages]]   # 60 s after start, refuse connections for 30 s
/// after_secs = 60
/// for_secs = 30
/// mode = "refuse"          # or "timeout"
/// ```
///
/// The chain keeps its genesis across restarts; its blocks are numbered with the block
/// time of the current run, so changing `block_time_ms` on an existing chain renumbers
/// them (harmless for a dev chain; delete the database to start afresh).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DevLedgerConfig {
    /// Milliseconds per block (at least 1).
    pub block_time_ms: u64,
    /// Blocks per epoch (at least 1).
    pub epoch_length: u64,
    /// The treasury's funding, applied once, when the chain is created. Written as a
    /// decimal string because a TOML integer cannot exceed `i64`; an integer is accepted.
    #[serde(with = "crate::ledger::decimal_u128")]
    pub treasury_balance: u128,
    /// Scheduled outages of the submission endpoint, for demonstrating the breaker.
    pub outages: Vec<Outage>,
}

/// 10^24 smallest units: a million tokens of 18 decimals.
const DEFAULT_TREASURY_BALANCE: u128 = 1_000_000_000_000_000_000_000_000;

impl Default for DevLedgerConfig {
    fn default() -> Self {
        DevLedgerConfig {
            block_time_ms: 1000,
            epoch_length: 10,
            treasury_balance: DEFAULT_TREASURY_BALANCE,
            outages: Vec::new(),
        }
    }
}

/// A window during which submissions fail: `[after_secs, after_secs + for_secs)`,
/// measured from when the dev ledger was opened (node start).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outage {
    /// Seconds after start when the outage begins.
    pub after_secs: u64,
    /// How long it lasts, in seconds (at least 1).
    pub for_secs: u64,
    /// How submissions fail meanwhile (default `refuse`).
    #[serde(default)]
    pub mode: OutageMode,
}

/// How a submission fails during an outage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutageMode {
    /// The connection is refused (`LedgerError::Unreachable`).
    #[default]
    Refuse,
    /// No answer in time (`LedgerError::Timeout`), reported at once: nothing sleeps.
    Timeout,
}

impl OutageMode {
    /// `refuse` or `timeout`, as in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            OutageMode::Refuse => "refuse",
            OutageMode::Timeout => "timeout",
        }
    }
}

impl fmt::Display for OutageMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `[dev_ledger]` value out of range. The message names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DevLedgerConfigError {
    /// `block_time_ms` is 0.
    #[error("dev_ledger.block_time_ms must be at least 1")]
    BlockTime,
    /// `epoch_length` is 0.
    #[error("dev_ledger.epoch_length must be at least 1")]
    EpochLength,
    /// An outage lasts 0 seconds.
    #[error("dev_ledger.outages[{index}].for_secs must be at least 1")]
    EmptyOutage {
        /// The outage's position in the list.
        index: usize,
    },
}

impl DevLedgerConfigError {
    /// The offending key, e.g. `dev_ledger.block_time_ms`.
    pub fn key(&self) -> String {
        match self {
            DevLedgerConfigError::BlockTime => "dev_ledger.block_time_ms".into(),
            DevLedgerConfigError::EpochLength => "dev_ledger.epoch_length".into(),
            DevLedgerConfigError::EmptyOutage { index } => {
                format!("dev_ledger.outages[{index}].for_secs")
            }
        }
    }
}

impl DevLedgerConfig {
    /// Checks the values serde cannot: block time, epoch length, outage lengths.
    pub fn validate(&self) -> Result<(), DevLedgerConfigError> {
        if self.block_time_ms == 0 {
            return Err(DevLedgerConfigError::BlockTime);
        }
        if self.epoch_length == 0 {
            return Err(DevLedgerConfigError::EpochLength);
        }
        if let Some(index) = self.outages.iter().position(|o| o.for_secs == 0) {
            return Err(DevLedgerConfigError::EmptyOutage { index });
        }
        Ok(())
    }
}
