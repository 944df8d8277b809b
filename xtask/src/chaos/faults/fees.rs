//! `fees`: a base-fee spike. For the next 3–8 blocks the miner calls
//! `anvil_setNextBlockBaseFeePerGas` (20–80 gwei) before each `evm_mine` (anvil does not
//! keep it from one block to the next), then stops and the fee decays.

use super::action::{Action, Applied};
use super::chain::{Chain, Spike};
use crate::chaos::log::Log;
use crate::chaos::rng::Rng;

/// A fee spike lasts this many blocks.
const SPIKE_BLOCKS: (u64, u64) = (3, 8);
/// A fee spike's base fee, in gwei (the node's cap is 200 gwei).
const SPIKE_GWEI: (u64, u64) = (20, 80);

pub(super) const GWEI: u128 = 1_000_000_000;

/// A spike's length and base fee, at random (the length drawn first).
pub(super) fn draw(rng: &mut Rng) -> Action {
    Action::Spike {
        blocks: rng.between(SPIKE_BLOCKS.0, SPIKE_BLOCKS.1),
        base_fee: u128::from(rng.between(SPIKE_GWEI.0, SPIKE_GWEI.1)) * GWEI,
    }
}

/// Starts a spike: the miner mines the next `blocks` blocks at `base_fee` (wei).
pub(super) fn spike(
    chain: &Chain<'_>,
    blocks: u64,
    base_fee: u128,
    log: &Log,
) -> Result<Applied, String> {
    chain.lock().spike = Some(Spike {
        blocks_left: blocks,
        base_fee,
    });
    log.event(&format!(
        "fault fees: base fee {} gwei for the next {blocks} blocks",
        base_fee / GWEI
    ));
    Ok(Applied::Made)
}
