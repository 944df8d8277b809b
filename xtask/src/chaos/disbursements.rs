//! What the drill queues: disbursement `i` pays a fresh address of its own an amount of
//! its own, in ether or, every third one (`i % 3 == 1`), in the drill's ERC-20 token
//! ([`token`]), so that a destination's balance in each asset says which disbursement
//! paid it, how often, and in what.

use super::token;

/// What a disbursement pays in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Asset {
    /// The chain's own coin: a value transfer to the destination.
    Native,
    /// The drill's token: `transfer(destination, amount)` to its contract.
    Token,
}

impl Asset {
    /// The disbursement's `asset`, as the node names it.
    pub(super) fn name(self) -> &'static str {
        match self {
            Asset::Native => "native",
            Asset::Token => token::SYMBOL,
        }
    }

    /// The smallest unit an amount is counted in, for messages.
    pub(super) fn unit(self) -> &'static str {
        match self {
            Asset::Native => "wei",
            Asset::Token => "GRT units",
        }
    }

    /// The other asset: what the destination must hold none of.
    pub(super) fn other(self) -> Asset {
        match self {
            Asset::Native => Asset::Token,
            Asset::Token => Asset::Native,
        }
    }
}

/// One disbursement as queued: what the chain is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Expected {
    pub(super) destination: String,
    pub(super) amount: u128,
    pub(super) asset: Asset,
}

pub(super) fn destination(i: u64) -> String {
    format!("0x{:040x}", 0xc4a0_5000_0000_0000_u64 + i)
}

pub(super) fn amount(i: u64) -> u128 {
    1_000_000_000_000_000 + 7_919 * u128::from(i) + 1
}

/// Every third disbursement (`i % 3 == 1`) pays the token; the others ether.
pub(super) fn asset(i: u64) -> Asset {
    if i % 3 == 1 {
        Asset::Token
    } else {
        Asset::Native
    }
}

/// The first `n` disbursements: destination, amount and asset.
pub(super) fn expected(n: u64) -> Vec<Expected> {
    (0..n)
        .map(|i| Expected {
            destination: destination(i),
            amount: amount(i),
            asset: asset(i),
        })
        .collect()
}

/// Of the first `n` disbursements, how many pay ether and how many the token.
pub(super) fn by_asset(n: u64) -> (u64, u64) {
    let tokens = (0..n).filter(|i| asset(*i) == Asset::Token).count() as u64;
    (n - tokens, tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_and_amounts_are_distinct() {
        let destinations: std::collections::HashSet<String> = (0..1000).map(destination).collect();
        let amounts: std::collections::HashSet<u128> = (0..1000).map(amount).collect();
        assert_eq!((destinations.len(), amounts.len()), (1000, 1000));
        assert!(destinations.iter().all(|d| d.len() == 42));
    }

    #[test]
    fn every_third_pays_the_token() {
        let assets: Vec<Asset> = (0..6).map(asset).collect();
        assert_eq!(
            assets,
            [
                Asset::Native,
                Asset::Token,
                Asset::Native,
                Asset::Native,
                Asset::Token,
                Asset::Native
            ]
        );
        assert_eq!(by_asset(30), (20, 10));
        assert_eq!(by_asset(1), (1, 0));
        assert_eq!(by_asset(2), (1, 1));
        assert_eq!(expected(5)[4].asset, Asset::Token);
    }
}
