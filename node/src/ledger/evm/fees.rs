//! A transfer's fees: the endpoint's quote, capped by the configuration.

use super::config::EvmLedgerConfig;

/// What the endpoint says gas costs now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FeeQuote {
    /// The latest block's base fee per gas, in wei.
    pub(super) base_fee: u128,
    /// The tip the endpoint suggests (`eth_maxPriorityFeePerGas`), in wei.
    pub(super) tip: u128,
}

/// The fee fields of an EIP-1559 transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Fees {
    /// The most paid per gas, base fee and tip together.
    pub(super) max_fee_per_gas: u128,
    /// The most of that which goes to the block producer.
    pub(super) max_priority_fee_per_gas: u128,
}

impl FeeQuote {
    /// Tip = min(suggested, cap); max fee = min(2 × base fee + tip, cap): room for the base
    /// fee to double (six full blocks) before the transfer is priced out. The tip never
    /// exceeds the max fee (a node rejects that outright). A max fee below the base fee is
    /// signed all the same: the node refuses it (`Other`, retried with the same bytes)
    /// until the base fee falls back under the cap.
    pub(super) fn capped(self, config: &EvmLedgerConfig) -> Fees {
        let tip = self.tip.min(config.max_priority_fee_per_gas);
        let max_fee = self
            .base_fee
            .saturating_mul(2)
            .saturating_add(tip)
            .min(config.max_fee_per_gas);
        Fees {
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: tip.min(max_fee),
        }
    }
}
