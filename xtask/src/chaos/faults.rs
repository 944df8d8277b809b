//! `--faults`: the chain misbehaving while the node is killed.
//!
//! anvil runs with `--no-mining`; a miner thread calls `evm_mine` every 250–400 ms for the
//! whole drill, so blocks keep coming whatever the node does. A fault thread picks one
//! enabled fault every 1–4 s, in rounds (every enabled kind once per round, in a seeded
//! order, so that even a short drill sees each of them):
//!
//! - `drops`: `anvil_dropAllTransactions`, the mempool forgets every pending transaction;
//! - `fees`: a base-fee spike: for the next 3–8 blocks the miner calls
//!   `anvil_setNextBlockBaseFeePerGas` (20–80 gwei) before each `evm_mine` (anvil does
//!   not keep it from one block to the next), then stops and the fee decays;
//! - `reorgs`: `anvil_reorg [depth, []]`, depth 1 or 2: the last blocks replaced by empty
//!   ones, their transactions gone (anvil does not put them back in its pool). Never a
//!   block that has already been [`CONFIRMATIONS`] deep ([`ReorgGuard`]);
//! - `stale`: the fault proxy between the node and anvil answers lookups by hash `null`
//!   for 2–8 s (a lagging read backend), every other call passing.
//!
//! Every call that changes the chain (a block, a base fee, a drop, a reorg) is made under
//! one mutex ([`Chain`]), so that the miner and the fault thread never race: a reorg's
//! depth is decided on the head it is applied to. The schedule and the miner's jitter
//! come from the drill's seed ([`Schedule`]).
//!
//! The files: [`kinds`] (the `--faults` list), [`schedule`] and [`action`] (what to inject
//! when), [`chain`] (the mutex and the state the threads share), [`miner`], [`inject`][i]
//! (the fault thread), one file per fault ([`drops`], [`fees`], [`reorgs`], [`stale`]),
//! [`guard`] (the reorg-depth guard) and [`failures`] (calls that failed).
//!
//! [i]: mod@inject
//! [`ReorgGuard`]: guard::ReorgGuard

mod action;
mod chain;
mod drops;
mod failures;
mod fees;
mod guard;
mod inject;
mod kinds;
mod miner;
mod reorgs;
mod schedule;
mod stale;

pub(super) use self::chain::Chain;
pub(super) use self::inject::{Injected, inject};
pub(super) use self::kinds::Faults;
pub(super) use self::miner::{Mined, mine, miner_rng};
pub(super) use self::schedule::Schedule;

/// `[evm] confirmations` under faults: a payment is Executed this deep, the tip counted.
pub(super) const CONFIRMATIONS: u64 = 3;
/// Mixed into the drill's seed, one per generator, so that the kill delays (seeded with
/// the seed itself, as before `--faults`), the faults and the miner's jitter are
/// independent streams.
const FAULT_STREAM: u64 = 0x6661_756c_7473_0001;
const MINER_STREAM: u64 = 0x6d69_6e65_7200_0002;

/// The node's `[evm]` table under faults: Executed at [`CONFIRMATIONS`]; a transaction
/// pending for 2 blocks (or under the base fee) replaced with fees 20% higher, up to a cap
/// (200 gwei) well above the spikes (80 gwei at most), so that bumping can always win.
pub(super) fn evm_keys() -> String {
    format!(
        "confirmations = {CONFIRMATIONS}\n\
         bump_after_blocks = 2\n\
         bump_percent = 20\n\
         max_fee_per_gas = \"200000000000\"\n\
         max_priority_fee_per_gas = \"2000000000\"\n"
    )
}
