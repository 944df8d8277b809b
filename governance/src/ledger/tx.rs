//! The values that cross the ledger port: what to sign, what was signed, what the chain
//! says of it.

use serde::{Deserialize, Serialize};

use crate::treasury::Disbursement;

/// What a transaction for a disbursement's nonce does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptKind {
    /// Pays the disbursement.
    Payment,
    /// Uses the nonce up without paying anything (a zero-value transfer to the treasury
    /// itself): an operator's cancellation by replacement.
    Cancellation,
}

/// The fee fields of a transaction. Ledgers without a fee market leave them at zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fees {
    /// The most paid per unit of gas, base fee and tip together.
    #[serde(with = "crate::text::decimal")]
    pub max_fee_per_gas: u128,
    /// The most of that which goes to the block producer.
    #[serde(with = "crate::text::decimal")]
    pub max_priority_fee_per_gas: u128,
    /// The gas the transaction may use.
    pub gas_limit: u64,
}

impl Fees {
    /// The most the fee can cost: gas limit × max fee.
    pub fn worst_case(&self) -> u128 {
        self.max_fee_per_gas
            .saturating_mul(u128::from(self.gas_limit))
    }

    /// Both fees raised by at least `percent` (rounded up, and by at least 1 unless zero):
    /// the least a replacement at the same nonce may offer.
    pub fn bumped(&self, percent: u64) -> Fees {
        let raise = |fee: u128| {
            if fee == 0 {
                return 0;
            }
            let step = fee.saturating_mul(u128::from(percent)).div_ceil(100).max(1);
            fee.saturating_add(step)
        };
        Fees {
            max_fee_per_gas: raise(self.max_fee_per_gas),
            max_priority_fee_per_gas: raise(self.max_priority_fee_per_gas),
            gas_limit: self.gas_limit,
        }
    }
}

/// What to sign.
#[derive(Debug, Clone, Copy)]
pub struct SignRequest<'a> {
    /// The disbursement the transaction is for.
    pub disbursement: &'a Disbursement,
    /// A payment, or a cancellation by replacement.
    pub kind: AttemptKind,
    /// The nonce to sign with.
    pub nonce: u64,
    /// For a replacement: the fees it must at least offer (the ledger may offer more, as
    /// its own quote says). `None`: the ledger's quote.
    pub min_fees: Option<Fees>,
}

impl<'a> SignRequest<'a> {
    /// A payment of `disbursement` at `nonce`, at the ledger's quote.
    pub fn payment(disbursement: &'a Disbursement, nonce: u64) -> SignRequest<'a> {
        SignRequest {
            disbursement,
            kind: AttemptKind::Payment,
            nonce,
            min_fees: None,
        }
    }
}

/// A signed transaction, ready to submit and resubmit byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTx {
    /// The transaction's hash as the ledger reports it (hex).
    pub tx_hash: String,
    /// The signed bytes (stored as hex).
    #[serde(with = "crate::text::hex_bytes")]
    pub bytes: Vec<u8>,
    /// The fees it offers (zero on a ledger without a fee market).
    #[serde(default)]
    pub fees: Fees,
}

/// What one endpoint knows of a transaction, now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxStatus {
    /// Not seen (which does not mean it did not land: see the module doc).
    Unknown,
    /// Accepted, not yet in a block.
    Pending,
    /// Included in a block, and it succeeded.
    Included {
        /// The block's number.
        block: u64,
        /// The block's hash.
        block_hash: String,
    },
    /// Included in a block, but it failed (an EVM receipt with status 0, or a token
    /// transfer that moved nothing): its nonce is spent and nothing was paid.
    Reverted {
        /// The block's number.
        block: u64,
        /// The block's hash.
        block_hash: String,
    },
    /// Included in a block and it succeeded, but it did not pay what it was signed to pay
    /// (a token that took a fee, or moved another amount): money may have moved. The
    /// executor holds for an operator once the block is deep enough; it never counts it
    /// as paid, nor pays again, on its own.
    Mismatch {
        /// The block's number.
        block: u64,
        /// The block's hash.
        block_hash: String,
        /// What the chain shows, against what was signed.
        reason: String,
    },
}

/// The latest block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Its number.
    pub number: u64,
    /// Its hash.
    pub hash: String,
    /// Its base fee per gas, on a chain with a fee market.
    pub base_fee: Option<u128>,
    /// The epoch it belongs to (activation epochs are compared with it).
    pub epoch: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bump_raises_both_fees_by_at_least_the_percent() {
        let fees = Fees {
            max_fee_per_gas: 1_000,
            max_priority_fee_per_gas: 3,
            gas_limit: 21_000,
        };
        let bumped = fees.bumped(10);
        assert_eq!(bumped.max_fee_per_gas, 1_100);
        assert_eq!(bumped.max_priority_fee_per_gas, 4, "rounded up");
        assert_eq!(bumped.gas_limit, 21_000);
        assert_eq!(Fees::default().bumped(20), Fees::default(), "no fee market");
        let one = Fees {
            max_fee_per_gas: 1,
            max_priority_fee_per_gas: 1,
            gas_limit: 1,
        };
        assert_eq!(one.bumped(0).max_fee_per_gas, 2, "at least one more");
        assert_eq!(fees.worst_case(), 21_000_000);
    }

    #[test]
    fn signed_transactions_from_before_fees_were_stored_still_decode() {
        let tx: SignedTx =
            serde_json::from_str(r#"{"tx_hash":"0x1","bytes":"0a0B"}"#).expect("decodes");
        assert_eq!(tx.bytes, vec![10, 11]);
        assert_eq!(tx.fees, Fees::default());
        let text = serde_json::to_string(&SignedTx {
            fees: Fees {
                max_fee_per_gas: u128::MAX,
                max_priority_fee_per_gas: 1,
                gas_limit: 2,
            },
            ..tx
        })
        .expect("encodes");
        assert!(text.contains(&format!("\"{}\"", u128::MAX)), "{text}");
        let back: SignedTx = serde_json::from_str(&text).expect("round trip");
        assert_eq!(back.fees.max_fee_per_gas, u128::MAX);
    }
}
