//! The miner thread: a block every 250–400 ms for the whole drill (anvil runs with
//! `--no-mining`), each block of a fee spike at the spike's base fee.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::MINER_STREAM;
use super::chain::{Chain, pause};
use super::failures::Failures;
use crate::chaos::log::Log;
use crate::chaos::rng::Rng;

/// A block every this many milliseconds, at random.
const BLOCK_EVERY_MS: (u64, u64) = (250, 400);

/// The miner's delays between blocks, from the drill's seed.
pub(in crate::chaos) fn miner_rng(seed: u64) -> Rng {
    Rng::new(seed ^ MINER_STREAM)
}

/// What the miner did.
#[derive(Debug, Default)]
pub(in crate::chaos) struct Mined {
    pub(in crate::chaos) blocks: u64,
    /// Blocks mined at a spiked base fee.
    pub(in crate::chaos) spiked: u64,
    pub(in crate::chaos) failures: Failures,
}

/// Mines a block every 250–400 ms until `stop`; before each block of a fee spike, sets
/// the next block's base fee.
pub(in crate::chaos) fn mine(
    chain: &Chain<'_>,
    mut rng: Rng,
    stop: &AtomicBool,
    log: &Log,
) -> Mined {
    let mut mined = Mined::default();
    while pause(
        stop,
        Duration::from_millis(rng.between(BLOCK_EVERY_MS.0, BLOCK_EVERY_MS.1)),
    ) {
        let mut state = chain.lock();
        if let Some(spike) = state.spike.as_mut() {
            let params = format!(r#"["{:#x}"]"#, spike.base_fee);
            match chain.anvil.rpc("anvil_setNextBlockBaseFeePerGas", &params) {
                Ok(_) => mined.spiked += 1,
                Err(error) => mined.failures.note_and_log("mining", error, log),
            }
            spike.blocks_left -= 1;
            if spike.blocks_left == 0 {
                state.spike = None;
                log.event("fee spike over: the base fee decays from the next block");
            }
        }
        match chain.anvil.rpc("evm_mine", "[]") {
            Ok(_) => mined.blocks += 1,
            Err(error) => mined.failures.note_and_log("mining", error, log),
        }
        match chain.anvil.head() {
            Ok(head) => state.guard.observe(head),
            Err(error) => mined.failures.note_and_log("mining", error, log),
        }
    }
    mined
}
