//! A transfer's fees: the endpoint's quote, capped by the configuration, and raised to a
//! replacement's floor.

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
    /// signed all the same: the node refuses it as underpriced, and the executor's bump
    /// (a replacement priced on a fresh quote) follows at the next block, up to the cap.
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

impl Fees {
    /// These fees raised to at least `floor` field by field (a replacement must outbid
    /// the transaction it replaces on both: geth and reth refuse one that raises the max
    /// fee alone), or why the caps forbid it. A floor's tip above its cap is refused too:
    /// the operator then raises the cap that stands in the way.
    pub(super) fn at_least(
        self,
        floor: Option<governance::Fees>,
        config: &EvmLedgerConfig,
    ) -> Result<Fees, String> {
        let Some(floor) = floor else {
            return Ok(self);
        };
        let tip = self
            .max_priority_fee_per_gas
            .max(floor.max_priority_fee_per_gas);
        if tip > config.max_priority_fee_per_gas {
            return Err(format!(
                "needs a tip of {tip} wei per gas, over the cap \
                 (evm.max_priority_fee_per_gas {})",
                config.max_priority_fee_per_gas
            ));
        }
        let max_fee = self.max_fee_per_gas.max(floor.max_fee_per_gas).max(tip);
        if max_fee > config.max_fee_per_gas {
            return Err(format!(
                "needs a max fee of {max_fee} wei per gas, over the cap (evm.max_fee_per_gas \
                 {})",
                config.max_fee_per_gas
            ));
        }
        Ok(Fees {
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: tip,
        })
    }
}
